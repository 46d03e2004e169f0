/* "+ Add device": start pairing a number by QR or pairing code. */

import { api, describe, FRIENDLY } from './api.js';
import { loadDevices, mergeDevice } from './devices.js';
import { $, setAlert, show, toast, withBusy } from './dom.js';
import { selectDevice } from './selection.js';
import { state } from './store.js';

export function wireAddDevice() {
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
        loadDevices().catch(() => { /* the socket keeps the list current */ });
        // No toast for "pairing started": the QR panel says it, and a toast could cover the QR on a phone.
        if (data && data.status === 'connected') toast('Device reconnected.');
      } catch (err) {
        if (err.code === 'INVALID_PHONE' || err.code === 'MISSING_TOKEN') $('add-token').setAttribute('aria-invalid', 'true');
        setAlert($('add-error'), describe(err));
        $('add-token').focus();
      }
    });
  });
}
