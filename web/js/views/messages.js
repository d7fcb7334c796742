// The message list (role="log"), reconciled by key; keeps the reader's place.
// The thread panel builds messages here too.
import {api} from '../api.js';
import {dayKey, dayLabel, displayName, el, fmtSize, formatFull, formatTime, icon, iconButton, isMod, snippet, youtubeIds} from '../util.js';
import {lightbox} from './dialogs.js';
import {openPicker} from './emoji.js';
export const replies = n => `${n} repl${n === 1 ? 'y' : 'ies'}`;
export function reconcile(box, nodes, items, build, swap) {
	const seen = new Set();
	let cursor = box.firstChild;
	for (const item of items) {
		let entry = nodes.get(item.key);
		if (entry?.ver !== item.ver) {
			const node = build(item);
			if (entry?.node.parentNode === box) {
				if (cursor === entry.node) cursor = node;
				swap?.(entry.node, node);
				entry.node.replaceWith(node);
			}
			nodes.set(item.key, (entry = {node, ver: item.ver}));
		}
		seen.add(item.key);
		if (entry.node === cursor) cursor = cursor.nextSibling;
		else box.insertBefore(entry.node, cursor);
	}
	for (const [k, e] of nodes) if (!seen.has(k)) e.node.remove(), nodes.delete(k);
}
export function flash(node) {
	node.classList.remove('flash');
	void node.offsetWidth;
	node.classList.add('flash');
}
export class MessagesView {
	constructor(log, jump, store, actions) {
		Object.assign(this, {log, jump, store, actions, roomId: null, nodes: new Map(), stick: true, editing: null, draft: '', lastKey: null, marker: null, who: new Map()});
		log.addEventListener('scroll', () => this.onScroll(), {passive: true});
		log.addEventListener('load', () => this.stick && this.toBottom(), true);
		new ResizeObserver(() => this.stick && this.toBottom()).observe(log);
		jump.addEventListener('click', () => (this.t().hasNewer ? actions.present(this.roomId) : this.toBottom(true)));
	}
	t = () => this.store.timeline(this.roomId);
	setRoom(roomId) {
		const room = this.store.room(roomId);
		Object.assign(this, {roomId, stick: true, editing: null, lastKey: null, toMarker: true, marker: room?.unread_count > 0 && room.last_read_seq > 0 ? room.last_read_seq : null});
		this.nodes.clear();
		this.log.replaceChildren();
		this.render();
		this.toBottom();
	}
	toBottom(smooth) {
		this.log.scrollTo({top: this.log.scrollHeight, behavior: smooth ? 'smooth' : 'auto'});
		this.stick = this.jump.hidden = true;
	}
	onScroll() {
		const l = this.log;
		const t = this.roomId && this.t();
		const bottom = l.scrollHeight - l.scrollTop - l.clientHeight <= 48;
		this.stick = bottom && !t?.hasNewer;
		if (this.stick) (this.jump.hidden = true), this.actions.onBottom();
		if (bottom && t?.hasNewer) this.actions.loadNewer(this.roomId);
		this.maybeLoadOlder();
	}
	maybeLoadOlder() {
		const t = this.roomId && this.t();
		if (t?.loaded && t.hasOlder && !t.loadingOlder && (this.log.scrollTop < 240 || this.log.scrollHeight <= this.log.clientHeight)) this.actions.loadOlder(this.roomId);
	}
	msgItem(m, prev, fresh, thread) {
		const {store} = this;
		const at = m.created_at || new Date().toISOString();
		const mine = store.isMe(m.author);
		const mod = isMod(store.room(m.room_id), store.me);
		const author = store.resolveUser(m.author);
		const grouped = !fresh && prev && !m.reply_to && !m.deleted && !prev.deleted && !m.pinned && prev.author?.id === m.author?.id && new Date(at) - new Date(prev.created_at || at) < 3e5;
		const target = m.reply_to && store.findMessage(m.room_id, m.reply_to);
		const targetAuthor = store.resolveUser(target?.author);
		const key = mine && m.client_id ? `c:${m.client_id}` : m.id;
		const ver = [m.pos, m.pending && (this.actions.isConnected() ? 1 : 2), m.failed, grouped, author && displayName(author) + author.avatar_url, this.editing === key,
			JSON.stringify(m.reactions || []), target ? target.pos + displayName(targetAuthor) : m.reply_to, mod, m.deleted, m.edited_at, store.me?.id].join('§');
		return {key, kind: 'msg', ver, m, grouped, mine, mod, author, target, targetAuthor, thread};
	}
	items() {
		const {store} = this;
		const t = this.t();
		const room = store.room(this.roomId);
		const items = [{key: 'top', kind: 'top', ver: [t.loaded, t.hasOlder, !!t.loadingOlder, room?.topic, store.roomTitle(room)].join()}];
		let prev = null;
		let marked = this.marker == null;
		let seenAt = 0;
		let last = null;
		for (const m of store.messagesFor(this.roomId)) {
			if (m.thread_root) continue;
			const at = m.created_at || new Date().toISOString();
			let fresh = !prev || dayKey(prev.created_at || at) !== dayKey(at);
			if (fresh) items.push({key: `day-${dayKey(at)}`, kind: 'day', ver: dayLabel(at)});
			if (!marked && !m.pending && !store.isMe(m.author) && m.seq > this.marker) items.push({key: 'marker', kind: 'marker', ver: ''}), (marked = fresh = true);
			items.push(this.msgItem(m, prev, fresh));
			if (!m.pending) (seenAt = items.length), (last = m);
			prev = m;
		}
		const members = store.members.get(this.roomId);
		if (last && members && (room?.kind === 'dm' || room?.member_count <= 10)) {
			const who = [...members].filter(([id, e]) => id !== store.me?.id && id !== last.author?.id && e.last_read_seq >= last.seq).map(([id]) => store.user(id)).filter(Boolean);
			if (who.length) items.splice(seenAt, 0, {key: 'seen', kind: 'seen', ver: who.map(displayName).join(), who});
		}
		return items;
	}
	render() {
		if (!this.roomId) return;
		const {log, stick} = this;
		const t = this.t();
		// The first node in view keeps its place on screen.
		let anchor = !stick && [...log.children].find(c => c.offsetTop + c.offsetHeight > log.scrollTop);
		const offset = anchor ? anchor.offsetTop - log.scrollTop : 0;
		const items = this.items();
		reconcile(log, this.nodes, items, i => this.build(i), (a, b) => anchor === a && (anchor = b));
		const last = items.findLast(i => i.kind === 'msg');
		const grew = last && last.key !== this.lastKey;
		const own = grew && last.mine && last.m.pending;
		if ((grew && this.lastKey && !stick && !own) || t.hasNewer) this.jump.hidden = false;
		this.jump.lastChild.textContent = t.hasNewer ? 'Jump to present' : 'New messages';
		this.lastKey = last?.key;
		const marker = this.nodes.get('marker')?.node;
		if (this.toMarker && t.loaded && !(this.toMarker = false) && marker?.offsetTop < log.scrollHeight - log.clientHeight - 48) return (log.scrollTop = marker.offsetTop - 48), (this.stick = false);
		if (stick || own) this.toBottom();
		else if (anchor?.parentNode === log) log.scrollTop = anchor.offsetTop - offset;
		this.maybeLoadOlder();
	}
	build(item) {
		const {kind, ver} = item;
		if (kind === 'msg') return this.buildMessage(item);
		if (kind === 'day' || kind === 'count') return el(`div.day-sep${kind === 'count' ? '.thread-count' : ''}`, {role: 'separator', 'aria-label': ver}, el('span', ver));
		if (kind === 'marker') return el('div.new-marker', {role: 'separator', 'aria-label': 'New messages below'}, 'New messages');
		if (kind === 'seen') {
			const names = item.who.map(displayName).join(', ');
			return el('div.seen', icon('check', 'icon icon-xs'), `Seen by ${names}`);
		}
		const t = this.t();
		const room = this.store.room(this.roomId);
		if (!t.loaded || t.loadingOlder) return el('div.log-top', el('span.spinner', {'aria-hidden': 'true'}), el('span.muted', 'Loading messages…'));
		if (t.hasOlder) return el('div.log-top', el('button.btn.btn-ghost.btn-sm', {onclick: () => this.actions.loadOlder(this.roomId)}, 'Load older messages'));
		const dm = room?.kind === 'dm';
		const title = this.store.roomTitle(room);
		return el('div.room-intro', el('h2', dm ? title : `Welcome to #${title}`),
			el('p.muted', room?.topic || (dm ? 'This is the start of your conversation.' : 'This is the very beginning of the room.')));
	}
	buildMessage({key, m, grouped, mine, mod, author, target, targetAuthor, thread}) {
		const A = this.actions;
		const at = m.created_at || new Date().toISOString();
		const time = c => el(`time.${c}`, {datetime: at, title: formatFull(at)}, formatTime(at));
		const cls = ['msg', grouped && 'grouped', mine && 'mine', m.pending && 'pending', m.deleted && 'deleted', m.pinned && 'pinned', !mine && m.mentions?.includes(this.store.me?.id) && 'mention'];
		const main = el('div.msg-main');
		if (m.reply_to) {
			const text = !target ? 'Original message' : target.deleted ? 'Message deleted' : snippet(target.body) || 'Attachment';
			main.append(el('button.reply-ref', {title: 'Jump to the original message', onclick: () => A.jump({id: m.reply_to, room_id: m.room_id, seq: target?.seq})},
				icon('reply', 'icon icon-xs'), targetAuthor && [el('img.avatar.avatar-xs', {src: targetAuthor.avatar_url, alt: '', width: 16, height: 16}), el('b', displayName(targetAuthor))], el('span.reply-ref-text', text)));
		}
		if (!grouped) main.append(el('div.msg-head', m.author && el('button.msg-author', {onclick: () => A.openUser(m.author.id)}, displayName(author)),
			author?.kind === 'bot' && el('span.role-tag', 'bot'), time('msg-time'), m.pinned && el('span.pin-tag', icon('pin', 'icon icon-xs'), 'Pinned')));
		if (m.deleted) main.append(el('p.msg-body.msg-deleted', 'Message deleted'));
		else if (this.editing === key) main.append(this.buildEditor(m));
		else if (m.pending) main.append(el('div.msg-body.msg-plain', m.body));
		else if (m.html || m.edited_at) main.append(this.buildBody(m));
		if (!m.deleted) main.append(
			m.attachments?.length ? el('div.attachments', m.attachments.map(a => this.buildAttachment(a))) : '',
			...(m.pending ? [] : youtubeIds(m.body)).map(id => el('a.yt-card', {href: `https://www.youtube.com/watch?v=${id}`, target: '_blank', rel: 'noopener noreferrer', title: 'Opens YouTube in a new tab'},
				el('span.yt-play', icon('play')), el('span', el('b', 'Play video'), el('small', 'YouTube')))),
			m.reply_count > 0 && !thread ? el('button.thread-link', {onclick: () => A.openThread(m)}, icon('chat', 'icon icon-xs'), replies(m.reply_count)) : '',
			m.reactions?.length ? this.buildReactions(m) : '');
		if (m.pending) main.append(m.failed
			? el('div.msg-status.failed', el('span', `Not sent: ${m.failed}`), el('button.link-btn', {onclick: () => A.retry(m)}, 'Retry'), el('button.link-btn', {onclick: () => A.discard(m)}, 'Discard'))
			: A.isConnected() ? el('div.msg-status', el('span.spinner.spinner-xs', {'aria-hidden': 'true'}), 'Sending…')
			: el('div.msg-status.queued', icon('clock', 'icon icon-xs'), 'Waiting for connection — will send automatically'));
		const gutter = el('div.msg-gutter', grouped ? time('gutter-time') : author && el('img.avatar', {src: author.avatar_url, alt: '', width: 36, height: 36}));
		const node = el('article', {class: cls.filter(Boolean).join(' '), id: `${thread ? 't' : 'msg'}-${m.id || key}`}, gutter, main);
		if (m.deleted || m.pending || this.editing === key) return node;
		const react = iconButton('smile', 'React', e => this.react(m, e.currentTarget));
		react.setAttribute('aria-haspopup', 'dialog');
		node.append(el('div.msg-actions', {role: 'toolbar', 'aria-label': 'Message actions'}, react,
			!thread && iconButton('reply', 'Reply', () => A.reply(m)),
			!thread && !m.thread_root && iconButton('chat', 'Reply in thread', () => A.openThread(m)),
			iconButton('copy', 'Copy', () => A.copy(m)),
			mod && iconButton('pin', m.pinned ? 'Unpin' : 'Pin', () => A.pin(m, !m.pinned)),
			mine && iconButton('edit', 'Edit', () => this.startEdit(key, m)), (mine || mod) && iconButton('trash', 'Delete', () => A.remove(m), 'icon-btn danger')));
		return node;
	}
	buildBody(m) {
		const body = el('div.msg-body');
		body.innerHTML = m.html || ''; // sanitized by the server
		for (const a of body.querySelectorAll('a[href]')) (a.target = '_blank'), (a.rel = 'noopener noreferrer nofollow');
		for (const s of body.querySelectorAll('.mention[data-mention]')) {
			const id = s.dataset.mention;
			if ([this.store.me?.id, 'here', 'room'].includes(id)) s.classList.add('mention-me');
			else s.addEventListener('click', () => this.actions.openUser(id));
		}
		if (m.edited_at) body.append(el('span.edited', {title: `Edited ${formatFull(m.edited_at)}`}, '(edited)'));
		return body;
	}
	buildAttachment(a) {
		if (!a.thumbnail_url) return el('a.att-file', {href: a.url, download: a.name, title: `Download ${a.name}`}, el('span.att-icon', icon('file')),
			el('span.att-text', el('b', a.name), el('small', fmtSize(a.size))), icon('arrow-down'));
		const [w, h] = [a.width || 320, a.height || 240];
		const s = Math.min(1, 320 / w, 240 / h);
		return el('button.att-img', {title: a.name, 'aria-label': `View image ${a.name}`, onclick: () => lightbox(a)}, el('img', {src: a.thumbnail_url, alt: a.name, width: Math.round(w * s), height: Math.round(h * s)}));
	}
	buildReactions(m) {
		const row = el('div.reactions', m.reactions.map(r => el(`button.reaction${r.me ? '.me' : ''}`, {'aria-pressed': String(!!r.me), 'aria-label': `${r.emoji} ${r.count}`,
			dataset: {emoji: r.emoji}, onclick: () => this.actions.react(m, r.emoji, !r.me)}, el('span', r.emoji), el('b', String(r.count)))));
		// Who reacted: fetched on first hover or focus, as tooltips.
		const who = async () => {
			const k = `${m.id}@${m.pos}`;
			if (!this.who.has(k)) this.who.set(k, api.reactions(m.id).catch(() => (this.who.delete(k), [])));
			for (const r of await this.who.get(k)) {
				const chip = [...row.children].find(c => c.dataset.emoji === r.emoji);
				if (chip) chip.title = `${r.users.map(u => (this.store.isMe(u) ? 'You' : displayName(u))).join(', ')} reacted with ${r.emoji}`;
			}
		};
		row.addEventListener('pointerenter', who, {once: true});
		row.addEventListener('focusin', who, {once: true});
		return row;
	}
	react(m, button) {
		const art = button.closest('article');
		art.classList.add('picking');
		openPicker(button, e => this.actions.react(m, e, !m.reactions?.some(r => r.emoji === e && r.me)), () => art.classList.remove('picking'));
	}
	startEdit(key, m) {
		Object.assign(this, {editing: key, draft: m.body || ''});
		this.actions.rerender();
		const ta = document.querySelector('.msg-editor textarea');
		ta?.focus();
		ta?.setSelectionRange(ta.value.length, ta.value.length);
		ta?.scrollIntoView({block: 'nearest'});
	}
	editLast() {
		const m = this.store.messagesFor(this.roomId).findLast(x => this.store.isMe(x.author) && !x.deleted && !x.pending && !x.thread_root);
		if (m) this.startEdit(m.client_id ? `c:${m.client_id}` : m.id, m);
		return !!m;
	}
	stopEdit() {
		this.editing = null;
		this.actions.rerender();
		this.actions.focusComposer();
	}
	buildEditor(m) {
		const ta = el('textarea', {'aria-label': 'Edit message', rows: 2, value: this.draft});
		const size = () => ((ta.style.height = 'auto'), (ta.style.height = `${Math.min(ta.scrollHeight + 2, 320)}px`));
		requestAnimationFrame(size);
		ta.addEventListener('input', () => ((this.draft = ta.value), size()));
		const save = async () => {
			const body = ta.value.trim();
			if (!body && !m.attachments?.length) return;
			if (body === (m.body || '').trim()) return this.stopEdit();
			ta.disabled = true;
			if (await this.actions.edit(m, body)) this.stopEdit();
			else ta.disabled = false;
		};
		ta.addEventListener('keydown', e => {
			if (e.key === 'Escape') this.stopEdit();
			else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) save();
			else return;
			e.preventDefault();
		});
		return el('div.msg-editor', ta, el('div', el('span.muted', 'Escape to cancel · Enter to save'),
			el('button.btn.btn-ghost.btn-sm', {onclick: () => this.stopEdit()}, 'Cancel'), el('button.btn.btn-primary.btn-sm', {onclick: save}, 'Save')));
	}
	reveal(id) {
		this.render();
		const node = document.getElementById(`msg-${id}`);
		if (node) (this.stick = false), node.scrollIntoView({block: 'center'}), flash(node);
		return !!node;
	}
}
