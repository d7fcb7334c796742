// The conversation header and the time-box banner.
import {el, formatCountdown, formatFull, icon, roomIcon} from '../util.js';
const CONN = {connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…', offline: 'Offline'};
export function roomGate(room, me, now = Date.now()) {
	const none = {blocked: null, banner: null, ticking: false};
	if (!room) return none;
	const owner = ['owner', 'admin'].includes(room.role) || me?.is_admin;
	const starts = room.starts_at && Date.parse(room.starts_at);
	const ends = room.ends_at && Date.parse(room.ends_at);
	if (starts && now < starts) {
		const note = owner ? 'You can post before it opens as its owner.' : `Opens ${formatFull(room.starts_at)}`;
		return {blocked: owner ? null : 'This room is not open yet', banner: ['waiting', `Opens in ${formatCountdown(starts - now)}`, note], ticking: true};
	}
	if (ends && now >= ends) {
		return {blocked: owner ? null : 'This room is closed', banner: ['closed', 'This room is closed', owner ? 'Read-only for everyone but its owner.' : 'It is read-only now.'], ticking: false};
	}
	if (ends && ends - now < 864e5) return {blocked: null, banner: ['info', `Closes in ${formatCountdown(ends - now)}`, ''], ticking: true};
	return none;
}
export class HeaderView {
	constructor(refs, store) {
		Object.assign(this, refs, {store});
	}
	setConnection(state) {
		this.conn.dataset.state = state;
		this.connText.textContent = CONN[state] || state;
	}
	render(roomId) {
		const room = this.store.room(roomId);
		const me = this.store.me;
		this.roomName.replaceChildren(roomIcon(room), room ? this.store.roomTitle(room) : 'No room');
		this.roomTopic.textContent = room?.topic || '';
		this.roomTopic.hidden = !room?.topic;
		this.invite.hidden = !(room?.kind === 'private' && me?.kind !== 'guest');
		this.copyLink.hidden = this.leave.hidden = !room || room.kind === 'dm';
		this.pins.hidden = this.notify.hidden = !room;
		const n = room?.member_count || 0;
		this.memberCount.textContent = n;
		this.toggleMembers.title = `${n} member${n === 1 ? '' : 's'}`;
	}
	title() {
		const n = this.store.totalUnread();
		return n > 0 ? `(${n}) Hubbub` : 'Hubbub';
	}
	renderBanner(roomId) {
		const gate = roomGate(this.store.room(roomId), this.store.me);
		this.banner.hidden = !gate.banner;
		if (gate.banner) {
			const [kind, text, note] = gate.banner;
			this.banner.dataset.kind = kind;
			this.banner.replaceChildren(icon(kind === 'closed' ? 'lock' : 'clock'), el('strong', text), el('span', note));
		}
		return gate;
	}
}
