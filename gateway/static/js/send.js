/* "Send test message": POST /messages from the selected device — a text, or a file with its caption
 * (multipart, attach.js). Reset when another device is selected, so a recipient, a file, an error or a
 * message id never carries over to the next device. */

import { api, describe } from './api.js';
import { attachment, attachmentSummary, clearAttachment, multipartBody, wireAttach } from './attach.js';
import { $, setResult, withBusy } from './dom.js';
import { fmtTime, truncate } from './format.js';
import { pushFeed } from './feed.js';
import { bumpStat } from './frames.js';
import { rememberSent, who } from './people.js';
import { on, state } from './store.js';

const DEFAULT_TEXT = 'Hello from wa-gateway';

function reset() {
  $('send-to').value = '';
  $('send-to').setAttribute('aria-invalid', 'false');
  $('send-text').value = DEFAULT_TEXT;
  clearAttachment();
  const result = $('send-result');
  setResult(result, '', '');
  result.dataset.messageId = '';
}

export function wireSend() {
  wireAttach();
  on('select', (token, previous) => { if (token !== previous) reset(); });

  $('send-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = state.selected;
    const to = $('send-to').value.trim();
    const text = $('send-text').value;
    const file = attachment();
    const result = $('send-result');
    setResult(result, '', '');
    if (!to) {
      $('send-to').setAttribute('aria-invalid', 'true');
      setResult(result, 'error', 'Enter a recipient.');
      $('send-to').focus();
      return;
    }
    await withBusy($('send-submit'), 'Sending…', async () => {
      try {
        const what = file ? attachmentSummary() : '';
        const body = file ? multipartBody(token, to, text) : { token, to, text };
        const data = await api('POST', '/messages', body);
        if (state.selected !== token) return;   // the operator moved on; the answer is for another panel
        $('send-to').setAttribute('aria-invalid', 'false');
        result.dataset.messageId = (data && data.messageId) || '';
        setResult(result, 'ok', `Accepted${file ? ` · ${what}` : ''} · message id ${(data && data.messageId) || '?'} · ${fmtTime(data && data.timestamp)}`);
        const said = file ? `${what}${text.trim() ? ` “${truncate(text, 60)}”` : ''}` : truncate(text);
        rememberSent(token, data && data.messageId, to, file ? said : text);
        pushFeed(token, `Sent to ${who(token, to)}: ${said}`);
        bumpStat(token, 'messagesSent');
        if (file) clearAttachment();
      } catch (err) {
        if (state.selected !== token) return;
        if (err.code === 'INVALID_PHONE') $('send-to').setAttribute('aria-invalid', 'true');
        result.dataset.messageId = '';
        setResult(result, 'error', describe(err));
      }
    });
  });
}
