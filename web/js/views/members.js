// The member list of the open room, online people first.
import {displayName, el, fill, timeAgo} from '../util.js';
const STATUS = {online: 'Online', away: 'Away', dnd: 'Do not disturb', offline: 'Offline'};
export class MembersView {
	constructor(body, store, app) {
		Object.assign(this, {body, store, app, roomId: null});
	}
	setRoom(roomId) {
		this.roomId = roomId;
		this.render();
	}
	render() {
		const room = this.store.room(this.roomId);
		const map = this.store.members.get(this.roomId);
		if (!room || !map) return this.body.replaceChildren(room ? el('p.members-note', 'Loading members…') : '');
		const people = [...map].map(([id, m]) => ({user: this.store.user(id) || {id, username: '?'}, role: m.role}));
		people.sort((a, b) => displayName(a.user).localeCompare(displayName(b.user), undefined, {sensitivity: 'base'}));
		const group = (title, list) => list.length > 0 && el('div.members-group', el('h3.heading', `${title} — ${list.length}`), el('ul.plain-list', list.map(p => this.item(p))));
		const online = p => (p.user.status || 'offline') !== 'offline';
		fill(this.body, group('Online', people.filter(online)), group('Offline', people.filter(p => !online(p))),
			room.member_count > people.length && el('p.members-note', `and ${room.member_count - people.length} more`));
	}
	item({user, role}) {
		const name = displayName(user);
		const st = user.status || 'offline';
		const sub = user.status_text || (st === 'offline' && user.last_seen_at ? `Last seen ${timeAgo(user.last_seen_at)}` : '');
		const tag = role && role !== 'member' ? role : user.kind !== 'user' && user.kind;
		return el(`li.member.status-${st}`, {title: `${name} · ${STATUS[st] || st}`},
			el('span.avatar-wrap', el('img.avatar.avatar-sm', {src: user.avatar_url, alt: name, width: 32, height: 32}), el(`span.presence.presence-${st}`, {'aria-hidden': 'true'})),
			el('span.member-text', el('span.member-name', el('button.member-btn', {onclick: () => this.app.openUser(user.id)}, name),
				this.store.isMe(user) && el('span.you', '(you)'), tag && el(`span.role-tag${tag === 'guest' ? '.role-guest' : ''}`, tag)),
			sub && el('span.member-sub', sub), el('span.sr-only', STATUS[st] || st)));
	}
}
