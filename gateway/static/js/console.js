/* wa-gateway WebSocket console (`/console`): connect to /ws, send client actions, watch frames. */

import { logEntry, wireLog } from './console-log.js';
import { $ } from './dom.js';

const KEY_STORAGE = 'wa-gateway.apiKey';   // shared with the devices page

const sock = { ws: null, wanted: false, attempt: 0, timer: null };

function csv(value) {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

function setStatus(kind, badgeText, line) {
  const badge = $('ws-badge');
  const cls = { open: 'badge-connected', connecting: 'badge-connecting', closed: 'badge-unknown', retry: 'badge-reconnecting', error: 'badge-error' };
  badge.className = `badge ${cls[kind] || 'badge-unknown'}`;
  badge.textContent = badgeText;
  badge.dataset.state = kind;
  $('c-status').textContent = line;
  const open = kind === 'open' || kind === 'connecting' || kind === 'retry';
  $('c-connect').disabled = open;
  $('c-disconnect').disabled = !open;
}

function url() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const params = new URLSearchParams();
  const key = $('c-key').value.trim();
  if (key) params.set('apiKey', key);
  const tokens = csv($('c-tokens').value);
  const events = csv($('c-events').value);
  if (tokens.length) params.set('tokens', tokens.join(','));
  if (events.length) params.set('events', events.join(','));
  const q = params.toString();
  return `${proto}//${location.host}/ws${q ? `?${q}` : ''}`;
}

function redact(u) { return u.replace(/(apiKey=)[^&]+/, '$1••••'); }

function connect() {
  clearTimeout(sock.timer);
  if (sock.ws) { const old = sock.ws; sock.ws = null; old.close(1000); }
  sock.wanted = true;
  const key = $('c-key').value.trim();
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  const target = url();
  setStatus('connecting', 'Connecting…', `Connecting to ${redact(target)}`);
  logEntry('sys', 'connecting', null, redact(target));
  let ws;
  try { ws = new WebSocket(target); } catch (e) {
    logEntry('sys', 'error', null, String(e.message || e), true);
    retry();
    return;
  }
  sock.ws = ws;
  let greeted = false;
  ws.addEventListener('open', () => {
    if (sock.ws !== ws) return;
    logEntry('sys', 'open', null, 'WebSocket open');
  });
  ws.addEventListener('message', (ev) => {
    if (sock.ws !== ws) return;
    let frame = null;
    try { frame = JSON.parse(ev.data); } catch (e) { /* shown raw */ }
    const name = frame && typeof frame === 'object' ? frame.event || '(no event)' : '(not JSON)';
    const token = frame && typeof frame === 'object' ? frame.token || null : null;
    logEntry('in', name, token, frame ? JSON.stringify(frame, null, 2) : String(ev.data), name === 'error');
    if (name === 'connected') {
      greeted = true;
      sock.attempt = 0;
      const id = frame.data && frame.data.clientId;
      setStatus('open', 'Connected', `Connected${id ? ` · client ${id}` : ''}.`);
    }
  });
  ws.addEventListener('close', (ev) => {
    if (sock.ws !== ws) return;
    sock.ws = null;
    const why = ev.code === 1006 && !greeted
      ? 'closed before the greeting: a wrong API key, or the gateway is unreachable (1006)'
      : `closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`;
    logEntry('sys', 'close', null, `Connection ${why}`, !greeted || ev.code !== 1000);
    if (sock.wanted && $('c-auto').checked) retry();
    else setStatus('closed', 'Disconnected', `Disconnected: ${why}.`);
  });
}

function retry() {
  sock.attempt += 1;
  const delay = Math.round(Math.min(30000, 1000 * 2 ** Math.min(sock.attempt - 1, 5)) * (0.8 + Math.random() * 0.4));
  setStatus('retry', 'Reconnecting', `Connection lost. Reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${sock.attempt})…`);
  clearTimeout(sock.timer);
  sock.timer = setTimeout(() => { if (sock.wanted) connect(); }, delay);
}

function disconnect() {
  sock.wanted = false;
  clearTimeout(sock.timer);
  if (sock.ws) {
    const ws = sock.ws;
    sock.ws = null;
    ws.close(1000, 'bye');
    logEntry('sys', 'close', null, 'Disconnected by you');
  }
  setStatus('closed', 'Disconnected', 'Disconnected.');
}

function sendText(text, name) {
  const ws = sock.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    logEntry('sys', 'not sent', null, 'Not connected: press Connect first.', true);
    $('c-connect').focus();
    return false;
  }
  ws.send(text);
  let pretty = text;
  try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* raw */ }
  logEntry('out', name, null, pretty);
  return true;
}

function sendAction(action, payload) {
  const frame = payload === undefined ? { action } : { action, payload };
  return sendText(JSON.stringify(frame), action);
}

function wireActions() {
  $('conn-form').addEventListener('submit', (e) => { e.preventDefault(); sock.attempt = 0; connect(); });
  $('c-disconnect').addEventListener('click', disconnect);

  document.querySelectorAll('[data-action]').forEach((button) => {
    button.addEventListener('click', () => {
      const action = button.dataset.action;
      const token = $('q-token').value.trim();
      if ((action === 'get_state' || action === 'get_qr') && !token) {
        $('q-token').setAttribute('aria-invalid', 'true');
        $('q-token').focus();
        logEntry('sys', 'not sent', null, `${action} needs a device token.`, true);
        return;
      }
      $('q-token').setAttribute('aria-invalid', 'false');
      if (action === 'get_state' || action === 'get_qr') sendAction(action, { token });
      else if (action === 'subscribe') {
        const payload = {};
        const events = csv($('q-events').value);
        if (events.length) payload.events = events;
        if (token) payload.tokens = csv(token);
        sendAction('subscribe', payload);
      } else sendAction(action);
    });
  });

  $('custom-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('custom-json').value;
    const err = $('custom-error');
    err.hidden = true;
    let name = '(raw)';
    if (!$('custom-raw').checked) {
      let parsed;
      try { parsed = JSON.parse(text); } catch (ex) {
        err.textContent = `Not valid JSON: ${ex.message}. Tick “Send as raw text” to send it anyway.`;
        err.hidden = false;
        $('custom-json').setAttribute('aria-invalid', 'true');
        $('custom-json').focus();
        return;
      }
      name = parsed && typeof parsed === 'object' && typeof parsed.action === 'string' ? parsed.action : '(custom)';
    }
    $('custom-json').setAttribute('aria-invalid', 'false');
    sendText($('custom-raw').checked ? text : JSON.stringify(JSON.parse(text)), name);
  });

  $('custom-format').addEventListener('click', () => {
    try {
      $('custom-json').value = JSON.stringify(JSON.parse($('custom-json').value), null, 2);
      $('custom-error').hidden = true;
    } catch (ex) {
      $('custom-error').textContent = `Not valid JSON: ${ex.message}`;
      $('custom-error').hidden = false;
    }
  });
}

wireLog();
wireActions();
// Pre-fill from the devices page's key and from ?token= links.
const saved = sessionStorage.getItem(KEY_STORAGE);
if (saved) $('c-key').value = saved;
const params = new URLSearchParams(location.search);
if (params.get('token')) $('q-token').value = params.get('token');
setStatus('closed', 'Disconnected', saved ? 'Not connected. Your key from the devices page is filled in.' : 'Not connected. Enter the API key and press Connect.');
if (saved && params.get('connect') !== '0') connect();
