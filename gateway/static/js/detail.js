/* The selected device's card: status, pairing or connected state, facts, and its lifecycle actions
 * (reconnect, disconnect, log out & delete). */

import { api, describe, seg } from './api.js';
import {
  badgeClass, forgetDevice, initials, liveUptime, mergeDevice, methodOf, pushnameOf, statusKey, statusLabel, titleOf,
} from './devices.js';
import { $, el, setAlert, show, toast, withBusy } from './dom.js';
import { fmtDate, fmtDuration } from './format.js';
import { renderPairing, stopQrTick } from './pairing.js';
import { firstDevice, refreshSelected, selectDevice } from './selection.js';
import { on, state } from './store.js';

export function renderDetail() {
  const token = state.selected;
  const d = token ? state.devices.get(token) : null;
  show($('detail-empty'), !d);
  show($('detail-body'), !!d);
  const none = state.devices.size === 0;
  $('detail-title-empty').textContent = none ? 'Link your first WhatsApp number' : 'No device selected';
  $('detail-empty-text').textContent = none
    ? 'Add a device, then scan its QR code (or type its pairing code) on the phone. Its status updates here live.'
    : 'Select a device on the left, or add one to start pairing.';
  show($('empty-add'), none);
  if (!d) { stopQrTick(); return; }

  $('detail-title').textContent = titleOf(d);
  $('detail-title').tabIndex = -1;
  $('d-token').textContent = d.name || pushnameOf(d) ? d.token : '';
  $('d-avatar').textContent = initials(d);
  const badge = $('d-status');
  badge.className = badgeClass(d);
  badge.textContent = statusLabel(d);
  badge.dataset.status = d.status || 'unknown';

  const err = state.connErrors.get(token) || (d.status === 'disconnected' ? d.lastError : null);
  setAlert($('d-conn-error'), err && d.status !== 'connected' ? `Connection error: ${err}` : '');

  const pairing = d.status === 'pairing';
  const connected = d.status === 'connected';
  show($('pair-section'), pairing);
  show($('connected-section'), connected);
  show($('offline-section'), !pairing && !connected);

  if (pairing) renderPairing(d); else stopQrTick();

  if (connected) {
    const name = pushnameOf(d);
    $('connected-name').textContent = name ? `Connected as ${name}` : 'Connected';
    const platform = d.info && d.info.platform;
    const phone = d.info && d.info.phoneMasked;
    $('connected-sub').textContent = [platform && `on ${platform}`, phone].filter(Boolean).join(' · ');
  }

  const key = statusKey(d);
  if (!pairing && !connected) {
    $('offline-text').textContent = key === 'reconnecting'
      ? 'The connection to WhatsApp was lost. Reconnecting automatically…'
      : key === 'never_linked'
        ? 'This device was never linked to a phone. Pair it: scan its QR code or type its pairing code.'
      : key === 'logged_out'
        ? 'This device was logged out from the phone. Pair it again to use it.'
        : key === 'disconnected'
          ? 'Disconnected. The session is kept: reconnect to bring it back online.'
          : 'Status unknown.';
  }

  const facts = [
    ['Status', statusLabel(d)],
    ['Linked with', methodOf(d) === 'code' ? 'Pairing code' : 'QR code'],
    ['Push name', pushnameOf(d) || '—'],
    ['Platform', (d.info && d.info.platform) || '—'],
    ['Phone', (d.info && d.info.phoneMasked) || d.token],
    ['Sent / received', d.stats ? `${d.stats.messagesSent ?? 0} / ${d.stats.messagesReceived ?? 0}` : '—'],
    ['Uptime', connected ? fmtDuration(liveUptime(d)) : '—'],
    ['Added', fmtDate(d.createdAt)],
  ];
  $('d-facts').replaceChildren(...facts.map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', k === 'Uptime' ? { id: 'd-uptime' } : {}, v))));

  show($('d-reconnect'), key === 'disconnected' || key === 'never_linked' || key === 'logged_out' || key === 'unknown');
  $('d-reconnect').textContent = key === 'logged_out' ? 'Pair again' : key === 'never_linked' ? 'Pair' : 'Reconnect';
  show($('d-disconnect'), connected || pairing || key === 'reconnecting');
  $('d-disconnect').textContent = pairing ? 'Cancel pairing' : 'Disconnect';
}

function d0(token) {
  const d = state.devices.get(token);
  return d && d.status;
}

export function wireDetail() {
  on('select', renderDetail);
  on('devices', renderDetail);
  on('whoami', renderDetail);
  on('mode', renderDetail);
  on('device', (token) => { if (token === state.selected) renderDetail(); });

  setInterval(() => {
    const d = state.selected && state.devices.get(state.selected);
    const cell = $('d-uptime');
    if (d && cell && d.status === 'connected') cell.textContent = fmtDuration(liveUptime(d));
  }, 1000);

  $('d-reconnect').addEventListener('click', async () => {
    const token = state.selected;
    const d = state.devices.get(token);
    if (!d) return;
    await withBusy($('d-reconnect'), 'Connecting…', async () => {
      try {
        const data = await api('POST', '/devices', { token, method: methodOf(d) });
        state.connErrors.delete(token);
        mergeDevice(token, { method: data && data.method, status: (data && data.status) || d.status });
        refreshSelected(token);
      } catch (err) {
        toast(`Reconnect failed: ${describe(err)}`, 'error');
      }
    });
  });

  $('d-disconnect').addEventListener('click', async () => {
    const token = state.selected;
    if (!token) return;
    await withBusy($('d-disconnect'), 'Disconnecting…', async () => {
      try {
        const wasPairing = d0(token) === 'pairing';
        const data = await api('POST', `/devices/${seg(token)}/disconnect`, {});
        mergeDevice(token, data && data.status ? data : { status: 'disconnected', reconnecting: false });
        toast(wasPairing ? 'Pairing cancelled.' : 'Device disconnected; the session is kept.');
      } catch (err) {
        toast(`Disconnect failed: ${describe(err)}`, 'error');
      }
    });
  });

  $('d-delete').addEventListener('click', async () => {
    const token = state.selected;
    if (!token) return;
    // eslint-disable-next-line no-alert
    if (!window.confirm(`Log out ${token} from WhatsApp and delete the device? Its contacts are kept.`)) return;
    await withBusy($('d-delete'), 'Deleting…', async () => {
      try {
        await api('DELETE', `/devices/${seg(token)}`);
        forgetDevice(token);
        selectDevice(firstDevice());
        toast('Device deleted.');
      } catch (err) {
        toast(`Delete failed: ${describe(err)}`, 'error');
      }
    });
  });
}
