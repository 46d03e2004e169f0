/* The live activity of each device: the last 50 things that happened, newest first. */

import { $, el, show } from './dom.js';
import { fmtTime } from './format.js';
import { on, state } from './store.js';

const FEED_MAX = 50;
const feeds = new Map();   // token -> [{at, text}]

export function pushFeed(token, text) {
  if (!token) return;
  const feed = feeds.get(token) || [];
  feed.unshift({ at: Date.now(), text });
  if (feed.length > FEED_MAX) feed.length = FEED_MAX;
  feeds.set(token, feed);
  if (token === state.selected) renderFeed();
}

export function renderFeed() {
  const feed = feeds.get(state.selected) || [];
  show($('feed-empty'), feed.length === 0);
  $('feed').replaceChildren(...feed.map((item) => el('li', {},
    el('time', { datetime: new Date(item.at).toISOString() }, fmtTime(item.at)),
    el('span', { class: 'feed-body' }, item.text))));
}

export function wireFeed() {
  on('select', renderFeed);
}
