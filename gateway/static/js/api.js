/* The gateway's REST API: one `api()` call that speaks the JSON envelope, and the credentials it sends.
 *
 * The admin or account API key is kept in this tab's sessionStorage (never localStorage); after an
 * account login the HttpOnly `gw_session` cookie authenticates instead and the page only remembers
 * that it signed in.
 */

const KEY_STORAGE = 'wa-gateway.apiKey';
const SESSION_STORAGE = 'wa-gateway.session';   // "1" after an account login (cookie auth)

export const credentials = { key: null, session: false };

let unauthorizedHandler = () => {};

/** Who to tell when a call answers 401 (the sign-in screen). */
export function onUnauthorized(fn) { unauthorizedHandler = fn; }

export function loadCredentials() {
  credentials.key = sessionStorage.getItem(KEY_STORAGE);
  credentials.session = sessionStorage.getItem(SESSION_STORAGE) === '1';
}

export function rememberKey(key) {
  credentials.key = key;
  credentials.session = false;
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function rememberSession() {
  credentials.key = null;
  credentials.session = true;
  sessionStorage.setItem(SESSION_STORAGE, '1');
}

export function clearCredentials() {
  credentials.key = null;
  credentials.session = false;
  sessionStorage.removeItem(KEY_STORAGE);
  sessionStorage.removeItem(SESSION_STORAGE);
}

export class ApiError extends Error {
  constructor(code, status, message) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

export const FRIENDLY = {
  UNAUTHORIZED: 'The gateway rejected this API key (401 Unauthorized).',
  FORBIDDEN: 'This account is not allowed to do that.',
  RATE_LIMITED: 'Too many requests. Wait a moment and try again.',
  INVALID_PHONE: 'That is not a valid phone number. Use international digits, e.g. 60123456789.',
  INVALID_MESSAGE: 'The message is empty or too long.',
  MISSING_TOKEN: 'Enter the device phone number.',
  DEVICE_NOT_FOUND: 'No such device (it may have been deleted).',
  DEVICE_NOT_CONNECTED: 'This device is not connected yet. Finish pairing first.',
  DEVICE_TAKEN: 'That number is already a device of another account.',
  CONNECTION_FAILED: 'WhatsApp could not be reached.',
  SEND_FAILED: 'WhatsApp did not accept the message.',
  INVALID_MEDIA: 'The gateway cannot send this file.',
  MEDIA_TOO_LARGE: 'The file is larger than the gateway accepts (MEDIA_MAX_BYTES).',
  MEDIA_FETCH_FAILED: 'The media could not be fetched.',
  NETWORK: 'Could not reach the gateway. Is it running?',
};

/** One sentence for a person: the friendly meaning of the code, plus the server's detail. */
export function describe(err) {
  if (!(err instanceof ApiError)) return String((err && err.message) || err);
  const friendly = FRIENDLY[err.code];
  if (friendly && err.message && err.message !== friendly && err.code !== 'UNAUTHORIZED' && err.code !== 'NETWORK') {
    return `${friendly} (${err.message})`;
  }
  return friendly || `${err.message || 'Request failed'} (${err.code})`;
}

function authHeaders() {
  return credentials.key ? { Authorization: `Bearer ${credentials.key}` } : {};
}

/** Path segment for a device token (or any id). */
export const seg = (value) => encodeURIComponent(value);

/**
 * Call the gateway; resolves to the envelope's `data`, rejects with ApiError. A `FormData` body goes
 * as multipart/form-data (the browser writes the boundary), anything else as JSON.
 * `opts.raw` resolves to the Response itself (downloads); `opts.quiet401` does not sign the page out.
 */
export async function api(method, path, body, opts = {}) {
  const headers = { Accept: 'application/json', ...authHeaders(), ...(opts.headers || {}) };
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined || form ? body : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError('NETWORK', 0, FRIENDLY.NETWORK);
  }
  if (opts.raw && res.ok) return res;
  let env = null;
  try { env = await res.json(); } catch (e) { env = null; }
  if (!res.ok || !env || env.success === false) {
    const code = (env && env.error && env.error.code) || `HTTP_${res.status}`;
    let message = (env && env.error && env.error.message) || res.statusText || 'Request failed';
    if (res.status === 429) {
      const after = res.headers.get('Retry-After');
      if (after) message = `${message} Retry in ${after} s.`;
    }
    const err = new ApiError(code, res.status, message);
    if (res.status === 401 && !opts.quiet401) unauthorizedHandler();
    throw err;
  }
  return env.data;
}
