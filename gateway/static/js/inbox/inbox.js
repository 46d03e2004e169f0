/* The Messages section of the console (`#/messages/<token>[/<chat>]`): the selected device's chats
 * and the open conversation, live. It shares the console's sign-in, socket and device selection;
 * switching devices closes the conversation and clears the reply. */

import { $, el } from '../dom.js';
import { titleOf } from '../devices.js';
import { syncHash } from '../route.js';
import { selectDevice } from '../selection.js';
import { on, state } from '../store.js';
import { loadChats, onOpenChat, renderChats, wireChatList } from './chat-list.js';
import { resetComposer, startReply, wireComposer } from './composer.js';
import { leaveChat, onReply, openChat, renderConversation, wireConversation } from './conversation.js';
import { handleInboxFrame } from './live.js';
import { box, resetDevice } from './model.js';

function visible() { return state.section === 'messages'; }

/** Open a chat and name it in the address. */
export function showChat(jid) {
  state.chat = jid || null;
  syncHash();
  resetComposer();
  if (jid) openChat(jid);
  else leaveChat();
}

/** The device the inbox shows: reloaded when it changes (or when asked to), only while the section is shown. */
async function follow(force = false) {
  if (!visible()) return;
  renderDevicePicker();
  if (state.selected === box.token && !force) return;
  const wanted = state.chat;
  resetDevice(state.selected);
  resetComposer();
  renderChats();
  renderConversation();
  if (!box.token) return;
  await loadChats();
  if (wanted && box.token === state.selected) showChat(wanted);
}

function renderDevicePicker() {
  const picker = $('inbox-device');
  const options = [...state.devices.values()].map((d) => el('option', { value: d.token }, titleOf(d) === d.token ? d.token : `${titleOf(d)} (${d.token})`));
  if (!options.length) options.push(el('option', { value: '' }, 'No devices yet'));
  picker.replaceChildren(...options);
  picker.value = state.selected || '';
}

export function wireInbox() {
  wireChatList();
  wireConversation();
  wireComposer();
  onOpenChat(showChat);
  onReply(startReply);
  $('inbox-device').addEventListener('change', (e) => { if (e.target.value) selectDevice(e.target.value); });
  on('section', () => follow());
  on('select', (token, previous) => {
    if (token !== previous && state.chat) {
      state.chat = null;   // the chat was the previous device's
      syncHash();
    }
    follow();
  });
  on('devices', () => { if (visible()) renderDevicePicker(); });
  on('resumed', () => follow(true));
  on('frame', handleInboxFrame);
}
