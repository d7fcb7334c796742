// The sidebar's rooms and DMs with unread and mention badges.
import {displayName, el, fill, iconButton, roomIcon, snippet} from '../util.js';
export class RoomsView {
	constructor(nav, store, app) {
		Object.assign(this, {nav, store, app, activeId: null});
	}
	setActive(id) {
		this.activeId = id;
		this.render();
	}
	render() {
		const {channels, dms} = this.store.roomLists();
		fill(this.nav, this.section('Rooms', channels, !channels.length && el('p.nav-empty', 'You are not in any room yet. Browse rooms to join one.')),
			this.section('Direct messages', dms, !dms.length && el('p.nav-empty', 'No conversations yet.'), iconButton('edit', 'New message', () => this.app.newDm(), 'icon-btn icon-btn-sm')));
	}
	section(title, rooms, empty, action) {
		return el('div.nav-section', el('div.nav-head', el('h2.heading', title), action), empty, el('ul.plain-list', {'aria-label': title}, rooms.map(r => this.item(r))));
	}
	item(room) {
		const active = room.id === this.activeId;
		const {unread_count: unread = 0, mention_count: mentions = 0} = room;
		const peer = room.kind === 'dm' && this.store.dmPeers(room)[0];
		const m = this.store.timelines.get(room.id)?.sorted().findLast(m => !m.deleted && !m.thread_root);
		const preview = m && `${this.store.isMe(m.author) ? 'You' : displayName(this.store.resolveUser(m.author))}: ${snippet(m.body, 80) || 'sent an attachment'}`;
		const count = mentions ? `${mentions} mention${mentions === 1 ? '' : 's'}` : `${unread} unread`;
		return el('li', el('a', {href: `/r/${encodeURIComponent(room.id)}`, class: `nav-item${active ? ' active' : ''}${unread ? ' unread' : ''}`, 'aria-current': active && 'page',
				onclick: e => e.metaKey || e.ctrlKey || e.shiftKey || e.button || (e.preventDefault(), this.app.openRoom(room.id))},
			peer?.avatar_url ? el('span.avatar-wrap', el('img.avatar.avatar-nav', {src: peer.avatar_url, alt: '', width: 20, height: 20}), el(`span.presence.presence-${peer.status || 'offline'}`, {'aria-hidden': 'true'})) : roomIcon(room),
			el('span.nav-text', el('span.nav-name', this.store.roomTitle(room)), preview && el('span.nav-preview', preview)),
			mentions + unread > 0 && el(`span.badge${mentions || room.kind === 'dm' ? '.badge-mention' : ''}`, {title: count}, mentions ? `@${mentions}` : String(unread), el('span.sr-only', ` ${mentions ? count : 'unread'}`))));
	}
}
