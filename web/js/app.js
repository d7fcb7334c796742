// The signed-in application: wires the gateway connection and the REST API to
// the store, and the store to the views. Views stay thin; the rules live in
// store.js (state) and connection.js (delivery).

import { api } from './api.js';
import { Connection } from './connection.js';
import { Store } from './store.js';
import { copyText, displayName, el, hydrateIcons, icon, uuid } from './util.js';
import { ComposerView } from './views/composer.js';
import * as dialogs from './views/dialogs.js';
import { HeaderView, roomGate } from './views/header.js';
import { MembersView } from './views/members.js';
import { MessagesView } from './views/messages.js';
import { RoomsView } from './views/rooms.js';

const LAST_ROOM_KEY = 'hubbub-last-room';
const NOTIFY_KEY = 'hubbub-notify';
const THEME_KEY = 'hubbub-theme';

export function roomIdFromPath() {
  const m = location.pathname.match(/^\/r\/([^/]+)\/?$/);
  return m ? decodeURIComponent(m[1]) : null;
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = el('div', { class: `toast toast-${kind}` }, icon(kind === 'error' ? 'x' : 'check'), el('span', { text: message }));
  box.appendChild(t);
  setTimeout(() => {
    t.classList.add('leaving');
    setTimeout(() => t.remove(), 300);
  }, 4000);
}

export class App {
  constructor(root, user, { onSignedOut }) {
    this.root = root;
    this.onSignedOut = onSignedOut;
    this.store = new Store();
    this.store.setMe(user);
    this.conn = new Connection();
    this.activeId = null;
    this.pendingLink = roomIdFromPath();
    this.started = false;
    this.renderQueued = new Set();
    this.gateTimer = null;
    this.gate = null;
  }

  // ---- setup ---------------------------------------------------------------------

  start() {
    const tpl = document.getElementById('tpl-app');
    this.root.replaceChildren(tpl.content.cloneNode(true));
    hydrateIcons(this.root);
    const $ = (ref) => this.root.querySelector(`[data-ref="${ref}"]`);
    this.$ = $;
    this.appEl = $('app');
    const store = this.store;

    this.header = new HeaderView(
      {
        conn: $('conn'),
        connText: $('conn-text'),
        roomName: $('room-name'),
        roomTopic: $('room-topic'),
        invite: $('invite'),
        copyLink: $('copy-link'),
        leave: $('leave'),
        memberCount: $('member-count'),
        toggleMembers: $('toggle-members'),
        banner: $('banner'),
      },
      store,
    );
    this.roomsView = new RoomsView($('nav'), store, { onOpen: (id) => this.openRoom(id) });
    this.membersView = new MembersView($('members-body'), $('member-count'), store, { onSelect: (id) => dialogs.userCard(this.ctx(), id) });
    this.messagesView = new MessagesView($('log'), $('jump'), store, {
      onBottom: () => this.maybeMarkRead(),
      loadOlder: (id) => this.loadOlder(id),
      reply: (m) => {
        this.composer.setReply(m);
        this.composer.focus();
      },
      copy: async (m) => toast((await copyText(m.body || '')) ? 'Message copied' : 'Could not copy', 'info'),
      edit: (m, body) => this.editMessage(m, body),
      remove: (m) => this.deleteMessage(m),
      react: (m, emoji, add) => this.react(m, emoji, add),
      retry: (m) => this.retry(m),
      discard: (m) => this.discard(m),
      openUser: (id) => dialogs.userCard(this.ctx(), id),
      toast: (msg) => toast(msg),
      focusComposer: () => this.composer.focus(),
      isConnected: () => this.conn.connected,
    });
    this.composer = new ComposerView(
      {
        form: $('composer'),
        input: $('input'),
        send: $('send'),
        reply: $('reply'),
        replyText: $('reply-text'),
        replyCancel: $('reply-cancel'),
        hint: $('composer-hint'),
      },
      store,
      {
        send: (roomId, body, replyTo) => this.send(roomId, body, replyTo),
        typing: (roomId, active) => this.conn.notify({ type: 'typing', room_id: roomId, active }),
        editLast: () => this.messagesView.editLast(),
      },
    );
    this.typingEl = $('typing');

    // Store → views. Message renders are batched per microtask.
    store.on('rooms', () => {
      this.roomsView.render();
      if (this.activeId) {
        this.header.render(this.activeId);
        this.updateGate();
      }
      document.title = this.header.titleFor();
    });
    store.on('messages', (roomId) => {
      if (roomId === this.activeId) this.scheduleRender('messages');
      this.scheduleRender('rooms');
    });
    store.on('users', () => {
      this.scheduleRender('members');
      this.scheduleRender('messages');
      this.scheduleRender('me');
      this.scheduleRender('typing');
    });
    store.on('members', (roomId) => {
      if (roomId === this.activeId) this.scheduleRender('members');
      if (store.room(roomId)?.kind === 'dm') {
        this.scheduleRender('rooms');
        if (roomId === this.activeId) this.header.render(roomId);
      }
    });
    store.on('typing', (roomId) => roomId === this.activeId && this.scheduleRender('typing'));
    store.on('me', () => this.scheduleRender('me'));

    this.wireChrome();
    this.wireConnection();
    this.renderMe();
    this.header.setConnection('connecting');
    this.conn.start();
  }

