/* The WebSocket console's frame log: the last 2,000 entries, filterable by text, direction and event. */

import { $, el } from './dom.js';

const LOG_MAX = 2000;
const ARROWS = { in: '←', out: '→', sys: '•' };
const DIR_LABEL = { in: 'received', out: 'sent', sys: 'connection' };

let entries = [];          // {id, dir, name, token, text, at, error}
const events = new Set();
let seq = 0;

function fmtClock(ms) {
  const d = new Date(ms);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

export function logEntry(dir, name, token, text, error = false) {
  const entry = { id: ++seq, dir, name, token, text, at: Date.now(), error };
  entries.push(entry);
  if (entries.length > LOG_MAX) {
    entries.splice(0, entries.length - LOG_MAX);
    const first = $('log').firstElementChild;
    if (first) first.remove();
  }
  if (dir !== 'sys' && !events.has(name)) {
    events.add(name);
    const select = $('f-event');
    const current = select.value;
    select.replaceChildren(el('option', { value: '' }, 'All events'), ...[...events].sort().map((e) => el('option', { value: e }, e)));
    select.value = current;
  }
  if (matches(entry)) appendRow(entry);
  updateCount();
}

function matches(entry) {
  const dir = $('f-dir').value;
  const ev = $('f-event').value;
  const text = $('f-text').value.trim().toLowerCase();
  if (dir && entry.dir !== dir) return false;
  if (ev && entry.name !== ev) return false;
  if (text && !`${entry.name} ${entry.token || ''} ${entry.text}`.toLowerCase().includes(text)) return false;
  return true;
}

function row(entry) {
  const multiline = entry.text.includes('\n');
  const meta = el('span', { class: 'log-meta' },
    el('time', { datetime: new Date(entry.at).toISOString() }, fmtClock(entry.at)),
    el('span', { class: 'dir', title: DIR_LABEL[entry.dir] }, ARROWS[entry.dir], el('span', { class: 'visually-hidden' }, ` ${DIR_LABEL[entry.dir]}`)),
    el('span', { class: 'ev' }, entry.name),
    entry.token ? el('span', { class: 'muted' }, entry.token) : null);
  const body = multiline
    ? el('details', { open: entry.dir !== 'sys' && entry.text.length < 600 ? true : null }, el('summary', {}, meta), el('pre', {}, entry.text))
    : el('div', {}, meta, ' ', el('span', {}, entry.text));
  return el('li', { class: `dir-${entry.dir}${entry.error ? ' is-error' : ''}`, 'data-event': entry.name, 'data-dir': entry.dir }, body);
}

function appendRow(entry) {
  const log = $('log');
  log.append(row(entry));
  if ($('log-follow').checked) log.scrollTop = log.scrollHeight;
}

function rerender() {
  const log = $('log');
  log.replaceChildren(...entries.filter(matches).map(row));
  if ($('log-follow').checked) log.scrollTop = log.scrollHeight;
  updateCount();
}

function updateCount() {
  const shown = $('log').children.length;
  const total = entries.length;
  $('log-count').textContent = shown === total ? `${total}` : `${shown} of ${total}`;
}

export function wireLog() {
  $('log-clear').addEventListener('click', () => {
    entries = [];
    $('log').replaceChildren();
    updateCount();
  });
  for (const id of ['f-text', 'f-dir', 'f-event']) $(id).addEventListener('input', rerender);
  $('log-follow').addEventListener('change', () => { if ($('log-follow').checked) $('log').scrollTop = $('log').scrollHeight; });
}
