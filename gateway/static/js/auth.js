/* Signing in (admin or account API key, or an account's username/email and password) and out. */

import {
  api, clearCredentials, credentials, describe, onUnauthorized, rememberKey, rememberSession,
} from './api.js';
import { $, setAlert, show, toast, withBusy } from './dom.js';
import { stopSocket } from './socket.js';
import { state } from './store.js';

export function showAuth(errorMessage) {
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

function unauthorized() {
  if ($('auth-view').hidden === false) return;
  const hadKey = !!credentials.key;
  clearCredentials();
  showAuth(hadKey
    ? 'The gateway no longer accepts this API key (401 Unauthorized). Enter a valid key.'
    : 'Your session has expired. Sign in again.');
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

/** `enter()` opens the app once signed in; `leave()` forgets the page's data on sign-out. */
export function wireAuth({ enter, leave }) {
  onUnauthorized(unauthorized);
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
      credentials.key = key;
      credentials.session = false;
      try {
        await api('GET', '/devices', undefined, { quiet401: true });
      } catch (err) {
        credentials.key = null;
        input.setAttribute('aria-invalid', 'true');
        setAlert($('auth-error'), err.status === 401
          ? 'That API key was rejected (401 Unauthorized). Check it and try again.'
          : describe(err));
        input.focus();
        input.select();
        return;
      }
      rememberKey(key);
      input.value = '';
      input.setAttribute('aria-invalid', 'false');
      enter();
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
      credentials.key = null;
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
      rememberSession();
      $('login-password').value = '';
      enter();
    });
  });

  $('signout').addEventListener('click', async () => {
    if (credentials.session) {
      try { await api('POST', '/auth/logout', {}, { quiet401: true }); } catch (e) { /* signed out anyway */ }
    }
    clearCredentials();
    leave();
    showAuth('');
    toast('Signed out.');
  });
}
