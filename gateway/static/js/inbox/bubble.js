/* One message of a conversation as a bubble: who (in groups), the quote it replies to, its content
 * (text, a media thumbnail or link, location, contacts, poll), reactions, time, and on outgoing
 * messages the delivery ticks: sent ✓, delivered ✓✓, read ✓✓ (coloured), failed. */

import { el } from '../dom.js';
import { fmtPhone, fmtTime, truncate } from '../format.js';
import { mediaLabel, mediaView } from '../media-view.js';

const TICKS = {
  pending: { mark: '🕓', label: 'Sending' },
  sent: { mark: '✓', label: 'Sent' },
  delivered: { mark: '✓✓', label: 'Delivered' },
  read: { mark: '✓✓', label: 'Read' },
  played: { mark: '✓✓', label: 'Played' },
  failed: { mark: '⚠ Not sent', label: 'Not sent' },
};

/** When a message was sent: the time today, else the date and time. */
export function when(ts) {
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return '';
  if (d.toDateString() === new Date().toDateString()) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return d.toLocaleString([], { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
}

/** The delivery ticks of an outgoing message, with their meaning for screen readers and a tooltip. */
export function ticks(m) {
  const t = TICKS[m.status] || TICKS.sent;
  const label = m.status === 'failed' && m.error ? `${t.label}: ${m.error}` : t.label;
  const title = m.statusAt && m.status !== 'failed' ? `${label} ${fmtTime(m.statusAt)}` : label;
  return el('span', { class: `tick tick-${m.status || 'sent'}`, role: 'img', 'aria-label': label, title, dataset: { status: m.status || 'sent' } }, t.mark);
}

/** Media in a bubble: incoming media as media-view.js shows it (thumbnail, player, download link, retry of a
 * failed download — the stored message then shows the new media); media this device sent by its name. */
const mediaNodes = new Map();   // message id -> {key, node}: kept across redraws (a playing voice note plays on)

function mediaPart(m, ctx) {
  const media = m.media;
  if (!media) return null;
  if (!media.status) return el('p', { class: 'bubble-media muted' }, `📎 ${mediaLabel(media)}`);
  const key = `${media.id}|${media.status}`;
  const cached = mediaNodes.get(m.id);
  if (cached && cached.key === key) return cached.node;
  const node = el('div', { class: 'bubble-media' }, mediaView(media, {
    token: ctx.token,
    messageId: m.id,
    onChange: (fresh) => { m.media = fresh; mediaNodes.set(m.id, { key: `${fresh.id}|${fresh.status}`, node }); },
  }));
  mediaNodes.set(m.id, { key, node });
  return node;
}

/** Another chat is open: its media elements go. */
export function forgetMedia() { mediaNodes.clear(); }

function contentPart(m, ctx) {
  if (m.revokedAt) return el('p', { class: 'bubble-text bubble-deleted' }, 'This message was deleted');
  const parts = [mediaPart(m, ctx)];
  if (m.location) {
    const { latitude, longitude, name } = m.location;
    parts.push(el('p', { class: 'bubble-text' }, `📍 ${name ? `${name} ` : ''}(${latitude}, ${longitude})`));
  }
  if (Array.isArray(m.contacts)) {
    for (const c of m.contacts) parts.push(el('p', { class: 'bubble-text' }, `👤 ${c.name} ${(c.phones || []).join(', ')}`));
  }
  if (m.poll) parts.push(el('p', { class: 'bubble-text' }, `📊 ${m.poll.name}: ${(m.poll.options || []).join(' / ')}`));
  if (m.reaction) parts.push(el('p', { class: 'bubble-text' }, `Reacted ${m.reaction.emoji || '(removed)'}`));
  if (m.text) parts.push(el('p', { class: 'bubble-text' }, m.text));
  if (parts.every((p) => p == null)) parts.push(el('p', { class: 'bubble-text muted' }, `[${m.type || 'message'}]`));
  return parts;
}

/**
 * The bubble of message `m`. `ctx.quoted(id)` finds the message a reply quotes (when loaded),
 * `ctx.onReply(m)` starts a reply to it, `ctx.sender(m)` names a group message's author, `ctx.token` is
 * the device.
 */
export function bubble(m, ctx) {
  const { quoted, onReply, sender } = ctx;
  const out = m.direction === 'out';
  const quote = m.replyTo ? quoted(m.replyTo.messageId) : null;
  const reactions = Array.isArray(m.reactions) && m.reactions.length
    ? el('p', { class: 'bubble-reactions', 'aria-label': `Reactions: ${m.reactions.map((r) => r.emoji).join(' ')}` },
      ...m.reactions.map((r) => el('span', { title: r.fromMe ? 'You' : fmtPhone(r.from) }, r.emoji)))
    : null;
  return el('li', { class: `bubble ${out ? 'bubble-out' : 'bubble-in'}`, dataset: { id: m.id } },
    !out && m.isGroup ? el('p', { class: 'bubble-sender' }, sender(m)) : null,
    m.replyTo ? el('p', { class: 'bubble-quote' }, quote ? truncate(quote.text || `[${quote.type}]`, 80) : 'An earlier message') : null,
    ...[contentPart(m, ctx)].flat(),
    reactions,
    el('p', { class: 'bubble-meta' },
      m.editedAt && !m.revokedAt ? el('span', { class: 'muted' }, 'edited') : null,
      el('time', { datetime: m.timestamp, title: fmtTime(m.timestamp) }, when(m.timestamp)),
      out ? ticks(m) : null,
      !m.revokedAt ? el('button', { class: 'btn btn-ghost btn-sm bubble-reply', type: 'button', 'aria-label': `Reply to “${truncate(m.text || m.type || 'message', 40)}”`, onclick: () => onReply(m) }, 'Reply') : null));
}
