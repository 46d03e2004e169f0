/* Pairing: the live QR (server-rendered SVG, redrawn on every `qrcode` frame, with a countdown to its
 * expiry) or the pairing code, and the sandbox's "Simulate scan". */

import { api, ApiError, describe, seg } from './api.js';
import { mergeDevice, methodOf } from './devices.js';
import { $, el, show, toast, withBusy } from './dom.js';
import { pushFeed } from './feed.js';
import { sendFrame } from './socket.js';
import { emit, state } from './store.js';

const DEFAULT_QR_MS = 20000;

let qrSeq = 0;      // bumps for every QR drawn, so an SVG still in flight for an older code is dropped
let qrTick = null;

export function renderPairing(d) {
  const token = d.token;
  const byCode = methodOf(d) === 'code';
  show($('qr-panel'), !byCode);
  show($('code-panel'), byCode);
  show($('steps-qr'), !byCode);
  show($('steps-code'), byCode);
  $('pair-title').textContent = byCode ? 'Enter this code on the phone' : 'Scan this QR code';
  // The sandbox control routes are admin-only: accounts would get FORBIDDEN.
  const canScan = state.sandbox && state.isAdmin !== false;
  show($('simulate-scan'), canScan);
  show($('sandbox-hint'), canScan);

  if (byCode) {
    const code = state.codes.get(token);
    $('pair-code').textContent = code || 'Waiting…';
    $('pair-code').dataset.code = code || '';
    stopQrTick();
    return;
  }
  const current = state.qr.get(token);
  const box = $('qr-box');
  if (!current) {
    box.querySelectorAll('svg, .qr-fallback').forEach((n) => n.remove());
    delete box.dataset.code;
    qrSeq += 1;   // drop any SVG still in flight for the previous code
    box.classList.remove('expired');
    $('qr-overlay').hidden = false;
    box.setAttribute('aria-label', 'Waiting for a QR code');
    show($('qr-countdown'), false);
    stopQrTick();
    return;
  }
  if (box.dataset.code !== current.code) loadQrSvg(token, current.code);
  startQrTick();
}

/** Fetch the server-rendered SVG (segno) for the device's current QR and inject it. */
async function loadQrSvg(token, code) {
  const seq = ++qrSeq;
  const box = $('qr-box');
  box.dataset.code = code;
  let svg = null;
  let failure = '';
  try {
    const res = await api('GET', `/devices/${seg(token)}/qr?format=svg`, undefined, { raw: true, headers: { Accept: 'image/svg+xml' } });
    const type = res.headers.get('Content-Type') || '';
    const text = await res.text();
    if (!/svg/i.test(type) && !/^\s*(<\?xml|<svg)/.test(text)) throw new Error(`unexpected ${type || 'content'}`);
    svg = sanitizeSvg(text);
    if (!svg) throw new Error('unreadable SVG');
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return;   // the QR went away (scanned)
    failure = err instanceof ApiError ? describe(err) : err.message;
  }
  if (seq !== qrSeq || state.selected !== token) return;   // a newer QR (or device) won
  box.querySelectorAll('svg, .qr-fallback').forEach((n) => n.remove());
  $('qr-overlay').hidden = true;
  if (svg) {
    box.append(svg);
    box.setAttribute('aria-label', 'QR code to scan with WhatsApp');
  } else {
    box.append(el('div', { class: 'qr-fallback mono' }, `Could not draw the QR image (${failure}).`));
    box.setAttribute('aria-label', 'QR code unavailable');
  }
}

