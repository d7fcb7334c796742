// The message list of the open room (role="log"). A keyed reconcile keeps the
// DOM nodes of unchanged messages; the reader stays at the bottom when there,
// keeps their place while older pages are prepended, and gets a "New messages"
// button otherwise. The only HTML inserted is message.html, sanitized by the server.

import { dayKey, dayLabel, displayName, el, formatFull, formatTime, icon, iconButton, roomIcon, snippet } from '../util.js';

const GROUP_MS = 5 * 60 * 1000;
const REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '🙏'];

export class MessagesView {
  constructor(log, jump, store, actions) {
    Object.assign(this, { log, jump, store, actions, roomId: null, nodes: new Map(), stick: true, editing: null, draft: '', lastKey: null, marker: null, picker: null });
    log.addEventListener('scroll', () => this.onScroll(), { passive: true });
    // Images change heights after layout: stay pinned to the bottom.
    log.addEventListener('load', () => this.stick && this.toBottom(), true);
    jump.addEventListener('click', () => this.toBottom(true));
    document.addEventListener('click', (e) => this.picker && !this.picker.contains(e.target) && !e.target.closest('[data-react]') && this.closePicker());
    document.addEventListener('keydown', (e) => e.key === 'Escape' && this.picker && this.closePicker(true));
  }

  setRoom(roomId) {
    const room = this.store.room(roomId);
    Object.assign(this, { roomId, stick: true, editing: null, lastKey: null, marker: room?.unread_count > 0 && room.last_read_seq > 0 ? room.last_read_seq : null });
    this.nodes.clear();
    this.log.replaceChildren();
    this.jump.hidden = true;
    this.closePicker();
    this.render();
    this.toBottom();
  }

  atBottom() {
    const l = this.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight <= 48;
  }

