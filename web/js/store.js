// Client state: me, rooms, users, members, typing, and each room's timeline.
//
// Every apply* method is idempotent: messages are keyed by id and a copy only
// replaces another when its `pos` is not older, so duplicates from resume, REST
// pages and live events collapse into one. Optimistic messages are keyed by
// `client_id` and disappear when the server's copy (same author, same client_id)
// arrives. Views subscribe with on(topic, fn); topics: me, rooms, users,
// messages (room_id), members (room_id), typing (room_id).

import { displayName } from './util.js';

class Timeline {
  constructor() {
    this.byId = new Map(); // id -> message (server copies)
    this.pending = new Map(); // client_id -> optimistic message
    this.loaded = false; // the newest page has been fetched
    this.loadingOlder = false;
    this.hasOlder = true;
    this._sorted = null;
  }

  sorted() {
    if (!this._sorted) this._sorted = [...this.byId.values()].sort((a, b) => a.seq - b.seq);
    return this._sorted;
  }

  lowestSeq() {
    const s = this.sorted();
    return s.length ? s[0].seq : null;
  }

  put(m) {
    this.byId.set(m.id, m);
    this._sorted = null;
  }

  clear() {
    this.byId.clear();
    this._sorted = null;
    this.loaded = false;
    this.hasOlder = true;
  }
}

export class Store {
  constructor() {
    this.me = null;
    this.users = new Map();
    this.rooms = new Map();
    this.timelines = new Map();
    this.members = new Map(); // room_id -> Map(user_id -> {role, joined_at})
    this.typing = new Map(); // room_id -> [user_id]
    this.seenPos = new Map(); // room_id -> highest pos applied
    this.listeners = new Map();
  }

  on(topic, fn) {
    if (!this.listeners.has(topic)) this.listeners.set(topic, new Set());
    this.listeners.get(topic).add(fn);
    return () => this.listeners.get(topic).delete(fn);
  }

  emit(topic, detail) {
    for (const fn of this.listeners.get(topic) || []) fn(detail);
  }

  // ---- identities -------------------------------------------------------

  setMe(user) {
    this.me = { ...(this.me || {}), ...user };
    this.upsertUser(user);
    this.emit('me');
  }

  user(id) {
    return this.users.get(id) || null;
  }

  /** The freshest copy of a user we know (user_updated beats a message's copy). */
  resolveUser(u) {
    if (!u) return null;
    return this.users.get(u.id) || u;
  }

  upsertUser(user, emit = true) {
    if (!user || !user.id) return;
    const prev = this.users.get(user.id) || {};
    const next = { ...prev, ...user };
    // Profile updates carry no presence; keep what we knew.
    if (user.status === undefined) next.status = prev.status;
    if (user.last_seen_at === undefined) next.last_seen_at = prev.last_seen_at;
    this.users.set(user.id, next);
    if (this.me && user.id === this.me.id) this.me = { ...this.me, ...user };
    if (emit) this.emit('users');
  }

  setPresence({ user_id, status, last_seen_at }) {
    const prev = this.users.get(user_id);
    if (!prev) return;
    this.users.set(user_id, { ...prev, status, last_seen_at: last_seen_at ?? null });
    this.emit('users');
  }

  // ---- rooms ------------------------------------------------------------

  /** Applies the `ready` frame. On a reconnect, known rooms keep their seen pos. */
  applyReady({ user, rooms, users }) {
    this.setMe(user);
    for (const u of users || []) this.upsertUser(u, false);
    const ids = new Set();
    for (const r of rooms || []) {
      ids.add(r.id);
      this._putRoom(r);
      if (!this.seenPos.has(r.id)) this.seenPos.set(r.id, r.pos || 0);
    }
    for (const id of [...this.rooms.keys()]) if (!ids.has(id)) this._dropRoom(id);
    this.emit('users');
    this.emit('rooms');
  }

