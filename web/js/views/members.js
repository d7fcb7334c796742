// The member list of the open room: avatar (the server's URL), presence and name,
// online people first.

import { displayName, el, fill, timeAgo } from '../util.js';

const STATUS = { online: 'Online', away: 'Away', dnd: 'Do not disturb', offline: 'Offline' };

export class MembersView {
  constructor(body, store, onSelect) {
    Object.assign(this, { body, store, onSelect, roomId: null });
  }

  setRoom(roomId) {
    this.roomId = roomId;
    this.render();
  }

  render() {
    const room = this.store.room(this.roomId);
    const map = this.store.members.get(this.roomId);
    if (!room || !map) return this.body.replaceChildren(room ? el('p.members-note', 'Loading members…') : '');
    const people = [...map].map(([id, m]) => ({ user: this.store.user(id) || { id, username: '?' }, role: m.role }));
    people.sort((a, b) => displayName(a.user).localeCompare(displayName(b.user), undefined, { sensitivity: 'base' }));
    const on = people.filter((p) => (p.user.status || 'offline') !== 'offline');
    const off = people.filter((p) => !on.includes(p));
    fill(
      this.body,
      on.length ? this.group('Online', on) : null,
      off.length ? this.group('Offline', off) : null,
      room.member_count > people.length ? el('p.members-note', `and ${room.member_count - people.length} more`) : null,
    );
  }

  group(title, people) {
    return el('div.members-group', el('h3.heading', `${title} — ${people.length}`), el('ul.plain-list', people.map((p) => this.item(p))));
  }

  // The avatar stays outside the button (a button's content is presentational):
  // it is an image named after its person.
  item({ user, role }) {
    const name = displayName(user);
    const status = user.status || 'offline';
    const sub = user.status_text || (status === 'offline' && user.last_seen_at ? `Last seen ${timeAgo(user.last_seen_at)}` : '');
    const tag = role && role !== 'member' ? role : user.kind !== 'user' ? user.kind : null;
    return el(
      `li.member.status-${status}`,
      { title: `${name} · ${STATUS[status] || status}` },
      el('span.avatar-wrap', el('img.avatar.avatar-sm', { src: user.avatar_url, alt: name, width: 32, height: 32 }), el(`span.presence.presence-${status}`, { 'aria-hidden': 'true' })),
      el(
        'span.member-text',
        el(
          'span.member-name',
          el('button.member-btn', { type: 'button', onclick: () => this.onSelect(user.id) }, name),
          this.store.isMe(user) ? el('span.you', '(you)') : null,
          tag ? el(`span.role-tag${tag === 'guest' ? '.role-guest' : ''}`, tag) : null,
        ),
        sub ? el('span.member-sub', sub) : null,
        el('span.sr-only', STATUS[status] || status),
      ),
    );
  }
}
