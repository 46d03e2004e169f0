/* The live activity of each device: the last 50 things that happened, newest first. When a device is
 * selected its recent messages are read from the message store (GET /devices/{token}/messages), so a
 * reload shows what happened before it; frames then add to it live. An entry about a message with media
 * shows it (media-view.js); its element is made once and kept, so a playing voice note or a retried
 * download survives the next entry. */

import { api, seg } from './api.js';
import { $, el, show } from './dom.js';
import { fmtTime, truncate } from './format.js';
import { mediaLabel, mediaView } from './media-view.js';
import { rememberName, rememberSent, who } from './people.js';
import { on, state } from './store.js';

const FEED_MAX = 50;
const HISTORY = 20;
const feeds = new Map();    // token -> [{at, text, key?, node?}] (node: the media element)
const loaded = new Set();   // tokens whose stored messages are in their feed

function entry(token, at, text, message, key) {
  const item = { at, text, key: key || (message && message.id ? `m:${message.id}` : null) };
  if (message && message.media) item.node = mediaView(message.media, { token, messageId: message.id });
  return item;
}

/** Add an entry; `message` ({id, media}) attaches a message's media to it. `key` (a message's `m:<id>`
 * by default) keeps one entry per message when the stored history and the live frames meet. */
export function pushFeed(token, text, message = null, key = null) {
  if (!token) return;
  const feed = feeds.get(token) || [];
  const item = entry(token, Date.now(), text, message, key);
  if (item.key && feed.some((other) => other.key === item.key)) return;
  feed.unshift(item);
  if (feed.length > FEED_MAX) feed.length = FEED_MAX;
  feeds.set(token, feed);
  if (token === state.selected) renderFeed();
}

const OUT_VERB = { read: 'Read by', played: 'Played by', delivered: 'Delivered to', sent: 'Sent to', pending: 'Sending to', failed: 'Not sent to' };

/** A stored message as an entry of the activity, as the live frames would have told it. */
export function describeStored(token, m) {
  const content = m.text || (m.media ? mediaLabel(m.media) : `[${m.type || 'media'}]`);
  if (m.direction === 'in') return `Message from ${who(token, m.from || m.fromLid)}${m.isGroup ? ' in a group' : ''}: ${content}`;
  return `${OUT_VERB[m.status] || 'Sent to'} ${who(token, m.chat)}: “${truncate(content, 60)}”`;
}

/** The key of a stored message's entry: the one the live frame that told the same would have had. */
function feedKey(m) {
  return m.direction === 'out' && ['delivered', 'read', 'played'].includes(m.status) ? `r:${m.id}:${m.status}` : `m:${m.id}`;
}

async function loadHistory(token) {
  if (!token || loaded.has(token)) return;
  loaded.add(token);
  let page;
  try {
    page = await api('GET', `/devices/${seg(token)}/messages?limit=${HISTORY}`);
  } catch (err) {
    loaded.delete(token);   // not stored yet, or offline: tried again on the next selection
    return;
  }
  const stored = (page.messages || []).filter((m) => m.type !== 'reaction');
  for (const m of stored) {
    if (m.direction === 'in' && m.fromName) rememberName(token, m.from, m.fromName);
    if (m.direction === 'out') rememberSent(token, m.id, m.chat, m.text ?? `[${m.type}]`);
  }
  const live = feeds.get(token) || [];
  const keys = new Set(live.map((item) => item.key).filter(Boolean));
  const older = stored
    .filter((m) => !keys.has(feedKey(m)))
    .map((m) => entry(token, Date.parse(m.direction === 'out' ? m.statusAt : m.timestamp) || Date.now(),
      describeStored(token, m), m.direction === 'in' ? m : null, feedKey(m)));
  feeds.set(token, [...live, ...older].sort((a, b) => b.at - a.at).slice(0, FEED_MAX));
  if (token === state.selected) renderFeed();
}

export function renderFeed() {
  const feed = feeds.get(state.selected) || [];
  show($('feed-empty'), feed.length === 0);
  $('feed').replaceChildren(...feed.map((item) => el('li', {},
    el('time', { datetime: new Date(item.at).toISOString() }, fmtTime(item.at)),
    el('div', { class: 'feed-body' }, item.text, item.node || null))));
}

export function wireFeed() {
  on('select', (token) => { renderFeed(); loadHistory(token); });
  on('resumed', () => { loaded.clear(); loadHistory(state.selected); });
}