  scheduleRender(what) {
    if (this.renderQueued.has(what)) return;
    this.renderQueued.add(what);
    if (this.renderQueued.size === 1) {
      queueMicrotask(() => {
        const q = [...this.renderQueued];
        this.renderQueued.clear();
        for (const w of q) this.renderPart(w);
      });
    }
  }

  renderPart(what) {
    if (!this.started && what !== 'me') return;
    switch (what) {
      case 'messages':
        if (this.activeId) {
          this.messagesView.render();
          this.maybeMarkRead();
        }
        break;
      case 'rooms':
        this.roomsView.render();
        break;
      case 'members':
        this.membersView.render();
        break;
      case 'typing':
        this.renderTyping();
        break;
      case 'me':
        this.renderMe();
        break;
    }
  }

  /** The context the dialogs work with. */
  ctx() {
    return {
      store: this.store,
      toast,
      onJoined: (room) => this.onRoomJoined(room),
      onOpen: (id) => this.openRoom(id),
      onProfile: (user) => user && user.id && this.store.setMe(user),
      startDm: (id) => this.startDm(id),
      notificationsEnabled: () => this.notificationsEnabled(),
      setNotifications: (on) => this.setNotifications(on),
    };
  }

  wireChrome() {
    const $ = this.$;
    $('browse').addEventListener('click', () => dialogs.browseRooms(this.ctx()));
    $('create').addEventListener('click', () => dialogs.createRoom(this.ctx()));
    $('profile').addEventListener('click', () => dialogs.profile(this.ctx()));
    $('logout').addEventListener('click', () => this.signOut());
    $('theme').addEventListener('click', () => this.toggleTheme());
    $('invite').addEventListener('click', () => {
      const room = this.store.room(this.activeId);
      if (room) dialogs.invite(this.ctx(), room);
    });
    $('copy-link').addEventListener('click', async () => {
      const ok = await copyText(`${location.origin}/r/${encodeURIComponent(this.activeId)}`);
      toast(ok ? 'Room link copied' : 'Could not copy the link', ok ? 'info' : 'error');
    });
    $('leave').addEventListener('click', () => this.leaveRoom());
    $('toggle-rooms').addEventListener('click', () => this.setDrawer(this.appEl.dataset.drawer === 'rooms' ? '' : 'rooms'));
    $('toggle-members').addEventListener('click', () => {
      if (this.isNarrow()) this.setDrawer(this.appEl.dataset.drawer === 'members' ? '' : 'members');
      else {
        const hidden = this.appEl.classList.toggle('members-hidden');
        $('toggle-members').setAttribute('aria-expanded', String(!hidden));
        localStorage.setItem('hubbub-members-hidden', hidden ? '1' : '');
      }
    });
    $('close-members').addEventListener('click', () => this.setDrawer(''));
    $('scrim').addEventListener('click', () => this.setDrawer(''));
    if (localStorage.getItem('hubbub-members-hidden') === '1') {
      this.appEl.classList.add('members-hidden');
      $('toggle-members').setAttribute('aria-expanded', 'false');
    }
    this.onKey = (e) => {
      if (e.key === 'Escape' && this.appEl.dataset.drawer && !document.querySelector('dialog[open]')) this.setDrawer('');
    };
    document.addEventListener('keydown', this.onKey);
    this.onFocus = () => this.maybeMarkRead();
    window.addEventListener('focus', this.onFocus);
    document.addEventListener('visibilitychange', this.onFocus);
    this.onPop = () => {
      const id = roomIdFromPath();
      if (id && id !== this.activeId && this.store.room(id)) this.openRoom(id, { push: false });
    };
    window.addEventListener('popstate', this.onPop);
    this.mq = window.matchMedia('(max-width: 767.98px)');
    this.onMq = () => this.setDrawer('');
    this.mq.addEventListener('change', this.onMq);
    this.themeMq = window.matchMedia('(prefers-color-scheme: dark)');
    this.onThemeMq = () => this.renderThemeButton();
    this.themeMq.addEventListener('change', this.onThemeMq);
    this.renderThemeButton();
    $('create').hidden = this.store.me.kind === 'guest';
  }

