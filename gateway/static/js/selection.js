/* Which device the page shows: the selection and its refresh. */

import { refreshDevice } from './devices.js';
import { fetchQrIfPairing } from './pairing.js';
import { syncHash } from './route.js';
import { emit, state } from './store.js';

/**
 * Show `token`'s detail. Switching to another device emits "select" with the previous token, so every
 * per-device panel (send form, contacts, settings, …) resets instead of carrying the last device's
 * input, errors and notices over.
 */
export function selectDevice(token, focus = false) {
  const previous = state.selected;
  state.selected = token;
  syncHash();
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
