/* Navigation: the sections (Devices, Messages, Webhook deliveries; Campaigns reserved) and the
 * selected device's tabs (Overview, Contacts, Settings), kept in step with the address. */

import { $, show } from './dom.js';
import { syncHash, TABS } from './route.js';
import { emit, state } from './store.js';

const TITLES = { devices: 'Devices', messages: 'Messages', webhooks: 'Webhook deliveries', campaigns: 'Campaigns' };

export function showSection(section) {
  state.section = Object.hasOwn(TITLES, section) ? section : 'devices';
  for (const name of Object.keys(TITLES)) show($(`${name}-view`), state.section === name);
  for (const a of document.querySelectorAll('.sections a[data-section]')) {
    if (a.dataset.section === state.section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `wa-gateway · ${TITLES[state.section]}`;
  syncHash();
  emit('section', state.section);
}

export function showTab(tab, focus = false) {
  state.tab = TABS.includes(tab) ? tab : 'overview';
  for (const name of TABS) {
    const button = $(`tab-${name}`);
    const selected = name === state.tab;
    button.setAttribute('aria-selected', String(selected));
    button.tabIndex = selected ? 0 : -1;
    show($(`panel-${name}`), selected);
  }
  if (focus) $(`tab-${state.tab}`).focus();
  syncHash();
  emit('tab', state.tab);
}

export function wireViews() {
  for (const name of TABS) {
    const button = $(`tab-${name}`);
    button.addEventListener('click', () => showTab(name));
    button.addEventListener('keydown', (e) => {
      const i = TABS.indexOf(name);
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[e.key];
      if (next === undefined) return;
      e.preventDefault();
      showTab(TABS[(next + TABS.length) % TABS.length], true);
    });
  }
}
