/* The page's address: `#/devices/<token>[/contacts|/settings]`, `#/messages/<token>[/<chat>]` or `#/webhooks`, so a reload, a bookmark
 * or the back button lands on the same view. */

import { state } from './store.js';

export const TABS = ['overview', 'contacts', 'settings'];

/** {section, token, tab} from the current hash (missing parts are null). */
export function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  if (/^webhooks\b/.test(h)) return { section: 'webhooks', token: null, tab: null };
  if (/^campaigns\b/.test(h)) return { section: 'campaigns', token: null, tab: null };
  const inbox = /^messages(?:\/([^/?#]+))?(?:\/([^/?#]+))?/.exec(h);
  if (inbox) {
    return {
      section: 'messages',
      token: inbox[1] ? decodeURIComponent(inbox[1]) : null,
      tab: null,
      chat: inbox[2] ? decodeURIComponent(inbox[2]) : null,
    };
  }
  const m = /^devices(?:\/([^/?#]+))?(?:\/([a-z]+))?/.exec(h);
  if (!m) return { section: null, token: null, tab: null };
  return {
    section: 'devices',
    token: m[1] ? decodeURIComponent(m[1]) : null,
    tab: TABS.includes(m[2]) ? m[2] : null,
  };
}

/** Write the state into the address without adding a history entry. */
export function syncHash() {
  let hash = '';
  if (state.section === 'webhooks' || state.section === 'campaigns') hash = `#/${state.section}`;
  else if (state.section === 'messages') {
    hash = '#/messages';
    if (state.selected) hash += `/${encodeURIComponent(state.selected)}${state.chat ? `/${encodeURIComponent(state.chat)}` : ''}`;
  }
  else if (state.selected) {
    hash = `#/devices/${encodeURIComponent(state.selected)}${state.tab && state.tab !== 'overview' ? `/${state.tab}` : ''}`;
  }
  if (location.hash !== hash) history.replaceState(null, '', hash || location.pathname + location.search);
}
