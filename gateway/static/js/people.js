/* Who is who, per device: names learnt from incoming messages, contacts frames and the contacts table,
 * and the messages this page sent. Receipts and activity read as people read them ("Read by Ali"),
 * not as raw message ids and JIDs. */

import { fmtPhone, phoneOf, plural, truncate } from './format.js';

const names = new Map();   // token -> Map(phone digits -> name)
const sent = new Map();    // token -> Map(message id -> {to, text})
const SENT_MAX = 500;

export function rememberName(token, phoneOrJid, name) {
  const phone = phoneOf(phoneOrJid);
  if (!token || !phone || !name) return;
  if (!names.has(token)) names.set(token, new Map());
  names.get(token).set(phone, String(name));
}

export function rememberSent(token, id, to, text) {
  if (!token || !id) return;
  if (!sent.has(token)) sent.set(token, new Map());
  const mine = sent.get(token);
  mine.set(id, { to, text });
  if (mine.size > SENT_MAX) mine.delete(mine.keys().next().value);
}

/** "Ali (+60198765432)" when the name is known, else "+60198765432". */
export function who(token, phoneOrJid) {
  const phone = phoneOf(phoneOrJid);
  const name = phone && names.get(token) ? names.get(token).get(phone) : null;
  const number = fmtPhone(phoneOrJid);
  return name ? `${name} (${number})` : number || 'someone';
}

const RECEIPT_VERB = { delivered: 'Delivered to', read: 'Read by', played: 'Played by' };

/** A `message.receipt` as a sentence: "Read by Ali (+60198765432): “Hello from wa-gateway”". */
export function describeReceipt(token, r) {
  const ids = Array.isArray(r.messageIds) ? r.messageIds : [];
  const verb = RECEIPT_VERB[r.type] || `${r.type || 'Receipt'} from`;
  const person = r.from ? who(token, r.from) : 'the recipient';
  const mine = sent.get(token);
  const known = ids.map((id) => mine && mine.get(id)).filter(Boolean);
  if (ids.length === 1 && known.length === 1) return `${verb} ${person}: “${truncate(known[0].text, 60)}”`;
  if (ids.length === 1) return `${verb} ${person}: a message sent earlier`;
  return `${verb} ${person}: ${plural(ids.length, 'message')}`;
}
