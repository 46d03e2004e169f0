/* Replying from the conversation: a text to the open chat (POST /messages), optionally quoting one of
 * its messages (`replyTo`). The sent message shows at once with one tick; its receipts move the ticks. */

import { api, describe } from '../api.js';
import { $, setAlert, show, withBusy } from '../dom.js';
import { truncate } from '../format.js';
import { rememberSent } from '../people.js';
import { renderChats } from './chat-list.js';
import { renderConversation } from './conversation.js';
import { box, putMessage, touchChat } from './model.js';

let quoting = null;   // the message the reply quotes, or null

export function startReply(m) {
  quoting = m;
  $('inbox-quote-text').textContent = `Replying to: ${truncate(m.text || `[${m.type}]`, 80)}`;
  show($('inbox-quote'), true);
  $('inbox-text').focus();
}

export function resetComposer() {
  quoting = null;
  show($('inbox-quote'), false);
  $('inbox-text').value = '';
  setAlert($('inbox-send-error'), '');
}

async function send(e) {
  e.preventDefault();
  const text = $('inbox-text').value;
  if (!box.open || !text.trim()) {
    setAlert($('inbox-send-error'), 'Write a message first.');
    return;
  }
  const token = box.token;
  const chat = box.open;
  const body = { token, to: chat, text };
  if (quoting) body.replyTo = quoting.id;
  await withBusy($('inbox-send'), 'Sending…', async () => {
    try {
      const sent = await api('POST', '/messages', body);
      if (token !== box.token) return;
      rememberSent(token, sent.messageId, chat, text);
      const m = {
        id: sent.messageId, from: token, fromName: null, chat, isGroup: chat.endsWith('@g.us'), fromMe: true,
        type: 'text', text, timestamp: sent.timestamp || new Date().toISOString(), direction: 'out',
        status: 'sent', statusAt: sent.timestamp || new Date().toISOString(),
      };
      if (body.replyTo) m.replyTo = { messageId: body.replyTo, from: null };
      touchChat(m);
      if (chat === box.open) putMessage(m);
      resetComposer();
      renderChats();
      renderConversation({ anchor: 'bottom' });
    } catch (err) {
      setAlert($('inbox-send-error'), describe(err));
    }
  });
}

export function wireComposer() {
  $('inbox-form').addEventListener('submit', send);
  $('inbox-quote-cancel').addEventListener('click', () => { quoting = null; show($('inbox-quote'), false); $('inbox-text').focus(); });
  $('inbox-text').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('inbox-form').requestSubmit(); }
  });
}
