// The signed-in app: wires the gateway connection and the REST API to the store,
// and the store to the views. Views stay thin; state rules live in store.js and
// delivery rules in connection.js.

import { api } from './api.js';
import { Connection } from './connection.js';
import { Store } from './store.js';
import { copyText, displayName, el, hydrateIcons, icon, uuid } from './util.js';
import { ComposerView } from './views/composer.js';
import * as dialogs from './views/dialogs.js';
import { HeaderView } from './views/header.js';
import { MembersView } from './views/members.js';
import { MessagesView } from './views/messages.js';
import { RoomsView } from './views/rooms.js';

const KEY = { room: 'hubbub-last-room', notify: 'hubbub-notify', theme: 'hubbub-theme', members: 'hubbub-members-hidden' };
const ENDED = 'Your session has ended. Join again to continue.';
const store_ = {
  get: (k) => {
    try {
      return localStorage.getItem(k);
    } catch {
      return null;
    }
  },
  set: (k, v) => {
    try {
      v == null ? localStorage.removeItem(k) : localStorage.setItem(k, v);
    } catch {}
  },
};

export const roomIdFromPath = () => decodeURIComponent(location.pathname.match(/^\/r\/([^/]+)\/?$/)?.[1] || '') || null;

export function toast(message, kind = 'info') {
  const t = el(`div.toast.toast-${kind}`, icon(kind === 'error' ? 'x' : 'check'), el('span', message));
  document.getElementById('toasts')?.append(t);
  setTimeout(() => (t.classList.add('leaving'), setTimeout(() => t.remove(), 300)), 4000);
}

export class App {
  constructor(root, user, onSignedOut) {
    Object.assign(this, { root, onSignedOut, store: new Store(), conn: new Connection(), activeId: null, link: roomIdFromPath(), started: false, queued: new Set() });
    this.store.setMe(user);
  }

