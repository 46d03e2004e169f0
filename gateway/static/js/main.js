/* wa-gateway console, the page at `/`. Vanilla ES modules, no build step, no external services.
 *
 * Data flow: REST for actions and the initial state, one WebSocket (/ws) for everything live
 * (socket.js → frames.js). Each module owns one concept and talks to the others through the store's
 * events (store.js); this one signs in, boots the modules and keeps the selection and the address in step.
 */

import { forgetAccountSecret, wireAccountSecret } from './account-secret.js';
import { wireAddDevice } from './add-device.js';
import { api, credentials, describe, loadCredentials, rememberSession } from './api.js';
import { showAuth, wireAuth } from './auth.js';
import { wireCampaigns } from './campaigns/campaigns.js';
import { wireContactsCsv } from './contacts-csv.js';
import { wireContactsTable } from './contacts-table.js';
import { wireDeliveries } from './deliveries.js';
import { wireDetail } from './detail.js';
import { wireDeviceList } from './device-list.js';
import { loadDevices } from './devices.js';
import { $, setAlert, show } from './dom.js';
import { wireFeed } from './feed.js';
import { wireFrames } from './frames.js';
import { showChat, wireInbox } from './inbox/inbox.js';
import { wirePairing } from './pairing.js';
import { parseHash, syncHash } from './route.js';
import { firstDevice, refreshSelected, selectDevice } from './selection.js';
import { wireSend } from './send.js';
import { wireSettings } from './settings.js';
import { startSocket, wireSocket } from './socket.js';
import { emit, on, state } from './store.js';
import { showSection, showTab, wireViews } from './views.js';

/** Re-read the device list; a failure is shown above the layout (a 401 signs the page out instead). */
async function reloadDevices(initial = false) {
  if (initial && !state.devices.size) show($('devices-loading'), true);
  try {
    await loadDevices();
    setAlert($('app-error'), '');
  } catch (err) {
    if (err.status !== 401) setAlert($('app-error'), `Could not load devices: ${describe(err)}`);
  } finally {
    show($('devices-loading'), false);
  }
  emit('devices');
}

/** Sandbox mode: /health/detailed names the driver; else probe a sandbox-only route. */
async function detectMode() {
  let sandbox;
  try {
    const health = await api('GET', '/health/detailed');
    if (health && typeof health.driver === 'string') sandbox = health.driver === 'sandbox';
    else sandbox = await probeSandboxRoute();
  } catch (e) {
    sandbox = await probeSandboxRoute();
  }
  state.sandbox = sandbox;
  show($('mode-badge'), sandbox);
  emit('mode');
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

let entered = false;   // the devices are loaded and the address followed once (enterApp is done)

async function enterApp() {
  entered = false;
  show($('auth-view'), false);
  show($('app-view'), true);
  show($('signout'), true);
  show($('live-badge'), true);
  setAlert($('app-error'), '');
  startSocket();
  await Promise.all([detectMode(), reloadDevices(true)]);
  const route = parseHash();
  state.tab = route.tab || state.tab;
  if (route.token && state.devices.has(route.token)) selectDevice(route.token);
  else if (state.selected && state.devices.has(state.selected)) selectDevice(state.selected);
  else selectDevice(firstDevice());
  state.chat = route.chat || null;
  showSection(route.section || 'devices');
  showTab(state.tab);
  entered = true;
}

/** Back/forward, a pasted link or a section link: show what the address names. */
function followHash() {
  // Until the devices are loaded, enterApp reads the address itself: following it now would rewrite it
  // (a link to a device not yet known would lose its token).
  if (!entered) return;
  const route = parseHash();
  if (route.section === 'webhooks' || route.section === 'campaigns') {
    if (state.section !== route.section) showSection(route.section);
    return;
  }
  if (route.section === 'messages') {
    if (route.token && route.token !== state.selected && state.devices.has(route.token)) selectDevice(route.token);
    if (state.section !== 'messages') { state.chat = route.chat || null; showSection('messages'); }
    else if ((route.chat || null) !== state.chat) showChat(route.chat);
    else syncHash();
    return;
  }
  if (!route.section) return;
  if (route.token && route.token !== state.selected && state.devices.has(route.token)) selectDevice(route.token);
  if (state.section !== 'devices') showSection('devices');
  else syncHash();   // a bare #/devices (the section link) names the selected device again
  if (route.tab && route.tab !== state.tab) showTab(route.tab);
}

function leaveApp() {
  entered = false;
  forgetAccountSecret();
  state.devices.clear();
  state.selected = null;
  history.replaceState(null, '', location.pathname);
}

async function boot() {
  wireAuth({ enter: enterApp, leave: leaveApp });
  wireSocket();
  wireFrames();
  wireDeviceList();
  wireDetail();
  wirePairing();
  wireFeed();
  wireAddDevice();
  wireSend();
  wireContactsCsv();
  wireViews();
  wireContactsTable();
  wireSettings();
  wireDeliveries();
  wireInbox();
  wireCampaigns();
  wireAccountSecret();

  // A selected device that disappeared (deleted here or elsewhere) is no longer selected.
  on('devices', () => { if (state.selected && !state.devices.has(state.selected)) selectDevice(null); });
  on('resumed', () => { reloadDevices().then(() => { if (state.selected) refreshSelected(state.selected); }); });
  window.addEventListener('hashchange', followHash);

  loadCredentials();
  if (credentials.key || credentials.session) { enterApp(); return; }
  // A gw_session cookie from an earlier login may still be valid: try it silently.
  try {
    await api('GET', '/devices', undefined, { quiet401: true });
    rememberSession();
    enterApp();
  } catch (err) {
    showAuth(err.status === 401 || err.status === 0 ? (err.status === 0 ? describe(err) : '') : describe(err));
  }
}

boot();
