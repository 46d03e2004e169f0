/* The Settings tab: the device's name, its own webhook URL and which events go there
 * (`PATCH /devices/{token}`; an empty URL or "All events" sends null, which clears the field). */

import { api, describe, seg } from './api.js';
import { mergeDevice } from './devices.js';
import { $, el, setAlert, setResult, withBusy } from './dom.js';
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

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = state.selected;
    const url = $('set-webhook').value.trim();
    const all = $('set-all-events').checked;
    const events = boxes().filter((b) => b.checked).map((b) => b.value);
    setResult($('settings-result'), '', '');
    if (!all && events.length === 0) {
      setAlert($('settings-error'), 'Pick at least one event, or tick "All events".');
      return;
    }
    const body = { name: $('set-name').value.trim() || null, webhookUrl: url || null, webhookEvents: all ? null : events };
    await withBusy($('settings-save'), 'Saving…', async () => {
      try {
        const data = await api('PATCH', `/devices/${seg(token)}`, body);
        if (state.selected !== token) return;
        dirty = false;
        mergeDevice(token, data);
        fill(state.devices.get(token));
        setResult($('settings-result'), 'ok', 'Saved.');
      } catch (err) {
        if (state.selected !== token) return;
        if (/webhook/i.test(err.message || '')) $('set-webhook').setAttribute('aria-invalid', 'true');
        setAlert($('settings-error'), describe(err));
      }
    });
  });
}
