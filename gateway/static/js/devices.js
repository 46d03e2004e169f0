/* The device model: what the page knows about each device, merged from REST answers and frames,
 * and the words and badges a status is shown with. */

import { api, seg } from './api.js';
import { emit, state } from './store.js';

export function pushnameOf(d) { return (d.info && d.info.pushname) || d.pushname || ''; }

export function titleOf(d) { return d.name || pushnameOf(d) || d.token; }

export function initials(device) {
  const label = device.name || pushnameOf(device) || '';
  const words = label.trim().split(/\s+/).filter(Boolean);
  if (words.length >= 2) return (words[0][0] + words[1][0]).toUpperCase();
  if (words.length === 1) return words[0].slice(0, 2).toUpperCase();
  return String(device.token || '?').slice(-2);
}

export function methodOf(d) {
  if (!d) return 'qr';
  if (d.method) return d.method;
  if (state.codes.has(d.token)) return 'code';
  return 'qr';
}

/** Whether the device was ever linked to a phone: the state's `authenticated`, or (in a list entry, which
 * lacks it) whether it ever connected. */
export function everLinked(d) {
  return d.authenticated ?? !!d.connectedAt;
}

/** The status shown: a disconnected device that reconnects on its own is "reconnecting"; one that never
 * finished pairing is "never linked" (it needs a scan, not a reconnect). */
export function statusKey(d) {
  if (!d || !d.status) return 'unknown';
  if (d.status === 'disconnected' && d.reconnecting) return 'reconnecting';
  if (d.status === 'disconnected' && !everLinked(d)) return 'never_linked';
  return d.status;
}

export const STATUS_LABEL = {
  connected: 'Connected',
  pairing: 'Waiting for scan',
  disconnected: 'Disconnected',
  reconnecting: 'Reconnecting',
  never_linked: 'Never linked',
  logged_out: 'Logged out',
  unknown: 'Unknown',
};

export function statusLabel(d) {
  const key = statusKey(d);
  if (key === 'pairing' && methodOf(d) === 'code') return 'Waiting for code';
  return STATUS_LABEL[key] || key;
}

export function badgeClass(d) { return `badge badge-${statusKey(d)}`; }

/** Uptime as of now: the server's figure plus the time since we read it. */
export function liveUptime(d) {
  if (d.uptime == null) return null;
  return +d.uptime + (Date.now() - (d.uptimeAt || Date.now())) / 1000;
}

/** Merge what we learnt about a device (a REST answer or a frame) and tell the views. */
export function mergeDevice(token, data) {
  if (!data || typeof data !== 'object') return;
  const prev = state.devices.get(token) || { token };
  const next = { ...prev, ...data, token };
  if (data.uptime != null) next.uptimeAt = Date.now();
  if (data.info && data.info.pushname) next.pushname = data.info.pushname;
  if (data.status && data.status !== 'pairing') {
    state.qr.delete(token);
    state.codes.delete(token);
  }
  if (data.status === 'connected') state.connErrors.delete(token);
  if (typeof data.pairingCode === 'string' && data.pairingCode) state.codes.set(token, data.pairingCode);
  state.devices.set(token, next);
  emit('device', token);
}

export function forgetDevice(token) {
  state.devices.delete(token);
  state.qr.delete(token);
  state.codes.delete(token);
  state.connErrors.delete(token);
  emit('devices');
}

/** Re-read the whole list (start, every socket reconnect). Resolves to an error message or ''. */
export async function loadDevices() {
  const data = await api('GET', '/devices');
  const list = (data && data.devices) || [];
  const seen = new Set();
  for (const d of list) {
    seen.add(d.token);
    state.devices.set(d.token, { ...(state.devices.get(d.token) || {}), ...d });
  }
  for (const token of [...state.devices.keys()]) if (!seen.has(token)) state.devices.delete(token);
  emit('devices');
}

/** Re-read one device's full state; a device that is gone is dropped. */
export async function refreshDevice(token) {
  try {
    const data = await api('GET', `/devices/${seg(token)}`);
    mergeDevice(token, data);
  } catch (err) {
    if (err.code === 'DEVICE_NOT_FOUND') {
      forgetDevice(token);
      return false;
    }
  }
  return true;
}
