/* The one WebSocket (/ws) that brings everything live. It reconnects with exponential backoff and
 * jitter; after a reconnect the page re-reads its state ("resumed"), so a dropped socket never leaves
 * stale state on screen. Frames are handed on as "frame" events. */

import { api, credentials } from './api.js';
import { $, show, toast } from './dom.js';
import { emit } from './store.js';

const PING_MS = 25000;

const sock = {
  ws: null,
  wanted: false,
  attempt: 0,
  timer: null,
  countdown: null,
  ping: null,
  everConnected: false,
};

function socketUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const base = `${proto}//${location.host}/ws`;
  // Browsers cannot set headers on a WebSocket: the key goes in the query, or the session cookie is used.
  return credentials.key ? `${base}?apiKey=${encodeURIComponent(credentials.key)}` : base;
}

function setLive(kind, text) {
  const badge = $('live-badge');
  const classes = { live: 'badge-connected', connecting: 'badge-connecting', reconnecting: 'badge-reconnecting', offline: 'badge-offline' };
  badge.className = `badge ${classes[kind] || 'badge-unknown'}`;
  badge.textContent = text;
  badge.dataset.state = kind;
}

export function startSocket() {
  sock.wanted = true;
  connectSocket();
}

function connectSocket() {
  clearTimeout(sock.timer);
  clearInterval(sock.countdown);
  sock.timer = null;
  if (!sock.wanted) return;
  if (sock.ws) { try { sock.ws.close(); } catch (e) { /* ignore */ } }
  setLive(sock.everConnected ? 'reconnecting' : 'connecting', sock.everConnected ? 'Reconnecting…' : 'Connecting…');
  let ws;
  try {
    ws = new WebSocket(socketUrl());
  } catch (e) {
    scheduleReconnect(false);
    return;
  }
  sock.ws = ws;
  let greeted = false;

  ws.addEventListener('message', (ev) => {
    if (sock.ws !== ws) return;
    let frame;
    try { frame = JSON.parse(ev.data); } catch (e) { return; }
    if (!frame || typeof frame !== 'object') return;
    if (frame.event === 'connected') {
      greeted = true;
      const resumed = sock.everConnected;
      sock.everConnected = true;
      sock.attempt = 0;
      setLive('live', 'Live');
      show($('socket-alert'), false);
      clearInterval(sock.ping);
      sock.ping = setInterval(() => sendFrame('ping'), PING_MS);
      sendFrame('whoami');
      if (resumed) {
        // Events published while we were away are lost: re-read the state.
        emit('resumed');
        toast('Live updates restored.');
      }
      return;
    }
    emit('frame', frame);
  });

  ws.addEventListener('close', (ev) => {
    if (sock.ws !== ws) return;
    sock.ws = null;
    clearInterval(sock.ping);
    if (!sock.wanted) return;
    scheduleReconnect(greeted, ev);
  });
}

async function scheduleReconnect(wasGreeted, ev) {
  sock.attempt += 1;
  const attempt = sock.attempt;
  // An upgrade refused before the greeting may mean the key was revoked: ask over HTTP, which tells us.
  if (!wasGreeted) {
    try { await api('GET', '/devices'); } catch (err) { if (err.status === 401) return; }
    if (!sock.wanted || attempt !== sock.attempt) return;
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
  clearInterval(sock.countdown);
  sock.countdown = setInterval(tick, 1000);
  clearTimeout(sock.timer);
  sock.timer = setTimeout(connectSocket, delay);
}

export function stopSocket() {
  sock.wanted = false;
  clearTimeout(sock.timer);
  clearInterval(sock.countdown);
  clearInterval(sock.ping);
  sock.everConnected = false;
  sock.attempt = 0;
  if (sock.ws) { const ws = sock.ws; sock.ws = null; try { ws.close(1000); } catch (e) { /* ignore */ } }
  show($('socket-alert'), false);
}

export function sendFrame(action, payload) {
  const ws = sock.ws;
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(payload === undefined ? { action } : { action, payload }));
  return true;
}

export function wireSocket() {
  $('socket-retry').addEventListener('click', () => { sock.attempt = 0; connectSocket(); });
  window.addEventListener('online', () => { if (sock.wanted && !sock.ws) connectSocket(); });
}
