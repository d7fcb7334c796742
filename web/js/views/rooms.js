// The room list in the sidebar: channels and direct messages with unread and
// mention badges and a last-message preview.

import { displayName, el, icon } from '../util.js';

export class RoomsView {
  constructor(nav, store, { onOpen }) {
    this.nav = nav;
    this.store = store;
    this.onOpen = onOpen;
    this.activeId = null;
  }

  setActive(id) {
    this.activeId = id;
    this.render();
  }

  render() {
    const { channels, dms } = this.store.roomLists();
    const sections = [this.section('Rooms', 'rooms-heading', channels, false)];
    if (dms.length) sections.push(this.section('Direct messages', 'dms-heading', dms, true));
    if (!channels.length && !dms.length) {
      sections.push(el('p', { class: 'nav-empty', text: 'You are not in any room yet. Browse rooms to join one.' }));
    }
    this.nav.replaceChildren(...sections);
  }

  section(title, id, rooms, isDm) {
    return el(
      'section',
      { class: 'nav-section', 'aria-labelledby': id },
      el('h2', { class: 'nav-heading', id, text: title }),
      el('ul', { class: 'nav-list' }, rooms.map((r) => this.item(r, isDm))),
    );
  }

  item(room, isDm) {
    const active = room.id === this.activeId;
    const unread = room.unread_count || 0;
    const mentions = room.mention_count || 0;
    const title = this.store.roomTitle(room);
    const preview = this.preview(room);
    const a = el(
      'a',
      {
        href: `/r/${encodeURIComponent(room.id)}`,
        class: `nav-item${active ? ' active' : ''}${unread ? ' unread' : ''}`,
        'aria-current': active ? 'page' : null,
        onclick: (e) => {
          if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
          e.preventDefault();
          this.onOpen(room.id);
        },
      },
      el('span', { class: 'nav-icon' }, isDm ? icon('chat') : room.kind === 'private' || room.has_password ? icon('lock') : icon('hash')),
      el(
        'span',
        { class: 'nav-text' },
        el('span', { class: 'nav-name', text: title }),
        preview ? el('span', { class: 'nav-preview', text: preview }) : null,
      ),
      mentions
        ? el('span', { class: 'badge badge-mention', title: `${mentions} mention${mentions === 1 ? '' : 's'}` },
            `@${mentions}`, el('span', { class: 'sr-only', text: ` mention${mentions === 1 ? '' : 's'}` }))
        : null,
      unread && !mentions
        ? el('span', { class: 'badge', title: `${unread} unread` }, String(unread), el('span', { class: 'sr-only', text: ' unread' }))
        : null,
    );
    return el('li', null, a);
  }

  preview(room) {
    const t = this.store.timelines.get(room.id);
    if (!t) return '';
    const list = t.sorted();
    for (let i = list.length - 1; i >= 0; i--) {
      const m = list[i];
      if (m.deleted || m.thread_root) continue;
      const who = m.author && this.store.me && m.author.id === this.store.me.id ? 'You' : displayName(this.store.resolveUser(m.author));
      const body = (m.body || (m.attachments?.length ? 'sent an attachment' : '')).replace(/\s+/g, ' ').trim();
      return `${who}: ${body}`.slice(0, 80);
    }
    return '';
  }
}
