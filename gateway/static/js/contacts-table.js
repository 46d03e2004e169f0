/* The Contacts tab: the selected device's contacts, paged from `GET /contacts/{token}`, searchable,
 * with the CSV export. The API has no search parameter, so a search reads the contacts in pages of
 * 1,000 (up to SCAN_MAX rows) and filters them here; beyond that the CSV export has everything. */

import { api, describe, seg } from './api.js';
import { downloadContactsCsv } from './contacts-csv.js';
import { $, el, setResult } from './dom.js';
import { fmtDate, fmtPhone, plural } from './format.js';
import { rememberName } from './people.js';
import { on, state } from './store.js';

const PAGE = 25;
const SCAN_PAGE = 1000;
const SCAN_MAX = 20000;
const SOURCE = { message: 'Messaged', history: 'History sync' };

const view = { token: null, offset: 0, total: 0, rows: [], query: '', matches: null, scanned: 0, loaded: false };
let generation = 0;   // bumps on every load, so an answer for an older query, page or device is dropped
let searchTimer = null;

function visible() { return state.section === 'devices' && state.tab === 'contacts' && !!state.selected; }

function reset() {
  generation += 1;
  Object.assign(view, { token: state.selected, offset: 0, total: 0, rows: [], query: '', matches: null, scanned: 0, loaded: false });
  $('contacts-search').value = '';
  $('contacts-rows').replaceChildren();
  $('contacts-status').textContent = '';
  $('contacts-range').textContent = '';
  setResult($('contacts-csv-result'), '', '');
  $('contacts-prev').disabled = true;
  $('contacts-next').disabled = true;
}

function row(c) {
  return el('tr', {},
    el('td', {}, c.name || el('span', { class: 'muted' }, '—')),
    el('td', { class: 'mono' }, fmtPhone(c.phone)),
    el('td', {}, SOURCE[c.source] || c.source || ''),
    el('td', {}, fmtDate(c.firstSeen)),
    el('td', {}, fmtDate(c.lastSeen)));
}

function render() {
  const searching = view.matches !== null;
  const list = searching ? view.matches.slice(view.offset, view.offset + PAGE) : view.rows;
  const total = searching ? view.matches.length : view.total;
  $('contacts-rows').replaceChildren(...(list.length
    ? list.map(row)
    : [el('tr', {}, el('td', { colspan: '5', class: 'muted empty-cell' }, searching ? 'No contact matches.' : 'No contacts yet.'))]));
  const first = total ? view.offset + 1 : 0;
  const last = Math.min(view.offset + PAGE, total);
  $('contacts-range').textContent = `${first}–${last} of ${total}`;
  $('contacts-prev').disabled = view.offset === 0;
  $('contacts-next').disabled = view.offset + PAGE >= total;
  if (searching) {
    const capped = view.scanned < view.total;
    $('contacts-status').textContent = `${plural(total, 'match', 'matches')} for “${view.query}” in ${capped ? `the first ${view.scanned} of ` : ''}${plural(view.total, 'contact')}${capped ? ' (export the CSV for the rest)' : ''}.`;
  } else {
    $('contacts-status').textContent = `${plural(view.total, 'contact')}.`;
  }
}

async function loadPage() {
  const gen = ++generation;
  const token = state.selected;
  $('contacts-status').textContent = 'Loading contacts…';
  try {
    const data = await api('GET', `/contacts/${seg(token)}?limit=${PAGE}&offset=${view.offset}`);
    if (gen !== generation) return;
    view.rows = (data && data.contacts) || [];
    view.total = (data && data.total) || 0;
    view.loaded = true;
    for (const c of view.rows) rememberName(token, c.phone, c.name);
    render();
  } catch (err) {
    if (gen !== generation) return;
    view.rows = [];
    $('contacts-rows').replaceChildren();
    $('contacts-status').textContent = err.code === 'DEVICE_NOT_FOUND' ? 'No contacts yet.' : `Could not load contacts: ${describe(err)}`;
  }
}

async function search(query) {
  const gen = ++generation;
  const token = state.selected;
  const needle = query.toLowerCase();
  const digits = query.replace(/[^\d]/g, '');
  const found = [];
  let offset = 0;
  let total = 0;
  $('contacts-status').textContent = `Searching for “${query}”…`;
  try {
    do {
      const data = await api('GET', `/contacts/${seg(token)}?limit=${SCAN_PAGE}&offset=${offset}`);
      if (gen !== generation) return;
      const batch = (data && data.contacts) || [];
      total = (data && data.total) || 0;
      for (const c of batch) {
        rememberName(token, c.phone, c.name);
        if ((c.name && c.name.toLowerCase().includes(needle)) || (digits && c.phone.includes(digits))) found.push(c);
      }
      offset += batch.length;
      if (!batch.length) break;
    } while (offset < total && offset < SCAN_MAX);
  } catch (err) {
    if (gen !== generation) return;
    $('contacts-status').textContent = `Search failed: ${describe(err)}`;
    return;
  }
  Object.assign(view, { matches: found, scanned: offset, total, offset: 0, query });
  render();
}

function refresh() {
  if (!visible()) return;
  const query = $('contacts-search').value.trim();
  if (query) search(query);
  else { view.matches = null; loadPage(); }
}

export function wireContactsTable() {
  on('select', (token, previous) => { if (token !== previous) { reset(); refresh(); } });
  on('tab', () => { if (!view.loaded || view.token !== state.selected) { reset(); } refresh(); });
  on('section', refresh);
  // A new contact or a history sync: re-read the first page if that is what is on screen.
  on('contacts', (token) => { if (token === state.selected && visible() && view.offset === 0) refresh(); });

  $('contacts-search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { view.offset = 0; refresh(); }, 250);
  });
  $('contacts-prev').addEventListener('click', () => {
    view.offset = Math.max(0, view.offset - PAGE);
    if (view.matches) render(); else loadPage();
  });
  $('contacts-next').addEventListener('click', () => {
    view.offset += PAGE;
    if (view.matches) render(); else loadPage();
  });
  $('contacts-export').addEventListener('click', () => downloadContactsCsv(state.selected, $('contacts-export'), $('contacts-csv-result')));
}
