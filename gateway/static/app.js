/* wa-gateway pairing dashboard. Vanilla JS, no build step, no external services.
 *
 * Data flow: REST for actions and the initial state, one WebSocket (/ws) for
 * everything live. The socket reconnects with exponential backoff and the page
 * re-reads the device list after every reconnect, so a dropped socket never
 * leaves stale state on screen.
 */
(() => {
  'use strict';

  const KEY_STORAGE = 'wa-gateway.apiKey';
  const SESSION_STORAGE = 'wa-gateway.session';   // "1" after an account login (cookie auth)
  const DEFAULT_QR_MS = 20000;
  const FEED_MAX = 50;
  const PING_MS = 25000;

  const $ = (id) => document.getElementById(id);

  const state = {
    key: null,
    session: false,
    sandbox: false,
    isAdmin: null,          // from the socket's whoami; null until known
    username: null,
    devices: new Map(),     // token -> merged summary + state
    selected: null,
    qr: new Map(),          // token -> {code, receivedAt, expiresAt}
    qrInterval: new Map(),  // token -> observed rotation interval (ms)
    codes: new Map(),       // token -> pairing code
    connErrors: new Map(),  // token -> last connection-error message
    feeds: new Map(),       // token -> [{at, text}]
    ws: null,
    wsWanted: false,
    wsAttempt: 0,
    wsTimer: null,
    wsCountdown: null,
    wsPing: null,
    wsEverConnected: false,
    qrSeq: 0,
    qrTick: null,
  };

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(code, status, message) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  const FRIENDLY = {
    UNAUTHORIZED: 'The gateway rejected this API key (401 Unauthorized).',
    FORBIDDEN: 'This account is not allowed to do that.',
    RATE_LIMITED: 'Too many requests. Wait a moment and try again.',
    INVALID_PHONE: 'That is not a valid phone number. Use international digits, e.g. 60123456789.',
    INVALID_MESSAGE: 'The message is empty or too long.',
    MISSING_TOKEN: 'Enter the device phone number.',
    DEVICE_NOT_FOUND: 'No such device (it may have been deleted).',
    DEVICE_NOT_CONNECTED: 'This device is not connected yet. Finish pairing first.',
    DEVICE_TAKEN: 'That number is already a device of another account.',
    CONNECTION_FAILED: 'WhatsApp could not be reached.',
    SEND_FAILED: 'WhatsApp did not accept the message.',
    NETWORK: 'Could not reach the gateway. Is it running?',
  };

  function describe(err) {
    if (!(err instanceof ApiError)) return String(err && err.message || err);
    const friendly = FRIENDLY[err.code];
    if (friendly && err.message && err.message !== friendly && err.code !== 'UNAUTHORIZED' && err.code !== 'NETWORK') {
      return `${friendly} (${err.message})`;
    }
    return friendly || `${err.message || 'Request failed'} (${err.code})`;
  }

  function authHeaders() {
    return state.key ? { Authorization: `Bearer ${state.key}` } : {};
  }

  /** Call the gateway; resolves to the envelope's `data`, rejects with ApiError. */
  async function api(method, path, body, opts = {}) {
    const headers = { Accept: 'application/json', ...authHeaders(), ...(opts.headers || {}) };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError('NETWORK', 0, FRIENDLY.NETWORK);
    }
    if (opts.raw && res.ok) return res;
    let env = null;
    try { env = await res.json(); } catch (e) { env = null; }
    if (!res.ok || !env || env.success === false) {
      const code = (env && env.error && env.error.code) || `HTTP_${res.status}`;
      let message = (env && env.error && env.error.message) || res.statusText || 'Request failed';
      if (res.status === 429) {
        const after = res.headers.get('Retry-After');
        if (after) message = `${message} Retry in ${after} s.`;
      }
      const err = new ApiError(code, res.status, message);
      if (res.status === 401 && !opts.quiet401) onUnauthorized();
      throw err;
    }
    return env.data;
  }

  // ------------------------------------------------------------------ small helpers

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) {
      if (c == null) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function show(node, visible) { node.hidden = !visible; }

  function setAlert(node, message) {
    node.textContent = message || '';
    node.hidden = !message;
  }

  function fmtTime(value) {
    const d = value ? new Date(value) : new Date();
    if (Number.isNaN(d.getTime())) return '';
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function fmtDate(value) {
    if (!value) return '—';
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) return String(value);
    return d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  }

  function fmtDuration(seconds) {
    if (seconds == null || Number.isNaN(+seconds)) return '—';
    let s = Math.max(0, Math.floor(+seconds));
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }

  function toast(message, kind = 'info', ms = 4500) {
    const t = el('div', { class: `toast${kind === 'error' ? ' toast-error' : ''}`, role: kind === 'error' ? 'alert' : 'status' }, message);
    $('toasts').append(t);
    setTimeout(() => t.remove(), ms);
  }

  async function withBusy(button, label, fn) {
    const original = button.textContent;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    button.replaceChildren(el('span', { class: 'spinner', 'aria-hidden': 'true' }), ` ${label}`);
    try {
      return await fn();
    } finally {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      button.textContent = original;
    }
  }

  function initials(device) {
    const label = device.name || pushnameOf(device) || '';
    const words = label.trim().split(/\s+/).filter(Boolean);
    if (words.length >= 2) return (words[0][0] + words[1][0]).toUpperCase();
    if (words.length === 1) return words[0].slice(0, 2).toUpperCase();
    return String(device.token || '?').slice(-2);
  }

  function pushnameOf(d) { return (d.info && d.info.pushname) || d.pushname || ''; }

  function statusKey(d) {
    if (!d || !d.status) return 'unknown';
    if (d.status === 'disconnected' && d.reconnecting) return 'reconnecting';
    return d.status;
  }

  const STATUS_LABEL = {
    connected: 'Connected',
    pairing: 'Waiting for scan',
    disconnected: 'Disconnected',
    reconnecting: 'Reconnecting',
    logged_out: 'Logged out',
    unknown: 'Unknown',
  };

  function statusLabel(d) {
    const key = statusKey(d);
    if (key === 'pairing' && methodOf(d) === 'code') return 'Waiting for code';
    return STATUS_LABEL[key] || key;
  }

  function badgeClass(d) { return `badge badge-${statusKey(d)}`; }

  function methodOf(d) {
    if (!d) return 'qr';
    if (d.method) return d.method;
    if (state.codes.has(d.token)) return 'code';
    return 'qr';
  }

  // ------------------------------------------------------------------ sign-in

  function showAuth(errorMessage) {
    stopSocket();
    state.isAdmin = null;
    state.username = null;
    show($('whoami'), false);
    show($('app-view'), false);
    show($('signout'), false);
    show($('live-badge'), false);
    show($('mode-badge'), false);
    show($('auth-view'), true);
    setAlert($('auth-error'), errorMessage);
    const input = $('api-key');
    input.setAttribute('aria-invalid', errorMessage ? 'true' : 'false');
    if (!$('key-form').hidden) input.focus();
    document.title = 'wa-gateway · Sign in';
  }

  function onUnauthorized() {
    if ($('auth-view').hidden === false) return;
    const hadKey = !!state.key;
    clearCredentials();
    showAuth(hadKey
      ? 'The gateway no longer accepts this API key (401 Unauthorized). Enter a valid key.'
      : 'Your session has expired. Sign in again.');
  }

  function clearCredentials() {
    state.key = null;
    state.session = false;
    sessionStorage.removeItem(KEY_STORAGE);
    sessionStorage.removeItem(SESSION_STORAGE);
  }

  function selectTab(which) {
    const keyTab = which === 'key';
    $('tab-key').setAttribute('aria-selected', String(keyTab));
    $('tab-login').setAttribute('aria-selected', String(!keyTab));
    $('tab-key').tabIndex = keyTab ? 0 : -1;
    $('tab-login').tabIndex = keyTab ? -1 : 0;
    show($('key-form'), keyTab);
    show($('login-form'), !keyTab);
    setAlert($('auth-error'), '');
  }

  function wireAuth() {
    $('tab-key').addEventListener('click', () => selectTab('key'));
    $('tab-login').addEventListener('click', () => selectTab('login'));
    for (const tab of [$('tab-key'), $('tab-login')]) {
      tab.addEventListener('keydown', (e) => {
        if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
          const next = tab.id === 'tab-key' ? 'login' : 'key';
          selectTab(next);
          $(`tab-${next}`).focus();
          e.preventDefault();
        }
      });
    }

    $('toggle-key').addEventListener('click', () => {
      const input = $('api-key');
      const reveal = input.type === 'password';
      input.type = reveal ? 'text' : 'password';
      $('toggle-key').textContent = reveal ? 'Hide' : 'Show';
      $('toggle-key').setAttribute('aria-pressed', String(reveal));
    });

    $('key-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const input = $('api-key');
      const key = input.value.trim();
      if (!key) {
        input.setAttribute('aria-invalid', 'true');
        setAlert($('auth-error'), 'Enter the API key.');
        input.focus();
        return;
      }
      await withBusy($('key-submit'), 'Checking…', async () => {
        state.key = key;
        state.session = false;
        try {
          await api('GET', '/devices', undefined, { quiet401: true });
        } catch (err) {
          state.key = null;
          input.setAttribute('aria-invalid', 'true');
          setAlert($('auth-error'), err.status === 401
            ? 'That API key was rejected (401 Unauthorized). Check it and try again.'
            : describe(err));
          input.focus();
          input.select();
          return;
        }
        sessionStorage.setItem(KEY_STORAGE, key);
        input.value = '';
        input.setAttribute('aria-invalid', 'false');
        enterApp();
      });
    });

    $('login-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const user = $('login-user').value.trim();
      const password = $('login-password').value;
      if (!user || !password) {
        setAlert($('auth-error'), 'Enter your username or email and your password.');
        (user ? $('login-password') : $('login-user')).focus();
        return;
      }
      const body = user.includes('@') ? { email: user, password } : { username: user, password };
      await withBusy($('login-submit'), 'Signing in…', async () => {
        state.key = null;
        try {
          await api('POST', '/auth/login', body, { quiet401: true });
        } catch (err) {
          let message = describe(err);
          if (err.status === 401 || err.status === 400) message = 'Wrong username, email or password.';
          if (err.status === 404 || err.status === 405) message = 'Account sign-in is not available on this gateway. Use the API key.';
          setAlert($('auth-error'), message);
          $('login-password').focus();
          return;
        }
        // The server set the gw_session cookie (HttpOnly); the page authenticates with it from now on.
        state.session = true;
        sessionStorage.setItem(SESSION_STORAGE, '1');
        $('login-password').value = '';
        enterApp();
      });
    });

    $('signout').addEventListener('click', async () => {
      if (state.session) {
        try { await api('POST', '/auth/logout', {}, { quiet401: true }); } catch (e) { /* signed out anyway */ }
      }
      clearCredentials();
      state.devices.clear();
      state.selected = null;
      history.replaceState(null, '', location.pathname);
      showAuth('');
      toast('Signed out.');
    });
  }

  // ------------------------------------------------------------------ app shell

  async function enterApp() {
    show($('auth-view'), false);
    show($('app-view'), true);
    show($('signout'), true);
    show($('live-badge'), true);
    setAlert($('app-error'), '');
    document.title = 'wa-gateway · Devices';
    state.wsWanted = true;
    connectSocket();
    await Promise.all([detectMode(), loadDevices(true)]);
    const wanted = tokenFromHash();
    if (wanted && state.devices.has(wanted)) selectDevice(wanted, false);
    else if (state.selected && state.devices.has(state.selected)) selectDevice(state.selected, false);
    else if (state.devices.size) selectDevice(state.devices.keys().next().value, false);
    else renderDetail();
  }

  /** Sandbox mode: /health/detailed names the driver; else probe a sandbox-only route. */
  async function detectMode() {
    let sandbox = false;
    try {
      const health = await api('GET', '/health/detailed');
      if (health && typeof health.driver === 'string') sandbox = health.driver === 'sandbox';
      else sandbox = await probeSandboxRoute();
    } catch (e) {
      sandbox = await probeSandboxRoute();
    }
    state.sandbox = sandbox;
    show($('mode-badge'), sandbox);
    renderDetail();
  }

  async function probeSandboxRoute() {
    try {
      await api('GET', '/sandbox/devices/60123456789/sent', undefined, { quiet401: true });
      return true;
    } catch (err) {
      // A missing route is NOT_FOUND/405; an existing one answers about the device instead.
      // FORBIDDEN: the routes exist but this principal may not use them.
      return !['NOT_FOUND', 'METHOD_NOT_ALLOWED', 'FORBIDDEN', 'UNAUTHORIZED', 'NETWORK'].includes(err.code)
        && err.status !== 404 && err.status !== 405;
    }
  }

  async function loadDevices(initial = false) {
    if (initial && !state.devices.size) show($('devices-loading'), true);
    try {
      const data = await api('GET', '/devices');
      const list = (data && data.devices) || [];
      const seen = new Set();
      for (const d of list) {
        seen.add(d.token);
        state.devices.set(d.token, { ...(state.devices.get(d.token) || {}), ...d });
      }
      for (const token of [...state.devices.keys()]) if (!seen.has(token)) state.devices.delete(token);
      setAlert($('app-error'), '');
    } catch (err) {
      if (err.status !== 401) setAlert($('app-error'), `Could not load devices: ${describe(err)}`);
    } finally {
      show($('devices-loading'), false);
    }
    renderList();
    if (state.selected && !state.devices.has(state.selected)) {
      state.selected = null;
    }
    renderDetail();
  }

  function tokenFromHash() {
    const m = /^#\/?devices\/([^/?#]+)/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  // ------------------------------------------------------------------ device list

  function renderList() {
    const list = $('device-list');
    const devices = [...state.devices.values()];
    show($('devices-empty'), devices.length === 0 && $('devices-loading').hidden);
    list.replaceChildren(...devices.map((d) => {
      const title = d.name || pushnameOf(d) || d.token;
      const pushname = pushnameOf(d);
      const sub = [d.name || pushname ? d.token : '', d.name && pushname ? pushname : ''].filter(Boolean).join(' · ');
      return el('li', { class: 'device-item' },
        el('button', {
          type: 'button',
          'data-token': d.token,
          'aria-current': d.token === state.selected ? 'true' : 'false',
          onclick: () => selectDevice(d.token, true),
        },
        el('span', { class: 'avatar', 'aria-hidden': 'true' }, initials(d)),
        el('span', { class: 'device-text' },
          el('span', { class: 'device-name' }, title),
          el('span', { class: 'device-meta' },
            el('span', { class: badgeClass(d), 'data-status': d.status || 'unknown' }, statusLabel(d)),
            sub ? el('span', { class: 'device-sub' }, sub) : null))));
    }));
  }

  function selectDevice(token, focus) {
    state.selected = token;
    const hash = `#/devices/${encodeURIComponent(token)}`;
    if (location.hash !== hash) history.replaceState(null, '', hash);
    renderList();
    renderDetail();
    refreshDevice(token);
    if (focus) $('detail-title').focus({ preventScroll: false });
  }

  async function refreshDevice(token) {
    try {
      const data = await api('GET', `/devices/${encodeURIComponent(token)}`);
      mergeDevice(token, data);
    } catch (err) {
      if (err.code === 'DEVICE_NOT_FOUND') {
        state.devices.delete(token);
        if (state.selected === token) state.selected = null;
        renderList();
        renderDetail();
        return;
      }
    }
    const d = state.devices.get(token);
    if (d && d.status === 'pairing' && methodOf(d) === 'qr' && !state.qr.has(token)) {
      try {
        const q = await api('GET', `/devices/${encodeURIComponent(token)}/qr`);
        if (q && q.qr) onQr(token, q.qr, { fromRest: true });
      } catch (e) { /* no QR yet; the socket will bring one */ }
    }
    // Ask the socket too: `get_qr` answers with a `qrcode` frame.
    if (d && d.status === 'pairing') sendFrame('get_qr', { token });
  }

  /** Uptime as of now: the server's figure plus the time since we read it. */
  function liveUptime(d) {
    if (d.uptime == null) return null;
    return +d.uptime + (Date.now() - (d.uptimeAt || Date.now())) / 1000;
  }

  function mergeDevice(token, data) {
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
    renderList();
    if (token === state.selected) renderDetail();
  }

  // ------------------------------------------------------------------ device detail

  function renderDetail() {
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

    const title = d.name || pushnameOf(d) || d.token;
    $('detail-title').textContent = title;
    $('detail-title').tabIndex = -1;
    $('d-token').textContent = d.name || pushnameOf(d) ? d.token : '';
    $('d-avatar').textContent = initials(d);
    const badge = $('d-status');
    badge.className = badgeClass(d);
    badge.textContent = statusLabel(d);
    badge.dataset.status = d.status || 'unknown';

    const err = state.connErrors.get(token);
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

    if (!pairing && !connected) {
      const key = statusKey(d);
      $('offline-text').textContent = key === 'reconnecting'
        ? 'The connection to WhatsApp was lost. Reconnecting automatically…'
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

    const key = statusKey(d);
    show($('d-reconnect'), key === 'disconnected' || key === 'logged_out' || key === 'unknown');
    $('d-reconnect').textContent = key === 'logged_out' ? 'Pair again' : 'Reconnect';
    show($('d-disconnect'), connected || pairing || key === 'reconnecting');
    $('d-disconnect').textContent = pairing ? 'Cancel pairing' : 'Disconnect';

    renderFeed();
  }

  function renderPairing(d) {
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
      state.qrSeq += 1;   // drop any SVG still in flight for the previous code
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
    const seq = ++state.qrSeq;
    const box = $('qr-box');
    box.dataset.code = code;
    let svg = null;
    let failure = '';
    try {
      const res = await api('GET', `/devices/${encodeURIComponent(token)}/qr?format=svg`, undefined, { raw: true, headers: { Accept: 'image/svg+xml' } });
      const type = res.headers.get('Content-Type') || '';
      const text = await res.text();
      if (!/svg/i.test(type) && !/^\s*(<\?xml|<svg)/.test(text)) throw new Error(`unexpected ${type || 'content'}`);
      svg = sanitizeSvg(text);
      if (!svg) throw new Error('unreadable SVG');
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return;   // the QR went away (scanned)
      failure = err instanceof ApiError ? describe(err) : err.message;
    }
    if (seq !== state.qrSeq || state.selected !== token) return;   // a newer QR (or device) won
    box.querySelectorAll('svg, .qr-fallback').forEach((n) => n.remove());
    $('qr-overlay').hidden = true;
    if (svg) {
      box.append(svg);
      box.setAttribute('aria-label', 'QR code to scan with WhatsApp');
    } else {
      box.append(el('div', { class: 'qr-fallback mono', style: 'color:#14201b;padding:8px' },
        `Could not draw the QR image (${failure}).`));
      box.setAttribute('aria-label', 'QR code unavailable');
    }
  }

  function sanitizeSvg(text) {
    // segno's inline SVG leaves out the namespace; without it the XML parser makes an inert element.
    let source = text.replace(/^\s*<\?xml[^>]*>\s*/, '');
    if (!/^<svg[^>]*\sxmlns=/.test(source)) source = source.replace(/^<svg\b/, '<svg xmlns="http://www.w3.org/2000/svg"');
    const doc = new DOMParser().parseFromString(source, 'image/svg+xml');
    const root = doc.documentElement;
    if (!root || root.nodeName.toLowerCase() !== 'svg' || doc.querySelector('parsererror')) return null;
    root.querySelectorAll('script, foreignObject').forEach((n) => n.remove());
    for (const node of [root, ...root.querySelectorAll('*')]) {
      for (const attr of [...node.attributes]) {
        if (/^on/i.test(attr.name) || /^\s*javascript:/i.test(attr.value)) node.removeAttribute(attr.name);
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

  function onQr(token, code, { fromRest = false } = {}) {
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
    else if (token === state.selected) renderDetail();
  }

  function startQrTick() {
    updateCountdown();
    if (!state.qrTick) state.qrTick = setInterval(updateCountdown, 250);
  }

  function stopQrTick() {
    if (state.qrTick) clearInterval(state.qrTick);
    state.qrTick = null;
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
      bar.style.transform = 'scaleX(1)';
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
      const secs = Math.ceil(left / 1000);
      text.textContent = `Expires in ${secs} s`;
      box.classList.remove('expired');
    } else {
      text.textContent = 'Refreshing…';
      // Keep a late code scannable for a moment; only fade it once it is surely stale.
      box.classList.toggle('expired', left < -4000);
    }
  }

  // ------------------------------------------------------------------ activity feed

  function pushFeed(token, text) {
    if (!token) return;
    const feed = state.feeds.get(token) || [];
    feed.unshift({ at: Date.now(), text });
    if (feed.length > FEED_MAX) feed.length = FEED_MAX;
    state.feeds.set(token, feed);
    if (token === state.selected) renderFeed();
  }

  function renderFeed() {
    const feed = state.feeds.get(state.selected) || [];
    show($('feed-empty'), feed.length === 0);
    $('feed').replaceChildren(...feed.map((item) => el('li', {},
      el('time', { datetime: new Date(item.at).toISOString() }, fmtTime(item.at)),
      el('span', { class: 'feed-body' }, item.text))));
  }

  // ------------------------------------------------------------------ device actions

  function wireDeviceActions() {
    const form = $('add-form');
    const toggle = $('add-toggle');
    const openForm = (open) => {
      show(form, open);
      toggle.setAttribute('aria-expanded', String(open));
      setAlert($('add-error'), '');
      if (open) $('add-token').focus(); else toggle.focus();
    };
    toggle.addEventListener('click', () => openForm(form.hidden));
    $('empty-add').addEventListener('click', () => openForm(true));
    $('add-cancel').addEventListener('click', () => openForm(false));
    form.addEventListener('keydown', (e) => { if (e.key === 'Escape') openForm(false); });

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const token = $('add-token').value.replace(/[\s\-().]/g, '').replace(/^\+/, '');
      const name = $('add-name').value.trim();
      const method = form.querySelector('input[name="method"]:checked').value;
      if (!token) {
        $('add-token').setAttribute('aria-invalid', 'true');
        setAlert($('add-error'), FRIENDLY.MISSING_TOKEN);
        $('add-token').focus();
        return;
      }
      const body = { token, method };
      if (name) body.name = name;
      await withBusy($('add-submit'), 'Starting…', async () => {
        try {
          const data = await api('POST', '/devices', body);
          const real = (data && data.token) || token;
          $('add-token').setAttribute('aria-invalid', 'false');
          $('add-token').value = '';
          $('add-name').value = '';
          show(form, false);
          toggle.setAttribute('aria-expanded', 'false');
          mergeDevice(real, { token: real, name: name || (state.devices.get(real) || {}).name || null, method: (data && data.method) || method, status: (data && data.status) || 'pairing' });
          selectDevice(real, true);
          loadDevices();
          // No toast for "pairing started": the QR panel says it, and a toast could cover the QR on a phone.
          if (data && data.status === 'connected') toast('Device reconnected.');
        } catch (err) {
          if (err.code === 'INVALID_PHONE' || err.code === 'MISSING_TOKEN') $('add-token').setAttribute('aria-invalid', 'true');
          setAlert($('add-error'), describe(err));
          $('add-token').focus();
        }
      });
    });

    $('simulate-scan').addEventListener('click', async () => {
      const token = state.selected;
      if (!token) return;
      await withBusy($('simulate-scan'), 'Scanning…', async () => {
        try {
          const data = await api('POST', `/sandbox/devices/${encodeURIComponent(token)}/scan`, {});
          if (data && data.status) mergeDevice(token, data);
          pushFeed(token, 'Simulated a scan from the phone.');
        } catch (err) {
          toast(`Simulate scan failed: ${describe(err)}`, 'error');
        }
      });
    });

    $('d-reconnect').addEventListener('click', async () => {
      const token = state.selected;
      const d = state.devices.get(token);
      if (!d) return;
      await withBusy($('d-reconnect'), 'Connecting…', async () => {
        try {
          const data = await api('POST', '/devices', { token, method: methodOf(d) });
          mergeDevice(token, { method: data && data.method, status: (data && data.status) || d.status });
          state.connErrors.delete(token);
          refreshDevice(token);
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
          const data = await api('POST', `/devices/${encodeURIComponent(token)}/disconnect`, {});
          mergeDevice(token, data && data.status ? data : { status: 'disconnected', reconnecting: false });
          toast('Device disconnected; the session is kept.');
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
          await api('DELETE', `/devices/${encodeURIComponent(token)}`);
          state.devices.delete(token);
          state.qr.delete(token);
          state.codes.delete(token);
          state.selected = state.devices.size ? state.devices.keys().next().value : null;
          if (!state.selected) history.replaceState(null, '', location.pathname);
          renderList();
          renderDetail();
          toast('Device deleted.');
        } catch (err) {
          toast(`Delete failed: ${describe(err)}`, 'error');
        }
      });
    });

    $('send-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const token = state.selected;
      const to = $('send-to').value.trim();
      const text = $('send-text').value;
      const result = $('send-result');
      result.className = 'result';
      if (!to) {
        $('send-to').setAttribute('aria-invalid', 'true');
        result.className = 'result alert alert-error';
        result.textContent = 'Enter a recipient.';
        $('send-to').focus();
        return;
      }
      await withBusy($('send-submit'), 'Sending…', async () => {
        try {
          const data = await api('POST', '/messages', { token, to, text });
          $('send-to').setAttribute('aria-invalid', 'false');
          result.className = 'result alert alert-ok';
          result.dataset.messageId = (data && data.messageId) || '';
          result.textContent = `Accepted · message id ${(data && data.messageId) || '?'} · ${fmtTime(data && data.timestamp)}`;
          pushFeed(token, `Sent to ${to}: ${text.length > 80 ? `${text.slice(0, 80)}…` : text}`);
          bumpStat(token, 'messagesSent');
        } catch (err) {
          if (err.code === 'INVALID_PHONE') $('send-to').setAttribute('aria-invalid', 'true');
          result.className = 'result alert alert-error';
          result.dataset.messageId = '';
          result.textContent = describe(err);
        }
      });
    });

    $('download-csv').addEventListener('click', async () => {
      const token = state.selected;
      const result = $('csv-result');
      result.className = 'result';
      result.textContent = '';
      await withBusy($('download-csv'), 'Preparing…', async () => {
        try {
          const res = await api('GET', `/contacts/${encodeURIComponent(token)}?format=csv&limit=all`, undefined, { raw: true, headers: { Accept: 'text/csv' } });
          const blob = await res.blob();
          const name = filenameFrom(res.headers.get('Content-Disposition')) || `contacts-${token}.csv`;
          const url = URL.createObjectURL(blob);
          const a = el('a', { href: url, download: name, hidden: true });
          document.body.append(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(url), 30000);
          let rows = '';
          if (blob.size < 5 * 1024 * 1024) {
            const lines = (await blob.text()).split(/\r?\n/).filter((l) => l.length).length;
            rows = ` · ${Math.max(0, lines - 1)} contact${lines - 1 === 1 ? '' : 's'}`;
          }
          result.className = 'result alert alert-ok';
          result.textContent = `Saved ${name}${rows}.`;
        } catch (err) {
          result.className = 'result alert alert-error';
          result.textContent = `Download failed: ${describe(err)}`;
        }
      });
    });

    window.addEventListener('hashchange', () => {
      const token = tokenFromHash();
      if (token && token !== state.selected && state.devices.has(token)) selectDevice(token, false);
    });
  }

  function filenameFrom(disposition) {
    if (!disposition) return null;
    const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(disposition);
    if (star) { try { return decodeURIComponent(star[1].trim().replace(/^"|"$/g, '')); } catch (e) { /* fall through */ } }
    const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
    return plain ? plain[1].trim() : null;
  }

  // ------------------------------------------------------------------ WebSocket

  function socketUrl() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const base = `${proto}//${location.host}/ws`;
    // Browsers cannot set headers on a WebSocket: the key goes in the query, or the session cookie is used.
    return state.key ? `${base}?apiKey=${encodeURIComponent(state.key)}` : base;
  }

  function setLive(kind, text) {
    const badge = $('live-badge');
    const classes = { live: 'badge-connected', connecting: 'badge-connecting', reconnecting: 'badge-reconnecting', offline: 'badge-offline' };
    badge.className = `badge ${classes[kind] || 'badge-unknown'}`;
    badge.textContent = text;
    badge.dataset.state = kind;
  }

  function connectSocket() {
    clearTimeout(state.wsTimer);
    clearInterval(state.wsCountdown);
    state.wsTimer = null;
    if (!state.wsWanted) return;
    if (state.ws) { try { state.ws.close(); } catch (e) { /* ignore */ } }
    setLive(state.wsEverConnected ? 'reconnecting' : 'connecting', state.wsEverConnected ? 'Reconnecting…' : 'Connecting…');
    let ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (e) {
      scheduleReconnect(false);
      return;
    }
    state.ws = ws;
    let greeted = false;

    ws.addEventListener('message', (ev) => {
      if (state.ws !== ws) return;
      let frame;
      try { frame = JSON.parse(ev.data); } catch (e) { return; }
      if (!frame || typeof frame !== 'object') return;
      if (frame.event === 'connected') {
        greeted = true;
        const resumed = state.wsEverConnected;
        state.wsEverConnected = true;
        state.wsAttempt = 0;
        setLive('live', 'Live');
        show($('socket-alert'), false);
        clearInterval(state.wsPing);
        state.wsPing = setInterval(() => sendFrame('ping'), PING_MS);
        sendFrame('whoami');
        if (resumed) {
          // Events published while we were away are lost: re-read the state.
          loadDevices().then(() => { if (state.selected) refreshDevice(state.selected); });
          toast('Live updates restored.');
        }
        return;
      }
      handleFrame(frame);
    });

    ws.addEventListener('close', (ev) => {
      if (state.ws !== ws) return;
      state.ws = null;
      clearInterval(state.wsPing);
      if (!state.wsWanted) return;
      scheduleReconnect(greeted, ev);
    });
  }

  async function scheduleReconnect(wasGreeted, ev) {
    state.wsAttempt += 1;
    const attempt = state.wsAttempt;
    // An upgrade refused before the greeting may mean the key was revoked: ask over HTTP, which tells us.
    if (!wasGreeted) {
      try { await api('GET', '/devices'); } catch (err) { if (err.status === 401) return; }
      if (!state.wsWanted || attempt !== state.wsAttempt) return;
    }
    const base = Math.min(30000, 1000 * 2 ** Math.min(attempt - 1, 5));
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    const due = Date.now() + delay;
    setLive('offline', 'Offline');
    const reason = ev && ev.code === 1013 ? 'The gateway closed the connection because this page fell behind.' : 'The connection to the gateway dropped.';
    const tick = () => {
      const secs = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      $('socket-alert-text').textContent = `${reason} Reconnecting in ${secs} s (attempt ${attempt}).`;
    };
    tick();
    show($('socket-alert'), true);
    clearInterval(state.wsCountdown);
    state.wsCountdown = setInterval(tick, 1000);
    clearTimeout(state.wsTimer);
    state.wsTimer = setTimeout(connectSocket, delay);
  }

  function stopSocket() {
    state.wsWanted = false;
    clearTimeout(state.wsTimer);
    clearInterval(state.wsCountdown);
    clearInterval(state.wsPing);
    state.wsEverConnected = false;
    state.wsAttempt = 0;
    if (state.ws) { const ws = state.ws; state.ws = null; try { ws.close(1000); } catch (e) { /* ignore */ } }
    show($('socket-alert'), false);
  }

  function sendFrame(action, payload) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(payload === undefined ? { action } : { action, payload }));
    return true;
  }

  function handleFrame(f) {
    const token = f.token || (f.data && typeof f.data === 'object' && !Array.isArray(f.data) ? f.data.token : null);
    switch (f.event) {
      case 'qrcode':
        if (token && typeof f.data === 'string') onQr(token, f.data);
        break;
      case 'pairing-code': {
        const code = f.data && (f.data.code || f.data);
        if (token && typeof code === 'string') {
          state.codes.set(token, code);
          mergeDevice(token, { method: 'code', status: 'pairing' });
        }
        break;
      }
      case 'connection-success': {
        if (!token) break;
        const info = f.data && typeof f.data === 'object' ? f.data : {};
        const prev = state.devices.get(token) || {};
        mergeDevice(token, { status: 'connected', reconnecting: false, info: { ...(prev.info || {}), ...info } });
        const label = info.pushname ? `${info.pushname}` : token;
        toast(`Connected: ${label}${info.platform ? ` (${info.platform})` : ''}.`);
        pushFeed(token, `Connected${info.pushname ? ` as ${info.pushname}` : ''}${info.platform ? ` on ${info.platform}` : ''}.`);
        refreshDevice(token);
        break;
      }
      case 'connection-error': {
        if (!token) break;
        const why = f.message || (typeof f.data === 'string' ? f.data : 'Disconnected');
        state.connErrors.set(token, why);
        pushFeed(token, `Connection error: ${why}`);
        if (token === state.selected) renderDetail();
        break;
      }
      case 'session_update':
      case 'session_state':
        if (token && f.data && typeof f.data === 'object') mergeDevice(token, f.data);
        break;
      case 'devices': {
        const list = Array.isArray(f.data) ? f.data : (f.data && f.data.devices) || [];
        for (const d of list) if (d && d.token) mergeDevice(d.token, d);
        break;
      }
      case 'message': {
        const m = f.data || {};
        const who = m.fromName ? `${m.fromName} (${m.from})` : (m.from || 'someone');
        pushFeed(token, `Message from ${who}${m.isGroup ? ' in a group' : ''}: ${m.text ?? `[${m.type || 'media'}]`}`);
        bumpStat(token, 'messagesReceived');
        break;
      }
      case 'message.receipt': {
        const r = f.data || {};
        const n = Array.isArray(r.messageIds) ? r.messageIds.length : 0;
        const ids = n === 1 ? r.messageIds[0] : `${n} messages`;
        pushFeed(token, `${ids} ${r.type || 'receipt'}${r.from ? ` by ${r.from}` : ''}.`);
        break;
      }
      case 'contacts.new': {
        const c = f.data || {};
        pushFeed(token, `New contact: ${c.name ? `${c.name} ` : ''}${c.phone || ''}`.trim());
        break;
      }
      case 'contacts.sync': {
        const list = Array.isArray(f.data) ? f.data : [];
        pushFeed(token, `History sync: ${list.length} contact${list.length === 1 ? '' : 's'}.`);
        break;
      }
      case 'whoami': {
        const who = f.data || {};
        state.isAdmin = who.isAdmin !== false;
        state.username = who.username || null;
        const label = $('whoami');
        label.textContent = state.username ? `Signed in as ${state.username}` : (state.isAdmin ? 'Admin key' : '');
        show(label, !!label.textContent);
        renderDetail();
        break;
      }
      case 'error':
        // A frame we sent was refused; nothing on this page depends on it.
        break;
      default:
        break;
    }
  }

  function bumpStat(token, key) {
    const d = token && state.devices.get(token);
    if (!d || !d.stats) return;
    d.stats = { ...d.stats, [key]: (d.stats[key] || 0) + 1 };
    if (token === state.selected) renderDetail();
  }

  setInterval(() => {
    const d = state.selected && state.devices.get(state.selected);
    const cell = $('d-uptime');
    if (d && cell && d.status === 'connected') cell.textContent = fmtDuration(liveUptime(d));
  }, 1000);

  $('socket-retry').addEventListener('click', () => { state.wsAttempt = 0; connectSocket(); });
  window.addEventListener('online', () => { if (state.wsWanted && !state.ws) connectSocket(); });

  // ------------------------------------------------------------------ boot

  async function boot() {
    wireAuth();
    wireDeviceActions();
    state.key = sessionStorage.getItem(KEY_STORAGE);
    state.session = sessionStorage.getItem(SESSION_STORAGE) === '1';
    if (state.key || state.session) { enterApp(); return; }
    // A gw_session cookie from an earlier login may still be valid: try it silently.
    try {
      await api('GET', '/devices', undefined, { quiet401: true });
      state.session = true;
      sessionStorage.setItem(SESSION_STORAGE, '1');
      enterApp();
    } catch (err) {
      showAuth(err.status === 401 || err.status === 0 ? (err.status === 0 ? describe(err) : '') : describe(err));
    }
  }

  boot();
})();
