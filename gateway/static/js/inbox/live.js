/* The inbox live: what each WebSocket frame of the selected device changes (new messages in and out,
 * status ticks, edits, deletions, reactions). Frames come from the console's one socket (socket.js). */

import { api, seg } from '../api.js';
import { rememberName } from '../people.js';
import { renderChats } from './chat-list.js';
import { markRead, renderConversation } from './conversation.js';
import { box, changeMessage, forward, putMessage, storedShape, touchChat } from './model.js';

/** A message the page does not have yet (sent from elsewhere, or a reaction's target): read it from the store. */
async function fetchMessage(id) {
  const token = box.token;
  try {
    const m = await api('GET', `/devices/${seg(token)}/messages/${seg(id)}`);
    return token === box.token ? m : null;
  } catch (e) {
    return null;   // not stored (retention 0, or pruned): nothing to show
  }
}

function arrived(m, readsChat) {
  const isNew = !box.messages.has(m.id);
  touchChat(m, readsChat);
  const shown = putMessage(m);
  renderChats();
  if (shown) {
    renderConversation();
    if (isNew && m.direction === 'in' && document.visibilityState !== 'hidden') markRead();
  }
}

async function onStatus(s) {
  const known = changeMessage(s.id, (m) => forward(m, s.status, s.at));
  if (known) {
    renderChats();
    renderConversation();
    return;
  }
  if (s.status !== 'sent' && s.status !== 'failed') return;
  const m = await fetchMessage(s.id);   // a send made elsewhere (the API, a campaign, another tab)
  if (!m || box.messages.has(m.id)) return;
  arrived(m, false);
  if (m.type === 'reaction' && m.reaction) onReaction({ messageId: m.reaction.messageId });   // this device reacted
}

async function onReaction(r) {
  if (!box.messages.has(r.messageId)) return;
  const m = await fetchMessage(r.messageId);   // the store keeps one reaction per person: read them whole
  if (m && putMessage(m)) renderConversation();
}

export function handleInboxFrame(f) {
  if (!f || !box.token || f.token !== box.token || !f.data || typeof f.data !== 'object') return;
  const d = f.data;
  switch (f.event) {
    case 'message':
      if (d.fromName) rememberName(box.token, d.from, d.fromName);
      arrived(storedShape(d), false);
      break;
    case 'message.sent':
      arrived(storedShape(d), true);
      break;
    case 'message.status':
      onStatus(d);
      break;
    case 'message.edited':
      if (changeMessage(d.id, (m) => { m.text = d.text; m.editedAt = d.timestamp; })) { renderChats(); renderConversation({ keepBottom: false }); }
      break;
    case 'message.revoked':
      if (changeMessage(d.id, (m) => { m.revokedAt = d.timestamp; })) { renderChats(); renderConversation({ keepBottom: false }); }
      break;
    case 'message.reaction':
      onReaction(d);
      break;
    default:
      break;
  }
}