  _putRoom(r) {
    const prev = this.rooms.get(r.id) || {};
    const next = { ...prev, ...r };
    // Room objects without member fields (e.g. from a broadcast) keep ours.
    for (const k of ['unread_count', 'mention_count', 'last_read_seq', 'role']) {
      if (r[k] === undefined && prev[k] !== undefined) next[k] = prev[k];
    }
    next.unread_count ??= 0;
    next.mention_count ??= 0;
    next.last_read_seq ??= 0;
    next.last_seq = Math.max(prev.last_seq || 0, r.last_seq || 0);
    this.rooms.set(r.id, next);
  }

  upsertRoom(room) {
    if (!room || !room.id) return;
    this._putRoom(room);
    if (!this.seenPos.has(room.id)) this.seenPos.set(room.id, room.pos || 0);
    this.emit('rooms');
  }

  removeRoom(id) {
    if (!this.rooms.has(id)) return;
    this._dropRoom(id);
    this.emit('rooms');
  }

  _dropRoom(id) {
    this.rooms.delete(id);
    this.timelines.delete(id);
    this.members.delete(id);
    this.typing.delete(id);
    this.seenPos.delete(id);
  }

  room(id) {
    return this.rooms.get(id) || null;
  }

  /** Rooms sorted for the sidebar: channels by name, DMs separately. */
  roomLists() {
    const all = [...this.rooms.values()];
    const byName = (a, b) => this.roomTitle(a).localeCompare(this.roomTitle(b), undefined, { sensitivity: 'base' });
    return {
      channels: all.filter((r) => r.kind !== 'dm').sort(byName),
      dms: all.filter((r) => r.kind === 'dm').sort((a, b) => (b.last_seq || 0) - (a.last_seq || 0) || byName(a, b)),
    };
  }

  /** A DM is titled by its other participants, when we know them. */
  roomTitle(room) {
    if (!room) return '';
    if (room.kind !== 'dm') return room.name;
    const members = this.members.get(room.id);
    if (members && this.me) {
      const names = [...members.keys()]
        .filter((id) => id !== this.me.id)
        .map((id) => displayName(this.users.get(id)))
        .sort();
      if (names.length) return names.join(', ');
    }
    return room.name || 'Direct message';
  }

  totalUnread() {
    let n = 0;
    for (const r of this.rooms.values()) n += r.unread_count || 0;
    return n;
  }

  /** The `rooms` map for a gateway `resume` frame. */
  resumeState() {
    const rooms = {};
    for (const id of this.rooms.keys()) rooms[id] = this.seenPos.get(id) || 0;
    return rooms;
  }

  // ---- messages ---------------------------------------------------------

  timeline(roomId) {
    let t = this.timelines.get(roomId);
    if (!t) {
      t = new Timeline();
      this.timelines.set(roomId, t);
    }
    return t;
  }

  /** Server messages in seq order followed by optimistic ones. */
  messagesFor(roomId) {
    const t = this.timeline(roomId);
    return [...t.sorted(), ...t.pending.values()];
  }

  findMessage(roomId, id) {
    return this.timelines.get(roomId)?.byId.get(id) || null;
  }

  _bumpPos(roomId, pos) {
    if (pos == null) return;
    if ((this.seenPos.get(roomId) || 0) < pos) this.seenPos.set(roomId, pos);
  }

