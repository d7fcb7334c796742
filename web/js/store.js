// Client state. apply* is idempotent: messages are keyed by id, replaced only by a
// copy with no older `pos`; optimistic ones are keyed by client_id.
import {displayName} from './util.js';
class Timeline {
	byId = new Map();
	pending = new Map();
	loaded = false;
	loadingOlder = null;
	hasOlder = false;
	hasNewer = false;
	#sorted = null;
	sorted = () => (this.#sorted ??= [...this.byId.values()].sort((a, b) => a.seq - b.seq));
	lowestSeq = () => this.sorted()[0]?.seq ?? null;
	highestSeq = () => this.sorted().at(-1)?.seq ?? null;
	get = id => this.byId.get(id);
	set = (id, m) => (this.byId.set(id, m), (this.#sorted = null));
	drop = id => (this.byId.delete(id), (this.#sorted = null));
	clear() {
		this.byId.clear();
		this.#sorted = null;
		this.loaded = this.hasOlder = this.hasNewer = false;
	}
}
const MEMBER_FIELDS = ['unread_count', 'mention_count', 'last_read_seq', 'role', 'notification_level', 'muted_until'];
export class Store {
	me = null;
	users = new Map();
	rooms = new Map();
	timelines = new Map();
	members = new Map();
	threads = new Map();
	counted = new Set();
	typing = new Map();
	seenPos = new Map();
	listeners = new Map();
	on(topic, fn) {
		if (!this.listeners.has(topic)) this.listeners.set(topic, new Set());
		this.listeners.get(topic).add(fn);
	}
	emit(topics, detail) {
		for (const t of topics.split(' ')) for (const fn of this.listeners.get(t) || []) fn(detail);
	}
	changed = roomId => this.emit('rooms messages', roomId);
	setMe(user) {
		this.me = {...this.me, ...user};
		this.upsertUser(user);
		this.emit('me');
	}
	user = id => this.users.get(id) || null;
	resolveUser = u => (u ? this.users.get(u.id) || u : null);
	isMe = u => !!(u && this.me && u.id === this.me.id);
	upsertUser(user, emit = true) {
		if (!user?.id) return;
		const prev = this.users.get(user.id) || {};
		this.users.set(user.id, {...prev, ...user, status: user.status ?? prev.status, last_seen_at: user.last_seen_at !== undefined ? user.last_seen_at : prev.last_seen_at});
		if (this.isMe(user)) this.me = {...this.me, ...user};
		if (emit) this.emit('users');
	}
	setPresence({user_id, status, last_seen_at}) {
		const u = this.users.get(user_id);
		if (u) this.users.set(user_id, {...u, status, last_seen_at: last_seen_at ?? null}), this.emit('users');
	}
	applyReady({user, rooms = [], users = []}) {
		this.setMe(user);
		for (const u of users) this.upsertUser(u, false);
		const ids = new Set(rooms.map(r => r.id));
		for (const id of [...this.rooms.keys()]) if (!ids.has(id)) this.dropRoom(id);
		for (const r of rooms) this.putRoom(r);
		this.emit('users rooms');
	}
	putRoom(r) {
		const prev = this.rooms.get(r.id) || {};
		const next = {unread_count: 0, mention_count: 0, last_read_seq: 0, ...prev, ...r};
		// A broadcast room object has no member fields: keep ours.
		for (const k of MEMBER_FIELDS) if (r[k] === undefined && prev[k] !== undefined) next[k] = prev[k];
		next.last_seq = Math.max(prev.last_seq || 0, r.last_seq || 0);
		this.rooms.set(r.id, next);
		if (!this.seenPos.has(r.id)) this.seenPos.set(r.id, r.pos || 0);
	}
	upsertRoom(room) {
		if (room?.id) this.putRoom(room), this.emit('rooms');
	}
	removeRoom(id) {
		if (this.rooms.has(id)) this.dropRoom(id), this.emit('rooms');
	}
	dropRoom(id) {
		for (const m of [this.rooms, this.timelines, this.members, this.typing, this.seenPos]) m.delete(id);
	}
	room = id => this.rooms.get(id) || null;
	roomLists() {
		const all = [...this.rooms.values()];
		const byName = (a, b) => this.roomTitle(a).localeCompare(this.roomTitle(b), undefined, {sensitivity: 'base'});
		return {
			channels: all.filter(r => r.kind !== 'dm').sort(byName),
			dms: all.filter(r => r.kind === 'dm').sort((a, b) => (b.last_seq || 0) - (a.last_seq || 0) || byName(a, b)),
		};
	}
	dmPeers(room) {
		const ids = [...(this.members.get(room.id)?.keys() || [])].filter(id => id !== this.me?.id);
		if (ids.length) return ids.map(id => this.users.get(id) || {id, username: '?'});
		const names = (room.name || '').split(', ').filter(n => n && n !== this.me?.username);
		return names.map(n => [...this.users.values()].find(u => u.username === n) || {username: n});
	}
	roomTitle = room => (!room ? '' : room.kind !== 'dm' ? room.name : this.dmPeers(room).map(displayName).sort().join(', ') || 'Direct message');
	totalUnread = () => [...this.rooms.values()].reduce((n, r) => n + (r.unread_count || 0), 0);
	resumeState = () => Object.fromEntries([...this.rooms.keys()].map(id => [id, this.seenPos.get(id) || 0]));
	timeline(roomId) {
		let t = this.timelines.get(roomId);
		if (!t) this.timelines.set(roomId, (t = new Timeline()));
		return t;
	}
	messagesFor(roomId) {
		const t = this.timeline(roomId);
		return [...t.sorted(), ...t.pending.values()];
	}
	findMessage = (roomId, id) => this.timelines.get(roomId)?.get(id) || null;
	bumpPos(roomId, pos) {
		if (pos != null && (this.seenPos.get(roomId) || 0) < pos) this.seenPos.set(roomId, pos);
	}
	applyMessage(msg, {pos, reactionChange, emit = true, history = false} = {}) {
		if (!msg?.id) return;
		const roomId = msg.room_id;
		const room = this.rooms.get(roomId);
		const t = this.timeline(roomId);
		const p = pos ?? msg.pos;
		const prev = t.get(msg.id);
		this.bumpPos(roomId, p);
		const thread = this.threads.get(msg.thread_root) || this.threads.get(msg.id);
		if (thread) this.putNewer(thread, msg, p, reactionChange);
		if (msg.client_id && this.isMe(msg.author)) t.pending.delete(msg.client_id);
		if (msg.author && !this.users.has(msg.author.id)) this.users.set(msg.author.id, {...msg.author});
		const fresh = room && !prev && msg.seq > (room.last_seq || 0);
		if (fresh) {
			const mine = this.isMe(msg.author);
			if (!mine && !msg.deleted && msg.seq > room.last_read_seq) room.unread_count++, this.countMention(roomId, msg);
			if (mine) room.last_read_seq = Math.max(room.last_read_seq, msg.seq);
			room.last_seq = msg.seq;
			this.memberRead(roomId, msg.author?.id, msg.seq);
		}
		// One contiguous range: a change outside it comes with its page.
		const low = t.lowestSeq();
		if (prev || history || (fresh ? !t.hasNewer : t.loaded && low != null && msg.seq > low && !(t.hasNewer && msg.seq > t.highestSeq()))) this.putNewer(t, msg, p, reactionChange);
		if (emit) this.changed(roomId);
	}
	putNewer(into, msg, p, change) {
		const prev = into.get(msg.id);
		if (!prev || (prev.pos ?? 0) <= (msg.pos ?? p ?? 0)) into.set(msg.id, {...msg, pos: msg.pos ?? p, reactions: this.mergeReactions(prev, msg, change)});
	}
	// Live events are serialized once for everyone, so their `me` is always false:
	// keep our own per emoji, changed only by a reaction_change that is ours.
	mergeReactions(prev, msg, change) {
		const list = msg.reactions || [];
		if (!prev || (!change && list.some(r => r.me))) return list;
		const mine = new Set((prev.reactions || []).filter(r => r.me).map(r => r.emoji));
		if (change && this.isMe({id: change.user_id})) mine[change.add ? 'add' : 'delete'](change.emoji);
		return list.map(r => ({...r, me: mine.has(r.emoji)}));
	}
	countMention(roomId, m) {
		const room = this.rooms.get(roomId);
		if (!room || this.counted.has(m.id) || !m.mentions?.includes(this.me?.id) || this.isMe(m.author) || m.seq <= room.last_read_seq) return;
		this.counted.add(m.id);
		room.mention_count++;
		this.emit('rooms');
	}
	applyDeleted({room_id, message_id, seq, pos}) {
		const t = this.timeline(room_id);
		const prev = t.get(message_id);
		this.bumpPos(room_id, pos);
		const tomb = {deleted: true, body: '', html: '', attachments: [], reactions: []};
		if (prev) {
			if ((prev.pos ?? 0) > (pos ?? Infinity)) return;
			t.set(message_id, {...prev, ...tomb, pos: pos ?? prev.pos});
		} else if (t.loaded && seq > (t.lowestSeq() ?? Infinity)) t.set(message_id, {id: message_id, room_id, seq, pos, author: null, mentions: [], ...tomb});
		else return;
		this.emit('messages', room_id);
	}
	applyHistory(roomId, {messages = [], has_more}, mode = 'older') {
		const t = this.timeline(roomId);
		const low = messages[0]?.seq;
		if (mode === 'newest' && low) {
			// Seq is dense: what we hold below the page, not joining it, is cut off
			// by an unseen gap; drop it, it pages in again.
			const below = t.sorted().filter(m => m.seq < low);
			if (below.length && below.at(-1).seq !== low - 1) for (const m of below) t.drop(m.id);
		}
		for (const m of messages) this.applyMessage(m, {emit: false, history: true});
		if (mode === 'newer') t.hasNewer = !!has_more;
		else t.hasOlder = !!has_more && (t.lowestSeq() ?? 0) > 1;
		if (mode === 'newest') t.loaded = !(t.hasNewer = false);
		this.changed(roomId);
	}
	applyWindow(roomId, before, after) {
		const t = this.timeline(roomId);
		t.clear();
		t.loaded = true;
		this.applyHistory(roomId, before);
		this.applyHistory(roomId, after, 'newer');
	}
	setThread(rootId, msgs) {
		if (!msgs) return this.threads.delete(rootId);
		const th = this.threads.get(rootId) || new Map();
		this.threads.set(rootId, th);
		for (const m of msgs) this.putNewer(th, m, m.pos);
		if (msgs[0]) this.emit('messages', msgs[0].room_id);
	}
	applyResume({room_id, messages = [], truncated, pos}) {
		if (truncated) this.timeline(room_id).clear();
		for (const m of messages) this.applyMessage(m, {emit: false});
		this.bumpPos(room_id, pos);
		this.changed(room_id);
		return truncated;
	}
	addPending(roomId, draft) {
		this.timeline(roomId).pending.set(draft.client_id, {...draft, pending: true, failed: null});
		this.emit('messages', roomId);
	}
	setPendingFailed(roomId, clientId, failed) {
		const t = this.timeline(roomId);
		const m = t.pending.get(clientId);
		if (m) t.pending.set(clientId, {...m, failed}), this.emit('messages', roomId);
		return m;
	}
	removePending(roomId, clientId) {
		if (this.timeline(roomId).pending.delete(clientId)) this.emit('messages', roomId);
	}
	applyRead({room_id, user_id, seq}) {
		if (user_id === this.me?.id) this.markReadLocal(room_id, seq);
		if (this.memberRead(room_id, user_id, seq)) this.emit('members', room_id);
	}
	memberRead(roomId, userId, seq) {
		const e = this.members.get(roomId)?.get(userId);
		return e && seq > e.last_read_seq && (e.last_read_seq = seq);
	}
	markReadLocal(roomId, seq) {
		const room = this.rooms.get(roomId);
		if (!room || seq < room.last_read_seq) return;
		room.last_read_seq = seq;
		if (seq >= room.last_seq) room.unread_count = room.mention_count = 0;
		else {
			const rest = (this.timelines.get(roomId)?.sorted() || []).filter(m => m.seq > seq && !m.deleted && !this.isMe(m.author));
			room.unread_count = Math.min(room.unread_count, rest.length);
			room.mention_count = Math.min(room.mention_count, rest.filter(m => m.mentions?.includes(this.me.id)).length);
		}
		this.emit('rooms');
	}
	setMembers(roomId, members) {
		const map = new Map();
		for (const m of members) if (m.user) this.upsertUser(m.user, false), map.set(m.user.id, {role: m.role, last_read_seq: m.last_read_seq || 0});
		this.members.set(roomId, map);
		const room = this.rooms.get(roomId);
		if (room) room.member_count = Math.max(room.member_count || 0, map.size);
		this.emit('users members rooms', roomId);
	}
	memberJoined(roomId, user) {
		this.upsertUser(user, false);
		const map = this.members.get(roomId);
		const room = this.rooms.get(roomId);
		if (map && !map.has(user.id) && !this.isMe(user) && room) room.member_count = (room.member_count || 0) + 1;
		map?.set(user.id, map.get(user.id) || {role: 'member', last_read_seq: 0});
		this.emit('users members rooms', roomId);
	}
	memberLeft(roomId, user) {
		const map = this.members.get(roomId);
		const room = this.rooms.get(roomId);
		if ((!map || map.has(user.id)) && room) room.member_count = Math.max(0, (room.member_count || 1) - 1);
		map?.delete(user.id);
		this.emit('members rooms', roomId);
	}
	setTyping(roomId, ids = []) {
		this.typing.set(roomId, ids.filter(id => id !== this.me?.id));
		this.emit('typing', roomId);
	}
	typingText(roomId) {
		const n = (this.typing.get(roomId) || []).map(id => displayName(this.users.get(id)));
		if (n.length > 3) return 'Several people are typing…';
		if (n.length > 1) return `${n.slice(0, -1).join(', ')} and ${n.at(-1)} are typing…`;
		return n.length ? `${n[0]} is typing…` : '';
	}
}
