/* Which device the page shows: the selection, its `#/devices/<token>` address, and its refresh. */

import { refreshDevice } from './devices.js';
import { fetchQrIfPairing } from './pairing.js';
import { emit, state } from './store.js';

export function tokenFromHash() {
  const m = /^#\/?devices\/([^/?#]+)/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

/**
 * Show `token`'s detail. Switching to another device emits "select" with the previous token, so every
 * per-device panel (send form, contacts, settings, …) resets instead of carrying the last device's
 * input, errors and notices over.
 */
export function selectDevice(token, focus = false) {
  const previous = state.selected;
  state.selected = token;
  const hash = token ? `#/devices/${encodeURIComponent(token)}` : '';
  if (token && location.hash !== hash) history.replaceState(null, '', hash);
  if (!token) history.replaceState(null, '', location.pathname + location.search);
  emit('select', token, previous);
  if (token) refreshSelected(token);
  if (focus && token) document.getElementById('detail-title').focus({ preventScroll: false });
}

/** Re-read the device and, while it pairs, its current QR. */
export async function refreshSelected(token) {
  if (await refreshDevice(token)) await fetchQrIfPairing(token);
}

/** After the list changed: keep the selection if it still exists, else pick the first device. */
export function firstDevice() {
  return state.devices.size ? state.devices.keys().next().value : null;
}
