/* The page's shared state and a tiny event bus between the modules.
 *
 * Modules never call each other's renderers: they change the state here and `emit` what changed
 * ("device", "devices", "select", "whoami", "feed"); whoever draws that part listens with `on`.
 * That keeps each module about one concept and the import graph free of cycles.
 */

export const state = {
  section: 'devices',     // 'devices' | 'messages' | 'webhooks' (Campaigns comes with its feature)
  tab: 'overview',        // the device panel shown: 'overview' | 'contacts' | 'settings'
  sandbox: false,
  isAdmin: null,          // from the socket's whoami; null until known
  username: null,
  devices: new Map(),     // token -> merged summary + state
  selected: null,
  chat: null,             // the chat open in Messages (its JID), or null
  qr: new Map(),          // token -> {code, receivedAt, expiresAt, interval, fromRest}
  qrInterval: new Map(),  // token -> observed rotation interval (ms)
  codes: new Map(),       // token -> pairing code
  connErrors: new Map(),  // token -> last connection-error message
};

const listeners = new Map();

export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, []);
  listeners.get(event).push(fn);
}

export function emit(event, ...args) {
  for (const fn of listeners.get(event) || []) fn(...args);
}
