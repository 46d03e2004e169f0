/* The contacts CSV export (`GET /contacts/{token}?format=csv&limit=all`, streamed by the server). */

import { api, describe, seg } from './api.js';
import { $, saveBlob, setResult, withBusy } from './dom.js';
import { filenameFrom, plural } from './format.js';
import { on, state } from './store.js';

/** Download `token`'s contacts; report what was saved in `result`. */
export async function downloadContactsCsv(token, button, result) {
  setResult(result, '', '');
  await withBusy(button, 'Preparing…', async () => {
    try {
      const res = await api('GET', `/contacts/${seg(token)}?format=csv&limit=all`, undefined, { raw: true, headers: { Accept: 'text/csv' } });
      const blob = await res.blob();
      const name = filenameFrom(res.headers.get('Content-Disposition')) || `contacts-${token}.csv`;
      saveBlob(blob, name);
      let rows = '';
      if (blob.size < 5 * 1024 * 1024) {
        const lines = (await blob.text()).split(/\r?\n/).filter((l) => l.length).length;
        rows = ` · ${plural(Math.max(0, lines - 1), 'contact')}`;
      }
      setResult(result, 'ok', `Saved ${name}${rows}.`);
    } catch (err) {
      setResult(result, 'error', `Download failed: ${describe(err)}`);
    }
  });
}

/** The overview card's "Download contacts CSV"; its notice is per device, so a switch clears it. */
export function wireContactsCsv() {
  const button = $('download-csv');
  const result = $('csv-result');
  on('select', (token, previous) => { if (token !== previous) setResult(result, '', ''); });
  button.addEventListener('click', () => downloadContactsCsv(state.selected, button, result));
}
