// Emoji picker and :shortcode: lookup over GET /emoji (fetched once).
import {api} from '../api.js';
import {el, popover} from '../util.js';
export const QUICK = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '🙏'];
let data = null;
export const emojiData = () => (data ??= api.emoji().catch(e => ((data = null), Promise.reject(e))));
export function searchEmoji(list, q, n) {
	q = q.toLowerCase();
	const rank = x => (x.s.includes(q) ? 0 : x.s.some(s => s.startsWith(q)) ? 1 : x.n.startsWith(q) ? 2 : x.s.some(s => s.includes(q)) || x.n.includes(q) ? 3 : 9);
	return list.map(x => [rank(x), x]).filter(r => r[0] < 9).sort((a, b) => a[0] - b[0] || a[1].e.codePointAt(0) - b[1].e.codePointAt(0)).slice(0, n).map(r => r[1]);
}
export function openPicker(anchor, onPick, onClose) {
	const search = el('input', {type: 'search', placeholder: 'Search emoji', 'aria-label': 'Search emoji', autocomplete: 'off'});
	const scroll = el('div.emoji-scroll');
	const node = el('div.emoji-picker', {role: 'dialog', 'aria-label': 'Emoji picker'}, search, scroll);
	const btn = (e, label, title) => el('button.emoji', {'aria-label': label, title, onclick: () => (close(true), onPick(e))}, e);
	const section = (title, kids) => el('section', el('h3', title), el('div.emoji-grid', kids));
	const quick = section('Quick reactions', QUICK.map(e => btn(e, `React with ${e}`)));
	let list = [];
	let groups = [el('p.muted.emoji-note', 'Loading emoji…')];
	const show = () => {
		const q = search.value.trim().replace(/^:|:$/g, '');
		if (!q) return scroll.replaceChildren(quick, ...groups);
		const found = searchEmoji(list, q, 96);
		scroll.replaceChildren(found.length ? section('Results', found.map(x => btn(x.e, x.n, `:${x.s[0] || x.n}:`))) : el('p.muted.emoji-note', 'No emoji found'));
		scroll.scrollTop = 0;
	};
	emojiData().then(
		all => {
			list = all;
			const by = new Map();
			for (const x of all) by.has(x.g) ? by.get(x.g).push(x) : by.set(x.g, [x]);
			groups = [...by].map(([g, xs]) => section(g.replace(/And/g, ' & ').replace(/([a-z])([A-Z])/g, '$1 $2'), xs.map(x => btn(x.e, x.n, `:${x.s[0] || x.n}:`))));
			show();
		},
		() => ((groups = [el('p.muted.emoji-note', 'Could not load emoji.')]), show()),
	);
	search.addEventListener('input', show);
	search.addEventListener('keydown', e => {
		const first = scroll.querySelector('.emoji');
		if (e.key === 'ArrowDown' || (e.key === 'Enter' && search.value.trim())) e.preventDefault(), e.key === 'Enter' ? first?.click() : first?.focus();
	});
	scroll.addEventListener('keydown', e => {
		const all = [...scroll.querySelectorAll('.emoji')];
		const i = all.indexOf(document.activeElement);
		const step = {ArrowRight: 1, ArrowLeft: -1, ArrowDown: 8, ArrowUp: -8}[e.key];
		if (i < 0 || !step) return;
		e.preventDefault();
		if (i + step < 0) return search.focus();
		all[Math.min(all.length - 1, i + step)].focus();
	});
	show();
	const close = popover(anchor, node, onClose);
	search.focus();
}