  isNarrow() {
    return this.mq.matches;
  }

  setDrawer(which) {
    const $ = this.$;
    this.appEl.dataset.drawer = which;
    $('scrim').hidden = !which;
    $('toggle-rooms').setAttribute('aria-expanded', String(which === 'rooms'));
    if (this.isNarrow()) $('toggle-members').setAttribute('aria-expanded', String(which === 'members'));
    if (which === 'rooms') $('nav').querySelector('a')?.focus();
    if (which === 'members') $('close-members').focus();
  }

  // ---- connection ----------------------------------------------------------------

  wireConnection() {
    const conn = this.conn;
    conn.addEventListener('state', (e) => {
      this.header.setConnection(e.detail.state);
      if (e.detail.state !== 'connected') {
        // Typing state lives on the server; it is stale once we lose it.
        for (const id of this.store.typing.keys()) this.store.setTyping(id, []);
      }
      this.scheduleRender('messages');
    });
    conn.addEventListener('ready', (e) => this.onReady(e.detail.frame, e.detail.reconnect));
    conn.addEventListener('event', (e) => this.onEvent(e.detail.frame));
    conn.addEventListener('unauthorized', () => this.sessionEnded('Your session has ended. Join again to continue.'));
  }

  async onReady(frame, reconnect) {
    const store = this.store;
    store.applyReady(frame);
    if (reconnect) {
      try {
        const res = await this.conn.request({ type: 'resume', rooms: store.resumeState() }, 30000);
        for (const r of (res && res.rooms) || []) {
          const truncated = store.applyResume(r);
          if (truncated && r.room_id === this.activeId) this.loadNewest(r.room_id);
        }
      } catch (err) {
        // Could not resume: refetch what is on screen instead.
        if (err.code !== 'offline') console.warn('resume failed', err);
        if (this.activeId) {
          store.timeline(this.activeId).clear();
          this.loadNewest(this.activeId);
        }
      }
      // Membership may have changed while we were away.
      for (const id of [...store.members.keys()]) if (id !== this.activeId && store.room(id)?.kind !== 'dm') store.members.delete(id);
      if (this.activeId && store.room(this.activeId)) this.loadMembers(this.activeId);
    }
    this.conn.flushOutbox();
    for (const r of store.rooms.values()) if (r.kind === 'dm' && !store.members.has(r.id)) this.loadMembers(r.id);
    if (!this.started) {
      this.started = true;
      this.roomsView.render();
      await this.openInitialRoom();
    } else if (this.activeId && !store.room(this.activeId)) {
      this.openDefaultRoom();
    } else {
      this.scheduleRender('messages');
      this.scheduleRender('members');
    }
  }

