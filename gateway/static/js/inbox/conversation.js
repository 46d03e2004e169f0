/* The open chat: its messages oldest first (GET /devices/{token}/messages?chat=…), "Load older
 * messages" paging back by cursor, marked read when opened and when a message arrives while it is
 * shown (POST …/messages/{id}/read), kept scrolled to the newest message unless the reader scrolled up. */

import { api, describe, seg } from '../api.js';
import { $, setAlert, show } from '../dom.js';
import { fmtPhone } from '../format.js';
import { who } from '../people.js';
import { bubble, forgetMedia } from './bubble.js';
import { chatTitle, renderChats } from './chat-list.js';
import { box, closeChat, newestUnread, putMessage } from './model.js';

const PAGE = 30;
const NEAR_BOTTOM_PX = 80;

let replyStarter = () => {};
/** Who starts a reply when a bubble's "Reply" is pressed (the composer). */
export function onReply(fn) { replyStarter = fn; }

/** A group message's author: the push name it came with, else a name learnt elsewhere, and the number. */
function sender(m) {
  if (m.fromName) return m.from ? `${m.fromName} (${fmtPhone(m.from)})` : m.fromName;
  return who(box.token, m.from || m.fromLid);
}

export function renderConversation({ keepBottom = true, anchor = null } = {}) {
  const pane = $('inbox-messages');
  const chat = box.open ? box.chats.get(box.open) : null;
  show($('inbox-conversation'), !!box.open);
  show($('inbox-pick'), !box.open);
  $('messages-view').classList.toggle('inbox-chat-open', !!box.open);
  if (!box.open) { $('inbox-messages-list').replaceChildren(); return; }
  $('inbox-chat-title').textContent = chat ? chatTitle(chat) : fmtPhone(box.open);
  $('inbox-chat-sub').textContent = chat && chat.isGroup ? box.open : fmtPhone(box.open);
  const wasNearBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < NEAR_BOTTOM_PX;
  const before = pane.scrollHeight;
  const top = pane.scrollTop;
  const items = box.ids.map((id) => bubble(box.messages.get(id), {
    quoted: (qid) => box.messages.get(qid) || null,
    onReply: (m) => replyStarter(m),
    sender,
    token: box.token,
  }));
  $('inbox-messages-list').replaceChildren(...items);
  show($('inbox-older'), !!box.olderCursor);
  show($('inbox-messages-empty'), box.ids.length === 0 && $('inbox-messages-loading').hidden);
  if (anchor === 'older') pane.scrollTop = top + (pane.scrollHeight - before);   // keep the reader's place
  else if (anchor === 'bottom' || (keepBottom && wasNearBottom)) pane.scrollTop = pane.scrollHeight;
}

async function fetchPage(cursor) {
  const query = new URLSearchParams({ chat: box.open, limit: String(PAGE) });
  if (cursor) query.set('cursor', cursor);
  return api('GET', `/devices/${seg(box.token)}/messages?${query}`);
}

/** Open `jid`: its newest page, then read receipts for what was unread. */
export async function openChat(jid) {
  closeChat();
  forgetMedia();
  box.open = jid;
  const gen = box.generation;
  renderChats();
  show($('inbox-messages-loading'), true);
  renderConversation();
  try {
    const page = await fetchPage(null);
    if (gen !== box.generation) return;
    for (const m of page.messages || []) putMessage(m, { older: true });
    box.olderCursor = page.nextCursor || null;
    setAlert($('inbox-error'), '');
  } catch (err) {
    if (gen === box.generation) setAlert($('inbox-error'), `Could not load the conversation: ${describe(err)}`);
  } finally {
    if (gen === box.generation) show($('inbox-messages-loading'), false);
  }
  if (gen !== box.generation) return;
  renderConversation({ anchor: 'bottom' });
  await markRead();
}

export async function loadOlder() {
  if (!box.open || !box.olderCursor) return;
  const gen = box.generation;
  try {
    const page = await fetchPage(box.olderCursor);
    if (gen !== box.generation) return;
    for (const m of page.messages || []) putMessage(m, { older: true });
    box.olderCursor = page.nextCursor || null;
  } catch (err) {
    setAlert($('inbox-error'), `Could not load older messages: ${describe(err)}`);
    return;
  }
  renderConversation({ anchor: 'older' });
}

/** Blue ticks for everything unread in the open chat, when the page is where a person sees it. */
export async function markRead() {
  const m = newestUnread();
  if (!m || document.visibilityState === 'hidden') return;
  const token = box.token;
  const chatJid = box.open;
  try {
    const done = await api('POST', `/devices/${seg(token)}/messages/${seg(m.id)}/read`);
    if (token !== box.token) return;
    for (const id of done.read || []) {
      const read = box.messages.get(id);
      if (read) read.status = 'read';
    }
    const chat = box.chats.get(chatJid);
    if (chat && chatJid === box.open) {
      chat.unread = 0;
      if (chat.lastMessage && (done.read || []).includes(chat.lastMessage.id)) chat.lastMessage.status = 'read';
    }
    renderChats();
  } catch (err) {
    // The device may be offline: the messages stay unread and are read on the next open.
    if (token === box.token) setAlert($('inbox-error'), `Could not mark the chat read: ${describe(err)}`);
  }
}

export function leaveChat() {
  closeChat();
  renderChats();
  renderConversation();
}

export function wireConversation() {
  $('inbox-older').addEventListener('click', loadOlder);
  $('inbox-back').addEventListener('click', () => { leaveChat(); $('inbox-chats').focus(); });
  document.addEventListener('visibilitychange', () => { if (box.open) markRead(); });
}
