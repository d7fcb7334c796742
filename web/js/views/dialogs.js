// Modal dialogs on <dialog>; each gets the app (store + actions) as ctx.
import {api} from '../api.js';
import {displayName, el, formatFull, formatTime, icon, iconButton, localToRfc3339, MAX_AVATAR_BYTES, roomIcon, timeAgo} from '../util.js';
let seq = 0;
const nextId = p => `${p}-${++seq}`;
export function openDialog(title, {wide, onClose, cls = ''} = {}) {
	const id = nextId('dlg');
	const body = el('div.dialog-body');
	const dialog = el(`dialog.dialog${wide ? '.dialog-wide' : ''}${cls}`, {'aria-labelledby': id},
		el('div.dialog-inner', el('header.dialog-head', el('h2', {id}, title), iconButton('x', 'Close', () => dialog.close())), body));
	dialog.addEventListener('click', e => e.target === dialog && dialog.close());
	dialog.addEventListener('close', () => (dialog.remove(), onClose?.()));
	document.body.append(dialog);
	dialog.showModal();
	return {body, close: () => dialog.close()};
}
const field = (label, input, hint) => el('div.field', el('label.field-label', {for: (input.id ||= nextId('f'))}, label), input, hint && el('p.hint', hint));
const errorBox = () => el('p.form-error', {role: 'alert', hidden: true});
const showError = (box, msg) => ((box.textContent = msg || ''), (box.hidden = !msg));
const actions = (close, submit) => el('div.dialog-actions', el('button.btn.btn-ghost', {onclick: close}, 'Cancel'), submit);
const input = (type, props) => el('input', {type, autocomplete: 'off', ...props});
const submitButton = text => el('button.btn.btn-primary', {type: 'submit'}, text);
const form = (onSubmit, ...kids) => el('form.form', {novalidate: true, onsubmit: e => (e.preventDefault(), onSubmit())}, kids);
const avatar = (u, size = 32) => el(`img.avatar.avatar-${size > 32 ? 'xl' : 'sm'}`, {src: u?.avatar_url, alt: '', width: size, height: size});
async function busy(button, box, fn, text = e => e.message) {
	button.disabled = true;
	showError(box, '');
	try {
		await fn();
		return true;
	} catch (e) {
		showError(box, text(e));
		return false;
	} finally {
		button.disabled = false;
	}
}
export const joinErrorText = e => (e.code === 'forbidden' ? 'You cannot join this room: wrong password, or guests are not allowed.' : e.code === 'not_found' ? 'This room does not exist, or it is private.' : e.message);
const debounced = (q, run, ms = 200) => {
	let timer;
	let token = 0;
	q.addEventListener('input', () => (clearTimeout(timer), (timer = setTimeout((t = ++token) => run(q.value.trim(), () => t === token), ms))));
};
export function browseRooms(ctx) {
	const {body, close} = openDialog('Browse rooms', {wide: true});
	const search = input('search', {placeholder: 'Filter rooms', 'aria-label': 'Filter rooms'});
	const list = el('ul.plain-list.browse-list', {'aria-label': 'Available rooms'});
	const status = el('p.muted', {role: 'status'}, 'Loading rooms…');
	const err = errorBox();
	body.append(search, err, status, list);
	let rooms = [];
	const render = () => {
		const q = search.value.trim().toLowerCase();
		const shown = rooms.filter(r => r.kind !== 'dm' && `${r.name} ${r.topic || ''}`.toLowerCase().includes(q));
		status.textContent = shown.length ? '' : 'No rooms to show.';
		list.replaceChildren(...shown.map(row));
	};
	const row = r => {
		const now = Date.now();
		const tags = [r.kind === 'private' && 'private', r.has_password && 'password', !r.guests_allowed && 'accounts only',
			r.starts_at && Date.parse(r.starts_at) > now && 'opens later', r.ends_at && Date.parse(r.ends_at) <= now && 'closed'].filter(Boolean);
		const open = room => room && (ctx.onRoomJoined(room), close());
		const join = el(`button.btn.btn-sm.btn-${r.joined ? 'secondary' : 'primary'}`, {'aria-label': `${r.joined ? 'Open' : 'Join'} ${r.name}`}, r.joined ? 'Open' : 'Join');
		join.onclick = () => (r.joined ? (ctx.openRoom(r.id), close()) : r.has_password ? joinWithPassword(r).then(open) : busy(join, err, async () => open(await api.joinRoom(r.id)), e => `${r.name}: ${joinErrorText(e)}`));
		return el('li.browse-item', roomIcon(r), el('div.browse-text', el('b', r.name), r.topic && el('span.browse-topic', r.topic),
			el('span.browse-meta', `${r.member_count} member${r.member_count === 1 ? '' : 's'}`, tags.map(t => el('span.tag', t)))), join);
	};
	search.addEventListener('input', render);
	api.rooms().then(
		r => ((rooms = r.sort((a, b) => !!a.joined - !!b.joined || b.member_count - a.member_count || a.name.localeCompare(b.name))), render()),
		e => ((status.textContent = ''), showError(err, e.message)),
	);
	search.focus();
}
export function createRoom(ctx) {
	const {body, close} = openDialog('Create a room');
	const name = input('text', {maxlength: 80});
	const topic = input('text', {maxlength: 250});
	const radio = (value, title, sub) => {
		const r = input('radio', {name: 'kind', value, checked: value === 'public', id: nextId('k')});
		return el('label.choice', {for: r.id}, r, el('span', el('strong', title), el('small', sub)));
	};
	const pub = radio('public', 'Public', 'Anyone can find and join');
	const password = input('password', {autocomplete: 'new-password'});
	const guests = input('checkbox', {checked: true, id: nextId('g')});
	const starts = input('datetime-local');
	const ends = input('datetime-local');
	const limit = input('number', {min: 1, step: 1});
	const err = errorBox();
	const submit = submitButton('Create');
	body.append(form(() => {
		if (!name.value.trim()) return showError(err, 'Give the room a name.'), name.focus();
		const payload = {name: name.value.trim(), kind: pub.control.checked ? 'public' : 'private', guests_allowed: guests.checked, topic: topic.value.trim() || undefined,
			password: password.value || undefined, starts_at: localToRfc3339(starts.value) || undefined, ends_at: localToRfc3339(ends.value) || undefined, member_limit: Number(limit.value) || undefined};
		busy(submit, err, async () => (ctx.onRoomJoined(await api.createRoom(payload)), close()));
	},
	field('Name', name), field('Topic', topic),
	el('fieldset.field', el('legend.field-label', 'Visibility'), el('div.choice-row', pub, radio('private', 'Private', 'Invite only'))),
	el('div.field-row', field('Password', password, 'Optional: needed to join.'), field('Member limit', limit, 'Optional, you included.')),
	el('div.field-row', field('Opens at', starts), field('Closes at', ends)),
	el('div.field-check', guests, el('label', {for: guests.id}, 'Guests allowed')),
	err, actions(close, submit)));
	name.focus();
}
export function joinWithPassword(room) {
	return new Promise(resolve => {
		const {body, close} = openDialog(`Join #${room.name}`, {onClose: () => resolve(null)});
		const pw = input('password');
		const err = errorBox();
		const submit = submitButton('Join');
		const wrong = e => (pw.select(), e.code === 'forbidden' ? 'Wrong password.' : joinErrorText(e));
		body.append(form(() => busy(submit, err, async () => (resolve(await api.joinRoom(room.id, pw.value)), close()), wrong),
			el('p.muted', 'This room is protected by a password.'), field('Room password', pw), err, actions(close, submit)));
		pw.focus();
	});
}
function people(body, row, ...extra) {
	const q = input('search', {placeholder: 'Search people by name', 'aria-label': 'Search people'});
	const list = el('ul.plain-list', {'aria-label': 'People'});
	const status = el('p.muted', {role: 'status'}, 'Type a name to search.');
	const err = errorBox();
	body.append(q, ...extra, status, list, err);
	let users = [];
	const render = () => list.replaceChildren(...users.map(u => row(u, err, render)).filter(Boolean).map(r => el('li', r)));
	debounced(q, async (text, current) => {
		try {
			const found = text ? await api.searchUsers(text) : [];
			if (!current()) return;
			users = found;
			status.textContent = !text ? 'Type a name to search.' : users.length ? '' : 'Nobody found.';
			render();
		} catch (e) {
			showError(err, e.message);
		}
	});
	q.focus();
	return {err, render};
}
const who = u => el('span', el('b', displayName(u)), el('small.muted', `@${u.username}`));
export function invite(ctx, room) {
	const members = ctx.store.members.get(room.id) || new Map();
	const invited = new Set();
	people(openDialog(`Invite people to #${room.name}`).body, (u, err, render) => {
		const n = displayName(u);
		const done = members.has(u.id) || invited.has(u.id);
		const btn = el('button.btn.btn-secondary.btn-sm', {'aria-label': members.has(u.id) ? `${n} is a member` : invited.has(u.id) ? `${n} invited` : `Invite ${n}`, disabled: done},
			members.has(u.id) ? 'Member' : invited.has(u.id) ? 'Invited' : 'Invite');
		btn.onclick = () => busy(btn, err, () => api.invite(room.id, u.id)).then(ok => ok && (invited.add(u.id), render()));
		return el('div.person', avatar(u), who(u), btn);
	});
}
export function newDm(ctx) {
	const {body, close} = openDialog('New message');
	const chosen = new Map();
	const picked = el('div.picked');
	const start = el('button.btn.btn-primary', {disabled: true}, 'Start conversation');
	const toggle = u => {
		chosen.delete(u.id) || (chosen.size < 9 && chosen.set(u.id, u));
		picked.replaceChildren(...[...chosen.values()].map(p => el('span.tag.person-tag', displayName(p), iconButton('x', `Remove ${displayName(p)}`, () => toggle(p), 'icon-btn icon-btn-sm'))));
		start.disabled = !chosen.size;
		render();
	};
	const {err, render} = people(body, u => !ctx.store.isMe(u) && el('button.person.person-btn', {'aria-pressed': String(chosen.has(u.id)), onclick: () => toggle(u)}, avatar(u), who(u), chosen.has(u.id) && icon('check')), picked);
	body.append(el('div.dialog-actions', start));
	start.onclick = () => busy(start, err, async () => (await ctx.startDm([...chosen.keys()]), close()));
}
export function userCard(ctx, userId) {
	const u = ctx.store.user(userId);
	if (!u) return;
	const {body, close} = openDialog(displayName(u));
	const st = u.status || 'offline';
	const line = st === 'offline' ? `Offline${u.last_seen_at ? ` · last seen ${timeAgo(u.last_seen_at)}` : ''}` : {online: 'Online', away: 'Away', dnd: 'Do not disturb'}[st] || st;
	const err = errorBox();
	body.append(
		el('div.profile-head', el('span.avatar-wrap', avatar(u, 80), el(`span.presence.presence-${st}`, {'aria-hidden': 'true'})),
			el('div.profile-id', el('span.muted', `@${u.username}${u.kind !== 'user' ? ` · ${u.kind}` : ''}${u.is_admin ? ' · admin' : ''}`), el('span.muted', line))),
		u.status_text && el('p', u.status_text), u.bio && el('p.card-bio', u.bio), err);
	if (ctx.store.isMe(u) || u.kind === 'bot') return;
	const dm = el('button.btn.btn-primary', icon('chat'), 'Send message');
	dm.onclick = () => busy(dm, err, async () => (await ctx.startDm(u.id), close()));
	body.append(el('div.dialog-actions', dm));
}
export function profile(ctx) {
	const me = ctx.store.me;
	const {body, close} = openDialog('Profile');
	const pic = el('img.avatar.avatar-xl', {src: me.avatar_url, alt: 'Your avatar', width: 80, height: 80});
	const file = input('file', {class: 'file-input', accept: 'image/png,image/jpeg,image/gif,image/webp', 'aria-label': 'Avatar', id: nextId('av')});
	const remove = el('button.btn.btn-ghost.btn-sm', 'Remove avatar');
	const avatarErr = errorBox();
	const dname = input('text', {maxlength: 64, value: me.display_name || ''});
	const status = input('text', {maxlength: 100, value: me.status_text || '', placeholder: 'What are you up to?'});
	const bio = el('textarea', {maxlength: 500, rows: 3, value: me.bio || ''});
	const err = errorBox();
	const save = submitButton('Save');
	const changeAvatar = async call => {
		file.disabled = true;
		await busy(remove, avatarErr, async () => {
			const user = await call();
			ctx.onProfile(user?.id ? user : await api.me());
			pic.src = ctx.store.me.avatar_url;
		});
		file.disabled = false;
		file.value = '';
	};
	file.addEventListener('change', () => {
		const f = file.files?.[0];
		if (f && f.size > MAX_AVATAR_BYTES) showError(avatarErr, 'That image is larger than 5 MB.');
		else if (f) changeAvatar(() => api.uploadAvatar(f));
	});
	remove.addEventListener('click', () => changeAvatar(api.deleteAvatar));
	body.append(form(() => busy(save, err, async () => (ctx.onProfile(await api.updateMe({display_name: dname.value.trim() || null, bio: bio.value, status_text: status.value.trim()})), close())),
		el('div.profile-head', pic, el('div.profile-id', el('strong', displayName(me)), el('span.muted', `@${me.username}${me.kind === 'guest' ? ' · guest' : ''}`),
			el('div.picker-actions', file, el('label.btn.btn-secondary.btn-sm', {for: file.id, 'aria-hidden': 'true'}, icon('upload'), 'Change avatar'), remove), avatarErr)),
		field('Display name', dname), field('Status', status), field('Bio', bio),
		err, actions(close, save)));
}
function result(ctx, m, html, onOpen) {
	const a = ctx.store.resolveUser(m.author);
	const room = ctx.store.room(m.room_id);
	const body = el('div.msg-body');
	body.innerHTML = html; // sanitized by the server: a search snippet or message.html
	return el('li', el('button.result', {onclick: onOpen}, avatar(a),
		el('span.result-main', el('span.result-head', el('b', displayName(a)), room && el('span', roomIcon(room, 'icon icon-xs'), ctx.store.roomTitle(room)),
			el('time.muted', {datetime: m.created_at, title: formatFull(m.created_at)}, `${new Date(m.created_at).toLocaleDateString()} ${formatTime(m.created_at)}`)), body)));
}
const last = {q: '', here: false};
export function search(ctx, roomId) {
	const {body, close} = openDialog('Search messages', {wide: true});
	const q = input('search', {placeholder: 'Search messages', 'aria-label': 'Search messages', value: last.q});
	const here = input('checkbox', {id: nextId('s'), checked: last.here && !!roomId, disabled: !roomId});
	const status = el('p.muted', {role: 'status'});
	const list = el('ul.plain-list.results', {'aria-label': 'Search results'});
	let token = 0;
	const run = async (t = ++token) => {
		Object.assign(last, {q: q.value, here: here.checked});
		if (!q.value.trim()) return (status.textContent = ''), list.replaceChildren();
		status.textContent = 'Searching…';
		try {
			const res = await api.search(q.value.trim(), here.checked ? roomId : null);
			if (t !== token) return;
			status.textContent = res.length ? `${res.length} result${res.length === 1 ? '' : 's'}` : 'No messages found.';
			list.replaceChildren(...res.map(r => result(ctx, r.message, r.snippet || r.message.html, () => (close(), ctx.jump(r.message)))));
		} catch (e) {
			if (t === token) status.textContent = e.message;
		}
	};
	body.append(el('form.search-form', {role: 'search', novalidate: true, onsubmit: e => (e.preventDefault(), run())}, q, el('div.field-check', here, el('label', {for: here.id}, 'This room only'))), status, list);
	debounced(q, () => run(), 300);
	here.addEventListener('change', () => run());
	q.focus();
	q.select();
	if (last.q) run();
}
export async function pins(ctx, room) {
	const {body, close} = openDialog(`Pinned messages in ${room.kind === 'dm' ? '' : '#'}${ctx.store.roomTitle(room)}`, {wide: true});
	const status = el('p.muted', {role: 'status'}, 'Loading…');
	const list = el('ul.plain-list.results', {'aria-label': 'Pinned messages'});
	body.append(status, list);
	try {
		const msgs = await api.pins(room.id);
		status.textContent = msgs.length ? '' : 'Nothing is pinned yet.';
		list.replaceChildren(...msgs.map(m => result(ctx, m, m.html, () => (close(), ctx.jump(m)))));
	} catch (e) {
		status.textContent = e.message;
	}
}
export const lightbox = a => openDialog(a.name, {cls: '.lightbox'}).body.append(el('img', {src: a.url, alt: a.name, width: a.width, height: a.height}));