  onEvent(f) {
    const store = this.store;
    switch (f.type) {
      case 'message':
        store.applyMessage(f.message, { pos: f.pos });
        break;
      case 'message_updated':
        store.applyMessage(f.message, { pos: f.pos, reactionChange: f.reaction_change });
        break;
      case 'message_deleted':
        store.applyDeleted(f);
        break;
      case 'typing':
        store.setTyping(f.room_id, f.user_ids);
        break;
      case 'presence':
        store.setPresence(f);
        break;
      case 'member_joined':
        store.memberJoined(f.room_id, f.user);
        break;
      case 'member_left':
        store.memberLeft(f.room_id, f.user);
        break;
      case 'user_updated':
        store.upsertUser(f.user);
        break;
      case 'room_updated':
        store.upsertRoom(f.room);
        break;
      case 'room_removed':
        this.onRoomRemoved(f.room_id, f.reason);
        break;
      case 'read':
        store.applyRead(f);
        break;
      case 'notification':
        this.notify(f.room_id, f.message);
        break;
      case 'error':
        console.warn('gateway error', f.error);
        break;
      default:
        break;
    }
  }

  onRoomRemoved(roomId, reason) {
    const room = this.store.room(roomId);
    if (!room) return;
    const name = this.store.roomTitle(room);
    this.store.removeRoom(roomId);
    if (reason === 'deleted') toast(`#${name} was deleted`);
    else if (reason === 'removed') toast(`You were removed from #${name}`);
    if (roomId === this.activeId) this.openDefaultRoom();
  }

  sessionEnded(message) {
    this.teardown();
    this.onSignedOut(message);
  }

  teardown() {
    this.conn.stop();
    clearInterval(this.gateTimer);
    document.removeEventListener('keydown', this.onKey);
    window.removeEventListener('focus', this.onFocus);
    document.removeEventListener('visibilitychange', this.onFocus);
    window.removeEventListener('popstate', this.onPop);
    this.mq?.removeEventListener('change', this.onMq);
    this.themeMq?.removeEventListener('change', this.onThemeMq);
    for (const d of document.querySelectorAll('dialog')) d.remove();
    document.title = 'Hubbub';
  }

  async signOut() {
    try {
      await api.logout();
    } catch {
      /* the session may already be gone */
    }
    this.teardown();
    history.replaceState(null, '', '/');
    this.onSignedOut(null);
  }

  // ---- rooms ---------------------------------------------------------------------

  async openInitialRoom() {
    const link = this.pendingLink;
    this.pendingLink = null;
    if (link) {
      if (this.store.room(link)) return this.openRoom(link, { push: false });
      const ok = await this.joinFromLink(link);
      if (ok) return;
    }
    this.openDefaultRoom();
  }

  openDefaultRoom() {
    const store = this.store;
    const last = localStorage.getItem(LAST_ROOM_KEY);
    if (last && store.room(last)) return this.openRoom(last, { push: false, replace: true });
    const { channels, dms } = store.roomLists();
    const general = channels.find((r) => r.name === 'General') || channels[0] || dms[0];
    if (general) return this.openRoom(general.id, { push: false, replace: true });
    this.activeId = null;
    this.header.render(null);
    this.messagesView.roomId = null;
    this.$('log').replaceChildren(el('div', { class: 'room-intro' }, el('h2', { text: 'No rooms yet' }), el('p', { class: 'muted', text: 'Browse rooms to join one.' })));
    this.composer.setBlocked('Join a room to start chatting');
  }

  async joinFromLink(roomId) {
    let room;
    try {
      room = await api.room(roomId);
    } catch (e) {
      toast(e.code === 'not_found' ? 'That room does not exist or is private.' : e.message, 'error');
      return false;
    }
    if (room.joined && this.store.room(roomId)) {
      this.openRoom(roomId, { push: false });
      return true;
    }
    let joined = null;
    if (room.has_password && !room.joined) {
      joined = await dialogs.joinWithPassword(room);
      if (!joined) return false;
    } else {
      try {
        joined = await api.joinRoom(roomId);
      } catch (e) {
        toast(dialogs.joinErrorText(e), 'error');
        return false;
      }
    }
    this.onRoomJoined(joined && joined.id ? joined : room);
    return true;
  }

