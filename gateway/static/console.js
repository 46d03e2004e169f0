/* wa-gateway WebSocket console: connect to /ws, send client actions, watch frames. */
(() => {
  'use strict';

  const KEY_STORAGE = 'wa-gateway.apiKey';   // shared with the devices page
  const LOG_MAX = 2000;
  const $ = (id) => document.getElementById(id);

  const state = {
    ws: null,
    wanted: false,
    attempt: 0,
    timer: null,
    entries: [],          // {id, dir, name, token, text, at, error}
    events: new Set(),
    seq: 0,
  };

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') node.className = v;
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c != null) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function fmtTime(ms) {
    const d = new Date(ms);
    return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  }

  function csv(value) {
    return value.split(',').map((s) => s.trim()).filter(Boolean);
  }

  // ------------------------------------------------------------------ status

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

  // ------------------------------------------------------------------ socket

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
    clearTimeout(state.timer);
    if (state.ws) { const old = state.ws; state.ws = null; old.close(1000); }
    state.wanted = true;
    const key = $('c-key').value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    const target = url();
    setStatus('connecting', 'Connecting…', `Connecting to ${redact(target)}`);
    logEntry('sys', 'connecting', null, redact(target));
    let ws;
    try { ws = new WebSocket(target); } catch (e) {
      logEntry('sys', 'error', null, String(e.message || e), true);
      retry(false);
      return;
    }
    state.ws = ws;
    let greeted = false;
    ws.addEventListener('open', () => {
      if (state.ws !== ws) return;
      logEntry('sys', 'open', null, 'WebSocket open');
    });
    ws.addEventListener('message', (ev) => {
      if (state.ws !== ws) return;
      let frame = null;
      try { frame = JSON.parse(ev.data); } catch (e) { /* shown raw */ }
      const name = frame && typeof frame === 'object' ? frame.event || '(no event)' : '(not JSON)';
      const token = frame && typeof frame === 'object' ? frame.token || null : null;
      logEntry('in', name, token, frame ? JSON.stringify(frame, null, 2) : String(ev.data), name === 'error');
      if (name === 'connected') {
        greeted = true;
        state.attempt = 0;
        const id = frame.data && frame.data.clientId;
        setStatus('open', 'Connected', `Connected${id ? ` · client ${id}` : ''}.`);
      }
    });
    ws.addEventListener('close', (ev) => {
      if (state.ws !== ws) return;
      state.ws = null;
      const why = ev.code === 1006 && !greeted
        ? 'closed before the greeting: a wrong API key, or the gateway is unreachable (1006)'
        : `closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`;
      logEntry('sys', 'close', null, `Connection ${why}`, !greeted || ev.code !== 1000);
      if (state.wanted && $('c-auto').checked) retry(greeted);
      else setStatus('closed', 'Disconnected', `Disconnected: ${why}.`);
    });
  }

  function retry() {
    state.attempt += 1;
    const delay = Math.round(Math.min(30000, 1000 * 2 ** Math.min(state.attempt - 1, 5)) * (0.8 + Math.random() * 0.4));
    setStatus('retry', 'Reconnecting', `Connection lost. Reconnecting in ${(delay / 1000).toFixed(1)} s (attempt ${state.attempt})…`);
    clearTimeout(state.timer);
    state.timer = setTimeout(() => { if (state.wanted) connect(); }, delay);
  }

  function disconnect() {
    state.wanted = false;
    clearTimeout(state.timer);
    if (state.ws) {
      const ws = state.ws;
      state.ws = null;
      ws.close(1000, 'bye');
      logEntry('sys', 'close', null, 'Disconnected by you');
    }
    setStatus('closed', 'Disconnected', 'Disconnected.');
  }

  function sendText(text, name) {
    const ws = state.ws;
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

  // ------------------------------------------------------------------ log

  function logEntry(dir, name, token, text, error = false) {
    const entry = { id: ++state.seq, dir, name, token, text, at: Date.now(), error };
    state.entries.push(entry);
    if (state.entries.length > LOG_MAX) {
      state.entries.splice(0, state.entries.length - LOG_MAX);
      const first = $('log').firstElementChild;
      if (first) first.remove();
    }
    if (dir !== 'sys' && !state.events.has(name)) {
      state.events.add(name);
      const select = $('f-event');
      const options = [...state.events].sort();
      const current = select.value;
      select.replaceChildren(el('option', { value: '' }, 'All events'), ...options.map((e) => el('option', { value: e }, e)));
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

  const ARROWS = { in: '←', out: '→', sys: '•' };
  const DIR_LABEL = { in: 'received', out: 'sent', sys: 'connection' };

  function row(entry) {
    const multiline = entry.text.includes('\n');
    const meta = el('span', { class: 'log-meta' },
      el('time', { datetime: new Date(entry.at).toISOString() }, fmtTime(entry.at)),
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
    log.replaceChildren(...state.entries.filter(matches).map(row));
    if ($('log-follow').checked) log.scrollTop = log.scrollHeight;
    updateCount();
  }

  function updateCount() {
    const shown = $('log').children.length;
    const total = state.entries.length;
    $('log-count').textContent = shown === total ? `${total}` : `${shown} of ${total}`;
  }

  // ------------------------------------------------------------------ wiring

  $('conn-form').addEventListener('submit', (e) => { e.preventDefault(); state.attempt = 0; connect(); });
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

  $('log-clear').addEventListener('click', () => {
    state.entries = [];
    $('log').replaceChildren();
    updateCount();
  });
  for (const id of ['f-text', 'f-dir', 'f-event']) $(id).addEventListener('input', rerender);
  $('log-follow').addEventListener('change', () => { if ($('log-follow').checked) $('log').scrollTop = $('log').scrollHeight; });

  // Pre-fill from the devices page's key and from ?token= / #token links.
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) $('c-key').value = saved;
  const params = new URLSearchParams(location.search);
  if (params.get('token')) $('q-token').value = params.get('token');
  setStatus('closed', 'Disconnected', saved ? 'Not connected. Your key from the devices page is filled in.' : 'Not connected. Enter the API key and press Connect.');
  if (saved && params.get('connect') !== '0') connect();
})();
