// The room list in the sidebar: rooms and direct messages, with unread and mention
// badges and a last-message preview.

import { displayName, el, fill, roomIcon, snippet } from '../util.js';

export class RoomsView {
  constructor(nav, store, onOpen) {
    Object.assign(this, { nav, store, onOpen, activeId: null });
  }

  setActive(id) {
    this.activeId = id;
    this.render();
  }

  render() {
    const { channels, dms } = this.store.roomLists();
    fill(
      this.nav,
      this.section('Rooms', channels),
      dms.length ? this.section('Direct messages', dms) : null,
      channels.length || dms.length ? null : el('p.nav-empty', 'You are not in any room yet. Browse rooms to join one.'),
    );
  }

  section(title, rooms) {
    return el('div.nav-section', el('h2.heading', title), el('ul.plain-list', rooms.map((r) => this.item(r))));
  }

  item(room) {
    const active = room.id === this.activeId;
    const { unread_count: unread = 0, mention_count: mentions = 0 } = room;
    const plural = (n, w) => `${n} ${w}${n === 1 ? '' : 's'}`;
    const preview = this.preview(room);
    return el(
      'li',
      el(
        'a',
        {
          href: `/r/${encodeURIComponent(room.id)}`,
          class: `nav-item${active ? ' active' : ''}${unread ? ' unread' : ''}`,
          'aria-current': active && 'page',
          onclick: (e) => {
            if (e.metaKey || e.ctrlKey || e.shiftKey || e.button) return;
            e.preventDefault();
            this.onOpen(room.id);
          },
        },
        roomIcon(room),
        el('span.nav-text', el('span.nav-name', this.store.roomTitle(room)), preview && el('span.nav-preview', preview)),
        mentions
          ? el('span.badge.badge-mention', { title: plural(mentions, 'mention') }, `@${mentions}`, el('span.sr-only', ` ${plural(mentions, 'mention')}`))
          : unread
            ? el('span.badge', { title: `${unread} unread` }, String(unread), el('span.sr-only', ' unread'))
            : null,
      ),
    );
  }

  preview(room) {
    const list = this.store.timelines.get(room.id)?.sorted() || [];
    for (let i = list.length - 1; i >= 0; i--) {
      const m = list[i];
      if (m.deleted || m.thread_root) continue;
      const who = this.store.isMe(m.author) ? 'You' : displayName(this.store.resolveUser(m.author));
      return `${who}: ${snippet(m.body, 80) || 'sent an attachment'}`;
    }
    return '';
  }
}