/** Parse the SVG as XML and keep only drawing: no script, no foreignObject, no handlers, no javascript: links. */
export function sanitizeSvg(text) {
  // segno's inline SVG leaves out the namespace; without it the XML parser makes an inert element.
  let source = text.replace(/^\s*<\?xml[^>]*>\s*/, '');
  if (!/^<svg[^>]*\sxmlns=/.test(source)) source = source.replace(/^<svg\b/, '<svg xmlns="http://www.w3.org/2000/svg"');
  const doc = new DOMParser().parseFromString(source, 'image/svg+xml');
  const root = doc.documentElement;
  if (!root || root.nodeName.toLowerCase() !== 'svg' || doc.querySelector('parsererror')) return null;
  root.querySelectorAll('script, foreignObject').forEach((n) => n.remove());
  for (const node of [root, ...root.querySelectorAll('*')]) {
    for (const attr of [...node.attributes]) {
      // Style attributes too: the page's CSP allows no inline style, and a QR needs none.
      if (/^on/i.test(attr.name) || attr.name === 'style' || /^\s*javascript:/i.test(attr.value)) node.removeAttribute(attr.name);
    }
  }
  // Scale to the box: keep the drawing's coordinate system, drop its fixed size.
  if (!root.getAttribute('viewBox')) {
    const w = parseFloat(root.getAttribute('width'));
    const h = parseFloat(root.getAttribute('height'));
    if (w && h) root.setAttribute('viewBox', `0 0 ${w} ${h}`);
  }
  root.removeAttribute('width');
  root.removeAttribute('height');
  root.setAttribute('aria-hidden', 'true');
  root.setAttribute('focusable', 'false');
  root.setAttribute('preserveAspectRatio', 'xMidYMid meet');
  return document.importNode(root, true);
}

/** A QR arrived (frame or REST): remember it, learn the rotation interval from consecutive frames. */
export function onQr(token, code, { fromRest = false } = {}) {
  if (!code) return;
  const now = Date.now();
  const prev = state.qr.get(token);
  if (prev && prev.code === code) return;
  if (prev && !fromRest && !prev.fromRest) {
    const observed = now - prev.receivedAt;
    if (observed >= 1000 && observed < 180000) state.qrInterval.set(token, observed);
  }
  const interval = state.qrInterval.get(token) || DEFAULT_QR_MS;
  state.qr.set(token, { code, receivedAt: now, expiresAt: fromRest ? null : now + interval, interval, fromRest });
  const d = state.devices.get(token);
  if (d && d.status !== 'pairing') mergeDevice(token, { status: 'pairing' });
  else emit('device', token);
}

export function onPairingCode(token, code) {
  state.codes.set(token, code);
  mergeDevice(token, { method: 'code', status: 'pairing' });
}

/** A pairing device's QR over REST (a reloaded page), and over the socket (`get_qr` answers a frame). */
export async function fetchQrIfPairing(token) {
  const d = state.devices.get(token);
  if (d && d.status === 'pairing' && methodOf(d) === 'qr' && !state.qr.has(token)) {
    try {
      const q = await api('GET', `/devices/${seg(token)}/qr`);
      if (q && q.qr) onQr(token, q.qr, { fromRest: true });
    } catch (e) { /* no QR yet; the socket will bring one */ }
  }
  if (d && d.status === 'pairing') sendFrame('get_qr', { token });
}

function startQrTick() {
  updateCountdown();
  if (!qrTick) qrTick = setInterval(updateCountdown, 250);
}

export function stopQrTick() {
  if (qrTick) clearInterval(qrTick);
  qrTick = null;
}

function updateCountdown() {
  const token = state.selected;
  const q = token && state.qr.get(token);
  const wrap = $('qr-countdown');
  const box = $('qr-box');
  if (!q) { show(wrap, false); return; }
  show(wrap, true);
  const bar = $('qr-bar');
  const text = $('qr-countdown-text');
  if (!q.expiresAt) {
    bar.style.transform = 'scaleX(1)';   // CSSOM, which the CSP allows (style attributes it does not)
    bar.classList.remove('low');
    text.textContent = 'Refreshes automatically';
    box.classList.remove('expired');
    return;
  }
  const left = q.expiresAt - Date.now();
  const frac = Math.max(0, Math.min(1, left / q.interval));
  bar.style.transform = `scaleX(${frac})`;
  bar.classList.toggle('low', left < 5000);
  if (left > 0) {
    text.textContent = `Expires in ${Math.ceil(left / 1000)} s`;
    box.classList.remove('expired');
  } else {
    text.textContent = 'Refreshing…';
    // Keep a late code scannable for a moment; only fade it once it is surely stale.
    box.classList.toggle('expired', left < -4000);
  }
}

export function wirePairing() {
  $('simulate-scan').addEventListener('click', async () => {
    const token = state.selected;
    if (!token) return;
    await withBusy($('simulate-scan'), 'Scanning…', async () => {
      try {
        const data = await api('POST', `/sandbox/devices/${seg(token)}/scan`, {});
        if (data && data.status) mergeDevice(token, data);
        pushFeed(token, 'Simulated a scan from the phone.');
      } catch (err) {
        toast(`Simulate scan failed: ${describe(err)}`, 'error');
      }
    });
  });
}
