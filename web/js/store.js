// Client state: me, rooms, users, members, typing and each room's timeline.
//
// Every apply* is idempotent: messages are keyed by id and a copy replaces
// another only when its `pos` is not older, so the same message arriving from
// resume, a REST page, a reply and a live event is kept once. Optimistic
// messages are keyed by client_id and leave when the server's copy (same author,
// same client_id) arrives. Views subscribe with on(topic, fn); topics: me, rooms,
// users, messages (room_id), members (room_id), typing (room_id).

import { displayName } from './util.js';

class Timeline {
  byId = new Map(); // id -> server copy
  pending = new Map(); // client_id -> optimistic message
  loaded = false; // the newest page was fetched
  loadingOlder = false;
  hasOlder = false;
  #sorted = null;
  sorted() {
    return (this.#sorted ??= [...this.byId.values()].sort((a, b) => a.seq - b.seq));
  }
  lowestSeq() {
    return this.sorted()[0]?.seq ?? null;
  }
  put(m) {
    this.byId.set(m.id, m);
    this.#sorted = null;
  }
  drop(id) {
    this.byId.delete(id);
    this.#sorted = null;
  }
  clear() {
    this.byId.clear();
    this.#sorted = null;
    this.loaded = this.hasOlder = false;
  }
}

const MEMBER_FIELDS = ['unread_count', 'mention_count', 'last_read_seq', 'role'];

export class Store {
  me = null;
  users = new Map();
  rooms = new Map();
  timelines = new Map();
  members = new Map(); // room_id -> Map(user_id -> {role})
  typing = new Map(); // room_id -> [user_id]
  seenPos = new Map(); // room_id -> highest pos applied (what `resume` starts from)
  listeners = new Map();

  on(topic, fn) {
    if (!this.listeners.has(topic)) this.listeners.set(topic, new Set());
    this.listeners.get(topic).add(fn);
  }

  emit(topic, detail) {
    for (const fn of this.listeners.get(topic) || []) fn(detail);
  }

  // ---- people ----

  setMe(user) {
    this.me = { ...this.me, ...user };
    this.upsertUser(user);
    this.emit('me');
  }

  user(id) {
    return this.users.get(id) || null;
  }

  /** The freshest copy of a user (a user_updated beats a message's embedded copy). */
  resolveUser(u) {
    return u ? this.users.get(u.id) || u : null;
  }

  isMe(u) {
    return !!(u && this.me && u.id === this.me.id);
  }

  upsertUser(user, emit = true) {
    if (!user?.id) return;
    const prev = this.users.get(user.id) || {};
    // Profile updates carry no presence: keep what we knew.
    this.users.set(user.id, { ...prev, ...user, status: user.status ?? prev.status, last_seen_at: user.last_seen_at !== undefined ? user.last_seen_at : prev.last_seen_at });
    if (this.isMe(user)) this.me = { ...this.me, ...user };
    if (emit) this.emit('users');
  }

  setPresence({ user_id, status, last_seen_at }) {
    const u = this.users.get(user_id);
    if (!u) return;
    this.users.set(user_id, { ...u, status, last_seen_at: last_seen_at ?? null });
    this.emit('users');
  }

  // ---- rooms ----

  /** Applies `ready`. On a reconnect, known rooms keep the pos we saw, so resume fills the gap. */
  applyReady({ user, rooms = [], users = [] }) {
    this.setMe(user);
    for (const u of users) this.upsertUser(u, false);
    const ids = new Set(rooms.map((r) => r.id));
    for (const id of [...this.rooms.keys()]) if (!ids.has(id)) this.dropRoom(id);
    for (const r of rooms) this.putRoom(r);
    this.emit('users');
    this.emit('rooms');
  }

  putRoom(r) {
    const prev = this.rooms.get(r.id) || {};
    const next = { unread_count: 0, mention_count: 0, last_read_seq: 0, ...prev, ...r };
    // A room object without member fields (a broadcast update) keeps ours.
    for (const k of MEMBER_FIELDS) if (r[k] === undefined && prev[k] !== undefined) next[k] = prev[k];
    next.last_seq = Math.max(prev.last_seq || 0, r.last_seq || 0);
    this.rooms.set(r.id, next);
    if (!this.seenPos.has(r.id)) this.seenPos.set(r.id, r.pos || 0);
  }

  upsertRoom(room) {
    if (!room?.id) return;
    this.putRoom(room);
    this.emit('rooms');
  }

  removeRoom(id) {
    if (!this.rooms.has(id)) return;
    this.dropRoom(id);
    this.emit('rooms');
  }

  dropRoom(id) {
    for (const m of [this.rooms, this.timelines, this.members, this.typing, this.seenPos]) m.delete(id);
  }

  room(id) {
    return this.rooms.get(id) || null;
  }

