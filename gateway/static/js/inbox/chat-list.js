/* The selected device's chats: name, last message, time and unread count, most recent first,
 * paged with "Load more chats" (GET /devices/{token}/chats and its cursor). */

import { api, describe, seg } from '../api.js';
import { $, el, setAlert, show } from '../dom.js';
import { fmtPhone, plural, truncate } from '../format.js';
import { mediaLabel } from '../media-view.js';
import { addChats, box } from './model.js';
import { ticks, when } from './bubble.js';

const PAGE = 30;

export function chatTitle(chat) {
  if (chat.name) return chat.name;
  return chat.isGroup ? 'Group' : fmtPhone(chat.jid);
}

function preview(m) {
  if (!m) return '';
  if (m.revokedAt) return 'This message was deleted';
  const text = m.text || (m.media ? `📎 ${mediaLabel(m.media)}` : `[${m.type}]`);
  return truncate(text, 70);
}

/** Read a page of chats (the first when `more` is false); answers to an earlier device are dropped. */
export async function loadChats(more = false) {
  const token = box.token;
  if (!token) return;
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (more && box.chatsCursor) query.set('cursor', box.chatsCursor);
  show($('inbox-chats-loading'), !more);
  try {
    const page = await api('GET', `/devices/${seg(token)}/chats?${query}`);
    if (token !== box.token) return;   // the device changed meanwhile
    if (!more) { box.chats.clear(); box.order = []; }
    addChats(page.chats || []);
    box.chatsCursor = page.nextCursor || null;
    setAlert($('inbox-error'), '');
  } catch (err) {
    if (token === box.token) setAlert($('inbox-error'), `Could not load chats: ${describe(err)}`);
  } finally {
    show($('inbox-chats-loading'), false);
  }
  renderChats();
  nameGroups(token);
}

const groupNames = new Map();   // token -> Map(group JID -> subject), read once per device

/** Groups have no name in the store (messages do not carry the subject): ask the device's groups once. */
async function nameGroups(token) {
  const nameless = [...box.chats.values()].filter((c) => c.isGroup && !c.name);
  if (!nameless.length) return;
  if (!groupNames.has(token)) {
    try {
      const list = await api('GET', `/devices/${seg(token)}/groups`);
      groupNames.set(token, new Map((list.groups || []).map((g) => [g.jid, g.name])));
    } catch (err) {
      return;   // offline: the chats stay called "Group"
    }
  }
  if (token !== box.token) return;
  const names = groupNames.get(token);
  for (const chat of nameless) chat.name = names.get(chat.jid) || null;
  renderChats();
}

/** Draw the list; `open(jid)` opens a chat. */
let opener = () => {};
export function onOpenChat(fn) { opener = fn; }

export function renderChats() {
  const list = $('inbox-chats');
  const items = box.order.map((jid) => {
    const chat = box.chats.get(jid);
    const m = chat.lastMessage;
    const unread = chat.unread > 0
      ? el('span', { class: 'unread', 'aria-label': plural(chat.unread, 'unread message') }, String(chat.unread))
      : null;
    return el('li', { class: 'chat-item' },
      el('button', {
        type: 'button',
        'aria-current': jid === box.open ? 'true' : null,
        dataset: { jid },
        onclick: () => opener(jid),
      },
      el('span', { class: 'avatar', 'aria-hidden': 'true' }, chat.isGroup ? '👥' : (chatTitle(chat).replace(/^\+/, '')[0] || '?').toUpperCase()),
      el('span', { class: 'chat-text' },
        el('span', { class: 'chat-top' },
          el('span', { class: 'chat-name' }, chatTitle(chat)),
          el('time', { class: 'chat-time', datetime: chat.lastMessageAt }, when(chat.lastMessageAt))),
        el('span', { class: 'chat-bottom' },
          m && m.direction === 'out' ? ticks(m) : null,
          el('span', { class: 'chat-preview' }, preview(m)),
          unread))));
  });
  list.replaceChildren(...items);
  show($('inbox-chats-empty'), box.token && box.order.length === 0 && $('inbox-chats-loading').hidden);
  show($('inbox-more-chats'), !!box.chatsCursor);
}

export function wireChatList() {
  $('inbox-more-chats').addEventListener('click', () => loadChats(true));
}