  onRoomJoined(room) {
    this.store.upsertRoom({ ...room, joined: true });
    this.openRoom(room.id);
  }

  openRoom(id, { push = true, replace = false } = {}) {
    const store = this.store;
    if (!store.room(id)) return;
    if (this.activeId && this.activeId !== id && this.composer.typingActive) this.composer.stopTyping();
    this.activeId = id;
    localStorage.setItem(LAST_ROOM_KEY, id);
    const path = `/r/${encodeURIComponent(id)}`;
    if (location.pathname !== path) {
      if (push && !replace) history.pushState(null, '', path);
      else history.replaceState(null, '', path);
    }
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
    this.maybeMarkRead();
    if (!this.isNarrow()) this.composer.focus();
  }

  async loadNewest(id) {
    try {
      const res = await api.messages(id, { limit: 50 });
      this.store.applyHistory(id, res, { newest: true });
    } catch (e) {
      if (e.status === 401) return this.sessionEnded('Your session has ended. Join again to continue.');
      toast(`Could not load messages: ${e.message}`, 'error');
      // Retry on the next reconnect or when the room is opened again.
    }
  }

  async loadOlder(id) {
    const t = this.store.timeline(id);
    if (t.loadingOlder || !t.hasOlder) return;
    const before = t.lowestSeq();
    if (before == null) return;
    t.loadingOlder = true;
    if (id === this.activeId) this.messagesView.render();
    try {
      const res = await api.messages(id, { before_seq: before, limit: 50 });
      t.loadingOlder = false;
      this.store.applyHistory(id, res);
    } catch (e) {
      t.loadingOlder = false;
      toast(`Could not load older messages: ${e.message}`, 'error');
      if (id === this.activeId) this.messagesView.render();
    }
  }

  async loadMembers(id) {
    try {
      const members = await api.members(id);
      this.store.setMembers(id, members);
    } catch (e) {
      if (id === this.activeId) console.warn('members', e);
    }
  }

