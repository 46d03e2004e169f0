/* Formatting for people: times, durations, counts, phone numbers and JIDs, download names. */

export function fmtTime(value) {
  const d = value ? new Date(value) : new Date();
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function fmtDate(value) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

export function fmtDuration(seconds) {
  if (seconds == null || Number.isNaN(+seconds)) return '—';
  let s = Math.max(0, Math.floor(+seconds));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

/** "1 contact", "3 contacts". */
export function plural(n, word, many = `${word}s`) {
  return `${n} ${n === 1 ? word : many}`;
}

/** The phone digits of a JID (`60123@s.whatsapp.net`, `60123:12@s.whatsapp.net`) or of a phone. */
export function phoneOf(jidOrPhone) {
  if (!jidOrPhone) return '';
  const user = String(jidOrPhone).split('@')[0].split(':')[0];
  return /^\+?\d+$/.test(user) ? user.replace(/^\+/, '') : '';
}

/** A phone as people write it in international form: "+60198765432". */
export function fmtPhone(jidOrPhone) {
  const digits = phoneOf(jidOrPhone);
  if (digits) return `+${digits}`;
  return String(jidOrPhone || '');
}

export function truncate(text, max = 80) {
  const s = String(text ?? '');
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** The file name a `Content-Disposition` header suggests, or null. */
export function filenameFrom(disposition) {
  if (!disposition) return null;
  const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(disposition);
  if (star) { try { return decodeURIComponent(star[1].trim().replace(/^"|"$/g, '')); } catch (e) { /* fall through */ } }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1].trim() : null;
}

/** A byte count for people: "812 B", "2.1 KB", "14.3 MB" (1 KB = 1024 B). */
export function fmtBytes(n) {
  if (n == null || Number.isNaN(+n)) return '';
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = Math.max(0, +n);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