  /**
   * Applies one server copy of a message (live event, reply, resume, history).
   * Returns true when it was new to us.
   */
  applyMessage(msg, { pos, reactionChange, emit = true, history = false } = {}) {
    if (!msg || !msg.id) return false;
    const roomId = msg.room_id;
    const room = this.rooms.get(roomId);
    const t = this.timeline(roomId);
    const p = pos ?? msg.pos;
    const prev = t.byId.get(msg.id);
    const isNew = !prev;
    if (isNew && !history && room && msg.seq <= (room.last_seq || 0)) {
      // A change to an older message we do not hold (an edit, a reaction): it
      // only matters inside the range we show; a history page brings it later.
      const lowest = t.lowestSeq();
      if (!t.loaded || lowest == null || msg.seq < lowest) {
        this._bumpPos(roomId, p);
        return false;
      }
    }
    if (prev && (prev.pos ?? 0) > (msg.pos ?? p ?? 0)) {
      // An older copy than ours: nothing to do.
      this._bumpPos(roomId, p);
      return false;
    }
    const next = { ...msg, pos: msg.pos ?? p };
    next.reactions = this._mergeReactions(prev, msg, reactionChange);
    t.put(next);
    if (msg.client_id && this.me && msg.author && msg.author.id === this.me.id) t.pending.delete(msg.client_id);
    this._bumpPos(roomId, p);
    if (msg.author) this._learnUser(msg.author);
    if (room && isNew) {
      if (msg.seq > (room.last_seq || 0)) {
        const mine = this.me && msg.author && msg.author.id === this.me.id;
        if (!mine && !msg.deleted && msg.seq > (room.last_read_seq || 0)) {
          room.unread_count = (room.unread_count || 0) + 1;
          if (this.me && (msg.mentions || []).includes(this.me.id)) room.mention_count = (room.mention_count || 0) + 1;
        }
        if (mine && msg.seq > (room.last_read_seq || 0)) room.last_read_seq = msg.seq;
        room.last_seq = msg.seq;
      }
      if (emit) this.emit('rooms');
    }
    if (emit) this.emit('messages', roomId);
    return isNew;
  }

  // Live events are serialized once for everyone, so their `me` is always false:
  // keep our own `me` per emoji, updated by reaction_change when it is ours.
  _mergeReactions(prev, msg, change) {
    const list = msg.reactions || [];
    if (!change && !prev) return list;
    if (!change && prev && !list.some((r) => r.me)) {
      const mine = new Set((prev.reactions || []).filter((r) => r.me).map((r) => r.emoji));
      return list.map((r) => ({ ...r, me: mine.has(r.emoji) }));
    }
    if (!change) return list;
    const mine = new Set((prev?.reactions || []).filter((r) => r.me).map((r) => r.emoji));
    if (this.me && change.user_id === this.me.id) {
      if (change.add) mine.add(change.emoji);
      else mine.delete(change.emoji);
    }
    return list.map((r) => ({ ...r, me: mine.has(r.emoji) }));
  }

  _learnUser(u) {
    if (!this.users.has(u.id)) this.users.set(u.id, { ...u });
  }

  applyDeleted({ room_id, message_id, seq, pos }) {
    const t = this.timeline(room_id);
    const prev = t.byId.get(message_id);
    this._bumpPos(room_id, pos);
    if (prev) {
      if ((prev.pos ?? 0) > (pos ?? Infinity)) return;
      t.put({ ...prev, deleted: true, body: '', html: '', attachments: [], reactions: [], pos: pos ?? prev.pos });
    } else if (t.loaded && seq != null && t.lowestSeq() != null && seq > t.lowestSeq()) {
      t.put({ id: message_id, room_id, seq, pos, deleted: true, body: '', html: '', author: null, reactions: [], attachments: [], mentions: [] });
    } else {
      return;
    }
    this.emit('messages', room_id);
  }

  /** Merges a history page (ascending by seq). `newest`: the page without a cursor. */
  applyHistory(roomId, { messages, has_more }, { newest = false } = {}) {
    const t = this.timeline(roomId);
    const list = messages || [];
    if (newest && list.length) {
      // Seq is dense: anything we hold below the page that does not join up with
      // it is separated by a gap we cannot see; drop it and page it again.
      const low = list[0].seq;
      const below = t.sorted().filter((m) => m.seq < low);
      if (below.length && below[below.length - 1].seq !== low - 1) {
        for (const m of below) t.byId.delete(m.id);
        t._sorted = null;
      }
    }
    for (const m of list) this.applyMessage(m, { emit: false, history: true });
    if (newest) t.loaded = true;
    // has_more answers for the direction we paged; seq starting at 1 is a floor.
    const lowest = t.lowestSeq();
    t.hasOlder = !!has_more && lowest != null && lowest > 1;
    this.emit('rooms');
    this.emit('messages', roomId);
  }