  async leaveRoom() {
    const room = this.store.room(this.activeId);
    if (!room) return;
    try {
      await api.leaveRoom(room.id);
      this.store.removeRoom(room.id);
      toast(`You left #${room.name}`);
      this.openDefaultRoom();
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
    const gate = this.header.renderBanner(this.activeId);
    this.composer.setBlocked(gate.blocked);
    clearInterval(this.gateTimer);
    this.gateTimer = null;
    if (gate.ticking) {
      this.gateTimer = setInterval(() => {
        const g = this.header.renderBanner(this.activeId);
        this.composer.setBlocked(g.blocked);
        if (!g.ticking) {
          clearInterval(this.gateTimer);
          this.gateTimer = null;
        }
      }, 1000);
    }
  }

  renderTyping() {
    const text = this.activeId ? this.store.typingText(this.activeId) : '';
    if (this.typingEl.textContent !== text) this.typingEl.textContent = text;
    this.typingEl.classList.toggle('active', !!text);
  }

  renderMe() {
    const me = this.store.me;
    if (!me || !this.$) return;
    const img = this.$('me-avatar');
    if (img.getAttribute('src') !== me.avatar_url) img.src = me.avatar_url;
    this.$('me-name').textContent = displayName(me);
    this.$('me-status').textContent = me.status_text || (me.kind === 'guest' ? 'Guest' : `@${me.username}`);
  }

  // ---- read state ----------------------------------------------------------------

  maybeMarkRead() {
    const id = this.activeId;
    const room = this.store.room(id);
    if (!room || !this.conn.connected) return;
    if (document.hidden || !document.hasFocus() || !this.messagesView.stick) return;
    const t = this.store.timeline(id);
    const list = t.sorted();
    const last = list.length ? list[list.length - 1].seq : 0;
    if (!t.loaded || !last || last <= (room.last_read_seq || 0)) {
      if (room.unread_count && last >= (room.last_seq || 0)) this.store.markReadLocal(id, last);
      return;
    }
    this.conn.notify({ type: 'read', room_id: id, seq: last });
    this.store.markReadLocal(id, last);
  }

  // ---- messages ------------------------------------------------------------------

  send(roomId, body, replyTo) {
    const me = this.store.me;
    const draft = {
      client_id: uuid(),
      room_id: roomId,
      body,
      reply_to: replyTo || null,
      author: me,
      created_at: new Date().toISOString(),
      mentions: [],
      reactions: [],
      attachments: [],
    };
    this.store.addPending(roomId, draft);
    this.transmit(draft);
  }

  transmit(draft) {
    const frame = { type: 'send', room_id: draft.room_id, client_id: draft.client_id, body: draft.body };
    if (draft.reply_to) frame.reply_to = draft.reply_to;
    this.conn
      .sendMessage(frame)
      .then((msg) => {
        if (msg && msg.id) this.store.applyMessage(msg);
        else this.store.removePending(draft.room_id, draft.client_id);
      })
      .catch((e) => {
        if (e.code === 'discarded') return;
        this.store.failPending(draft.room_id, draft.client_id, e.message || 'Not sent');
      });
  }

  retry(m) {
    const draft = this.store.retryPending(m.room_id, m.client_id);
    if (draft) this.transmit(draft);
  }

  discard(m) {
    this.conn.discard(m.client_id);
    this.store.removePending(m.room_id, m.client_id);
  }

  async editMessage(m, body) {
    try {
      const msg = await this.conn.request({ type: 'edit', message_id: m.id, body });
      if (msg && msg.id) this.store.applyMessage(msg);
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
      toast('Message deleted');
    } catch (e) {
      toast(`Could not delete: ${e.message}`, 'error');
    }
  }

  async react(m, emoji, add) {
    try {
      await this.conn.request({ type: 'react', message_id: m.id, emoji, add });
    } catch (e) {
      toast(`Could not react: ${e.message}`, 'error');
    }
  }

  // ---- notifications & theme -----------------------------------------------------

  notificationsEnabled() {
    return 'Notification' in window && Notification.permission === 'granted' && localStorage.getItem(NOTIFY_KEY) === '1';
  }

  async setNotifications(on) {
    if (!('Notification' in window)) {
      toast('This browser does not support notifications.', 'error');
      return false;
    }
    if (!on) {
      localStorage.removeItem(NOTIFY_KEY);
      return false;
    }
    const perm = Notification.permission === 'granted' ? 'granted' : await Notification.requestPermission();
    if (perm !== 'granted') {
      toast('Notifications are blocked for this site.', 'error');
      return false;
    }
    localStorage.setItem(NOTIFY_KEY, '1');
    return true;
  }

  notify(roomId, message) {
    if (!message || !document.hidden || !this.notificationsEnabled()) return;
    const room = this.store.room(roomId);
    const who = displayName(this.store.resolveUser(message.author));
    const title = room && room.kind === 'dm' ? who : `${who} in #${room ? room.name : 'a room'}`;
    try {
      const n = new Notification(title, { body: (message.body || '').slice(0, 200), icon: message.author?.avatar_url, tag: message.id });
      n.onclick = () => {
        window.focus();
        this.openRoom(roomId);
        n.close();
      };
    } catch {
      /* some platforms only allow notifications from a service worker */
    }
  }

  effectiveTheme() {
    const t = document.documentElement.dataset.theme;
    if (t === 'light' || t === 'dark') return t;
    return this.themeMq && this.themeMq.matches ? 'dark' : 'light';
  }

  toggleTheme() {
    const next = this.effectiveTheme() === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    try {
      localStorage.setItem(THEME_KEY, next);
    } catch {
      /* private mode */
    }
    this.renderThemeButton();
  }

  renderThemeButton() {
    const btn = this.$('theme');
    const dark = this.effectiveTheme() === 'dark';
    btn.replaceChildren(icon(dark ? 'sun' : 'moon'));
    btn.title = dark ? 'Switch to light theme' : 'Switch to dark theme';
    btn.setAttribute('aria-pressed', String(dark));
  }
}
