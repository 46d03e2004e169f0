/* The live activity of each device: the last 50 things that happened, newest first. An entry about a
 * message with media shows it (media-view.js); its element is made once and kept, so a playing voice
 * note or a retried download survives the next entry. */

import { $, el, show } from './dom.js';
import { fmtTime } from './format.js';
import { mediaView } from './media-view.js';
import { on, state } from './store.js';

const FEED_MAX = 50;
const feeds = new Map();   // token -> [{at, text, node?}] (node: the media element)

/** Add an entry; `message` ({id, media}) attaches a message's media to it. */
export function pushFeed(token, text, message = null) {
  if (!token) return;
  const feed = feeds.get(token) || [];
  const item = { at: Date.now(), text };
  if (message && message.media) {
    item.node = mediaView(message.media, { token, messageId: message.id });
  }
  feed.unshift(item);
  if (feed.length > FEED_MAX) feed.length = FEED_MAX;
  feeds.set(token, feed);
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
  on('select', renderFeed);
}
