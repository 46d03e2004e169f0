/* The Settings tab: the device's name, its own webhook URL, which events go there and the secret
 * that signs them (`PATCH /devices/{token}`; an empty URL or "All events" sends null, which clears the
 * field). The API never returns a device's secret, only `webhookSecretSet`: the form shows "set" or
 * "not set", sends a typed (or generated) secret with the settings, and "Remove" sends null. */

import { api, describe, seg } from './api.js';
import { mergeDevice } from './devices.js';
import { $, el, setAlert, setResult, show, withBusy } from './dom.js';
import { on, state } from './store.js';

// The webhook event names (API.md, "Webhooks" → Body), with the words an operator reads.
const EVENTS = [
  ['message.received', 'Message received'],
  ['message.receipt', 'Delivery and read receipts'],
  ['contacts.new', 'New contact'],
  ['contacts.sync', 'Contacts history sync'],
  ['device.connected', 'Device connected'],
  ['device.disconnected', 'Device disconnected'],
  ['device.logged_out', 'Device logged out'],
];

let dirty = false;     // the operator has typed: a live update must not overwrite the form
let filledFor = null;  // the token the form shows

/** A fresh Standard Webhooks secret: `whsec_` + base64 of 32 random bytes (the browser's CSPRNG). */
export function newSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

function showSecretState(d) {
  const set = !!(d && d.webhookSecretSet);
  $('set-secret-state').textContent = set ? 'set' : 'not set';
  show($('set-secret-note'), !set);
  show($('set-secret-clear'), set);
}

function boxes() { return [...document.querySelectorAll('#set-events input[type="checkbox"]')]; }

function syncEventBoxes() {
  const all = $('set-all-events').checked;
  for (const box of boxes()) box.disabled = all;
}

/** Put the device's current settings in the form (on selection, after a save, on revert). */
function fill(d) {
  filledFor = d ? d.token : null;
  dirty = false;
  $('set-name').value = (d && d.name) || '';
  $('set-webhook').value = (d && d.webhookUrl) || '';
  $('set-webhook').setAttribute('aria-invalid', 'false');
  const events = d && Array.isArray(d.webhookEvents) ? new Set(d.webhookEvents) : null;
  $('set-all-events').checked = events === null;
  for (const box of boxes()) box.checked = events === null || events.has(box.value);
  syncEventBoxes();
  $('set-secret').value = '';
  $('set-secret').setAttribute('aria-invalid', 'false');
  showSecretState(d);
  setAlert($('settings-error'), '');
}

function reset() {
  fill(state.devices.get(state.selected));
  setResult($('settings-result'), '', '');
}

export function wireSettings() {
  $('set-events').replaceChildren(...EVENTS.map(([name, label]) => el('label', { class: 'checkbox' },
    el('input', { type: 'checkbox', value: name, checked: true }), ` ${label} `, el('span', { class: 'mono muted' }, name))));

  on('select', (token, previous) => { if (token !== previous) reset(); });
  // The full state (with webhookUrl/webhookEvents) arrives after the selection: fill unless edited.
  on('device', (token) => { if (token === state.selected && (!dirty || filledFor !== token)) fill(state.devices.get(token)); });

  const form = $('panel-settings');
  form.addEventListener('input', () => { dirty = true; });
  $('set-all-events').addEventListener('change', syncEventBoxes);
  $('settings-revert').addEventListener('click', reset);
  $('set-secret-generate').addEventListener('click', () => {
    $('set-secret').value = newSecret();
    dirty = true;
  });
  $('set-secret-clear').addEventListener('click', () => save({ webhookSecret: null }, $('set-secret-clear'), 'Secret removed.'));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const url = $('set-webhook').value.trim();
    const all = $('set-all-events').checked;
    const events = boxes().filter((b) => b.checked).map((b) => b.value);
    const secret = $('set-secret').value.trim();
    setResult($('settings-result'), '', '');
    if (!all && events.length === 0) {
      setAlert($('settings-error'), 'Pick at least one event, or tick "All events".');
      return;
    }
    if (secret && secret.length < 16) {
      $('set-secret').setAttribute('aria-invalid', 'true');
      setAlert($('settings-error'), 'A webhook secret needs at least 16 characters (or use Generate).');
      return;
    }
    const body = { name: $('set-name').value.trim() || null, webhookUrl: url || null, webhookEvents: all ? null : events };
    if (secret) body.webhookSecret = secret;
    await save(body, $('settings-save'), 'Saved.');
  });
}

/** PATCH the selected device with `body` (busy on `button`); the form shows the saved state. */
async function save(body, button, done) {
  const token = state.selected;
  setResult($('settings-result'), '', '');
  await withBusy(button, 'Saving…', async () => {
    try {
      const data = await api('PATCH', `/devices/${seg(token)}`, body);
      if (state.selected !== token) return;
      dirty = false;
      mergeDevice(token, data);
      fill(state.devices.get(token));
      setResult($('settings-result'), 'ok', done);
    } catch (err) {
      if (state.selected !== token) return;
      const message = err.message || '';
      if (/webhookSecret/i.test(message)) $('set-secret').setAttribute('aria-invalid', 'true');
      else if (/webhook/i.test(message)) $('set-webhook').setAttribute('aria-invalid', 'true');
      setAlert($('settings-error'), describe(err));
    }
  });
}
