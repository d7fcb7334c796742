// The conversation header (room name, topic, member count, room actions, the
// connection indicator) and the time-box banner above the messages.

import { formatCountdown, formatFull, icon } from '../util.js';

const CONN_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

/** Whether the room accepts posts now, and what the banner says (SPEC §5). */
export function roomGate(room, me, now = Date.now()) {
  if (!room) return { blocked: null, banner: null, ticking: false };
  const privileged = ['owner', 'admin'].includes(room.role) || (me && me.is_admin);
  const starts = room.starts_at ? Date.parse(room.starts_at) : null;
  const ends = room.ends_at ? Date.parse(room.ends_at) : null;
  if (starts && now < starts) {
    return {
      blocked: privileged ? null : 'This room is not open yet',
      banner: { kind: 'waiting', text: `Opens in ${formatCountdown(starts - now)}`, note: privileged ? 'You can post before it opens as its owner.' : `Opens ${formatFull(room.starts_at)}` },
      ticking: true,
    };
  }
  if (ends && now >= ends) {
    return {
      blocked: privileged ? null : 'This room is closed',
      banner: { kind: 'closed', text: 'This room is closed', note: privileged ? 'It is read-only for everyone but its owner.' : 'It is read-only now.' },
      ticking: false,
    };
  }
  if (ends && ends - now < 24 * 3600 * 1000) {
    return { blocked: null, banner: { kind: 'info', text: `Closes in ${formatCountdown(ends - now)}`, note: '' }, ticking: true };
  }
  return { blocked: null, banner: null, ticking: false };
}

export class HeaderView {
  constructor(refs, store) {
    this.refs = refs;
    this.store = store;
  }

  setConnection(state) {
    this.refs.conn.dataset.state = state;
    this.refs.connText.textContent = CONN_TEXT[state] || state;
  }

  render(roomId) {
    const r = this.refs;
    const room = this.store.room(roomId);
    const me = this.store.me;
    if (!room) {
      r.roomName.textContent = 'No room';
      r.roomTopic.textContent = '';
      r.invite.hidden = true;
      r.copyLink.hidden = true;
      r.leave.hidden = true;
      return;
    }
    const title = this.store.roomTitle(room);
    r.roomName.replaceChildren(icon(room.kind === 'dm' ? 'chat' : room.kind === 'private' || room.has_password ? 'lock' : 'hash', 'icon room-icon'), document.createTextNode(title));
    r.roomTopic.textContent = room.topic || '';
    r.roomTopic.hidden = !room.topic;
    r.invite.hidden = !(room.kind === 'private' && me && me.kind !== 'guest');
    r.copyLink.hidden = room.kind === 'dm';
    r.leave.hidden = room.kind === 'dm';
    const n = room.member_count || 0;
    r.memberCount.textContent = String(n);
    r.toggleMembers.title = `${n} member${n === 1 ? '' : 's'}`;
    document.title = this.titleFor();
  }

  titleFor() {
    const n = this.store.totalUnread();
    return n > 0 ? `(${n}) Hubbub` : 'Hubbub';
  }

  renderBanner(roomId) {
    const gate = roomGate(this.store.room(roomId), this.store.me);
    const b = this.refs.banner;
    if (!gate.banner) {
      b.hidden = true;
      b.replaceChildren();
      return gate;
    }
    b.hidden = false;
    b.dataset.kind = gate.banner.kind;
    const text = document.createElement('strong');
    text.textContent = gate.banner.text;
    const note = document.createElement('span');
    note.textContent = gate.banner.note;
    b.replaceChildren(icon(gate.banner.kind === 'closed' ? 'lock' : 'clock'), text, note);
    return gate;
  }
}
