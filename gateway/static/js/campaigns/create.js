/* The "New campaign" form: a recipients CSV is uploaded (`POST /media`, the raw file), then the campaign
 * is created from it (`POST /campaigns` with `recipientsCsv`). Errors are the API's own words. */

import { api, credentials, describe, ApiError } from '../api.js';
import { titleOf } from '../devices.js';
import { $, el, setResult, withBusy } from '../dom.js';
import { state } from '../store.js';

/** Upload the CSV as it is (the gateway streams it to disk); resolves to the upload's id. */
async function uploadCsv(file) {
  const headers = { Accept: 'application/json', 'Content-Type': 'text/csv' };
  if (credentials.key) headers.Authorization = `Bearer ${credentials.key}`;
  const name = encodeURIComponent(file.name || 'recipients.csv');
  let res;
  try {
    res = await fetch(`/media?filename=${name}`, { method: 'POST', headers, body: file, credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError('NETWORK', 0, 'The gateway could not be reached.');
  }
  const env = await res.json().catch(() => null);
  if (!res.ok || !env || !env.success) {
    throw new ApiError((env && env.error && env.error.code) || `HTTP_${res.status}`, res.status,
      (env && env.error && env.error.message) || 'Upload failed');
  }
  return env.data.id;
}

/** The device choices: every visible device (a campaign waits for a disconnected one). */
export function fillDevices() {
  const select = $('cmp-device');
  const current = select.value;
  const options = [...state.devices.values()].map((d) => el('option', { value: d.token }, `${titleOf(d)} (${d.token})`));
  select.replaceChildren(...(options.length ? options : [el('option', { value: '' }, 'No devices yet')]));
  if (current && state.devices.has(current)) select.value = current;
}

export function wireCreate(created) {
  $('cmp-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const result = $('cmp-result');
    setResult(result, '', '');
    const file = $('cmp-csv').files[0];
    if (!file) { setResult(result, 'error', 'Choose a CSV file with a phone column.'); return; }
    const body = {
      token: $('cmp-device').value,
      name: $('cmp-name').value.trim(),
      message: { text: $('cmp-text').value },
      pace: { perMinute: Number($('cmp-rate').value) || 20 },
      validate: $('cmp-validate').checked,
    };
    await withBusy($('cmp-submit'), 'Creating…', async () => {
      try {
        body.recipientsCsv = await uploadCsv(file);
        const campaign = await api('POST', '/campaigns', body);
        setResult(result, 'ok', `“${campaign.name}” created: ${campaign.total} recipients, ${campaign.skipped} skipped.`);
        $('cmp-form').reset();
        created(campaign);
      } catch (err) {
        setResult(result, 'error', describe(err));
      }
    });
  });
}
