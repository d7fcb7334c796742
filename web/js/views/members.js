// The member list of the open room: avatar (the server's URL), presence and name,
// online people first.

import { displayName, el, timeAgo } from '../util.js';

const STATUS_LABEL = { online: 'Online', away: 'Away', dnd: 'Do not disturb', offline: 'Offline' };

export class MembersView {
  constructor(body, countEl, store, { onSelect }) {
    this.body = body;
    this.countEl = countEl;
    this.store = store;
    this.onSelect = onSelect;
    this.roomId = null;
  }

  setRoom(roomId) {
    this.roomId = roomId;
    this.render();
  }

  render() {
    const room = this.store.room(this.roomId);
    const map = this.store.members.get(this.roomId);
    this.countEl.textContent = String(room ? room.member_count || (map ? map.size : 0) : 0);
    if (!room) {
      this.body.replaceChildren();
      return;
    }
    if (!map) {
      this.body.replaceChildren(el('p', { class: 'members-empty', text: 'Loading members…' }));
      return;
    }
    const people = [...map.entries()].map(([id, m]) => ({ user: this.store.user(id) || { id, username: '?' }, role: m.role }));
    const byName = (a, b) => displayName(a.user).localeCompare(displayName(b.user), undefined, { sensitivity: 'base' });
    const online = people.filter((p) => p.user.status && p.user.status !== 'offline').sort(byName);
    const offline = people.filter((p) => !p.user.status || p.user.status === 'offline').sort(byName);
    const groups = [];
    if (online.length) groups.push(this.group('Online', online));
    if (offline.length) groups.push(this.group('Offline', offline));
    if (room.member_count > people.length) {
      groups.push(el('p', { class: 'members-more', text: `and ${room.member_count - people.length} more` }));
    }
    this.body.replaceChildren(...groups);
  }

  group(title, people) {
    const id = `members-${title.toLowerCase()}`;
    return el(
      'section',
      { class: 'members-group', 'aria-labelledby': id },
      el('h3', { class: 'members-group-title', id }, `${title} — ${people.length}`),
      el('ul', { class: 'member-list' }, people.map((p) => this.item(p))),
    );
  }

  item({ user, role }) {
    const name = displayName(user);
    const status = user.status || 'offline';
    const me = this.store.me && user.id === this.store.me.id;
    let sub = user.status_text || '';
    if (!sub && status === 'offline' && user.last_seen_at) sub = `Last seen ${timeAgo(user.last_seen_at)}`;
    const roleTag = role && role !== 'member' ? el('span', { class: 'role-tag', text: role }) : null;
    const guestTag = user.kind === 'guest' ? el('span', { class: 'role-tag role-guest', text: 'guest' }) : user.kind === 'bot' ? el('span', { class: 'role-tag', text: 'bot' }) : null;
    // The avatar stays outside the button: a button's children are presentational,
    // and the picture must stay an image named after its person.
    return el(
      'li',
      { class: `member status-${status}`, title: `${name} · ${STATUS_LABEL[status] || status}` },
      el(
        'span',
        { class: 'avatar-wrap' },
        el('img', { class: 'avatar avatar-sm', src: user.avatar_url, alt: name, width: 32, height: 32, decoding: 'async' }),
        el('span', { class: `presence presence-${status}`, 'aria-hidden': 'true' }),
      ),
      el(
        'span',
        { class: 'member-text' },
        el(
          'span',
          { class: 'member-name' },
          el('button', { type: 'button', class: 'member-btn', text: name, onclick: () => this.onSelect(user.id) }),
          me ? el('span', { class: 'you', text: '(you)' }) : null,
          roleTag,
          guestTag,
        ),
        sub ? el('span', { class: 'member-sub', text: sub }) : null,
        el('span', { class: 'sr-only', text: STATUS_LABEL[status] || status }),
      ),
    );
  }
}
