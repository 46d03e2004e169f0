/* The device list: one row per device with a live status badge, searchable by name, number or push
 * name and filterable by status. Rows are keyed by token and a frame redraws only its own row, so a
 * gateway with hundreds of devices stays quick while their statuses change. */

import { badgeClass, initials, pushnameOf, statusKey, statusLabel, titleOf } from './devices.js';
import { $, el, show } from './dom.js';
import { plural } from './format.js';
import { selectDevice } from './selection.js';
import { on, state } from './store.js';

const rows = new Map();   // token -> <li>

function rowFor(d) {
  const pushname = pushnameOf(d);
  const sub = [d.name || pushname ? d.token : '', d.name && pushname ? pushname : ''].filter(Boolean).join(' · ');
  const li = el('li', { class: 'device-item' },
    el('button', {
      type: 'button',
      'data-token': d.token,
      'aria-current': d.token === state.selected ? 'true' : 'false',
      onclick: () => selectDevice(d.token, true),
    },
    el('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(d)),
    el('span', { class: 'device-text' },
      el('span', { class: 'device-name' }, titleOf(d)),
      el('span', { class: 'device-meta' },
        el('span', { class: badgeClass(d), 'data-status': d.status || 'unknown' }, statusLabel(d)),
        sub ? el('span', { class: 'device-sub' }, sub) : null))));
  li.dataset.search = `${d.token} ${d.name || ''} ${pushname}`.toLowerCase();
  li.dataset.status = statusKey(d);
  return li;
}

function matches(li) {
  const q = $('device-search').value.trim().toLowerCase();
  const status = $('device-filter').value;
  if (status && li.dataset.status !== status) return false;
  return !q || li.dataset.search.includes(q.replace(/^\+/, ''));
}

/** Apply the search and the status filter, and say how many devices are shown. */
function applyFilter() {
  let shown = 0;
  for (const li of rows.values()) {
    const visible = matches(li);
    li.hidden = !visible;
    if (visible) shown += 1;
  }
  const total = rows.size;
  const filtering = $('device-search').value.trim() !== '' || $('device-filter').value !== '';
  $('device-count').textContent = filtering ? `${shown} of ${plural(total, 'device')}` : plural(total, 'device');
  show($('device-tools'), total > 0);
  show($('devices-nomatch'), total > 0 && shown === 0);
}

export function renderList() {
  rows.clear();
  for (const d of state.devices.values()) rows.set(d.token, rowFor(d));
  $('device-list').replaceChildren(...rows.values());
  show($('devices-empty'), state.devices.size === 0 && $('devices-loading').hidden);
  applyFilter();
}

function renderRow(token) {
  const d = state.devices.get(token);
  const old = rows.get(token);
  if (!d || !old) { renderList(); return; }
  const next = rowFor(d);
  rows.set(token, next);
  old.replaceWith(next);
  next.hidden = !matches(next);
  applyFilter();
}

function markSelected() {
  for (const [token, li] of rows) li.firstElementChild.setAttribute('aria-current', token === state.selected ? 'true' : 'false');
}

export function wireDeviceList() {
  on('devices', renderList);
  on('device', renderRow);
  on('select', markSelected);
  $('device-search').addEventListener('input', applyFilter);
  $('device-filter').addEventListener('change', applyFilter);
}