  toBottom(smooth) {
    this.log.scrollTo({ top: this.log.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    this.stick = true;
    this.jump.hidden = true;
  }

  onScroll() {
    this.stick = this.atBottom();
    if (this.stick) {
      this.jump.hidden = true;
      this.actions.onBottom();
    }
    this.maybeLoadOlder();
  }

  maybeLoadOlder() {
    const t = this.roomId && this.store.timeline(this.roomId);
    if (t?.loaded && t.hasOlder && !t.loadingOlder && (this.log.scrollTop < 240 || this.log.scrollHeight <= this.log.clientHeight)) this.actions.loadOlder(this.roomId);
  }

  // ---- rendering ----

  items() {
    const { store } = this;
    const t = store.timeline(this.roomId);
    const room = store.room(this.roomId);
    const mod = ['owner', 'admin', 'moderator'].includes(room?.role) || !!store.me?.is_admin;
    const online = this.actions.isConnected();
    const items = [{ key: 'top', kind: 'top', ver: [t.loaded, t.hasOlder, t.loadingOlder, room?.name, room?.topic].join() }];
    let prev = null;
    let marked = this.marker == null;
    for (const m of store.messagesFor(this.roomId)) {
      const at = m.created_at || new Date().toISOString();
      let fresh = !prev || dayKey(prev.created_at || at) !== dayKey(at);
      if (fresh) items.push({ key: `day-${dayKey(at)}`, kind: 'day', ver: dayLabel(at) });
      const mine = store.isMe(m.author);
      if (!marked && !m.pending && !mine && m.seq > this.marker) {
        items.push({ key: 'marker', kind: 'marker', ver: '' });
        marked = fresh = true;
      }
      const author = store.resolveUser(m.author);
      const grouped = !fresh && !m.reply_to && !m.deleted && !prev.deleted && prev.author?.id === m.author?.id && new Date(at) - new Date(prev.created_at || at) < GROUP_MS;
      const target = m.reply_to ? store.findMessage(this.roomId, m.reply_to) : null;
      const targetAuthor = store.resolveUser(target?.author);
      const key = mine && m.client_id ? `c:${m.client_id}` : m.id;
      const ver = [m.pos, m.pending && (online ? 1 : 2), m.failed, grouped, author && displayName(author) + author.avatar_url, this.editing === key,
        JSON.stringify(m.reactions || []), target ? target.pos + displayName(targetAuthor) : m.reply_to, mod, m.deleted, m.edited_at, store.me?.id].join('§');
      items.push({ key, kind: 'msg', ver, m, grouped, mine, mod, author, target, targetAuthor });
      prev = m;
    }
    return items;
  }

  render() {
    if (!this.roomId) return;
    const { log } = this;
    const stick = this.stick;
    // Anchor: the first node in view keeps its place on screen.
    let anchor = null;
    let offset = 0;
    if (!stick) {
      anchor = [...log.children].find((c) => c.offsetTop + c.offsetHeight > log.scrollTop) || null;
      offset = anchor ? anchor.offsetTop - log.scrollTop : 0;
    }
    const items = this.items();
    const seen = new Set();
    let cursor = log.firstChild;
    for (const item of items) {
      let entry = this.nodes.get(item.key);
      if (!entry || entry.ver !== item.ver) {
        const node = this.build(item);
        if (entry?.node.parentNode === log) {
          if (cursor === entry.node) cursor = node;
          if (anchor === entry.node) anchor = node;
          entry.node.replaceWith(node);
        }
        this.nodes.set(item.key, (entry = { node, ver: item.ver }));
      }
      seen.add(item.key);
      if (entry.node === cursor) cursor = cursor.nextSibling;
      else log.insertBefore(entry.node, cursor);
    }
    for (const [k, e] of this.nodes) if (!seen.has(k)) (e.node.remove(), this.nodes.delete(k));

    const last = items[items.length - 1];
    const lastKey = last.kind === 'msg' ? last.key : null;
    const grew = lastKey && lastKey !== this.lastKey;
    const own = grew && last.mine && last.m.pending;
    if (grew && this.lastKey && !stick && !own) this.jump.hidden = false;
    this.lastKey = lastKey;
    if (stick || own) this.toBottom();
    else if (anchor?.parentNode === log) log.scrollTop = anchor.offsetTop - offset;
    this.maybeLoadOlder();
  }

  build(item) {
    if (item.kind === 'day') return el('div.day-sep', { role: 'separator', 'aria-label': item.ver }, el('span', item.ver));
    if (item.kind === 'marker') return el('div.new-marker', { role: 'separator', 'aria-label': 'New messages below' }, 'New');
    if (item.kind === 'msg') return this.buildMessage(item);
    const t = this.store.timeline(this.roomId);
    const room = this.store.room(this.roomId);
    if (!t.loaded || t.loadingOlder) return el('div.log-top', el('span.spinner', { 'aria-hidden': 'true' }), el('span.muted', 'Loading messages…'));
    if (t.hasOlder) return el('div.log-top', el('button.btn.btn-ghost.btn-sm', { type: 'button', onclick: () => this.actions.loadOlder(this.roomId) }, 'Load older messages'));
    const dm = room?.kind === 'dm';
    const title = this.store.roomTitle(room);
    return el('div.room-intro', el('div.room-intro-icon', roomIcon(room)), el('h2', dm ? title : `Welcome to #${title}`),
      el('p.muted', room?.topic || (dm ? 'This is the start of your conversation.' : 'This is the very beginning of the room.')));
  }

  buildMessage({ key, m, grouped, mine, mod, author, target, targetAuthor }) {
    const name = m.author ? displayName(author) : '';
    const at = m.created_at || new Date().toISOString();
    const time = (c) => el(`time.${c}`, { datetime: at, title: formatFull(at) }, formatTime(at));
    const cls = ['msg', grouped && 'grouped', mine && 'mine', m.pending && 'pending', m.deleted && 'deleted', !mine && (m.mentions || []).includes(this.store.me?.id) && 'mention'];
    const main = el('div.msg-main');
    if (m.reply_to) main.append(this.buildReplyRef(m.reply_to, target, targetAuthor));
    if (!grouped) {
      main.append(el('div.msg-head', m.author && el('button.msg-author', { type: 'button', onclick: () => this.actions.openUser(m.author.id) }, name),
        author?.kind === 'bot' && el('span.role-tag', 'bot'), time('msg-time')));
    }
    if (m.deleted) main.append(el('p.msg-body.msg-deleted', 'Message deleted'));
    else if (this.editing === key) main.append(this.buildEditor(m));
    else if (m.pending) main.append(el('div.msg-body.msg-plain', m.body));
    else {
      const body = el('div.msg-body');
      body.innerHTML = m.html || ''; // sanitized by the server (SPEC §6)
      for (const a of body.querySelectorAll('a[href]')) a.target = '_blank';
      if (m.edited_at) body.append(el('span.edited', { title: `Edited ${formatFull(m.edited_at)}` }, '(edited)'));
      main.append(body);
    }
    if (!m.deleted) {
      if (m.attachments?.length) main.append(el('div.attachments', m.attachments.map((a) => this.buildAttachment(a))));
      if (m.reply_count > 0) main.append(el('p.msg-status', `${m.reply_count} repl${m.reply_count === 1 ? 'y' : 'ies'} in thread`));
      if (m.reactions?.length) main.append(this.buildReactions(m));
    }
    if (m.pending) {
      main.append(
        m.failed
          ? el('div.msg-status.failed', el('span', `Not sent: ${m.failed}`), el('button.link-btn', { type: 'button', onclick: () => this.actions.retry(m) }, 'Retry'),
              el('button.link-btn', { type: 'button', onclick: () => this.actions.discard(m) }, 'Discard'))
          : this.actions.isConnected()
            ? el('div.msg-status', el('span.spinner.spinner-xs', { 'aria-hidden': 'true' }), 'Sending…')
            : el('div.msg-status.queued', icon('clock', 'icon icon-xs'), 'Waiting for connection — will send automatically'),
      );
    }
    const gutter = el('div.msg-gutter', grouped ? time('gutter-time') : author ? el('img.avatar', { src: author.avatar_url, alt: '', width: 36, height: 36 }) : null);
    const node = el('article', { class: cls.filter(Boolean).join(' '), id: `msg-${m.id || key}` }, gutter, main);
    if (!m.deleted && !m.pending && this.editing !== key) node.append(this.buildActions(m, key, mine, mod));
    return node;
  }

  buildReplyRef(id, target, author) {
    const text = !target ? 'Original message not loaded' : target.deleted ? 'Message deleted' : snippet(target.body) || 'Attachment';
    return el('button.reply-ref', { type: 'button', title: 'Jump to the original message', onclick: () => this.scrollToMessage(id) }, icon('reply', 'icon icon-xs'),
      author && el('img.avatar.avatar-xs', { src: author.avatar_url, alt: '', width: 16, height: 16 }), author && el('b', displayName(author)), el('span.reply-ref-text', text));
  }

  buildAttachment(a) {
    const size = a.size < 1048576 ? `${Math.ceil(a.size / 1024)} KB` : `${(a.size / 1048576).toFixed(1)} MB`;
    return a.thumbnail_url
      ? el('a', { href: a.url, target: '_blank', rel: 'noopener', title: a.name }, el('img', { src: a.thumbnail_url, alt: a.name, loading: 'lazy' }))
      : el('a.attachment-file', { href: a.url, download: a.name }, icon('upload'), el('span', a.name), el('span.muted', size));
  }

  buildReactions(m) {
    return el('div.reactions', m.reactions.map((r) =>
      el(`button.reaction${r.me ? '.me' : ''}`, { type: 'button', 'aria-pressed': String(!!r.me), 'aria-label': `${r.emoji} ${r.count}`, title: r.me ? 'Remove your reaction' : 'React', onclick: () => this.actions.react(m, r.emoji, !r.me) },
        r.emoji, el('b', String(r.count)))));
  }

  buildActions(m, key, mine, mod) {
    const react = iconButton('smile', 'React', (e) => this.togglePicker(m, e.currentTarget));
    react.dataset.react = '';
    react.setAttribute('aria-haspopup', 'true');
    return el('div.msg-actions', { role: 'toolbar', 'aria-label': 'Message actions' }, react,
      iconButton('reply', 'Reply', () => this.actions.reply(m)), iconButton('copy', 'Copy', () => this.actions.copy(m)),
      mine && iconButton('edit', 'Edit', () => this.startEdit(key, m)), (mine || mod) && iconButton('trash', 'Delete', () => this.actions.remove(m), 'icon-btn danger'));
  }

  togglePicker(m, button) {
    const again = this.picker?.dataset.for === m.id;
    this.closePicker(again);
    if (again) return;
    const picker = el('div.emoji-picker', { role: 'menu', 'aria-label': 'Reactions', dataset: { for: m.id } }, REACTIONS.map((e) =>
      el('button', { type: 'button', role: 'menuitem', 'aria-label': `React with ${e}`, onclick: () => (this.actions.react(m, e, !m.reactions?.some((r) => r.emoji === e && r.me)), this.closePicker(true)) }, e)));
    picker.addEventListener('keydown', (e) => {
      const b = [...picker.children];
      const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key];
      if (!step) return;
      e.preventDefault();
      b[(b.indexOf(document.activeElement) + step + b.length) % b.length].focus();
    });
    const msg = button.closest('article');
    Object.assign(this, { picker, pickerButton: button });
    button.setAttribute('aria-expanded', 'true');
    msg.append(picker);
    msg.classList.add('picking');
    picker.firstChild.focus();
  }

  closePicker(refocus) {
    if (!this.picker) return;
    this.picker.parentNode?.classList.remove('picking');
    this.picker.remove();
    this.pickerButton.setAttribute('aria-expanded', 'false');
    if (refocus && this.pickerButton.isConnected) this.pickerButton.focus();
    this.picker = this.pickerButton = null;
  }

  // ---- editing ----

  startEdit(key, m) {
    Object.assign(this, { editing: key, draft: m.body || '' });
    this.render();
    const ta = this.log.querySelector('.msg-editor textarea');
    ta?.focus();
    ta?.setSelectionRange(ta.value.length, ta.value.length);
    ta?.scrollIntoView({ block: 'nearest' });
  }

  /** Edits the newest own message (ArrowUp in an empty composer). */
  editLast() {
    const m = this.store.messagesFor(this.roomId).findLast((x) => this.store.isMe(x.author) && !x.deleted && !x.pending);
    if (m) this.startEdit(m.client_id ? `c:${m.client_id}` : m.id, m);
    return !!m;
  }

  stopEdit() {
    this.editing = null;
    this.render();
    this.actions.focusComposer();
  }

  buildEditor(m) {
    const ta = el('textarea', { 'aria-label': 'Edit message', rows: 2, value: this.draft });
    const size = () => ((ta.style.height = 'auto'), (ta.style.height = `${Math.min(ta.scrollHeight + 2, 320)}px`));
    requestAnimationFrame(size);
    ta.addEventListener('input', () => ((this.draft = ta.value), size()));
    const save = async () => {
      const body = ta.value.trim();
      if (!body) return;
      if (body === (m.body || '').trim()) return this.stopEdit();
      ta.disabled = true;
      if (await this.actions.edit(m, body)) this.stopEdit();
      else ta.disabled = false;
    };
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') this.stopEdit();
      else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) save();
      else return;
      e.preventDefault();
    });
    return el('div.msg-editor', ta, el('div', el('span.muted', 'Escape to cancel · Enter to save'),
      el('button.btn.btn-ghost.btn-sm', { type: 'button', onclick: () => this.stopEdit() }, 'Cancel'), el('button.btn.btn-primary.btn-sm', { type: 'button', onclick: save }, 'Save')));
  }

  scrollToMessage(id) {
    const node = document.getElementById(`msg-${id}`);
    if (!node) return this.actions.toast('The original message is not loaded. Scroll up to load older messages.');
    node.scrollIntoView({ block: 'center', behavior: 'smooth' });
    node.classList.remove('flash');
    void node.offsetWidth;
    node.classList.add('flash');
  }
}
