/* The Campaigns section: the caller's campaigns with live progress (`campaign` frames on the one
 * WebSocket), pause / resume / cancel, the results CSV, and the "New campaign" form (create.js). */

import { api, describe, seg } from '../api.js';
import { $, el, toast, withBusy } from '../dom.js';
import { fmtDate } from '../format.js';
import { on, state } from '../store.js';
import { fillDevices, wireCreate } from './create.js';

const campaigns = new Map(); // id -> the campaign as last heard (REST or frame)
const BADGE = {
  running: 'badge-connected', scheduled: 'badge-pairing', paused: 'badge-disconnected',
  completed: 'badge-unknown', cancelled: 'badge-unknown', failed: 'badge-logged_out',
};

function done(c) { return c.sent + c.failed + c.skipped; }

function progress(c) {
  const pct = c.total ? Math.round((100 * done(c)) / c.total) : 100;
  return el('div', { class: 'cmp-progress' },
    el('progress', { max: String(c.total || 1), value: String(done(c)), 'aria-label': `${c.name}: ${pct}% done` }),
    el('span', { class: 'small muted' }, `${pct}%`));
}

async function act(c, action, button) {
  await withBusy(button, '…', async () => {
    try {
      remember(await api('POST', `/campaigns/${seg(c.id)}/${action}`));
    } catch (err) {
      toast(describe(err), 'error');
    }
  });
}

function actions(c) {
  const out = [];
  const button = (action, label) => el('button', {
    class: 'btn btn-sm', type: 'button', 'data-action': action, 'aria-label': `${label} ${c.name}`,
    onclick: (e) => act(c, action, e.currentTarget),
  }, label);
  if (c.status === 'running' || c.status === 'scheduled') out.push(button('pause', 'Pause'));
  if (c.status === 'paused') out.push(button('resume', 'Resume'));
  if (['running', 'scheduled', 'paused'].includes(c.status)) out.push(button('cancel', 'Cancel'));
  out.push(el('button', {
    class: 'btn btn-sm', type: 'button', 'aria-label': `Results of ${c.name} as CSV`,
    onclick: (e) => download(c, e.currentTarget),
  }, 'CSV'));
  return el('div', { class: 'row cmp-actions' }, ...out);
}

async function download(c, button) {
  await withBusy(button, '…', async () => {
    try {
      const res = await api('GET', `/campaigns/${seg(c.id)}/recipients?format=csv`, undefined, { raw: true });
      const url = URL.createObjectURL(await res.blob());
      const a = el('a', { href: url, download: `campaign-${c.id}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (err) {
      toast(describe(err), 'error');
    }
  });
}

function row(c) {
  return el('tr', { 'data-id': c.id, 'data-status': c.status },
    el('td', {}, c.name, el('span', { class: 'mono muted block' }, c.token)),
    el('td', {}, el('span', { class: `badge ${BADGE[c.status] || 'badge-unknown'}`, 'data-role': 'status' }, c.status),
      c.error ? el('span', { class: 'small block error-cell' }, c.error) : null),
    el('td', {}, progress(c)),
    el('td', { class: 'num', 'data-role': 'sent' }, String(c.sent)),
    el('td', { class: 'num' }, String(c.delivered ?? 0)),
    el('td', { class: 'num' }, String(c.read ?? 0)),
    el('td', { class: 'num' }, String(c.failed)),
    el('td', { class: 'num' }, String(c.skipped)),
    el('td', { class: 'num' }, String(c.total)),
    el('td', {}, c.etaAt ? fmtDate(c.etaAt) : '—'),
    el('td', {}, actions(c)));
}

function render() {
  const list = [...campaigns.values()].sort((a, b) => (b.createdAt || '').localeCompare(a.createdAt || ''));
  $('cmp-rows').replaceChildren(...(list.length
    ? list.map(row)
    : [el('tr', {}, el('td', { colspan: '11', class: 'muted empty-cell' }, 'No campaigns yet.'))]));
}

function remember(c) {
  const known = campaigns.get(c.id) || {};
  campaigns.set(c.id, { ...known, ...c });
  render();
}

async function load() {
  try {
    const data = await api('GET', '/campaigns');
    campaigns.clear();
    for (const c of data.campaigns) campaigns.set(c.id, c);
    render();
    $('cmp-status').textContent = '';
  } catch (err) {
    $('cmp-status').textContent = `Could not load campaigns: ${describe(err)}`;
  }
}

export function wireCampaigns() {
  wireCreate(remember);
  on('devices', fillDevices);
  on('section', (section) => { if (section === 'campaigns') { fillDevices(); load(); } });
  on('resumed', () => { if (state.section === 'campaigns') load(); });
  on('frame', (frame) => {
    if (frame.event !== 'campaign' || !frame.data) return;
    const known = campaigns.get(frame.data.id);
    remember(frame.data);
    // A status change also moves etaAt and the times: read the campaign again.
    if (!known || known.status !== frame.data.status) {
      api('GET', `/campaigns/${seg(frame.data.id)}`).then(remember).catch(() => {});
    }
  });
}
