/* Webhook deliveries: the log of signed POSTs (`GET /webhooks/deliveries`), filtered by status and
 * device on the server and by event here; attempts and last error per row; retry one failed delivery
 * or all the failed ones shown (`POST /webhooks/deliveries/{id}/retry`). */

import { api, describe, seg } from './api.js';
import { titleOf } from './devices.js';
import { $, el, show, toast, withBusy } from './dom.js';
import { fmtDate, plural } from './format.js';
import { on, state } from './store.js';

const LIMIT = 200;
const EVENTS = ['message.received', 'message.receipt', 'contacts.new', 'contacts.sync', 'device.connected', 'device.disconnected', 'device.logged_out'];
const STATUS_BADGE = { delivered: 'badge-connected', pending: 'badge-pairing', failed: 'badge-logged_out' };

let rows = [];
let generation = 0;

function shown() {
  const event = $('dl-event').value;
  return event ? rows.filter((d) => d.event === event) : rows;
}

function deviceLabel(token) {
  const d = token && state.devices.get(token);
  return d ? titleOf(d) : token || '—';
}

function row(d) {
  const retry = d.status === 'failed'
    ? el('button', { class: 'btn btn-sm', type: 'button', 'aria-label': `Retry delivery ${d.id}`, onclick: (e) => retryOne(d, e.currentTarget) }, 'Retry')
    : null;
  const when = d.status === 'pending' && d.nextAttemptAt ? `next ${fmtDate(d.nextAttemptAt)}` : d.deliveredAt ? `delivered ${fmtDate(d.deliveredAt)}` : '';
  return el('tr', { 'data-id': String(d.id), 'data-status': d.status },
    el('td', { class: 'mono' }, String(d.id)),
    el('td', { class: 'mono' }, d.event),
    el('td', {}, deviceLabel(d.token), d.token && deviceLabel(d.token) !== d.token ? el('span', { class: 'mono muted block' }, d.token) : null),
    el('td', {}, el('span', { class: `badge ${STATUS_BADGE[d.status] || 'badge-unknown'}` }, d.status)),
    el('td', { class: 'num' }, String(d.attempts ?? 0)),
    el('td', { class: 'error-cell' }, d.lastError || el('span', { class: 'muted' }, '—')),
    el('td', {}, fmtDate(d.createdAt), when ? el('span', { class: 'small muted block' }, when) : null),
    el('td', {}, retry));
}

function render() {
  const list = shown();
  $('deliveries-rows').replaceChildren(...(list.length
    ? list.map(row)
    : [el('tr', {}, el('td', { colspan: '8', class: 'muted empty-cell' }, 'No deliveries match.'))]));
  const failed = list.filter((d) => d.status === 'failed').length;
  show($('deliveries-retry-all'), failed > 0);
  $('deliveries-retry-all').textContent = `Retry ${plural(failed, 'failed delivery', 'failed deliveries')}`;
  $('deliveries-status').textContent = `${plural(list.length, 'delivery', 'deliveries')} shown${rows.length >= LIMIT ? ` (the newest ${LIMIT})` : ''}.`;
}

async function load() {
  const gen = ++generation;
  const params = new URLSearchParams({ limit: String(LIMIT) });
  if ($('dl-status').value) params.set('status', $('dl-status').value);
  if ($('dl-device').value) params.set('token', $('dl-device').value);
  $('deliveries-status').textContent = 'Loading deliveries…';
  try {
    const data = await api('GET', `/webhooks/deliveries?${params}`);
    if (gen !== generation) return;
    rows = (data && data.deliveries) || [];
    render();
  } catch (err) {
    if (gen !== generation) return;
    rows = [];
    render();
    $('deliveries-status').textContent = `Could not load deliveries: ${describe(err)}`;
  }
}

async function retry(d) {
  const data = await api('POST', `/webhooks/deliveries/${seg(d.id)}/retry`, {});
  Object.assign(d, data && typeof data === 'object' ? data : { status: 'pending', attempts: 0 });
}

async function retryOne(d, button) {
  await withBusy(button, 'Retrying…', async () => {
    try {
      await retry(d);
      toast(`Delivery ${d.id} is queued again.`);
    } catch (err) {
      toast(`Retry failed: ${describe(err)}`, 'error');
    }
  });
  render();
}

async function retryAll() {
  const failed = shown().filter((d) => d.status === 'failed');
  let ok = 0;
  let firstError = null;
  await withBusy($('deliveries-retry-all'), 'Retrying…', async () => {
    for (const d of failed) {
      try { await retry(d); ok += 1; } catch (err) { firstError = firstError || err; }
    }
  });
  render();
  if (firstError) toast(`Queued ${ok} of ${failed.length} again; ${describe(firstError)}`, 'error');
  else toast(`Queued ${plural(ok, 'delivery', 'deliveries')} again.`);
}

function fillDeviceFilter() {
  const select = $('dl-device');
  const current = select.value;
  const options = [...state.devices.values()].map((d) => el('option', { value: d.token }, titleOf(d) === d.token ? d.token : `${titleOf(d)} (${d.token})`));
  select.replaceChildren(el('option', { value: '' }, 'All devices'), ...options);
  if (current && !state.devices.has(current)) select.append(el('option', { value: current }, current));
  select.value = current;
}

export function wireDeliveries() {
  $('dl-event').replaceChildren(el('option', { value: '' }, 'All events'), ...EVENTS.map((e) => el('option', { value: e }, e)));
  on('devices', fillDeviceFilter);
  on('section', (section) => { if (section === 'webhooks') { fillDeviceFilter(); load(); } });
  $('dl-status').addEventListener('change', load);
  $('dl-device').addEventListener('change', load);
  $('dl-event').addEventListener('change', render);
  $('deliveries-refresh').addEventListener('click', load);
  $('deliveries-retry-all').addEventListener('click', retryAll);
}
