/* The inbox's state for the selected device: its chats (most recent first) and the open chat's
 * messages (oldest first), plus the rules that keep them in step with the server's events.
 * No DOM here: chat-list.js and conversation.js draw it. */

export const STATUS_RANK = { failed: -1, pending: 0, sent: 1, delivered: 2, read: 3, played: 4 };

export const box = {
  token: null,
  chats: new Map(),      // jid -> chat as GET /devices/{token}/chats gives it
  order: [],             // jids, the most recent first
  chatsCursor: null,     // nextCursor of the chats list (null: all loaded)
  open: null,            // the open chat's jid
  messages: new Map(),   // id -> message of the open chat
  ids: [],               // the open chat's message ids, oldest first
  olderCursor: null,     // nextCursor of the open chat's messages (null: nothing older)
  generation: 0,         // bumps on every reset: answers to older requests are dropped
};

export function resetDevice(token) {
  box.token = token;
  box.chats.clear();
  box.order = [];
  box.chatsCursor = null;
  closeChat();
}

export function closeChat() {
  box.open = null;
  box.messages.clear();
  box.ids = [];
  box.olderCursor = null;
  box.generation += 1;
}

/** Chats from a page of the list, appended in the server's order (a chat already known keeps its place). */
export function addChats(list) {
  for (const c of list) {
    if (!box.chats.has(c.jid)) box.order.push(c.jid);
    box.chats.set(c.jid, c);
  }
}

/** A message as the store shows it, from a `message` / `message.sent` frame's data. */
export function storedShape(data) {
  const out = !!data.fromMe;
  return { ...data, direction: out ? 'out' : 'in', status: out ? 'sent' : 'received', statusAt: data.timestamp };
}

/** A new message moves its chat to the top (created when unknown); returns the chat. `readsChat`: typed
 * on the linked phone, whose owner has read the chat (the server resets its unread count too). */
export function touchChat(m, readsChat = false) {
  let chat = box.chats.get(m.chat);
  if (!chat) {
    chat = { jid: m.chat, name: null, isGroup: !!m.isGroup, lastMessage: null, lastMessageAt: m.timestamp, unread: 0 };
    box.chats.set(m.chat, chat);
  }
  if (!m.isGroup && m.direction === 'in' && m.fromName) chat.name = chat.name || m.fromName;
  chat.lastMessage = m;
  chat.lastMessageAt = m.timestamp;
  if (m.direction === 'in' && m.status === 'received') chat.unread = (chat.unread || 0) + 1;
  if (readsChat) chat.unread = 0;
  box.order = [m.chat, ...box.order.filter((j) => j !== m.chat)];
  return chat;
}

/** Add (or replace) a message of the open chat, keeping the oldest-first order; false when not shown
 * (another chat's, or a reaction: the store keeps those on their target's `reactions`). */
export function putMessage(m, { older = false } = {}) {
  if (!box.open || m.chat !== box.open) return false;
  if (m.type === 'reaction') return false;   // shown on the message it reacts to, not as a bubble
  if (!box.messages.has(m.id)) {
    if (older) box.ids.unshift(m.id);
    else box.ids.push(m.id);
  }
  const known = box.messages.get(m.id);
  const merged = { ...(known || {}), ...m };
  if (known) forward(merged, known.status, known.statusAt);   // a stale copy never moves the ticks back
  box.messages.set(m.id, merged);
  return true;
}

/** Apply a change to the message `id` wherever it is shown (the open chat, a chat's last message). */
export function changeMessage(id, change) {
  let changed = false;
  const m = box.messages.get(id);
  if (m) { change(m); changed = true; }
  for (const chat of box.chats.values()) {
    if (chat.lastMessage && chat.lastMessage.id === id) {
      if (chat.lastMessage !== m) change(chat.lastMessage);
      changed = true;
    }
  }
  return changed;
}

/** A status only moves forward (a late `delivered` after `read` changes nothing). */
export function forward(m, status, at) {
  if ((STATUS_RANK[status] ?? -2) > (STATUS_RANK[m.status] ?? -2)) {
    m.status = status;
    m.statusAt = at;
  }
}

/** The newest incoming message of the open chat that is not read yet, or null. */
export function newestUnread() {
  for (let i = box.ids.length - 1; i >= 0; i -= 1) {
    const m = box.messages.get(box.ids[i]);
    if (m && m.direction === 'in' && m.status === 'received') return m;
  }
  return null;
}
