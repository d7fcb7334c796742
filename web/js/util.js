// DOM and formatting helpers. User text reaches the page only through textContent;
// the only HTML inserted is server-sanitized (message.html, search snippets).
/**
 * el('span.a.b', props?, ...children). Props: text, dataset, value, checked, on*
 * listeners, anything else an attribute (true → "", null/false → absent). A string,
 * node or array in place of props is a child. Buttons are type="button".
 */
export function el(tag, props, ...kids) {
	const [name, ...cls] = tag.split('.');
	const e = document.createElement(name);
	if (name === 'button') e.type = 'button';
	if (cls.length) e.className = cls.join(' ');
	if (props == null || typeof props !== 'object' || props instanceof Node || Array.isArray(props)) kids.unshift(props);
	else
		for (const [k, v] of Object.entries(props)) {
			if (v == null || v === false) continue;
			if (k === 'text') e.textContent = v;
			else if (k === 'dataset') Object.assign(e.dataset, v);
			else if (k === 'value' || k === 'checked') e[k] = v;
			else if (typeof v === 'function') e.addEventListener(k.slice(2), v);
			else e.setAttribute(k, v === true ? '' : v);
		}
	add(e, kids);
	return e;
}
export const fill = (parent, ...kids) => (parent.replaceChildren(), add(parent, kids), parent);
function add(parent, kids) {
	for (const c of kids) if (c != null && c !== false) Array.isArray(c) ? add(parent, c) : parent.append(c instanceof Node ? c : String(c));
}
const ICONS = {
	menu: 'M4 6h16M4 12h16M4 18h16',
	plus: 'M12 5v14M5 12h14',
	hash: 'M5 9h14M4 15h14M10 3 8 21M16 3l-2 18',
	search: 'M18 11a7 7 0 1 1-14 0a7 7 0 1 1 14 0M20.5 20.5 16 16',
	user: 'M20 21v-1.5a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4V21M16 7a4 4 0 1 1-8 0a4 4 0 1 1 8 0',
	sun: 'M16 12a4 4 0 1 1-8 0a4 4 0 1 1 8 0M12 2v3M12 19v3M2 12h3M19 12h3M5 5l2 2M17 17l2 2M5 19l2-2M17 7l2-2',
	moon: 'M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z',
	logout: 'M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9',
	reply: 'M9 17l-5-5 5-5M20 18v-2a4 4 0 0 0-4-4H4',
	edit: 'M12 20h9M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4z',
	trash: 'M3 6h18M8 6V3h8v3M19 6l-1 15H6L5 6',
	copy: 'M9 9h11v11H9zM5 15H4V4h11v1',
	smile: 'M22 12a10 10 0 1 1-20 0a10 10 0 1 1 20 0M8 14s1.5 2 4 2 4-2 4-2M9 9h.01M15 9h.01',
	link: 'M10 13a5 5 0 0 0 7.5.5l3-3a5 5 0 0 0-7-7l-1.7 1.7M14 11a5 5 0 0 0-7.5-.5l-3 3a5 5 0 0 0 7 7l1.7-1.7',
	'user-plus': 'M16 21v-1.5a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4V21M12.5 7.5a4 4 0 1 1-8 0a4 4 0 1 1 8 0M20 8v6M23 11h-6',
	send: 'M22 2 11 13M22 2l-7 20-4-9-9-4z',
	x: 'M18 6 6 18M6 6l12 12',
	'arrow-down': 'M12 5v14M19 12l-7 7-7-7',
	lock: 'M5 11h14v10H5zM8 11V7a4 4 0 0 1 8 0v4',
	clock: 'M22 12a10 10 0 1 1-20 0a10 10 0 1 1 20 0M12 7v5l3 2',
	chat: 'M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z',
	check: 'M20 6 9 17l-5-5',
	upload: 'M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4M17 8l-5-5-5 5M12 3v12',
	pin: 'M12 17v5M8 3h8M9 3v7l-3 4v3h12v-3l-3-4V3',
	bell: 'M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9M10.3 21a1.9 1.9 0 0 0 3.4 0',
	clip: 'M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l8.6-8.6a4 4 0 1 1 5.7 5.7l-8.6 8.6a2 2 0 0 1-2.8-2.8l8.5-8.5',
	file: 'M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zM14 2v6h6',
	play: 'M7 4v16l13-8z',
	compass: 'M22 12a10 10 0 1 1-20 0a10 10 0 1 1 20 0M16 8l-2 6-6 2 2-6z',
};
const NS = 'http://www.w3.org/2000/svg';
export function icon(name, cls = 'icon') {
	const svg = document.createElementNS(NS, 'svg');
	const p = document.createElementNS(NS, 'path');
	for (const [k, v] of [['viewBox', '0 0 24 24'], ['class', cls], ['aria-hidden', 'true'], ['focusable', 'false']]) svg.setAttribute(k, v);
	p.setAttribute('d', ICONS[name] || ICONS.x);
	svg.append(p);
	return svg;
}
export const roomIcon = (r, cls) => icon(r?.kind === 'dm' ? 'chat' : r && (r.kind === 'private' || r.has_password) ? 'lock' : 'hash', cls);
export function hydrateIcons(root) {
	for (const i of root.querySelectorAll('i[data-icon]')) i.replaceWith(icon(i.dataset.icon));
	for (const b of root.querySelectorAll('.icon-btn[aria-label]:not([title])')) b.title = b.getAttribute('aria-label');
}
export const iconButton = (name, label, onclick, cls = 'icon-btn') => el(`button.${cls.replace(/ /g, '.')}`, {'aria-label': label, title: label, onclick}, icon(name));
export const displayName = u => (u && (u.display_name || u.username)) || 'Unknown';
const fmt = o => new Intl.DateTimeFormat(undefined, o);
const timeFmt = fmt({hour: '2-digit', minute: '2-digit'});
const fullFmt = fmt({dateStyle: 'full', timeStyle: 'medium'});
const dayFmt = fmt({weekday: 'long', month: 'long', day: 'numeric'});
const yearFmt = fmt({year: 'numeric', month: 'long', day: 'numeric'});
const date = (iso, f) => (isNaN(new Date(iso)) ? '' : f.format(new Date(iso)));
export const formatTime = iso => date(iso, timeFmt);
export const formatFull = iso => date(iso, fullFmt);
export const dayKey = iso => new Date(iso).toDateString();
export function dayLabel(iso) {
	const d = new Date(iso);
	const y = new Date();
	y.setDate(y.getDate() - 1);
	if (d.toDateString() === new Date().toDateString()) return 'Today';
	if (d.toDateString() === y.toDateString()) return 'Yesterday';
	return (d.getFullYear() === y.getFullYear() ? dayFmt : yearFmt).format(d);
}
export function formatCountdown(ms) {
	const s = Math.max(0, Math.ceil(ms / 1000));
	const [d, h, m, sec] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60), s % 60];
	return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${sec}s` : `${sec}s`;
}
export function timeAgo(iso) {
	const s = (Date.now() - new Date(iso)) / 1000;
	if (!(s >= 60)) return 'just now';
	const [n, unit] = s < 3600 ? [s / 60, 'minute'] : s < 86400 ? [s / 3600, 'hour'] : [s / 86400, 'day'];
	return new Intl.RelativeTimeFormat(undefined, {numeric: 'auto'}).format(-Math.floor(n), unit);
}
export const fmtSize = n => (n < 1024 ? `${n} B` : n < 1048576 ? `${Math.ceil(n / 1024)} KB` : `${(n / 1048576).toFixed(1)} MB`);
export const isMod = (room, me) => ['owner', 'admin', 'moderator'].includes(room?.role) || !!me?.is_admin;
export const youtubeIds = text => [...new Set([...String(text || '').matchAll(/https?:\/\/(?:www\.|m\.)?(?:youtube\.com\/watch\?(?:[^\s#]*&)?v=|youtu\.be\/)([\w-]{11})(?![\w-])/g)].map(m => m[1]))].slice(0, 3);
let popClose = null;
export function popover(anchor, node, onClose) {
	const again = anchor.getAttribute('aria-expanded') === 'true';
	popClose?.();
	if (again) return () => {};
	node.classList.add('popover');
	document.body.append(node);
	const r = anchor.getBoundingClientRect();
	const {offsetWidth: w, offsetHeight: h} = node;
	node.style.left = `${Math.max(8, Math.min(r.right - w, innerWidth - w - 8))}px`;
	node.style.top = `${Math.max(8, r.top - h - 6 > 8 ? r.top - h - 6 : Math.min(r.bottom + 6, innerHeight - h - 8))}px`;
	anchor.setAttribute('aria-expanded', 'true');
	const away = e => !node.contains(e.target) && !anchor.contains(e.target) && close();
	const key = e => {
		if (e.key === 'Escape') return e.stopPropagation(), e.preventDefault(), close(true);
		const items = [...node.querySelectorAll('[role^=menuitem]')];
		const step = {ArrowDown: 1, ArrowUp: -1}[e.key];
		if (items.length && step) e.preventDefault(), items[(items.indexOf(document.activeElement) + step + items.length) % items.length].focus();
	};
	const listen = f => ['pointerdown', 'keydown'].forEach((t, i) => f(t, [away, key][i], true));
	const close = refocus => {
		if (popClose !== close) return;
		popClose = null;
		node.remove();
		anchor.setAttribute('aria-expanded', 'false');
		listen(removeEventListener);
		if (refocus === true && anchor.isConnected) anchor.focus();
		onClose?.();
	};
	listen(addEventListener);
	return (popClose = close);
}
export function toast(message, kind = 'info') {
	const t = el(`div.toast.toast-${kind}`, icon(kind === 'error' ? 'x' : 'check'), el('span', message));
	document.getElementById('toasts')?.append(t);
	setTimeout(() => (t.classList.add('leaving'), setTimeout(() => t.remove(), 300)), 4000);
}
export function uuid() {
	if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
	const h = [...crypto.getRandomValues(new Uint8Array(16))].map((x, i) => (i === 6 ? (x & 15) | 64 : i === 8 ? (x & 63) | 128 : x).toString(16).padStart(2, '0')).join('');
	return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
export async function copyText(text) {
	try {
		await navigator.clipboard.writeText(text);
		return true;
	} catch {
		const ta = el('textarea.sr-only', {'aria-hidden': 'true', value: text});
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
export const readAsDataURL = file =>
	new Promise((resolve, reject) => {
		const r = new FileReader();
		r.onload = () => resolve(r.result);
		r.onerror = () => reject(r.error);
		r.readAsDataURL(file);
	});
export function initials(name) {
	const p = String(name || '').trim().split(/[\s._-]+/).filter(Boolean);
	return p.length ? ([...p[0]][0] + (p.length > 1 ? [...p.at(-1)][0] : '')).toUpperCase() : '';
}
export const hueOf = s => [...String(s || '').toLowerCase()].reduce((h, c) => (h * 31 + c.codePointAt(0)) >>> 0, 0) % 360;
export const localToRfc3339 = v => (v && !isNaN(new Date(v)) ? new Date(v).toISOString().replace(/\.\d{3}Z$/, 'Z') : null);
export const snippet = (body, n = 120) => String(body || '').replace(/[*_~`>#]+/g, '').replace(/\s+/g, ' ').trim().slice(0, n);
export const MAX_AVATAR_BYTES = 5 * 1024 * 1024;
