/* DOM helpers shared by every page: element lookup and creation, alerts, toasts, busy buttons.
 *
 * `el` never parses HTML: text always goes in as text nodes, so nothing a device, a contact or the
 * server sends can become markup (and no inline handler or style attribute is ever written, which the
 * pages' Content-Security-Policy would refuse).
 */

export const $ = (id) => document.getElementById(id);

/** Build an element: `attrs` may hold `class`, `text`, `on<event>` listeners, `dataset` and attributes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) {
    if (c == null) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function show(node, visible) { node.hidden = !visible; }

export function setAlert(node, message) {
  node.textContent = message || '';
  node.hidden = !message;
}

/** A `.result` line under a form: cleared, or an ok/error alert. */
export function setResult(node, kind, message) {
  node.className = kind ? `result alert alert-${kind}` : 'result';
  node.textContent = message || '';
}

export function toast(message, kind = 'info', ms = 4500) {
  const t = el('div', { class: `toast${kind === 'error' ? ' toast-error' : ''}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  $('toasts').append(t);
  setTimeout(() => t.remove(), ms);
}

/** Run `fn` with the button disabled and showing a spinner and `label`; the label comes back after. */
export async function withBusy(button, label, fn) {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.replaceChildren(el('span', { class: 'spinner', 'aria-hidden': 'true' }), ` ${label}`);
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = original;
  }
}

/** Save a Blob under `name` through a temporary link (no inline script, no navigation). */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
}