  start() {
    this.root.replaceChildren(document.getElementById('tpl-app').content.cloneNode(true));
    hydrateIcons(this.root);
    const $ = (this.$ = (r) => this.root.querySelector(`[data-ref="${r}"]`));
    const { store } = this;
    this.appEl = $('app');
    this.typingEl = $('typing');
    this.header = new HeaderView({ conn: $('conn'), connText: $('conn-text'), roomName: $('room-name'), roomTopic: $('room-topic'), invite: $('invite'),
      copyLink: $('copy-link'), leave: $('leave'), memberCount: $('member-count'), toggleMembers: $('toggle-members'), banner: $('banner') }, store);
    this.roomsView = new RoomsView($('nav'), store, (id) => this.openRoom(id));
    this.membersView = new MembersView($('members-body'), store, (id) => dialogs.userCard(this.ctx(), id));
    this.messagesView = new MessagesView($('log'), $('jump'), store, {
      onBottom: () => this.markRead(),
      loadOlder: (id) => this.loadOlder(id),
      reply: (m) => (this.composer.setReply(m), this.composer.focus()),
      copy: async (m) => toast((await copyText(m.body || '')) ? 'Message copied' : 'Could not copy'),
      edit: (m, body) => this.editMessage(m, body),
      remove: (m) => this.deleteMessage(m),
      react: (m, emoji, add) => this.conn.request({ type: 'react', message_id: m.id, emoji, add }).catch((e) => toast(`Could not react: ${e.message}`, 'error')),
      retry: (m) => store.setPendingFailed(m.room_id, m.client_id, null) && this.transmit(m),
      discard: (m) => (this.conn.discard(m.client_id), store.removePending(m.room_id, m.client_id)),
      openUser: (id) => dialogs.userCard(this.ctx(), id),
      toast,
      focusComposer: () => this.composer.focus(),
      isConnected: () => this.conn.connected,
    });
    this.composer = new ComposerView({ form: $('composer'), input: $('input'), send: $('send'), reply: $('reply'), replyText: $('reply-text'), replyCancel: $('reply-cancel') }, store, {
      send: (roomId, body, replyTo) => this.send(roomId, body, replyTo),
      typing: (roomId, active) => this.conn.notify({ type: 'typing', room_id: roomId, active }),
      editLast: () => this.messagesView.editLast(),
    });

    // Store → views, batched per microtask.
    store.on('rooms', () => this.schedule('rooms', 'header'));
    store.on('messages', (id) => this.schedule('rooms', id === this.activeId && 'messages'));
    store.on('users', () => this.schedule('members', 'messages', 'me', 'typing', 'header'));
    store.on('members', (id) => this.schedule(id === this.activeId && 'members', store.room(id)?.kind === 'dm' && 'rooms', 'header'));
    store.on('typing', (id) => this.schedule(id === this.activeId && 'typing'));
    store.on('me', () => this.schedule('me'));

    this.wireChrome();
    this.wireConnection();
    this.renderMe();
    this.conn.start();
  }

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
    if (part === 'rooms') this.roomsView.render();
    else if (part === 'members') this.membersView.render();
    else if (part === 'me') this.renderMe();
    else if (part === 'typing') this.renderTyping();
    else if (part === 'messages' && this.activeId) {
      this.messagesView.render();
      this.markRead();
    } else if (part === 'header') {
      if (this.activeId) this.header.render(this.activeId), this.updateGate();
      document.title = this.header.title();
    }
  }

  /** What the dialogs work with. */
  ctx() {
    return {
      store: this.store,
      onJoined: (room) => this.onRoomJoined(room),
      onOpen: (id) => this.openRoom(id),
      onProfile: (user) => user?.id && this.store.setMe(user),
      startDm: (id) => this.startDm(id),
      notificationsEnabled: () => this.notificationsEnabled(),
      setNotifications: (on) => this.setNotifications(on),
    };
  }

  wireChrome() {
    const { $ } = this;
    const on = (ref, fn) => $(ref).addEventListener('click', fn);
    on('browse', () => dialogs.browseRooms(this.ctx()));
    on('create', () => dialogs.createRoom(this.ctx()));
    on('profile', () => dialogs.profile(this.ctx()));
    on('logout', () => this.signOut());
    on('theme', () => this.toggleTheme());
    on('invite', () => this.store.room(this.activeId) && dialogs.invite(this.ctx(), this.store.room(this.activeId)));
    on('copy-link', async () => toast((await copyText(`${location.origin}/r/${encodeURIComponent(this.activeId)}`)) ? 'Room link copied' : 'Could not copy the link'));
    on('leave', () => this.leaveRoom());
    on('toggle-rooms', () => this.setDrawer(this.appEl.dataset.drawer === 'rooms' ? '' : 'rooms'));
    on('close-members', () => this.setDrawer(''));
    on('scrim', () => this.setDrawer(''));
    on('toggle-members', () => {
      if (this.narrow.matches) return this.setDrawer(this.appEl.dataset.drawer === 'members' ? '' : 'members');
      const hidden = this.appEl.classList.toggle('members-hidden');
      $('toggle-members').setAttribute('aria-expanded', !hidden);
      store_.set(KEY.members, hidden ? '1' : null);
    });
    if (store_.get(KEY.members)) {
      this.appEl.classList.add('members-hidden');
      $('toggle-members').setAttribute('aria-expanded', 'false');
    }
    $('create').hidden = this.store.me.kind === 'guest';
    this.narrow = matchMedia('(max-width: 767.98px)');
    this.dark = matchMedia('(prefers-color-scheme: dark)');
    // Window-level listeners, removed on teardown.
    this.listeners = [
      [document, 'keydown', (e) => e.key === 'Escape' && this.appEl.dataset.drawer && !document.querySelector('dialog[open]') && this.setDrawer('')],
      [window, 'focus', () => this.markRead()],
      [document, 'visibilitychange', () => this.markRead()],
      [window, 'popstate', () => {
        const id = roomIdFromPath();
        if (id && id !== this.activeId && this.store.room(id)) this.openRoom(id, false);
      }],
      [this.narrow, 'change', () => this.setDrawer('')],
      [this.dark, 'change', () => this.renderTheme()],
    ];
    for (const [t, ev, fn] of this.listeners) t.addEventListener(ev, fn);
    this.renderTheme();
  }

  setDrawer(which) {
    const { $ } = this;
    this.appEl.dataset.drawer = which;
    $('scrim').hidden = !which;
    $('toggle-rooms').setAttribute('aria-expanded', which === 'rooms');
    if (this.narrow.matches) $('toggle-members').setAttribute('aria-expanded', which === 'members');
    if (which === 'rooms') $('nav').querySelector('a')?.focus();
    if (which === 'members') $('close-members').focus();
  }

  // ---- connection ----

  wireConnection() {
    const { conn, store } = this;
    conn.addEventListener('state', ({ detail: { state } }) => {
      this.header.setConnection(state);
      // Typing state lives on the server; without it, ours is stale.
      if (state !== 'connected') for (const id of store.typing.keys()) store.setTyping(id, []);
      this.schedule('messages');
    });
    conn.addEventListener('ready', (e) => this.onReady(e.detail.frame, e.detail.reconnect));
    conn.addEventListener('event', (e) => this.onEvent(e.detail.frame));
    conn.addEventListener('unauthorized', () => this.end(ENDED));
  }

  async onReady(frame, reconnect) {
    const { store, conn } = this;
    store.applyReady(frame);
    if (reconnect) {
      try {
        const res = await conn.request({ type: 'resume', rooms: store.resumeState() }, 30000);
        for (const r of res?.rooms || []) if (store.applyResume(r) && r.room_id === this.activeId) this.loadNewest(r.room_id);
      } catch {
        // No resume: refetch what is on screen instead.
        if (this.activeId) store.timeline(this.activeId).clear(), this.loadNewest(this.activeId);
      }
      // Memberships may have changed while we were away.
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
    const handlers = {
      message: () => s.applyMessage(f.message, { pos: f.pos }),
      message_updated: () => s.applyMessage(f.message, { pos: f.pos, reactionChange: f.reaction_change }),
      message_deleted: () => s.applyDeleted(f),
      typing: () => s.setTyping(f.room_id, f.user_ids),
      presence: () => s.setPresence(f),
      member_joined: () => s.memberJoined(f.room_id, f.user),
      member_left: () => s.memberLeft(f.room_id, f.user),
      user_updated: () => s.upsertUser(f.user),
      room_updated: () => {
        s.upsertRoom(f.room);
        if (f.room?.kind === 'dm' && !s.members.has(f.room.id)) this.loadMembers(f.room.id);
      },
      room_removed: () => this.onRoomRemoved(f.room_id, f.reason),
      read: () => s.applyRead(f),
      notification: () => this.notify(f.room_id, f.message),
    };
    handlers[f.type]?.();
  }

  onRoomRemoved(id, reason) {
    const room = this.store.room(id);
    if (!room) return;
    const name = this.store.roomTitle(room);
    this.store.removeRoom(id);
    if (reason === 'deleted') toast(`#${name} was deleted`);
    if (reason === 'removed') toast(`You were removed from #${name}`);
    if (id === this.activeId) this.openDefault();
  }

  teardown() {
    this.conn.stop();
    clearInterval(this.gateTimer);
    for (const [t, ev, fn] of this.listeners) t.removeEventListener(ev, fn);
    for (const d of document.querySelectorAll('dialog')) d.remove();
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

  // ---- rooms ----

  openDefault() {
    const { store } = this;
    const last = store_.get(KEY.room);
    const { channels, dms } = store.roomLists();
    const room = store.room(last) || channels.find((r) => r.name === 'General') || channels[0] || dms[0];
    if (room) return this.openRoom(room.id, false);
    this.activeId = null;
    this.header.render(null);
    this.messagesView.roomId = null;
    this.$('log').replaceChildren(el('div.room-intro', el('h2', 'No rooms yet'), el('p.muted', 'Browse rooms to join one.')));
    this.composer.setBlocked('Join a room to start chatting');
  }

  /** Opening /r/{id}: join the room (asking for its password) and open it. */
  async joinFromLink(id) {
    try {
      const room = await api.room(id);
      const joined = room.joined ? room : room.has_password ? await dialogs.joinWithPassword(room) : await api.joinRoom(id);
      if (!joined) return false;
      this.onRoomJoined(joined.id ? joined : room);
      return true;
    } catch (e) {
      toast(dialogs.joinErrorText(e), 'error');
      return false;
    }
  }

  onRoomJoined(room) {
    this.store.upsertRoom({ ...room, joined: true });
    this.openRoom(room.id);
  }

  openRoom(id, push = true) {
    const { store } = this;
    if (!store.room(id)) return;
    this.activeId = id;
    store_.set(KEY.room, id);
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
    if (!store.timeline(id).loaded) this.loadNewest(id);
    if (!store.members.has(id)) this.loadMembers(id);
    this.markRead();
    if (!this.narrow.matches) this.composer.focus();
  }

  async loadNewest(id) {
    try {
      this.store.applyHistory(id, await api.messages(id, { limit: 50 }), true);
    } catch (e) {
      if (e.status === 401) return this.end(ENDED);
      toast(`Could not load messages: ${e.message}`, 'error');
    }
  }

  async loadOlder(id) {
    const t = this.store.timeline(id);
    const before = t.lowestSeq();
    if (t.loadingOlder || !t.hasOlder || before == null) return;
    t.loadingOlder = true;
    this.schedule(id === this.activeId && 'messages');
    try {
      const page = await api.messages(id, { before_seq: before, limit: 50 });
      t.loadingOlder = false;
      this.store.applyHistory(id, page);
    } catch (e) {
      t.loadingOlder = false;
      toast(`Could not load older messages: ${e.message}`, 'error');
      this.schedule(id === this.activeId && 'messages');
    }
  }

  async loadMembers(id) {
    try {
      this.store.setMembers(id, await api.members(id));
    } catch {} // the panel keeps saying "Loading"; the next open or reconnect retries
  }

  async leaveRoom() {
    const room = this.store.room(this.activeId);
    if (!room) return;
    try {
      await api.leaveRoom(room.id);
      this.store.removeRoom(room.id);
      toast(`You left #${room.name}`);
      this.openDefault();
    } catch (e) {
      toast(e.message, 'error');
    }
  }

  async startDm(userId) {
    const room = await api.dm([userId]);
    this.store.upsertRoom({ ...room, joined: true });
    await this.loadMembers(room.id);
    this.openRoom(room.id);
  }

  updateGate() {
    const tick = () => {
      const g = this.header.renderBanner(this.activeId);
      this.composer.setBlocked(g.blocked);
      return g.ticking;
    };
    clearInterval(this.gateTimer);
    if (tick()) this.gateTimer = setInterval(() => tick() || clearInterval(this.gateTimer), 1000);
  }

  renderTyping() {
    const text = this.store.typingText(this.activeId);
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

  /** Sends `read` when the open room is on screen: focused window, scrolled to the bottom. */
  markRead() {
    const room = this.store.room(this.activeId);
    if (!room || !this.conn.connected || document.hidden || !document.hasFocus() || !this.messagesView.stick) return;
    const t = this.store.timeline(room.id);
    const last = t.sorted().at(-1)?.seq || 0;
    if (!t.loaded || last <= room.last_read_seq) {
      if (room.unread_count && t.loaded && last >= room.last_seq) this.store.markReadLocal(room.id, last);
      return;
    }
    this.conn.notify({ type: 'read', room_id: room.id, seq: last });
    this.store.markReadLocal(room.id, last);
  }

  // ---- messages ----

  send(roomId, body, replyTo) {
    const draft = { client_id: uuid(), room_id: roomId, body, reply_to: replyTo, author: this.store.me, created_at: new Date().toISOString(), mentions: [], reactions: [], attachments: [] };
    this.store.addPending(roomId, draft);
    this.transmit(draft);
  }

  transmit({ room_id, client_id, body, reply_to }) {
    this.conn
      .sendMessage({ type: 'send', room_id, client_id, body, ...(reply_to ? { reply_to } : {}) })
      .then((msg) => (msg?.id ? this.store.applyMessage(msg) : this.store.removePending(room_id, client_id)))
      .catch((e) => e.code !== 'discarded' && this.store.setPendingFailed(room_id, client_id, e.message || 'Not sent'));
  }

  async editMessage(m, body) {
    try {
      const msg = await this.conn.request({ type: 'edit', message_id: m.id, body });
      if (msg?.id) this.store.applyMessage(msg);
      return true;
    } catch (e) {
      toast(`Could not edit: ${e.message}`, 'error');
      return false;
    }
  }

  async deleteMessage(m) {
    try {
      await this.conn.request({ type: 'delete', message_id: m.id });
      this.store.applyDeleted({ room_id: m.room_id, message_id: m.id, seq: m.seq });
    } catch (e) {
      toast(`Could not delete: ${e.message}`, 'error');
    }
  }

  // ---- notifications & theme ----

  notificationsEnabled() {
    return window.Notification?.permission === 'granted' && store_.get(KEY.notify) === '1';
  }

  async setNotifications(on) {
    if (!window.Notification) return toast('This browser does not support notifications.', 'error'), false;
    const ok = on && (Notification.permission === 'granted' || (await Notification.requestPermission()) === 'granted');
    if (on && !ok) toast('Notifications are blocked for this site.', 'error');
    store_.set(KEY.notify, ok ? '1' : null);
    return ok;
  }

  /** A desktop notification for a mention or DM, when the tab is hidden and the user opted in. */
  notify(roomId, m) {
    if (!m || !document.hidden || !this.notificationsEnabled()) return;
    const room = this.store.room(roomId);
    const who = displayName(this.store.resolveUser(m.author));
    try {
      const n = new Notification(room?.kind === 'dm' ? who : `${who} in #${room?.name || 'a room'}`, { body: (m.body || '').slice(0, 200), icon: m.author?.avatar_url, tag: m.id });
      n.onclick = () => (focus(), this.openRoom(roomId), n.close());
    } catch {} // some platforms only notify from a service worker
  }

  toggleTheme() {
    const next = this.isDark() ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    store_.set(KEY.theme, next);
    this.renderTheme();
  }

  isDark() {
    const t = document.documentElement.dataset.theme;
    return t ? t === 'dark' : this.dark.matches;
  }

  renderTheme() {
    const btn = this.$('theme');
    btn.replaceChildren(icon(this.isDark() ? 'sun' : 'moon'));
    btn.title = this.isDark() ? 'Switch to light theme' : 'Switch to dark theme';
  }
}
