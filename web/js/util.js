// Small DOM and formatting helpers shared by every view.
//
// Invariant: text from users only ever reaches the page through `textContent`
// (el()'s string children and `text` prop). The one place HTML is inserted is the
// server-sanitized `message.html`, in views/messages.js.

/** Creates an element. Props: class, text, dataset, on* listeners, attributes. */
export function el(tag, props, ...children) {
  const e = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'value') e.value = v;
      else if (k === 'checked') e.checked = !!v;
      else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(e, children);
  return e;
}

function append(parent, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces all children of `parent`. */
export function setChildren(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

// Stroke icons on a 24×24 grid (our own simple geometry).
const ICONS = {
  menu: 'M4 6h16M4 12h16M4 18h16',
  plus: 'M12 5v14M5 12h14',
  hash: 'M5 9h14M4 15h14M10 3 8 21M16 3l-2 18',
  search: 'M18 11a7 7 0 1 1-14 0a7 7 0 1 1 14 0M20.5 20.5 16 16',
  user: 'M20 21v-1.5a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4V21M16 7a4 4 0 1 1-8 0a4 4 0 1 1 8 0',
  users: 'M17 21v-1.5a4 4 0 0 0-4-4H6a4 4 0 0 0-4 4V21M13.5 7.5a4 4 0 1 1-8 0a4 4 0 1 1 8 0M22 21v-1.5a4 4 0 0 0-3-3.9M16 3.6a4 4 0 0 1 0 7.8',
  sun: 'M16 12a4 4 0 1 1-8 0a4 4 0 1 1 8 0M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M6.3 17.7l-1.4 1.4M19.1 4.9l-1.4 1.4',
  moon: 'M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z',
  logout: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9',
  reply: 'M9 17l-5-5 5-5M20 18v-2a4 4 0 0 0-4-4H4',
  edit: 'M12 20h9M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z',
  trash: 'M3 6h18M8 6V4a2 2 0 0 1 2-2h4a2 2 0 0 1 2 2v2M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6M10 11v6M14 11v6',
  copy: 'M10 9h9a1 1 0 0 1 1 1v9a1 1 0 0 1-1 1h-9a1 1 0 0 1-1-1v-9a1 1 0 0 1 1-1zM5 15H4a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1h9a1 1 0 0 1 1 1v1',
  smile: 'M22 12a10 10 0 1 1-20 0a10 10 0 1 1 20 0M8 14s1.5 2 4 2 4-2 4-2M9 9h.01M15 9h.01',
  link: 'M10 13a5 5 0 0 0 7.5.5l3-3a5 5 0 0 0-7-7l-1.7 1.7M14 11a5 5 0 0 0-7.5-.5l-3 3a5 5 0 0 0 7 7l1.7-1.7',
  'user-plus': 'M16 21v-1.5a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4V21M12.5 7.5a4 4 0 1 1-8 0a4 4 0 1 1 8 0M20 8v6M23 11h-6',
  send: 'M22 2 11 13M22 2l-7 20-4-9-9-4z',
  x: 'M18 6 6 18M6 6l12 12',
  'arrow-down': 'M12 5v14M19 12l-7 7-7-7',
  lock: 'M6 11h12a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1v-8a1 1 0 0 1 1-1zM8 11V7a4 4 0 0 1 8 0v4',
  clock: 'M22 12a10 10 0 1 1-20 0a10 10 0 1 1 20 0M12 7v5l3 2',
  bell: 'M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9M13.7 21a2 2 0 0 1-3.4 0',
  chat: 'M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z',
  globe: 'M22 12a10 10 0 1 1-20 0a10 10 0 1 1 20 0M2 12h20M12 2a15 15 0 0 1 0 20a15 15 0 0 1 0-20',
  check: 'M20 6 9 17l-5-5',
  upload: 'M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4M17 8l-5-5-5 5M12 3v12',
  door: 'M13 4h5a1 1 0 0 1 1 1v15M3 20h18M13 4v16l-7-1V5zM10 12h.01',
};

const SVG = 'http://www.w3.org/2000/svg';

/** An inline SVG icon, hidden from assistive technology (name the button instead). */
export function icon(name, cls = 'icon') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const p = document.createElementNS(SVG, 'path');
  p.setAttribute('d', ICONS[name] || ICONS.x);
  svg.appendChild(p);
  return svg;
}

/** Replaces every `<i data-icon="name">` under root with its SVG. */
export function hydrateIcons(root) {
  for (const i of root.querySelectorAll('i[data-icon]')) i.replaceWith(icon(i.dataset.icon));
}

/** A button showing only an icon; its accessible name is `label` (also the tooltip). */
export function iconButton(name, label, onclick, cls = 'icon-btn') {
  return el('button', { type: 'button', class: cls, 'aria-label': label, title: label, onclick }, icon(name));
}

export function displayName(user) {
  if (!user) return 'Unknown';
  return user.display_name || user.username || 'Unknown';
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'medium' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'long', day: 'numeric' });

export function formatTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : timeFmt.format(d);
}

export function formatFull(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : fullFmt.format(d);
}

export function dayKey(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

export function dayLabel(iso) {
  const d = new Date(iso);
  const today = new Date();
  const y = new Date();
  y.setDate(today.getDate() - 1);
  if (dayKey(d) === dayKey(today)) return 'Today';
  if (dayKey(d) === dayKey(y)) return 'Yesterday';
  return d.getFullYear() === today.getFullYear() ? dayFmt.format(d) : dayYearFmt.format(d);
}

/** "4m 12s", "2h 5m", "3d 4h" for a positive duration in ms. */
export function formatCountdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** "just now", "5 minutes ago", … for a past timestamp. */
export function timeAgo(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < 60) return 'just now';
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  if (s < 3600) return rtf.format(-Math.floor(s / 60), 'minute');
  if (s < 86400) return rtf.format(-Math.floor(s / 3600), 'hour');
  return rtf.format(-Math.floor(s / 86400), 'day');
}

/** A random UUID, also outside secure contexts (plain http on a LAN address). */
export function uuid() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Copies text to the clipboard; falls back to execCommand outside secure contexts. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = el('textarea', { class: 'sr-only', 'aria-hidden': 'true' });
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    ta.remove();
    return ok;
  }
}

/** Reads a File as a data: URL. */
export function readAsDataURL(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

/** Initials for a name ("Ada Lovelace" → "AL", "bob" → "B"). */
export function initials(name) {
  const parts = String(name || '').trim().split(/[\s._-]+/).filter(Boolean);
  if (!parts.length) return '?';
  const a = [...parts[0]][0] || '';
  const b = parts.length > 1 ? [...parts[parts.length - 1]][0] || '' : '';
  return (a + b).toUpperCase();
}

/** A stable hue for a string (for local previews before the server has an avatar). */
export function hueOf(s) {
  let h = 0;
  for (const ch of String(s || '').toLowerCase()) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 360;
}

/** "datetime-local" value (local time) → RFC 3339 UTC, or null when empty. */
export function localInputToRfc3339(v) {
  if (!v) return null;
  const d = new Date(v);
  return isNaN(d) ? null : d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Debounce: calls fn once `ms` after the last call. */
export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

export const MAX_AVATAR_BYTES = 5 * 1024 * 1024;