  /** Sidebar order: rooms by name; DMs by recent activity. */
  roomLists() {
    const all = [...this.rooms.values()];
    const byName = (a, b) => this.roomTitle(a).localeCompare(this.roomTitle(b), undefined, { sensitivity: 'base' });
    return {
      channels: all.filter((r) => r.kind !== 'dm').sort(byName),
      dms: all.filter((r) => r.kind === 'dm').sort((a, b) => (b.last_seq || 0) - (a.last_seq || 0) || byName(a, b)),
    };
  }

  /** A DM is titled by its other participants, once we know them. */
  roomTitle(room) {
    if (!room) return '';
    if (room.kind !== 'dm') return room.name;
    const ids = [...(this.members.get(room.id)?.keys() || [])].filter((id) => id !== this.me?.id);
    return ids.map((id) => displayName(this.users.get(id))).sort().join(', ') || room.name || 'Direct message';
  }

  totalUnread() {
    let n = 0;
    for (const r of this.rooms.values()) n += r.unread_count || 0;
    return n;
  }

  /** The `rooms` map of a gateway `resume` frame. */
  resumeState() {
    return Object.fromEntries([...this.rooms.keys()].map((id) => [id, this.seenPos.get(id) || 0]));
  }

  // ---- messages ----

  timeline(roomId) {
    let t = this.timelines.get(roomId);
    if (!t) this.timelines.set(roomId, (t = new Timeline()));
    return t;
  }

  /** Server copies in seq order, then optimistic ones. */
  messagesFor(roomId) {
    const t = this.timeline(roomId);
    return [...t.sorted(), ...t.pending.values()];
  }

  findMessage(roomId, id) {
    return this.timelines.get(roomId)?.byId.get(id) || null;
  }

  bumpPos(roomId, pos) {
    if (pos != null && (this.seenPos.get(roomId) || 0) < pos) this.seenPos.set(roomId, pos);
  }

  /** Applies a server copy of a message (event, reply, resume or history). */
  applyMessage(msg, { pos, reactionChange, emit = true, history = false } = {}) {
    if (!msg?.id) return;
    const roomId = msg.room_id;
    const room = this.rooms.get(roomId);
    const t = this.timeline(roomId);
    const p = pos ?? msg.pos;
    const prev = t.byId.get(msg.id);
    this.bumpPos(roomId, p);
    if (prev && (prev.pos ?? 0) > (msg.pos ?? p ?? 0)) return; // we hold a newer copy
    if (!prev && !history && room && msg.seq <= (room.last_seq || 0)) {
      // A change to an older message we do not hold: it only matters inside the
      // range on screen; history pages bring the rest later.
      const low = t.lowestSeq();
      if (!t.loaded || low == null || msg.seq < low) return;
    }
    t.put({ ...msg, pos: msg.pos ?? p, reactions: this.mergeReactions(prev, msg, reactionChange) });
    if (msg.client_id && this.isMe(msg.author)) t.pending.delete(msg.client_id);
    if (msg.author && !this.users.has(msg.author.id)) this.users.set(msg.author.id, { ...msg.author });
    if (room && !prev && msg.seq > (room.last_seq || 0)) {
      const mine = this.isMe(msg.author);
      if (!mine && !msg.deleted && msg.seq > room.last_read_seq) {
        room.unread_count++;
        if ((msg.mentions || []).includes(this.me?.id)) room.mention_count++;
      }
      if (mine) room.last_read_seq = Math.max(room.last_read_seq, msg.seq);
      room.last_seq = msg.seq;
    }
    if (emit) {
      this.emit('rooms');
      this.emit('messages', roomId);
    }
  }

  // Live events are serialized once for everyone, so their `me` is always false:
  // keep our own per emoji, changed only by a reaction_change that is ours.
  mergeReactions(prev, msg, change) {
    const list = msg.reactions || [];
    if (!prev || (!change && list.some((r) => r.me))) return list;
    const mine = new Set((prev.reactions || []).filter((r) => r.me).map((r) => r.emoji));
    if (change && this.isMe({ id: change.user_id })) mine[change.add ? 'add' : 'delete'](change.emoji);
    return list.map((r) => ({ ...r, me: mine.has(r.emoji) }));
  }

  applyDeleted({ room_id, message_id, seq, pos }) {
    const t = this.timeline(room_id);
    const prev = t.byId.get(message_id);
    this.bumpPos(room_id, pos);
    const tomb = { deleted: true, body: '', html: '', attachments: [], reactions: [] };
    if (prev) {
      if ((prev.pos ?? 0) > (pos ?? Infinity)) return;
      t.put({ ...prev, ...tomb, pos: pos ?? prev.pos });
    } else if (t.loaded && seq > (t.lowestSeq() ?? Infinity)) {
      t.put({ id: message_id, room_id, seq, pos, author: null, mentions: [], ...tomb });
    } else return;
    this.emit('messages', room_id);
  }

