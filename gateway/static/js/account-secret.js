/* The account's webhook signing secret, in the deliveries view: accounts (not the admin key, which has
 * no account) can rotate it (`POST /auth/me/webhook-secret`). The new secret is shown once, in a
 * read-only field with a Copy button, and forgotten when the view is left or the page signs out;
 * the previous secret keeps signing alongside until the time the gateway answers. */

import { api, describe } from './api.js';
import { $, setAlert, show, toast, withBusy } from './dom.js';
import { fmtDate } from './format.js';
import { on, state } from './store.js';

/** Hide (and drop) a secret shown after a rotation. */
export function forgetAccountSecret() {
  $('account-secret-value').value = '';
  show($('account-secret-new'), false);
  setAlert($('account-secret-error'), '');
}

function sync() {
  show($('account-secret'), state.isAdmin === false);
  if (state.isAdmin !== false) forgetAccountSecret();
}

export function wireAccountSecret() {
  on('whoami', sync);
  on('section', (section) => { if (section !== 'webhooks') forgetAccountSecret(); });
  sync();

  $('account-secret-rotate').addEventListener('click', async (e) => {
    const ok = window.confirm('Make a new webhook signing secret for this account? Receivers must switch to it within 24 hours.');
    if (!ok) return;
    setAlert($('account-secret-error'), '');
    await withBusy(e.currentTarget, 'Rotating…', async () => {
      try {
        const data = await api('POST', '/auth/me/webhook-secret');
        $('account-secret-value').value = data.webhookSecret;
        $('account-secret-until').textContent = data.previousValidUntil
          ? `The previous secret keeps signing too until ${fmtDate(data.previousValidUntil)}.`
          : '';
        show($('account-secret-new'), true);
        $('account-secret-value').select();
      } catch (err) {
        setAlert($('account-secret-error'), describe(err));
      }
    });
  });

  $('account-secret-copy').addEventListener('click', async () => {
    const value = $('account-secret-value').value;
    if (!value) return;
    try {
      await navigator.clipboard.writeText(value);
      toast('Secret copied.');
    } catch (err) {
      $('account-secret-value').select();
      toast('Select the secret and copy it (the browser refused clipboard access).', 'error');
    }
  });
}
