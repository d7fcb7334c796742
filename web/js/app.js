// The signed-in app: gateway and REST into the store, the store into the views.
// Also the views' `actions` and the dialogs' context.
import {api} from './api.js';
import {Connection} from './connection.js';
import {Store} from './store.js';
import {copyText, displayName, el, hydrateIcons, icon, popover, toast, uuid} from './util.js';
import {ComposerView} from './views/composer.js';
import * as dialogs from './views/dialogs.js';
import {HeaderView} from './views/header.js';
import {MembersView} from './views/members.js';
import {MessagesView} from './views/messages.js';
import {RoomsView} from './views/rooms.js';
import {ThreadView} from './views/thread.js';
const KEY = {room: 'hubbub-last-room', notify: 'hubbub-notify', theme: 'hubbub-theme'};
const ENDED = 'Your session has ended. Join again to continue.';
const saved = (k, v) => {
	try {
		if (v === undefined) return localStorage.getItem(k);
		v == null ? localStorage.removeItem(k) : localStorage.setItem(k, v);
	} catch {}
};
export const roomIdFromPath = () => decodeURIComponent(location.pathname.match(/^\/r\/([^/]+)\/?$/)?.[1] || '') || null;
const attempt = (what, p) => p.then(v => v ?? true, e => (toast(`${what}: ${e.message}`, 'error'), false));
export class App {
	constructor(root, user, onSignedOut) {
		Object.assign(this, {root, onSignedOut, store: new Store(), conn: new Connection(), activeId: null, link: roomIdFromPath(), started: false, queued: new Set(), toast});
		this.store.setMe(user);
	}
	start() {
		this.root.replaceChildren(document.getElementById('tpl-app').content.cloneNode(true));
		hydrateIcons(this.root);
		const $ = (this.$ = r => this.root.querySelector(`[data-ref="${r}"]`));
		const refs = (...names) => Object.fromEntries(names.map(n => [n.replace(/-(\w)/g, (_, c) => c.toUpperCase()), $(n)]));
		const {store} = this;
		this.appEl = $('app');
		this.typingEl = $('typing');
		this.header = new HeaderView(refs('conn', 'conn-text', 'room-name', 'room-topic', 'invite', 'pins', 'notify', 'copy-link', 'leave', 'member-count', 'toggle-members', 'banner'), store);
		this.roomsView = new RoomsView($('nav'), store, this);
		this.membersView = new MembersView($('members-body'), store, this);
		this.messagesView = new MessagesView($('log'), $('jump'), store, this);
		this.composer = new ComposerView({form: $('composer'), input: $('input'), send: $('send'), ...refs('reply', 'reply-text', 'reply-cancel', 'chips', 'attach')}, store, this);
		const replies = new ComposerView({form: $('thread-form'), input: $('thread-input'), send: $('thread-send'), placeholder: 'Reply…'}, store, this);
		this.threadView = new ThreadView({panel: $('thread'), list: $('thread-list')}, store, this.messagesView, replies, (open, refocus) => {
			this.appEl.classList.toggle('thread-open', open);
			if (!open && refocus) this.composer.focus();
		});
		const active = (id, part) => id === this.activeId && part;
		store.on('rooms', () => this.schedule('rooms', 'header'));
		store.on('messages', id => this.schedule('rooms', active(id, 'messages'), id === this.threadView.roomId && 'thread'));
		store.on('users', () => this.schedule('members', 'messages', 'thread', 'me', 'typing', 'header'));
		store.on('members', id => this.schedule(active(id, 'members'), active(id, 'messages'), store.room(id)?.kind === 'dm' && 'rooms', 'header'));
		store.on('typing', id => this.schedule(active(id, 'typing')));
		store.on('me', () => this.schedule('me'));
		this.wireChrome();
		this.wireConnection();
		this.renderMe();
		this.conn.start();
	}
	onBottom = () => this.markRead();
	openThread = m => this.threadView.open(m.room_id, m.id);
	rerender = () => (this.messagesView.render(), this.threadView.render());
	reply = m => (this.composer.setReply(m), this.composer.focus());
	copy = async m => toast((await copyText(m.body || '')) ? 'Message copied' : 'Could not copy');
	edit = (m, body) => attempt('Could not edit', this.conn.request({type: 'edit', message_id: m.id, body})).then(msg => msg && (this.store.applyMessage(msg), true));
	remove = m => attempt('Could not delete', this.conn.request({type: 'delete', message_id: m.id})).then(ok => ok && this.store.applyDeleted({room_id: m.room_id, message_id: m.id, seq: m.seq}));
	react = (m, emoji, add) => attempt('Could not react', this.conn.request({type: 'react', message_id: m.id, emoji, add}));
	retry = m => this.store.setPendingFailed(m.room_id, m.client_id, null) && this.transmit(m);
	discard = m => (this.conn.discard(m.client_id), this.store.removePending(m.room_id, m.client_id));
	openUser = id => dialogs.userCard(this, id);
	newDm = () => dialogs.newDm(this);
	focusComposer = () => this.composer.focus();
	isConnected = () => this.conn.connected;
	typing = (room_id, active) => this.conn.notify({type: 'typing', room_id, active});
	editLast = () => this.messagesView.editLast();
	onProfile = user => user?.id && this.store.setMe(user);
	schedule(...parts) {
		const empty = !this.queued.size;
		for (const p of parts) if (p) this.queued.add(p);
		if (empty && this.queued.size) queueMicrotask(() => {
			const parts = [...this.queued];
			this.queued.clear();
			if (this.started || parts.includes('me')) for (const p of parts) this.renderPart(p);
		});
	}
	renderPart(part) {
		if (part === 'messages') return this.activeId && (this.messagesView.render(), this.markRead());
		if (part === 'header') return this.activeId && (this.header.render(this.activeId), this.updateGate()), (document.title = this.header.title());
		({rooms: this.roomsView, members: this.membersView, thread: this.threadView, me: {render: () => this.renderMe()}, typing: {render: () => this.renderTyping()}})[part].render();
	}
	wireChrome() {
		const {$, store} = this;
		const room = () => store.room(this.activeId);
		const drawer = d => () => this.setDrawer(this.appEl.dataset.drawer === d ? '' : d);
		const clicks = {
			browse: () => dialogs.browseRooms(this),
			search: () => dialogs.search(this, this.activeId),
			pins: () => room() && dialogs.pins(this, room()),
			notify: e => this.notifyMenu(e.currentTarget),
			'close-thread': () => this.threadView.close(),
			create: () => dialogs.createRoom(this),
			profile: () => dialogs.profile(this),
			logout: () => this.signOut(),
			theme: () => this.toggleTheme(),
			invite: () => room() && dialogs.invite(this, room()),
			'copy-link': async () => toast((await copyText(`${location.origin}/r/${encodeURIComponent(this.activeId)}`)) ? 'Room link copied' : 'Could not copy the link'),
			leave: () => this.leaveRoom(),
			'toggle-rooms': drawer('rooms'),
			'close-members': () => this.setDrawer(''),
			scrim: () => this.setDrawer(''),
			'toggle-members': e => (this.narrow.matches ? drawer('members')() : e.currentTarget.setAttribute('aria-expanded', !this.appEl.classList.toggle('members-hidden'))),
		};
		for (const [ref, fn] of Object.entries(clicks)) $(ref).addEventListener('click', fn);
		$('create').hidden = store.me.kind === 'guest';
		const conv = this.root.querySelector('.conversation');
		const files = e => e.dataTransfer?.types.includes('Files');
		let depth = 0;
		const drag = d => (depth = Math.max(0, depth + d)) ? (conv.dataset.drop = '') : delete conv.dataset.drop;
		conv.addEventListener('dragenter', e => files(e) && drag(1));
		conv.addEventListener('dragleave', e => files(e) && drag(-1));
		conv.addEventListener('dragover', e => files(e) && e.preventDefault());
		conv.addEventListener('drop', e => files(e) && (e.preventDefault(), drag(-depth), this.composer.addFiles([...e.dataTransfer.files])));
		this.narrow = matchMedia('(max-width: 767.98px)');
		this.dark = matchMedia('(prefers-color-scheme: dark)');
		this.listeners = [
			[document, 'keydown', e => {
				if (e.key !== 'Escape' || document.querySelector('dialog[open]')) return;
				if (this.appEl.dataset.drawer) this.setDrawer('');
				else if ($('thread').contains(document.activeElement)) this.threadView.close();
			}],
			[window, 'focus', () => this.markRead()],
			[document, 'visibilitychange', () => this.markRead()],
			[window, 'popstate', () => {
				const id = roomIdFromPath();
				if (id && id !== this.activeId && store.room(id)) this.openRoom(id, false);
			}],
			[this.narrow, 'change', () => this.setDrawer('')],
			[this.dark, 'change', () => this.renderTheme()],
		];
		for (const [t, ev, fn] of this.listeners) t.addEventListener(ev, fn);
		this.renderTheme();
	}
	setDrawer(which) {
		const {$} = this;
		this.appEl.dataset.drawer = which;
		$('scrim').hidden = !which;
		$('toggle-rooms').setAttribute('aria-expanded', which === 'rooms');
		if (this.narrow.matches) $('toggle-members').setAttribute('aria-expanded', which === 'members');
		if (which === 'rooms') $('nav').querySelector('a')?.focus();
		if (which === 'members') $('close-members').focus();
	}
	wireConnection() {
		const {conn, store} = this;
		conn.addEventListener('state', ({detail: {state}}) => {
			this.header.setConnection(state);
			if (state !== 'connected') for (const id of store.typing.keys()) store.setTyping(id, []);
			this.schedule('messages');
		});
		conn.addEventListener('ready', e => this.onReady(e.detail.frame, e.detail.reconnect));
		conn.addEventListener('event', e => this.onEvent(e.detail.frame));
		conn.addEventListener('unauthorized', () => this.end(ENDED));
	}
	async onReady(frame, reconnect) {
		const {store, conn} = this;
		store.applyReady(frame);
		if (reconnect) {
			try {
				const res = await conn.request({type: 'resume', rooms: store.resumeState()}, 30000);
				for (const r of res?.rooms || []) if (store.applyResume(r) && r.room_id === this.activeId) this.loadNewest(r.room_id);
			} catch {
				// No resume: refetch what is on screen.
				if (this.activeId) store.timeline(this.activeId).clear(), this.loadNewest(this.activeId);
			}
			for (const id of [...store.members.keys()]) if (id !== this.activeId && store.room(id)?.kind !== 'dm') store.members.delete(id);
			if (store.room(this.activeId)) this.loadMembers(this.activeId);
		}
		conn.flushOutbox();
		for (const r of store.rooms.values()) if (r.kind === 'dm' && !store.members.has(r.id)) this.loadMembers(r.id);
		if (!this.started) {
			this.started = true;
			this.roomsView.render();
			const link = this.link;
			this.link = null;
			if (link && store.room(link)) this.openRoom(link, false);
			else if (!link || !(await this.joinFromLink(link))) this.openDefault();
		} else if (!store.room(this.activeId)) this.openDefault();
		else this.schedule('messages', 'members');
		this.markRead();
	}
	onEvent(f) {
		const s = this.store;
		({
			message: () => (this.fillGap(f.message), s.applyMessage(f.message, {pos: f.pos})),
			message_updated: () => s.applyMessage(f.message, {pos: f.pos, reactionChange: f.reaction_change}),
			message_deleted: () => s.applyDeleted(f),
			typing: () => s.setTyping(f.room_id, f.user_ids),
			presence: () => s.setPresence(f),
			member_joined: () => s.memberJoined(f.room_id, f.user),
			member_left: () => s.memberLeft(f.room_id, f.user),
			user_updated: () => s.upsertUser(f.user),
			room_updated: () => (s.upsertRoom(f.room), f.room?.kind === 'dm' && !s.members.has(f.room.id) && this.loadMembers(f.room.id)),
			room_removed: () => this.onRoomRemoved(f.room_id, f.reason),
			read: () => s.applyRead(f),
			notification: () => (s.countMention(f.room_id, f.message), this.notify(f.room_id, f.message)),
		})[f.type]?.();
	}
	onRoomRemoved(id, reason) {
		const room = this.store.room(id);
		if (!room) return;
		const name = this.store.roomTitle(room);
		this.store.removeRoom(id);
		if (reason === 'deleted') toast(`#${name} was deleted`);
		if (reason === 'removed') toast(`You were removed from #${name}`);
		if (id === this.threadView.roomId) this.threadView.close(false);
		if (id === this.activeId) this.openDefault();
	}
	teardown() {
		this.conn.stop();
		clearInterval(this.gateTimer);
		for (const [t, ev, fn] of this.listeners) t.removeEventListener(ev, fn);
		for (const d of document.querySelectorAll('dialog, .popover')) d.remove();
		document.title = 'Hubbub';
	}
	end(note) {
		this.teardown();
		this.onSignedOut(note);
	}
	async signOut() {
		await api.logout().catch(() => {});
		history.replaceState(null, '', '/');
		this.end(null);
	}
	openDefault() {
		const {store} = this;
		const {channels, dms} = store.roomLists();
		const room = store.room(saved(KEY.room)) || channels.find(r => r.name === 'General') || channels[0] || dms[0];
		if (room) return this.openRoom(room.id, false);
		this.activeId = this.messagesView.roomId = null;
		this.header.render(null);
		this.$('log').replaceChildren(el('div.room-intro', el('h2', 'No rooms yet'), el('p.muted', 'Browse rooms to join one.')));
		this.composer.setBlocked('Join a room to start chatting');
	}
	async joinFromLink(id) {
		try {
			const room = await api.room(id);
			const joined = room.joined ? room : room.has_password ? await dialogs.joinWithPassword(room) : await api.joinRoom(id);
			if (joined) this.onRoomJoined(joined.id ? joined : room);
			return !!joined;
		} catch (e) {
			toast(dialogs.joinErrorText(e), 'error');
			return false;
		}
	}
	onRoomJoined(room) {
		this.store.upsertRoom({...room, joined: true});
		this.openRoom(room.id);
	}
	openRoom(id, push = true, load = true) {
		const {store} = this;
		if (!store.room(id)) return;
		if (this.threadView.roomId !== id) this.threadView.close(false);
		this.activeId = id;
		saved(KEY.room, id);
		const path = `/r/${encodeURIComponent(id)}`;
		if (location.pathname !== path) history[push ? 'pushState' : 'replaceState'](null, '', path);
		this.roomsView.setActive(id);
		this.header.render(id);
		this.messagesView.setRoom(id);
		this.membersView.setRoom(id);
		this.composer.setRoom(id);
		this.renderTyping();
		this.updateGate();
		this.setDrawer('');
		if (!store.timeline(id).loaded && load) this.loadNewest(id);
		if (!store.members.has(id)) this.loadMembers(id);
		this.markRead();
		if (!this.narrow.matches) this.composer.focus();
	}
	async loadNewest(id) {
		try {
			this.store.applyHistory(id, await api.messages(id, {limit: 50}), 'newest');
		} catch (e) {
			if (e.status === 401) return this.end(ENDED);
			toast(`Could not load messages: ${e.message}`, 'error');
		}
	}
	loadOlder(id, limit = 50) {
		const t = this.store.timeline(id);
		const before = t.lowestSeq();
		if (t.loadingOlder || !t.hasOlder || before == null) return t.loadingOlder || Promise.resolve();
		const done = () => ((t.loadingOlder = null), this.schedule(id === this.activeId && 'messages'));
		t.loadingOlder = attempt('Could not load older messages', api.messages(id, {before_seq: before, limit})).then(page => (done(), page && this.store.applyHistory(id, page)));
		this.schedule(id === this.activeId && 'messages');
		return t.loadingOlder;
	}
	// Seq is dense: a jump means lost events; fetch them.
	fillGap({room_id: id, seq}) {
		const t = this.store.timeline(id), h = t.loaded && !t.hasNewer && t.highestSeq();
		if (h && seq > h + 1) api.messages(id, {after_seq: h, limit: 200}).then(p => this.store.applyHistory(id, p, 'newer'), () => {});
	}
	async loadNewer(id) {
		const t = this.store.timeline(id);
		if (this.loadingNewer || !t.hasNewer) return;
		this.loadingNewer = true;
		const page = await attempt('Could not load newer messages', api.messages(id, {after_seq: t.highestSeq(), limit: 50}));
		if (page) this.store.applyHistory(id, page, 'newer');
		this.loadingNewer = false;
	}
	present(id) {
		this.store.timeline(id).clear();
		this.messagesView.setRoom(id);
		return this.loadNewest(id);
	}
	async jump(m) {
		const {store} = this;
		const id = m.room_id;
		if (!store.room(id)) return toast('That message is in a room you are not in.', 'error');
		if (this.activeId !== id) this.openRoom(id, true, false);
		const t = store.timeline(id);
		try {
			const full = t.byId.get(m.id) || (m.seq && 'thread_root' in m ? m : await api.message(m.id));
			if (full.thread_root) {
				if (!t.loaded) this.loadNewest(id);
				await this.threadView.open(id, full.thread_root);
				return this.threadView.reveal(m.id);
			}
			if (t.loaded && full.seq >= (t.lowestSeq() ?? Infinity) - 150) while (!t.byId.has(m.id) && t.hasOlder) await this.loadOlder(id, 100);
			if (!t.loaded || !t.byId.has(m.id)) {
				const page = p => api.messages(id, {...p, limit: 30});
				store.applyWindow(id, ...(await Promise.all([page({before_seq: full.seq + 1}), page({after_seq: full.seq})])));
			}
			if (this.activeId === id) this.messagesView.reveal(m.id);
		} catch (e) {
			toast(e.status === 404 ? 'That message no longer exists.' : `Could not open the message: ${e.message}`, 'error');
		}
	}
	async loadMembers(id) {
		try {
			this.store.setMembers(id, await api.members(id));
		} catch {}
	}
	async leaveRoom() {
		const room = this.store.room(this.activeId);
		if (room && (await attempt('Could not leave', api.leaveRoom(room.id)))) {
			this.store.removeRoom(room.id);
			toast(`You left #${room.name}`);
			this.openDefault();
		}
	}
	async startDm(ids) {
		const room = await api.dm([].concat(ids));
		this.store.upsertRoom({...room, joined: true});
		await this.loadMembers(room.id);
		this.openRoom(room.id);
	}
	updateGate() {
		const tick = (g = this.header.renderBanner(this.activeId)) => (this.composer.setBlocked(g.blocked), g.ticking);
		clearInterval(this.gateTimer);
		if (tick()) this.gateTimer = setInterval(() => tick() || clearInterval(this.gateTimer), 1000);
	}
	renderTyping(text = this.store.typingText(this.activeId)) {
		if (this.typingEl.textContent !== text) this.typingEl.textContent = text;
	}
	renderMe() {
		const me = this.store.me;
		if (!me || !this.$) return;
		const img = this.$('me-avatar');
		if (img.getAttribute('src') !== me.avatar_url) img.src = me.avatar_url;
		this.$('me-name').textContent = displayName(me);
		this.$('me-status').textContent = me.status_text || (me.kind === 'guest' ? 'Guest' : `@${me.username}`);
	}
	markRead() {
		const room = this.store.room(this.activeId);
		if (!room || !this.conn.connected || document.hidden || !document.hasFocus() || !this.messagesView.stick) return;
		const t = this.store.timeline(room.id);
		const last = t.highestSeq() || 0;
		if (!t.loaded || last <= room.last_read_seq) {
			if (room.unread_count && t.loaded && last >= room.last_seq) this.store.markReadLocal(room.id, last);
			return;
		}
		this.conn.notify({type: 'read', room_id: room.id, seq: last});
		this.store.markReadLocal(room.id, last);
	}
	send(roomId, body, {replyTo = null, threadRoot = null, attachments = []} = {}) {
		const draft = {client_id: uuid(), room_id: roomId, body, reply_to: replyTo, thread_root: threadRoot, author: this.store.me, created_at: new Date().toISOString(), mentions: [], reactions: [], attachments};
		if (!threadRoot && this.store.timeline(roomId).hasNewer) this.present(roomId);
		this.store.addPending(roomId, draft);
		this.transmit(draft);
	}
	transmit({room_id, client_id, body, reply_to, thread_root, attachments}) {
		const frame = {type: 'send', room_id, client_id, body};
		if (reply_to) frame.reply_to = reply_to;
		if (thread_root) frame.thread_root = thread_root;
		if (attachments?.length) frame.attachment_ids = attachments.map(a => a.id);
		this.conn
			.sendMessage(frame)
			.then(msg => (msg?.id ? this.store.applyMessage(msg) : this.store.removePending(room_id, client_id)))
			.catch(e => e.code !== 'discarded' && this.store.setPendingFailed(room_id, client_id, e.message || 'Not sent'));
	}
	async pin(m, on) {
		const msg = await attempt(`Could not ${on ? 'pin' : 'unpin'}`, api.pin(m.id, on));
		if (msg) this.store.applyMessage(msg), toast(on ? 'Message pinned' : 'Message unpinned');
		return msg;
	}
	notificationsEnabled() {
		return window.Notification?.permission === 'granted' && saved(KEY.notify) === '1';
	}
	async setNotifications(on) {
		if (!window.Notification) return toast('This browser does not support notifications.', 'error'), false;
		const ok = on && (Notification.permission === 'granted' || (await Notification.requestPermission()) === 'granted');
		if (on && !ok) toast('Notifications are blocked for this site.', 'error');
		saved(KEY.notify, ok ? '1' : null);
		return ok;
	}
	notifyMenu(button) {
		const room = this.store.room(this.activeId);
		if (!room) return;
		const level = room.notification_level || (room.kind === 'dm' ? 'all' : 'mentions');
		const set = async l => close(true) || ((await attempt('Could not change notifications', api.setLevel(room.id, l))) && this.store.upsertRoom({id: room.id, notification_level: l}));
		const item = (l, text) => el('button', {role: 'menuitemradio', 'aria-checked': String(l === level), onclick: () => set(l)}, icon('check'), text);
		const on = this.notificationsEnabled();
		const desktop = async () => (close(true), toast(`Desktop notifications are ${(await this.setNotifications(!on)) ? 'on' : 'off'}`));
		const menu = el('div.menu', {role: 'menu', 'aria-label': 'Notifications'}, el('p.menu-title', 'Notify me about'), item('all', 'All messages'), item('mentions', 'Mentions only'),
			item('none', 'Nothing'), el('hr'), el('button', {role: 'menuitem', onclick: desktop}, icon('bell'), `${on ? 'Disable' : 'Enable'} desktop notifications`));
		const close = popover(button, menu);
		menu.querySelector('[aria-checked=true]')?.focus();
	}
	notify(roomId, m) {
		if (!m || !document.hidden || !this.notificationsEnabled()) return;
		const room = this.store.room(roomId);
		const who = displayName(this.store.resolveUser(m.author));
		try {
			const n = new Notification(room?.kind === 'dm' ? who : `${who} in #${room?.name || 'a room'}`, {body: (m.body || '').slice(0, 200), icon: m.author?.avatar_url, tag: m.id});
			n.onclick = () => (focus(), this.openRoom(roomId), n.close());
		} catch {}
	}
	toggleTheme() {
		saved(KEY.theme, (document.documentElement.dataset.theme = this.isDark() ? 'light' : 'dark'));
		this.renderTheme();
	}
	isDark = (t = document.documentElement.dataset.theme) => (t ? t === 'dark' : this.dark.matches);
	renderTheme() {
		const btn = this.$('theme');
		btn.replaceChildren(icon(this.isDark() ? 'sun' : 'moon'));
		btn.title = `Switch to ${this.isDark() ? 'light' : 'dark'} theme`;
	}
}
