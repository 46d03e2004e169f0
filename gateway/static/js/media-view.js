/* Media in a message (CONTRACT §11's `media` object: {id, type, mimetype, size, sha256, filename?,
 * voiceNote?, url, status}) as people see it: an image or sticker as a thumbnail, audio and voice notes
 * as a player, video as a player showing its first frame with a link to open it, a document as a
 * download link with its name and size. Media whose download failed (`status: "failed"`, `url: null`)
 * shows what it was and a "Retry download" button (POST /devices/{token}/messages/{id}/media).
 *
 * Used by the live activity (feed.js) and meant for any page that shows messages. The signed `url` is
 * loaded as a same-origin path: the pages' CSP takes images and media from the gateway only ('self'),
 * and PUBLIC_URL may name another host (a proxy) — the signature covers the id and expiry, not the host.
 */

import { api, describe, seg } from './api.js';
import { el, withBusy } from './dom.js';
import { fmtBytes } from './format.js';

const TYPE_LABEL = { image: 'Image', video: 'Video', audio: 'Audio', document: 'Document', sticker: 'Sticker' };

/** §11's default type for a MIME type: image/*, video/*, audio/*, anything else a document. */
export function mediaFamily(mime) {
  const head = String(mime || '').split('/')[0];
  return head === 'image' || head === 'video' || head === 'audio' ? head : 'document';
}

/** The signed link as a path on this origin (`/media/<id>?exp=…&sig=…`), or null when it is not one. */
export function mediaSrc(url) {
  if (!url) return null;
  let u;
  try { u = new URL(url, location.href); } catch (e) { return null; }
  const at = u.pathname.lastIndexOf('/media/');
  if (at < 0 || !/^\/media\/[^/]+$/.test(u.pathname.slice(at))) return null;
  return `${u.pathname.slice(at)}${u.search}`;
}

/** "Voice note", "Image", "Document invoice.pdf": what a person would call it, in one line. */
export function mediaLabel(media) {
  if (!media) return '';
  const kind = media.voiceNote ? 'Voice note' : TYPE_LABEL[media.type] || 'Media';
  return media.filename && !media.voiceNote ? `${kind} ${media.filename}` : kind;
}

/** "image/png · 2.1 KB" (the parts that are known). */
function meta(media) {
  return [media.mimetype, media.size != null ? fmtBytes(media.size) : null].filter(Boolean).join(' · ');
}

function stored(media, src) {
  const label = mediaLabel(media);
  const details = el('span', { class: 'media-meta' }, meta(media));
  switch (media.type) {
    case 'image':
    case 'sticker':
      return [
        el('a', { href: src, target: '_blank', rel: 'noopener', class: 'media-link', title: `Open ${label}` },
          el('img', { src, alt: label, class: `media-thumb${media.type === 'sticker' ? ' media-sticker' : ''}`, loading: 'lazy', decoding: 'async' })),
        details,
      ];
    case 'audio':
      return [el('audio', { src, controls: true, preload: 'metadata', 'aria-label': label }), details];
    case 'video':
      return [
        el('video', { src, controls: true, preload: 'metadata', playsinline: true, class: 'media-thumb', 'aria-label': label }),
        el('span', { class: 'media-meta' }, el('a', { href: src, target: '_blank', rel: 'noopener' }, 'Open video'), ` · ${meta(media)}`),
      ];
    default:
      return [
        el('a', { href: src, download: media.filename || '', class: 'media-doc' },
          el('span', { class: 'media-doc-icon', 'aria-hidden': 'true' }, '📄'),
          el('span', { class: 'media-doc-name' }, media.filename || label),
          el('span', { class: 'media-meta' }, meta(media))),
      ];
  }
}

function failed(box, media, ctx) {
  const error = el('span', { class: 'media-error', role: 'alert', hidden: true });
  const parts = [
    el('span', {}, `${mediaLabel(media)} not downloaded`),
    el('span', { class: 'media-meta' }, meta(media)),
  ];
  if (ctx.token && ctx.messageId) {
    const button = el('button', { class: 'btn btn-sm', type: 'button' }, 'Retry download');
    button.addEventListener('click', () => withBusy(button, 'Downloading…', async () => {
      error.hidden = true;
      try {
        const fresh = await api('POST', `/devices/${seg(ctx.token)}/messages/${seg(ctx.messageId)}/media`);
        render(box, fresh, ctx);
        if (ctx.onChange) ctx.onChange(fresh);
      } catch (err) {
        error.textContent = describe(err);
        error.hidden = false;
      }
    }));
    parts.push(button);
  }
  parts.push(error);
  return parts;
}

function render(box, media, ctx) {
  const src = media.status === 'stored' ? mediaSrc(media.url) : null;
  box.className = `media media-${media.type || 'document'}${src ? '' : ' media-failed'}`;
  box.dataset.mediaType = media.type || '';
  box.dataset.mediaStatus = src ? 'stored' : 'failed';
  box.replaceChildren(...(src ? stored(media, src) : failed(box, media, ctx)));
}

/**
 * One element showing `media`. `ctx.token` and `ctx.messageId` enable the retry button of a failed
 * download; after a successful retry the element shows the stored media and `ctx.onChange(media)` runs.
 */
export function mediaView(media, ctx = {}) {
  const box = el('div', {});
  render(box, media || {}, ctx);
  return box;
}