  /** Applies one room of a `resume` reply. */
  applyResume({ room_id, messages, truncated, pos }) {
    const t = this.timeline(room_id);
    if (truncated) t.clear();
    for (const m of messages || []) {
      if (m.deleted && !t.byId.has(m.id) && !t.loaded) continue;
      this.applyMessage(m, { emit: false });
    }
    this._bumpPos(room_id, pos);
    this.emit('rooms');
    this.emit('messages', room_id);
    return truncated;
  }

  addPending(roomId, draft) {
    const t = this.timeline(roomId);
    t.pending.set(draft.client_id, { ...draft, pending: true, failed: null });
    this.emit('messages', roomId);
  }

  failPending(roomId, clientId, error) {
    const t = this.timeline(roomId);
    const m = t.pending.get(clientId);
    if (!m) return;
    t.pending.set(clientId, { ...m, failed: error || 'Not sent' });
    this.emit('messages', roomId);
  }

  retryPending(roomId, clientId) {
    const t = this.timeline(roomId);
    const m = t.pending.get(clientId);
    if (!m) return null;
    const next = { ...m, failed: null };
    t.pending.set(clientId, next);
    this.emit('messages', roomId);
    return next;
  }

  removePending(roomId, clientId) {
    const t = this.timeline(roomId);
    if (t.pending.delete(clientId)) this.emit('messages', roomId);
  }

  // ---- read state -------------------------------------------------------

  applyRead({ room_id, user_id, seq }) {
    if (!this.me || user_id !== this.me.id) return;
    const room = this.rooms.get(room_id);
    if (!room || seq <= (room.last_read_seq || 0)) return;
    this.markReadLocal(room_id, seq);
  }

  markReadLocal(roomId, seq) {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.last_read_seq = Math.max(room.last_read_seq || 0, seq);
    if (room.last_read_seq >= (room.last_seq || 0)) {
      room.unread_count = 0;
      room.mention_count = 0;
    } else {
      const t = this.timelines.get(roomId);
      const rest = t ? t.sorted().filter((m) => m.seq > room.last_read_seq && !m.deleted && m.author?.id !== this.me.id) : [];
      room.unread_count = Math.min(room.unread_count || 0, Math.max(rest.length, 0));
      room.mention_count = Math.min(room.mention_count || 0, rest.filter((m) => (m.mentions || []).includes(this.me.id)).length);
    }
    this.emit('rooms');
  }

  // ---- members & typing -------------------------------------------------

  setMembers(roomId, members) {
    const map = new Map();
    for (const m of members) {
      if (!m.user) continue;
      this.upsertUser(m.user, false);
      map.set(m.user.id, { role: m.role, joined_at: m.joined_at });
    }
    this.members.set(roomId, map);
    const room = this.rooms.get(roomId);
    if (room) room.member_count = Math.max(room.member_count || 0, map.size);
    this.emit('users');
    this.emit('members', roomId);
    this.emit('rooms');
  }

  memberJoined(roomId, user) {
    this.upsertUser(user, false);
    const map = this.members.get(roomId);
    const room = this.rooms.get(roomId);
    if (map && !map.has(user.id)) {
      map.set(user.id, { role: 'member', joined_at: new Date().toISOString() });
      if (room) room.member_count = Math.max(room.member_count || 0, map.size);
    }
    this.emit('users');
    this.emit('members', roomId);
    this.emit('rooms');
  }

  memberLeft(roomId, user) {
    const map = this.members.get(roomId);
    const room = this.rooms.get(roomId);
    if (map && map.delete(user.id) && room) room.member_count = Math.max(0, (room.member_count || 1) - 1);
    this.emit('members', roomId);
    this.emit('rooms');
  }

  setTyping(roomId, userIds) {
    const ids = (userIds || []).filter((id) => !this.me || id !== this.me.id);
    this.typing.set(roomId, ids);
    this.emit('typing', roomId);
  }

  /** "alice is typing…", "alice and bob are typing…", "Several people are typing…". */
  typingText(roomId) {
    const ids = this.typing.get(roomId) || [];
    const names = ids.map((id) => displayName(this.users.get(id)));
    if (names.length === 0) return '';
    if (names.length === 1) return `${names[0]} is typing…`;
    if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
    if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
    return 'Several people are typing…';
  }
}