  /** Merges a history page (ascending seq). `newest`: the page without a cursor. */
  applyHistory(roomId, { messages = [], has_more }, newest = false) {
    const t = this.timeline(roomId);
    if (newest && messages.length) {
      // Seq is dense: what we hold below the page and does not join up with it is
      // cut off by a gap we cannot see; drop it, it pages in again.
      const low = messages[0].seq;
      const below = t.sorted().filter((m) => m.seq < low);
      if (below.length && below[below.length - 1].seq !== low - 1) for (const m of below) t.drop(m.id);
    }
    for (const m of messages) this.applyMessage(m, { emit: false, history: true });
    if (newest) t.loaded = true;
    t.hasOlder = !!has_more && (t.lowestSeq() ?? 0) > 1;
    this.emit('rooms');
    this.emit('messages', roomId);
  }

  /** Applies one room of a `resume` reply; returns whether it was truncated. */
  applyResume({ room_id, messages = [], truncated, pos }) {
    if (truncated) this.timeline(room_id).clear();
    for (const m of messages) this.applyMessage(m, { emit: false });
    this.bumpPos(room_id, pos);
    this.emit('rooms');
    this.emit('messages', room_id);
    return truncated;
  }

  addPending(roomId, draft) {
    this.timeline(roomId).pending.set(draft.client_id, { ...draft, pending: true, failed: null });
    this.emit('messages', roomId);
  }

  /** Marks an optimistic message failed (error text) or sending again (null). */
  setPendingFailed(roomId, clientId, failed) {
    const t = this.timeline(roomId);
    const m = t.pending.get(clientId);
    if (!m) return null;
    t.pending.set(clientId, { ...m, failed });
    this.emit('messages', roomId);
    return m;
  }

  removePending(roomId, clientId) {
    if (this.timeline(roomId).pending.delete(clientId)) this.emit('messages', roomId);
  }

  // ---- read state ----

  /** A `read` event: ours (from any device) clears the badge. */
  applyRead({ room_id, user_id, seq }) {
    if (user_id === this.me?.id) this.markReadLocal(room_id, seq);
  }

  markReadLocal(roomId, seq) {
    const room = this.rooms.get(roomId);
    if (!room || seq < room.last_read_seq) return;
    room.last_read_seq = seq;
    if (seq >= room.last_seq) room.unread_count = room.mention_count = 0;
    else {
      const rest = (this.timelines.get(roomId)?.sorted() || []).filter((m) => m.seq > seq && !m.deleted && !this.isMe(m.author));
      room.unread_count = Math.min(room.unread_count, rest.length);
      room.mention_count = Math.min(room.mention_count, rest.filter((m) => (m.mentions || []).includes(this.me.id)).length);
    }
    this.emit('rooms');
  }

  // ---- members & typing ----

  setMembers(roomId, members) {
    const map = new Map();
    for (const m of members) {
      if (!m.user) continue;
      this.upsertUser(m.user, false);
      map.set(m.user.id, { role: m.role });
    }
    this.members.set(roomId, map);
    const room = this.rooms.get(roomId);
    if (room) room.member_count = Math.max(room.member_count || 0, map.size);
    this.emit('users');
    this.emit('members', roomId);
    this.emit('rooms');
  }

  // Only small rooms send these; the events are not replayed, so counting them
  // is safe. Our own join comes with a fresh room object instead.
  memberJoined(roomId, user) {
    this.upsertUser(user, false);
    const map = this.members.get(roomId);
    const room = this.rooms.get(roomId);
    if (!map?.has(user.id) && !this.isMe(user) && room) room.member_count = (room.member_count || 0) + 1;
    map?.set(user.id, map.get(user.id) || { role: 'member' });
    this.emit('users');
    this.emit('members', roomId);
    this.emit('rooms');
  }

  memberLeft(roomId, user) {
    const map = this.members.get(roomId);
    const room = this.rooms.get(roomId);
    if ((!map || map.has(user.id)) && room) room.member_count = Math.max(0, (room.member_count || 1) - 1);
    map?.delete(user.id);
    this.emit('members', roomId);
    this.emit('rooms');
  }

  setTyping(roomId, ids = []) {
    this.typing.set(roomId, ids.filter((id) => id !== this.me?.id));
    this.emit('typing', roomId);
  }

  /** "alice is typing…", "alice and bob are typing…", … */
  typingText(roomId) {
    const n = (this.typing.get(roomId) || []).map((id) => displayName(this.users.get(id)));
    if (n.length > 3) return 'Several people are typing…';
    if (n.length > 1) return `${n.slice(0, -1).join(', ')} and ${n[n.length - 1]} are typing…`;
    return n.length ? `${n[0]} is typing…` : '';
  }
}
