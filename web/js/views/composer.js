// Composer: Enter sends; reply preview, drafts, `@name`/`:shortcode:` completion,
// attachments (uploaded at once), typing signals (≤ 1 per 3 s).
import {api} from '../api.js';
import {displayName, el, fmtSize, icon, iconButton, isMod, snippet} from '../util.js';
import {emojiData, searchEmoji} from './emoji.js';
let ids = 0;
export class ComposerView {
	constructor(refs, store, actions) {
		Object.assign(this, refs, {store, actions, roomId: null, thread: null, replyTo: null, drafts: new Map(), files: new Map(), lastTyping: 0, typingActive: false, blocked: null, options: [], active: 0});
		const ta = this.input;
		this.list = el('ul.suggest', {role: 'listbox', id: `suggest-${++ids}`, 'aria-label': 'Suggestions', hidden: true});
		this.form.append(this.list);
		ta.setAttribute('aria-autocomplete', 'list');
		ta.setAttribute('aria-controls', this.list.id);
		this.form.addEventListener('submit', e => (e.preventDefault(), this.submit()));
		ta.addEventListener('keydown', e => {
			const k = e.key;
			if (this.options.length && ['ArrowDown', 'ArrowUp', 'Enter', 'Tab', 'Escape'].includes(k) && !e.shiftKey) k === 'Escape' ? this.closeSuggest() : k[0] === 'A' ? this.highlight(this.active + (k === 'ArrowDown' ? 1 : -1)) : this.pick(this.active);
			else if (k === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) this.submit();
			else if (k === 'Escape' && this.replyTo) this.setReply(null);
			else if (!(k === 'ArrowUp' && !ta.value && !this.thread && this.actions.editLast())) return;
			e.preventDefault();
		});
		ta.addEventListener('input', () => (this.autosize(), this.drafts.set(this.key(), ta.value), this.signalTyping(), this.suggest()));
		ta.addEventListener('blur', () => this.closeSuggest());
		ta.addEventListener('paste', e => {
			const files = [...(e.clipboardData?.files || [])];
			if (files.length && this.attach) e.preventDefault(), this.addFiles(files);
		});
		this.replyCancel?.addEventListener('click', () => (this.setReply(null), this.focus()));
		this.attach?.addEventListener('change', () => (this.addFiles([...this.attach.files]), (this.attach.value = '')));
	}
	key = () => this.thread || this.roomId;
	focus = () => this.input.disabled || this.input.focus();
	pending = () => this.files.get(this.roomId) || [];
	setRoom(roomId, thread = null) {
		if (this.typingActive) this.stopTyping();
		Object.assign(this, {roomId, thread});
		this.input.value = this.drafts.get(this.key()) || '';
		this.setReply(null);
		this.closeSuggest();
		const room = this.store.room(roomId);
		if (!thread) this.placeholder = room ? `Message ${room.kind === 'dm' ? '' : '#'}${this.store.roomTitle(room)}` : 'Message';
		this.input.placeholder = this.blocked || this.placeholder;
		this.renderFiles();
		this.autosize();
	}
	setBlocked(reason) {
		if (reason === this.blocked) return;
		this.blocked = reason;
		this.input.disabled = this.send.disabled = !!reason;
		if (this.attach) this.attach.disabled = !!reason;
		this.input.placeholder = reason || this.placeholder || 'Message';
		this.form.classList.toggle('blocked', !!reason);
	}
	setReply(msg) {
		this.replyTo = msg;
		if (!this.reply) return;
		this.reply.hidden = !msg;
		const text = msg && snippet(msg.body, 100);
		if (msg) this.replyText.replaceChildren(el('strong', `Replying to ${displayName(this.store.resolveUser(msg.author))}`), text ? ` — ${text}` : '');
	}
	autosize() {
		const ta = this.input;
		ta.style.height = 'auto';
		ta.style.height = `${Math.min(ta.scrollHeight, Math.max(120, innerHeight * 0.4))}px`;
	}
	insert(text, from, to) {
		this.input.focus();
		this.input.setRangeText(`${text} `, from, to, 'end');
		this.input.dispatchEvent(new Event('input'));
	}
	async suggest() {
		const ta = this.input;
		const m = ta.value.slice(0, ta.selectionStart).match(/(?:^|[\s(])([@:])([\p{L}\p{N}_.+-]*)$/u);
		const token = (this.token = (this.token || 0) + 1);
		if (!m || (m[1] === ':' && m[2].length < 2)) return this.closeSuggest();
		const q = m[2];
		const from = ta.selectionStart - q.length - 1;
		let options = m[1] === '@' && this.people(q.toLowerCase());
		if (!options) {
			const list = await emojiData().catch(() => []);
			if (token !== this.token) return;
			options = searchEmoji(list, q, 8).map(x => ({glyph: x.e, text: `:${x.s[0] || x.n}:`, sub: x.n, insert: x.e}));
		}
		Object.assign(this, {options, from, active: 0});
		this.list.hidden = !options.length;
		ta.setAttribute('aria-expanded', String(!!options.length));
		this.list.replaceChildren(...options.map((o, i) =>
			el('li', {role: 'option', id: `${this.list.id}-${i}`, onpointerdown: e => e.preventDefault(), onclick: () => this.pick(i)},
				o.img ? el('img.avatar.avatar-xs', {src: o.img, alt: ''}) : el('span.glyph', {'aria-hidden': 'true'}, o.glyph || '@'), el('b', o.text), el('small', o.sub))));
		this.highlight(0);
	}
	people(q) {
		const {store} = this;
		const users = [...(store.members.get(this.roomId)?.keys() || [])].map(store.user).filter(u => u && !store.isMe(u) && (u.username.toLowerCase().startsWith(q) || displayName(u).toLowerCase().includes(q)));
		users.sort((a, b) => displayName(a).localeCompare(displayName(b)));
		const special = [['here', 'Everyone online here'], isMod(store.room(this.roomId), store.me) && ['room', 'Everyone in this room']].filter(s => s && s[0].startsWith(q));
		return [...users.slice(0, 8).map(u => ({img: u.avatar_url, text: displayName(u), sub: `@${u.username}`, insert: `@${u.username}`})), ...special.map(([n, sub]) => ({text: `@${n}`, sub, insert: `@${n}`}))];
	}
	highlight(i) {
		const n = this.options.length;
		if (!n) return;
		this.active = (i + n) % n;
		[...this.list.children].forEach((li, j) => li.setAttribute('aria-selected', String(j === this.active)));
		this.list.children[this.active].scrollIntoView({block: 'nearest'});
		this.input.setAttribute('aria-activedescendant', `${this.list.id}-${this.active}`);
	}
	pick(i) {
		const o = this.options[i];
		const to = this.input.selectionStart;
		this.closeSuggest();
		if (o) this.insert(o.insert, this.from, to);
	}
	closeSuggest() {
		this.options = [];
		this.list.hidden = true;
		this.input.removeAttribute('aria-activedescendant');
		this.input.setAttribute('aria-expanded', 'false');
	}
	addFiles(files) {
		if (!this.attach || this.blocked || !this.roomId) return;
		const list = this.pending();
		this.files.set(this.roomId, list);
		for (const file of files) {
			const u = {file, url: /^image\/(png|jpeg|gif|webp)$/.test(file.type) && URL.createObjectURL(file)};
			const bar = el('progress', {max: 1, value: 0, 'aria-label': `Uploading ${file.name}`});
			const sub = el('small', 'Uploading…');
			u.node = el('li.chip', u.url ? el('img', {src: u.url, alt: ''}) : icon('file'), el('span.chip-text', el('span.chip-name', {title: file.name}, file.name), sub), bar,
				iconButton('x', `Remove ${file.name}`, () => this.removeFile(u), 'icon-btn icon-btn-sm'));
			const done = error => {
				u.error = error;
				bar.remove();
				sub.textContent = error || fmtSize(file.size);
				u.node.classList.toggle('failed', !!error);
			};
			if (file.size > 25 << 20) done('Larger than 25 MB');
			else (u.req = api.upload(file, p => ((bar.value = p), (sub.textContent = `Uploading… ${Math.round(p * 100)}%`)))).then(a => ((u.att = a), done()), e => e.code !== 'aborted' && done(e.message));
			list.push(u);
		}
		this.renderFiles();
		this.focus();
	}
	removeFile(u, keep) {
		u.req?.abort();
		if (u.url) URL.revokeObjectURL(u.url);
		if (keep) return;
		this.pending().splice(this.pending().indexOf(u), 1);
		this.renderFiles();
		this.focus();
	}
	renderFiles() {
		if (!this.chips) return;
		this.chips.hidden = !this.pending().length;
		this.chips.replaceChildren(...this.pending().map(u => u.node));
	}
	signalTyping() {
		if (!this.input.value.trim()) return this.typingActive && this.stopTyping();
		if (Date.now() - this.lastTyping < 3000) return;
		this.lastTyping = Date.now();
		this.typingActive = true;
		this.actions.typing(this.roomId, true);
	}
	stopTyping() {
		this.typingActive = false;
		this.lastTyping = 0;
		this.actions.typing(this.roomId, false);
	}
	submit() {
		const body = this.input.value;
		const files = this.pending();
		if (this.blocked) return;
		if (files.some(u => !u.att && !u.error)) return this.actions.toast('Wait for the uploads to finish.');
		const attachments = files.filter(u => u.att).map(u => u.att);
		if (!body.trim() && !attachments.length) return;
		if (this.typingActive) this.stopTyping();
		this.actions.send(this.roomId, body, {replyTo: this.replyTo?.id, threadRoot: this.thread, attachments});
		for (const u of files) this.removeFile(u, true);
		this.files.delete(this.roomId);
		this.renderFiles();
		this.input.value = '';
		this.drafts.delete(this.key());
		this.setReply(null);
		this.autosize();
		this.input.focus();
	}
}
