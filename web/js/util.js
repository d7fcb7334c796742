// DOM and formatting helpers shared by every view.
// Invariant: user text reaches the page only through textContent (el()'s string
// children and `text`). The one HTML insertion is the server-sanitized
// message.html, in views/messages.js.

/**
 * el('span.a.b', props?, ...children). Props: text, dataset, value, checked,
 * on* listeners, anything else as an attribute (true → "", null/false → absent).
 * A string, node or array in place of props is a child.
 */
export function el(tag, props, ...kids) {
  const [name, ...cls] = tag.split('.');
  const e = document.createElement(name);
  if (cls.length) e.className = cls.join(' ');
  if (props == null || typeof props !== 'object' || props instanceof Node || Array.isArray(props)) kids.unshift(props);
  else {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'value' || k === 'checked') e[k] = v;
      else if (typeof v === 'function') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : v);
    }
  }
  add(e, kids);
  return e;
}

/** Replaces parent's children, skipping null/false like el() does. */
export const fill = (parent, ...kids) => (parent.replaceChildren(), add(parent, kids), parent);

function add(parent, kids) {
  for (const c of kids) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) add(parent, c);
    else parent.append(c instanceof Node ? c : String(c));
  }
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
  leave: 'M14 3h5a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2h-5M9 17l-5-5 5-5M4 12h12',
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
  chat: 'M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z',
  check: 'M20 6 9 17l-5-5',
  upload: 'M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4M17 8l-5-5-5 5M12 3v12',
};

const NS = 'http://www.w3.org/2000/svg';

/** An inline SVG icon, hidden from assistive technology (name the button instead). */
export function icon(name, cls = 'icon') {
  const svg = document.createElementNS(NS, 'svg');
  const p = document.createElementNS(NS, 'path');
  for (const [k, v] of [['viewBox', '0 0 24 24'], ['class', cls], ['aria-hidden', 'true'], ['focusable', 'false']]) svg.setAttribute(k, v);
  p.setAttribute('d', ICONS[name] || ICONS.x);
  svg.append(p);
  return svg;
}

/** The icon for a room: DM, locked (private or password) or public. */
export const roomIcon = (r, cls) => icon(r?.kind === 'dm' ? 'chat' : r && (r.kind === 'private' || r.has_password) ? 'lock' : 'hash', cls);

/** Replaces every `<i data-icon="name">` under root with its SVG. */
export function hydrateIcons(root) {
  for (const i of root.querySelectorAll('i[data-icon]')) i.replaceWith(icon(i.dataset.icon));
}

/** A button showing only an icon; `label` is its accessible name and tooltip. */
export const iconButton = (name, label, onclick, cls = 'icon-btn') =>
  el(`button.${cls.replace(/ /g, '.')}`, { type: 'button', 'aria-label': label, title: label, onclick }, icon(name));

export const displayName = (u) => (u && (u.display_name || u.username)) || 'Unknown';

const fmt = (o) => new Intl.DateTimeFormat(undefined, o);
const timeFmt = fmt({ hour: '2-digit', minute: '2-digit' });
const fullFmt = fmt({ dateStyle: 'full', timeStyle: 'medium' });
const dayFmt = fmt({ weekday: 'long', month: 'long', day: 'numeric' });
const yearFmt = fmt({ year: 'numeric', month: 'long', day: 'numeric' });
const valid = (iso) => {
  const d = new Date(iso);
  return isNaN(d) ? null : d;
};
export const formatTime = (iso) => (valid(iso) ? timeFmt.format(valid(iso)) : '');
export const formatFull = (iso) => (valid(iso) ? fullFmt.format(valid(iso)) : '');
export const dayKey = (iso) => new Date(iso).toDateString();

export function dayLabel(iso) {
  const d = new Date(iso);
  const y = new Date();
  y.setDate(y.getDate() - 1);
  if (d.toDateString() === new Date().toDateString()) return 'Today';
  if (d.toDateString() === y.toDateString()) return 'Yesterday';
  return (d.getFullYear() === y.getFullYear() ? dayFmt : yearFmt).format(d);
}

/** "4m 12s", "2h 5m", "3d 4h" for a duration in ms. */
export function formatCountdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const [d, h, m, sec] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60), s % 60];
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${sec}s` : `${sec}s`;
}

/** "just now", "5 minutes ago", … */
export function timeAgo(iso) {
  const s = (Date.now() - new Date(iso)) / 1000;
  if (!(s >= 60)) return 'just now';
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
  return s < 3600 ? rtf.format(-Math.floor(s / 60), 'minute') : s < 86400 ? rtf.format(-Math.floor(s / 3600), 'hour') : rtf.format(-Math.floor(s / 86400), 'day');
}

/** A random UUID, also outside secure contexts (plain http on a LAN address). */
export function uuid() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const h = [...crypto.getRandomValues(new Uint8Array(16))].map((x, i) => (i === 6 ? (x & 15) | 64 : i === 8 ? (x & 63) | 128 : x).toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Copies text; falls back to execCommand where the Clipboard API is unavailable. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = el('textarea.sr-only', { 'aria-hidden': 'true', value: text });
    document.body.append(ta);
    ta.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {}
    ta.remove();
    return ok;
  }
}

export const readAsDataURL = (file) =>
  new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });

/** Initials for a local preview ("Ada Lovelace" → "AL"). */
export function initials(name) {
  const p = String(name || '').trim().split(/[\s._-]+/).filter(Boolean);
  return p.length ? ([...p[0]][0] + (p.length > 1 ? [...p[p.length - 1]][0] : '')).toUpperCase() : '';
}

/** A stable hue for a string (local avatar previews). */
export const hueOf = (s) => [...String(s || '').toLowerCase()].reduce((h, c) => (h * 31 + c.codePointAt(0)) >>> 0, 0) % 360;

/** datetime-local value (local time) → RFC 3339 UTC, or null. */
export function localToRfc3339(v) {
  const d = v ? new Date(v) : null;
  return d && !isNaN(d) ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : null;
}

/** Plain text of a Markdown body for one-line snippets. */
export const snippet = (body, n = 120) => String(body || '').replace(/[*_~`>#]+/g, '').replace(/\s+/g, ' ').trim().slice(0, n);

export const MAX_AVATAR_BYTES = 5 * 1024 * 1024;
