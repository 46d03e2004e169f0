/* What each server frame changes on the page (the WebSocket protocol is in API.md, "WebSocket"). */

import { $, show, toast } from './dom.js';
import { mergeDevice } from './devices.js';
import { plural, truncate } from './format.js';
import { pushFeed } from './feed.js';
import { mediaLabel } from './media-view.js';
import { onPairingCode, onQr } from './pairing.js';
import { describeReceipt, rememberName, who } from './people.js';
import { refreshSelected } from './selection.js';
import { emit, on, state } from './store.js';

/** Count a sent or received message on the device's live stats. */
export function bumpStat(token, key) {
  const d = token && state.devices.get(token);
  if (!d || !d.stats) return;
  d.stats = { ...d.stats, [key]: (d.stats[key] || 0) + 1 };
  emit('device', token);
}

function handleFrame(f) {
  const token = f.token || (f.data && typeof f.data === 'object' && !Array.isArray(f.data) ? f.data.token : null);
  switch (f.event) {
    case 'qrcode':
      if (token && typeof f.data === 'string') onQr(token, f.data);
      break;
    case 'pairing-code': {
      const code = f.data && (f.data.code || f.data);
      if (token && typeof code === 'string') onPairingCode(token, code);
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
      refreshSelected(token);
      break;
    }
    case 'connection-error': {
      if (!token) break;
      const why = f.message || (typeof f.data === 'string' ? f.data : 'Disconnected');
      state.connErrors.set(token, why);
      pushFeed(token, `Connection error: ${why}`);
      emit('device', token);
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
      if (m.fromName) rememberName(token, m.from, m.fromName);
      const what = m.text || (m.media ? mediaLabel(m.media) : `[${m.type || 'media'}]`);
      pushFeed(token, `Message from ${who(token, m.from)}${m.isGroup ? ' in a group' : ''}: ${what}`, m);
      bumpStat(token, 'messagesReceived');
      break;
    }
    case 'message.sent': {   // typed on the linked phone (fromMe): the other side of the conversation
      const m = f.data || {};
      const what = m.text || (m.media ? mediaLabel(m.media) : `[${m.type || 'media'}]`);
      pushFeed(token, `Sent from the phone to ${who(token, m.chat)}: “${truncate(what, 60)}”`, m);
      break;
    }
    case 'message.receipt': {
      const r = f.data || {};
      const one = Array.isArray(r.messageIds) && r.messageIds.length === 1 ? `r:${r.messageIds[0]}:${r.type}` : null;
      pushFeed(token, `${describeReceipt(token, r)}.`, null, one);
      break;
    }
    case 'contacts.new': {
      const c = f.data || {};
      rememberName(token, c.phone, c.name);
      pushFeed(token, `New contact: ${who(token, c.phone)}`);
      emit('contacts', token);
      break;
    }
    case 'contacts.sync': {
      const list = Array.isArray(f.data) ? f.data : [];
      for (const c of list) rememberName(token, c.phone, c.name);
      pushFeed(token, `History sync: ${plural(list.length, 'new contact')}.`);
      emit('contacts', token);
      break;
    }
    case 'whoami': {
      const me = f.data || {};
      state.isAdmin = me.isAdmin !== false;
      state.username = me.username || null;
      const label = $('whoami');
      label.textContent = state.username ? `Signed in as ${state.username}` : (state.isAdmin ? 'Admin key' : '');
      show(label, !!label.textContent);
      emit('whoami');
      break;
    }
    default:
      // `error` (a frame we sent was refused), `pong`: nothing on this page depends on them.
      break;
  }
}

export function wireFrames() {
  on('frame', handleFrame);
}
