// The message list of the open room (role="log"). Renders the store's timeline
// with a keyed reconcile so unchanged messages keep their DOM nodes, keeps the
// reader's scroll position (stick to the bottom, anchor while older pages are
// prepended), and offers per-message actions.
//
// The only HTML this client ever inserts is `message.html`, sanitized by the
// server; everything else is text.

import { dayKey, dayLabel, displayName, el, formatFull, formatTime, icon, iconButton } from '../util.js';

const GROUP_MS = 5 * 60 * 1000;
const BOTTOM_SLACK = 48;
const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '🙏'];

export class MessagesView {
  constructor(log, jump, store, actions) {
    this.log = log;
    this.jump = jump;
    this.store = store;
    this.actions = actions;
    this.roomId = null;
    this.nodes = new Map(); // key -> {node, ver}
    this.stick = true;
    this.editingId = null;
    this.editDraft = '';
    this.lastKey = null;
    this.markerSeq = null;
    this.picker = null;

    log.addEventListener('scroll', () => this.onScroll(), { passive: true });
    // Images (avatars, attachments) change heights after layout; stay pinned.
    log.addEventListener('load', () => this.stick && this.scrollToBottom(), true);
    jump.addEventListener('click', () => {
      this.scrollToBottom(true);
      jump.hidden = true;
    });
    document.addEventListener('click', (e) => {
      if (this.picker && !this.picker.contains(e.target) && !e.target.closest('[data-react-toggle]')) this.closePicker();
    });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.picker) this.closePicker(true);
    });
  }

  setRoom(roomId) {
    this.roomId = roomId;
    this.nodes.clear();
    this.log.replaceChildren();
    this.stick = true;
    this.editingId = null;
    this.lastKey = null;
    this.jump.hidden = true;
    this.closePicker();
    const room = this.store.room(roomId);
    this.markerSeq = room && room.unread_count > 0 ? room.last_read_seq || 0 : null;
    this.render();
    this.scrollToBottom();
  }

  isAtBottom() {
    const l = this.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight <= BOTTOM_SLACK;
  }

  scrollToBottom(smooth = false) {
    this.log.scrollTo({ top: this.log.scrollHeight, behavior: smooth ? 'smooth' : 'auto' });
    this.stick = true;
    this.jump.hidden = true;
  }

  onScroll() {
    const was = this.stick;
    this.stick = this.isAtBottom();
    if (this.stick) this.jump.hidden = true;
    if (this.stick !== was || this.stick) this.actions.onBottom(this.stick);
    this.maybeLoadOlder();
  }

  maybeLoadOlder() {
    if (!this.roomId) return;
    const t = this.store.timeline(this.roomId);
    if (!t.loaded || !t.hasOlder || t.loadingOlder) return;
    if (this.log.scrollTop < 240 || this.log.scrollHeight <= this.log.clientHeight) this.actions.loadOlder(this.roomId);
  }

  // ---- rendering ------------------------------------------------------------

  items() {
    const store = this.store;
    const t = store.timeline(this.roomId);
    const me = store.me;
    const room = store.room(this.roomId);
    const canModerate = room && (['owner', 'admin', 'moderator'].includes(room.role) || (me && me.is_admin));
    const items = [{ key: 'top', kind: 'top', ver: `${t.loaded}|${t.hasOlder}|${t.loadingOlder}|${room?.name}|${room?.topic}` }];
    let prev = null;
    let markerDone = this.markerSeq == null;
    for (const m of store.messagesFor(this.roomId)) {
      const created = m.created_at || new Date().toISOString();
      const day = dayKey(created);
      let breakGroup = false;
      if (!prev || dayKey(prev.created_at || created) !== day) {
        items.push({ key: `day-${day}`, kind: 'day', ver: dayLabel(created), label: dayLabel(created) });
        breakGroup = true;
      }
      const mine = !!(me && m.author && m.author.id === me.id);
      if (!markerDone && !m.pending && m.seq > this.markerSeq && !mine) {
        items.push({ key: 'marker', kind: 'marker', ver: 'm' });
        markerDone = true;
        breakGroup = true;
      }
      const author = store.resolveUser(m.author);
      const grouped =
        !breakGroup &&
        prev &&
        !m.reply_to &&
        !m.deleted &&
        !prev.deleted &&
        prev.author &&
        m.author &&
        prev.author.id === m.author.id &&
        new Date(created) - new Date(prev.created_at || created) < GROUP_MS;
      const target = m.reply_to ? store.findMessage(this.roomId, m.reply_to) : null;
      const targetAuthor = target ? store.resolveUser(target.author) : null;
      const key = mine && m.client_id ? `c:${m.client_id}` : m.id;
      const ver = [
        m.pos,
        m.pending ? (this.actions.isConnected() ? 1 : 2) : 0,
        m.failed || '',
        grouped ? 1 : 0,
        author ? `${displayName(author)}|${author.avatar_url}` : '',
        this.editingId === key ? 1 : 0,
        JSON.stringify(m.reactions || []),
        target ? `${target.pos}|${displayName(targetAuthor)}` : m.reply_to || '',
        canModerate ? 1 : 0,
        m.deleted ? 1 : 0,
        m.edited_at || '',
        me ? me.id : '',
      ].join('§');
      items.push({ key, kind: 'msg', ver, m, grouped, mine, canModerate, author, target, targetAuthor });
      prev = m;
    }
    return items;
  }

  render() {
    if (!this.roomId) return;
    const log = this.log;
    const wasStick = this.stick;
    // Anchor: the first message whose top is in view keeps its screen position.
    let anchor = null;
    let anchorOffset = 0;
    if (!wasStick) {
      for (const child of log.children) {
        if (child.offsetTop + child.offsetHeight > log.scrollTop) {
          anchor = child;
          anchorOffset = child.offsetTop - log.scrollTop;
          break;
        }
      }
    }

    const items = this.items();
    const seen = new Set();
    let cursor = log.firstChild;
    for (const item of items) {
      let entry = this.nodes.get(item.key);
      if (entry && entry.ver !== item.ver) {
        const fresh = this.build(item);
        if (entry.node === anchor) anchor = fresh;
        if (entry.node.parentNode === log) {
          if (cursor === entry.node) cursor = fresh;
          entry.node.replaceWith(fresh);
        }
        entry = { node: fresh, ver: item.ver };
        this.nodes.set(item.key, entry);
      } else if (!entry) {
        entry = { node: this.build(item), ver: item.ver };
        this.nodes.set(item.key, entry);
      }
      seen.add(item.key);
      if (entry.node === cursor) cursor = cursor.nextSibling;
      else log.insertBefore(entry.node, cursor);
    }
    for (const [k, e] of this.nodes) {
      if (!seen.has(k)) {
        e.node.remove();
        this.nodes.delete(k);
      }
    }

    const last = items.length ? items[items.length - 1] : null;
    const lastKey = last && last.kind === 'msg' ? last.key : null;
    const grewAtEnd = lastKey && lastKey !== this.lastKey;
    const ownNew = grewAtEnd && last.mine && last.m.pending;
    const hadLast = this.lastKey != null;
    this.lastKey = lastKey;

    if (wasStick || ownNew) {
      this.scrollToBottom();
    } else if (anchor && anchor.parentNode === log) {
      log.scrollTop = anchor.offsetTop - anchorOffset;
    }
    if (grewAtEnd && hadLast && !wasStick && !ownNew) this.jump.hidden = false;
    this.maybeLoadOlder();
  }

  build(item) {
    if (item.kind === 'top') return this.buildTop();
    if (item.kind === 'day') return el('div', { class: 'day-sep', role: 'separator', 'aria-label': item.label }, el('span', { text: item.label }));
    if (item.kind === 'marker') return el('div', { class: 'new-marker', role: 'separator', 'aria-label': 'New messages below' }, el('span', { text: 'New' }));
    return this.buildMessage(item);
  }

  buildTop() {
    const t = this.store.timeline(this.roomId);
    const room = this.store.room(this.roomId);
    if (!t.loaded || t.loadingOlder) return el('div', { class: 'log-top' }, el('span', { class: 'spinner', 'aria-hidden': 'true' }), el('span', { class: 'muted', text: 'Loading messages…' }));
    if (t.hasOlder) {
      return el('div', { class: 'log-top' }, el('button', { type: 'button', class: 'btn btn-ghost btn-sm', text: 'Load older messages', onclick: () => this.actions.loadOlder(this.roomId) }));
    }
    const title = room ? this.store.roomTitle(room) : '';
    return el(
      'div',
      { class: 'room-intro' },
      el('div', { class: 'room-intro-icon' }, icon(room && room.kind === 'dm' ? 'chat' : 'hash')),
      el('h2', { text: room && room.kind === 'dm' ? title : `Welcome to #${title}` }),
      el('p', { class: 'muted', text: room && room.topic ? room.topic : room && room.kind === 'dm' ? 'This is the start of your conversation.' : 'This is the very beginning of the room.' }),
    );
  }

  buildMessage({ key, m, grouped, mine, canModerate, author, target, targetAuthor }) {
    const name = m.author ? displayName(author) : '';
    const me = this.store.me;
    const mentioned = me && (m.mentions || []).includes(me.id);
    const cls = ['msg'];
    if (grouped) cls.push('grouped');
    if (mine) cls.push('mine');
    if (m.pending) cls.push('pending');
    if (m.failed) cls.push('failed');
    if (m.deleted) cls.push('deleted');
    if (mentioned && !mine) cls.push('mention');
    const created = m.created_at || new Date().toISOString();
    const timeEl = (c) => el('time', { class: c, datetime: created, title: formatFull(created) }, formatTime(created));

    const gutter = grouped
      ? el('div', { class: 'msg-gutter' }, timeEl('gutter-time'))
      : el('div', { class: 'msg-gutter' }, author ? el('img', { class: 'avatar', src: author.avatar_url, alt: '', width: 36, height: 36, decoding: 'async' }) : el('span', { class: 'avatar avatar-ghost' }));

    const main = el('div', { class: 'msg-main' });
    if (m.reply_to) main.appendChild(this.buildReplyRef(m.reply_to, target, targetAuthor));
    if (!grouped) {
      main.appendChild(
        el(
          'div',
          { class: 'msg-head' },
          m.author
            ? el('button', { type: 'button', class: 'msg-author', text: name, onclick: () => this.actions.openUser(m.author.id) })
            : null,
          author && author.kind === 'bot' ? el('span', { class: 'role-tag', text: 'bot' }) : null,
          timeEl('msg-time'),
        ),
      );
    }

    if (m.deleted) {
      main.appendChild(el('p', { class: 'msg-body msg-deleted', text: 'Message deleted' }));
    } else if (this.editingId === key) {
      main.appendChild(this.buildEditor(m));
    } else if (m.pending) {
      main.appendChild(el('div', { class: 'msg-body msg-plain', text: m.body }));
    } else {
      const body = el('div', { class: 'msg-body' });
      body.innerHTML = m.html || ''; // server-sanitized (SPEC §6)
      for (const a of body.querySelectorAll('a[href]')) a.target = '_blank';
      if (m.edited_at) body.appendChild(el('span', { class: 'edited', title: `Edited ${formatFull(m.edited_at)}`, text: '(edited)' }));
      main.appendChild(body);
    }

    if (!m.deleted && m.attachments && m.attachments.length) main.appendChild(this.buildAttachments(m.attachments));
    if (!m.deleted && m.reply_count > 0) main.appendChild(el('p', { class: 'thread-count muted', text: `${m.reply_count} repl${m.reply_count === 1 ? 'y' : 'ies'} in thread` }));
    if (!m.deleted && m.reactions && m.reactions.length) main.appendChild(this.buildReactions(m));

    if (m.pending) {
      main.appendChild(
        m.failed
          ? el(
              'div',
              { class: 'msg-status msg-status-failed' },
              el('span', { text: `Not sent: ${m.failed}` }),
              el('button', { type: 'button', class: 'link-btn', text: 'Retry', onclick: () => this.actions.retry(m) }),
              el('button', { type: 'button', class: 'link-btn', text: 'Discard', onclick: () => this.actions.discard(m) }),
            )
          : this.actions.isConnected()
            ? el('div', { class: 'msg-status' }, el('span', { class: 'spinner spinner-xs', 'aria-hidden': 'true' }), el('span', { text: 'Sending…' }))
            : el('div', { class: 'msg-status msg-status-queued' }, icon('clock', 'icon icon-xs'), el('span', { text: 'Waiting for connection — will send automatically' })),
      );
    }

    const node = el('article', { class: cls.join(' '), id: `msg-${m.id || key}`, dataset: { key }, 'aria-label': m.deleted ? 'Deleted message' : `${name || 'Message'}, ${formatTime(created)}` }, gutter, main);
    if (!m.deleted && !m.pending && this.editingId !== key) node.appendChild(this.buildActions(m, key, mine, canModerate));
    return node;
  }

  buildReplyRef(replyTo, target, targetAuthor) {
    let who = '';
    let snippet = 'Original message not loaded';
    if (target) {
      who = displayName(targetAuthor);
      snippet = target.deleted ? 'Message deleted' : (target.body || '').replace(/\s+/g, ' ').slice(0, 120) || 'Attachment';
    }
    return el(
      'button',
      { type: 'button', class: 'reply-ref', title: 'Jump to the original message', onclick: () => this.scrollToMessage(replyTo) },
      icon('reply', 'icon icon-xs'),
      targetAuthor ? el('img', { class: 'avatar avatar-xs', src: targetAuthor.avatar_url, alt: '', width: 16, height: 16 }) : null,
      who ? el('span', { class: 'reply-ref-name', text: who }) : null,
      el('span', { class: 'reply-ref-text', text: snippet }),
    );
  }

  buildAttachments(list) {
    return el(
      'div',
      { class: 'attachments' },
      list.map((a) =>
        a.thumbnail_url
          ? el('a', { class: 'attachment-img', href: a.url, target: '_blank', rel: 'noopener', title: a.name }, el('img', { src: a.thumbnail_url, alt: a.name, loading: 'lazy', width: a.width ? Math.min(a.width, 320) : null }))
          : el('a', { class: 'attachment-file', href: a.url, target: '_blank', rel: 'noopener', download: a.name }, icon('upload', 'icon icon-sm'), el('span', { text: a.name }), el('span', { class: 'muted', text: fmtSize(a.size) })),
      ),
    );
  }

  buildReactions(m) {
    return el(
      'div',
      { class: 'reactions' },
      m.reactions.map((r) =>
        el(
          'button',
          {
            type: 'button',
            class: `reaction${r.me ? ' me' : ''}`,
            'aria-pressed': r.me ? 'true' : 'false',
            'aria-label': `${r.emoji} ${r.count}`,
            title: r.me ? 'Remove your reaction' : 'React',
            onclick: () => this.actions.react(m, r.emoji, !r.me),
          },
          el('span', { class: 'reaction-emoji', text: r.emoji }),
          el('span', { class: 'reaction-count', text: String(r.count) }),
        ),
      ),
    );
  }

  buildActions(m, key, mine, canModerate) {
    const bar = el('div', { class: 'msg-actions', role: 'toolbar', 'aria-label': 'Message actions' });
    const react = iconButton('smile', 'React', (e) => this.togglePicker(m, bar, e.currentTarget));
    react.dataset.reactToggle = '1';
    react.setAttribute('aria-haspopup', 'true');
    bar.append(
      react,
      iconButton('reply', 'Reply', () => this.actions.reply(m)),
      iconButton('copy', 'Copy', () => this.actions.copy(m)),
    );
    if (mine) bar.appendChild(iconButton('edit', 'Edit', () => this.startEdit(key, m)));
    if (mine || canModerate) bar.appendChild(iconButton('trash', 'Delete', () => this.actions.remove(m), 'icon-btn danger'));
    return bar;
  }

  togglePicker(m, bar, button) {
    if (this.picker && this.picker.dataset.for === m.id) return this.closePicker(true);
    this.closePicker();
    const picker = el(
      'div',
      { class: 'emoji-picker', role: 'menu', 'aria-label': 'Reactions', dataset: { for: m.id } },
      QUICK_REACTIONS.map((e) =>
        el('button', {
          type: 'button',
          role: 'menuitem',
          class: 'emoji-btn',
          'aria-label': `React with ${e}`,
          text: e,
          onclick: () => {
            const has = (m.reactions || []).some((r) => r.emoji === e && r.me);
            this.actions.react(m, e, !has);
            this.closePicker();
          },
        }),
      ),
    );
    picker.addEventListener('keydown', (e) => {
      const items = [...picker.querySelectorAll('button')];
      const i = items.indexOf(document.activeElement);
      if (e.key === 'ArrowRight' || e.key === 'ArrowDown') items[(i + 1) % items.length].focus();
      else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') items[(i - 1 + items.length) % items.length].focus();
      else return;
      e.preventDefault();
    });
    this.picker = picker;
    this.pickerButton = button;
    button.setAttribute('aria-expanded', 'true');
    bar.parentNode.appendChild(picker);
    bar.parentNode.classList.add('picking');
    picker.querySelector('button').focus();
  }

  closePicker(refocus = false) {
    if (!this.picker) return;
    this.picker.parentNode?.classList.remove('picking');
    this.picker.remove();
    this.picker = null;
    if (this.pickerButton) {
      this.pickerButton.setAttribute('aria-expanded', 'false');
      if (refocus && this.pickerButton.isConnected) this.pickerButton.focus();
    }
    this.pickerButton = null;
  }

  // ---- editing ---------------------------------------------------------------

  startEdit(key, m) {
    this.editingId = key;
    this.editDraft = m.body || '';
    this.render();
    const ta = this.log.querySelector('.msg-editor textarea');
    if (ta) {
      ta.focus();
      ta.setSelectionRange(ta.value.length, ta.value.length);
    }
  }

  /** Edits the newest own message (ArrowUp in an empty composer). */
  editLast() {
    const me = this.store.me;
    const list = this.store.messagesFor(this.roomId);
    for (let i = list.length - 1; i >= 0; i--) {
      const m = list[i];
      if (me && m.author && m.author.id === me.id && !m.deleted && !m.pending) {
        this.startEdit(m.client_id ? `c:${m.client_id}` : m.id, m);
        this.log.querySelector('.msg-editor')?.scrollIntoView({ block: 'nearest' });
        return true;
      }
    }
    return false;
  }

  stopEdit() {
    this.editingId = null;
    this.render();
    this.actions.focusComposer();
  }

  buildEditor(m) {
    const ta = el('textarea', { class: 'edit-input', 'aria-label': 'Edit message', rows: 2 });
    ta.value = this.editDraft;
    const autosize = () => {
      ta.style.height = 'auto';
      ta.style.height = `${Math.min(ta.scrollHeight + 2, 320)}px`;
    };
    requestAnimationFrame(autosize);
    ta.addEventListener('input', () => {
      this.editDraft = ta.value;
      autosize();
    });
    const save = async () => {
      const body = ta.value.trim();
      if (!body) return;
      if (body === (m.body || '').trim()) return this.stopEdit();
      ta.disabled = true;
      const ok = await this.actions.edit(m, body);
      if (ok) this.stopEdit();
      else ta.disabled = false;
    };
    ta.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.stopEdit();
      } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        save();
      }
    });
    return el(
      'div',
      { class: 'msg-editor' },
      ta,
      el(
        'div',
        { class: 'msg-editor-actions' },
        el('span', { class: 'muted', text: 'Escape to cancel · Enter to save' }),
        el('button', { type: 'button', class: 'btn btn-ghost btn-sm', text: 'Cancel', onclick: () => this.stopEdit() }),
        el('button', { type: 'button', class: 'btn btn-primary btn-sm', text: 'Save', onclick: save }),
      ),
    );
  }

  // ---- navigation ------------------------------------------------------------

  scrollToMessage(id) {
    const node = document.getElementById(`msg-${id}`);
    if (!node) {
      this.actions.toast('The original message is not loaded. Scroll up to load older messages.');
      return;
    }
    node.scrollIntoView({ block: 'center', behavior: 'smooth' });
    node.classList.remove('flash');
    void node.offsetWidth;
    node.classList.add('flash');
    setTimeout(() => node.classList.remove('flash'), 1600);
  }
}

function fmtSize(n) {
  if (n == null) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
