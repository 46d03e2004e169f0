/* The send form's attachment: one file, how to send it, a preview, and the multipart body of
 * `POST /messages` that carries it (fields token, to, type, voiceNote, caption and the `file` part).
 *
 * "Send as" defaults to Automatic — the gateway reads the MIME type from the bytes and sends image/*
 * as an image, video/* as a video, audio/* as audio, anything else as a document — with overrides for
 * a voice note, a sticker or a document. With a file attached the message box is its caption.
 */

import { $, el, show } from './dom.js';
import { fmtBytes } from './format.js';
import { mediaFamily } from './media-view.js';

// "Send as" → the multipart fields it sets.
const SEND_AS = {
  '': {},
  voice: { type: 'audio', voiceNote: 'true' },
  sticker: { type: 'sticker' },
  document: { type: 'document' },
};
const KIND_LABEL = { image: 'image', video: 'video', audio: 'audio', document: 'document' };

let previewUrl = null;

/** The attached file, or null. */
export function attachment() {
  const files = $('send-file').files;
  return files && files.length ? files[0] : null;
}

function dropPreview() {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = null;
  const img = $('send-preview');
  img.removeAttribute('src');
  show(img, false);
}

function refresh() {
  const file = attachment();
  dropPreview();
  show($('send-attachment'), !!file);
  $('send-text-label').textContent = file ? 'Caption (optional)' : 'Message';
  if (!file) return;
  const family = mediaFamily(file.type);
  $('send-file-name').textContent = file.name;
  $('send-file-meta').textContent = [file.type || 'unknown type', fmtBytes(file.size)].join(' · ');
  $('send-as-auto').textContent = `Automatic (${KIND_LABEL[family]})`;
  if (family === 'image') {
    previewUrl = URL.createObjectURL(file);
    const img = $('send-preview');
    img.src = previewUrl;
    img.alt = `Preview of ${file.name}`;
    show(img, true);
  }
}

/** Forget the file (after a send, or when another device is selected). */
export function clearAttachment() {
  $('send-file').value = '';
  $('send-as').value = '';
  refresh();
}

/** `POST /messages` as multipart/form-data: the file, its caption and how to send it. */
export function multipartBody(token, to, caption) {
  const file = attachment();
  const form = new FormData();
  form.append('token', token);
  form.append('to', to);
  for (const [k, v] of Object.entries(SEND_AS[$('send-as').value] || {})) form.append(k, v);
  if (caption.trim()) form.append('caption', caption);
  form.append('file', file, file.name);
  return form;
}

/** "voice note clip.ogg (12 KB)", for the result line and the live activity. */
export function attachmentSummary() {
  const file = attachment();
  if (!file) return '';
  const as = $('send-as').value;
  const kind = as === 'voice' ? 'voice note' : as || KIND_LABEL[mediaFamily(file.type)];
  return `${kind} ${file.name} (${fmtBytes(file.size)})`;
}

export function wireAttach() {
  $('send-file').addEventListener('change', refresh);
  $('send-file-clear').addEventListener('click', () => { clearAttachment(); $('send-file').focus(); });
  refresh();
}
