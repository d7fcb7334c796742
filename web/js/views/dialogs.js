// Modal dialogs on <dialog>: room browser, room creation, invites, the room
// password prompt, profile, user card. Each gets the app context (store +
// callbacks) and talks to the REST API.

import { api } from '../api.js';
import { displayName, el, icon, iconButton, localToRfc3339, MAX_AVATAR_BYTES, roomIcon, timeAgo } from '../util.js';

let seq = 0;
const nextId = (p) => `${p}-${++seq}`;

/** Opens a modal; returns {body, close}. */
export function openDialog(title, { wide, onClose } = {}) {
  const id = nextId('dlg');
  const body = el('div.dialog-body');
  const dialog = el(`dialog.dialog${wide ? '.dialog-wide' : ''}`, { 'aria-labelledby': id },
    el('div.dialog-inner', el('header.dialog-head', el('h2', { id }, title), iconButton('x', 'Close', () => dialog.close())), body));
  dialog.addEventListener('click', (e) => e.target === dialog && dialog.close()); // the backdrop
  dialog.addEventListener('close', () => (dialog.remove(), onClose?.()));
  document.body.append(dialog);
  dialog.showModal();
  return { body, close: () => dialog.close() };
}

const field = (label, input, hint) => {
  input.id ||= nextId('f');
  return el('div.field', el('label.field-label', { for: input.id }, label), input, hint && el('p.hint', hint));
};
const errorBox = () => el('p.form-error', { role: 'alert', hidden: true });
const showError = (box, msg) => ((box.textContent = msg || ''), (box.hidden = !msg));
const actions = (close, submit) => el('div.dialog-actions', el('button.btn.btn-ghost', { type: 'button', onclick: close }, 'Cancel'), submit);
const input = (type, props) => el('input', { type, autocomplete: 'off', ...props });

const JOIN_ERRORS = {
  forbidden: 'You cannot join this room: wrong password, or guests are not allowed.',
  room_full: 'This room is full.',
  room_not_open: 'This room is not open yet.',
  room_closed: 'This room is closed.',
  banned: 'You are banned from this room.',
  not_found: 'This room does not exist, or it is private.',
};
export const joinErrorText = (e) => (e.code !== 'forbidden' && e.message) || JOIN_ERRORS[e.code] || e.message || 'Could not join the room.';

// ---- room browser ----

export function browseRooms(ctx) {
  const { body, close } = openDialog('Browse rooms', { wide: true });
  const search = input('search', { placeholder: 'Filter rooms', 'aria-label': 'Filter rooms' });
  const list = el('ul.plain-list.browse-list', { 'aria-label': 'Available rooms' });
  const status = el('p.muted', { role: 'status' }, 'Loading rooms…');
  const err = errorBox();
  body.append(search, err, status, list);
  let rooms = [];
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = rooms.filter((r) => r.kind !== 'dm' && (r.name + ' ' + (r.topic || '')).toLowerCase().includes(q));
    status.textContent = shown.length ? '' : 'No rooms to show.';
    list.replaceChildren(...shown.map(row));
  };
  const row = (r) => {
    const now = Date.now();
    const tags = [r.kind === 'private' && 'private', r.has_password && 'password', !r.guests_allowed && 'accounts only',
      r.starts_at && Date.parse(r.starts_at) > now && 'opens later', r.ends_at && Date.parse(r.ends_at) <= now && 'closed'].filter(Boolean);
    const rowErr = el('p.form-error', { hidden: true });
    const buttons = el('div.browse-actions');
    const join = async (password) => {
      showError(rowErr, '');
      buttons.querySelectorAll('button, input').forEach((b) => (b.disabled = true));
      try {
        ctx.onJoined(await api.joinRoom(r.id, password));
        close();
      } catch (e) {
        buttons.querySelectorAll('button, input').forEach((b) => (b.disabled = false));
        showError(rowErr, joinErrorText(e));
        showError(err, `${r.name}: ${joinErrorText(e)}`);
      }
    };
    if (r.joined) buttons.append(el('button.btn.btn-secondary.btn-sm', { type: 'button', 'aria-label': `Open ${r.name}`, onclick: () => (ctx.onOpen(r.id), close()) }, 'Open'));
    else {
      const pw = r.has_password && input('password', { class: 'input-sm', placeholder: 'Password', 'aria-label': `Password for ${r.name}`, onkeydown: (e) => e.key === 'Enter' && join(pw.value) });
      buttons.append(pw || '', el('button.btn.btn-primary.btn-sm', { type: 'button', 'aria-label': `Join ${r.name}`, onclick: () => join(pw?.value) }, 'Join'));
    }
    return el('li.browse-item', roomIcon(r), el('div.browse-text', el('b', r.name), r.topic && el('span.browse-topic', r.topic),
      el('span.browse-meta', `${r.member_count} member${r.member_count === 1 ? '' : 's'}`, tags.map((t) => el('span.tag', t))), rowErr), buttons);
  };
  search.addEventListener('input', render);
  api.rooms().then(
    (r) => ((rooms = r.sort((a, b) => !!a.joined - !!b.joined || b.member_count - a.member_count || a.name.localeCompare(b.name))), render()),
    (e) => ((status.textContent = ''), showError(err, e.message)),
  );
  search.focus();
}

// ---- room creation ----

export function createRoom(ctx) {
  const { body, close } = openDialog('Create a room');
  const name = input('text', { maxlength: 80 });
  const topic = input('text', { maxlength: 250 });
  const radio = (value, title, sub) => {
    const r = input('radio', { name: 'kind', value, checked: value === 'public', id: nextId('k') });
    return [r, el('label.choice', { for: r.id }, r, el('span', el('strong', title), el('small', sub)))];
  };
  const [pub, pubLabel] = radio('public', 'Public', 'Anyone can find and join');
  const [, privLabel] = radio('private', 'Private', 'Invite only');
  const password = input('password', { autocomplete: 'new-password' });
  const guests = input('checkbox', { checked: true, id: nextId('g') });
  const starts = input('datetime-local');
  const ends = input('datetime-local');
  const limit = input('number', { min: 1, step: 1 });
  const err = errorBox();
  const submit = el('button.btn.btn-primary', { type: 'submit' }, 'Create');
  const form = el('form.form', { novalidate: true },
    field('Name', name), field('Topic', topic),
    el('fieldset.field', el('legend.field-label', 'Visibility'), el('div.choice-row', pubLabel, privLabel)),
    el('div.field-row', field('Password', password, 'Optional: needed to join.'), field('Member limit', limit, 'Optional, you included.')),
    el('div.field-row', field('Opens at', starts), field('Closes at', ends)),
    el('div.field-check', guests, el('label', { for: guests.id }, 'Guests allowed')),
    err, actions(close, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError(err, '');
    if (!name.value.trim()) return showError(err, 'Give the room a name.'), name.focus();
    const payload = { name: name.value.trim(), kind: pub.checked ? 'public' : 'private', guests_allowed: guests.checked };
    if (topic.value.trim()) payload.topic = topic.value.trim();
    if (password.value) payload.password = password.value;
    if (localToRfc3339(starts.value)) payload.starts_at = localToRfc3339(starts.value);
    if (localToRfc3339(ends.value)) payload.ends_at = localToRfc3339(ends.value);
    if (limit.value) payload.member_limit = Number(limit.value);
    submit.disabled = true;
    try {
      ctx.onJoined(await api.createRoom(payload));
      close();
    } catch (e2) {
      submit.disabled = false;
      showError(err, e2.message);
    }
  });
  body.append(form);
  name.focus();
}

// ---- invites ----

export function invite(ctx, room) {
  const { body } = openDialog(`Invite people to #${room.name}`);
  const q = input('search', { placeholder: 'Search by name', 'aria-label': 'Search people' });
  const list = el('ul.plain-list', { 'aria-label': 'People' });
  const status = el('p.muted', { role: 'status' }, 'Type a name to search.');
  const err = errorBox();
  body.append(q, err, status, list);
  let timer;
  let token = 0;
  const run = async () => {
    const t = ++token;
    if (!q.value.trim()) return list.replaceChildren(), (status.textContent = 'Type a name to search.');
    try {
      const users = await api.searchUsers(q.value.trim());
      if (t !== token) return;
      const members = ctx.store.members.get(room.id) || new Map();
      status.textContent = users.length ? '' : 'Nobody found.';
      list.replaceChildren(...users.map((u) => {
        const n = displayName(u);
        const btn = el('button.btn.btn-secondary.btn-sm', { type: 'button', 'aria-label': members.has(u.id) ? `${n} is a member` : `Invite ${n}`, disabled: members.has(u.id) }, members.has(u.id) ? 'Member' : 'Invite');
        btn.onclick = async () => {
          btn.disabled = true;
          showError(err, '');
          try {
            await api.invite(room.id, u.id);
            btn.textContent = 'Invited';
            btn.setAttribute('aria-label', `${n} invited`);
          } catch (e) {
            btn.disabled = false;
            showError(err, e.message);
          }
        };
        return el('li.person', el('img.avatar.avatar-sm', { src: u.avatar_url, alt: '', width: 32, height: 32 }), el('span', el('b', n), el('small.muted', `@${u.username}`)), btn);
      }));
    } catch (e) {
      if (t === token) showError(err, e.message);
    }
  };
  q.addEventListener('input', () => (clearTimeout(timer), (timer = setTimeout(run, 200))));
  q.focus();
}

// ---- password prompt ----

/** Asks for a room's password and joins; resolves with the room, or null if cancelled. */
export function joinWithPassword(room) {
  return new Promise((resolve) => {
    const { body, close } = openDialog(`Join #${room.name}`, { onClose: () => resolve(null) });
    const pw = input('password');
    const err = errorBox();
    const submit = el('button.btn.btn-primary', { type: 'submit' }, 'Join');
    const form = el('form.form', { novalidate: true }, el('p.muted', 'This room is protected by a password.'), field('Room password', pw), err, actions(close, submit));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      submit.disabled = true;
      showError(err, '');
      try {
        resolve(await api.joinRoom(room.id, pw.value));
        close();
      } catch (e2) {
        submit.disabled = false;
        showError(err, e2.code === 'forbidden' ? 'Wrong password.' : joinErrorText(e2));
        pw.select();
      }
    });
    body.append(form);
    pw.focus();
  });
}

// ---- profile ----

export function profile(ctx) {
  const me = ctx.store.me;
  const { body, close } = openDialog('Profile');
  const avatar = el('img.avatar.avatar-xl', { src: me.avatar_url, alt: 'Your avatar', width: 80, height: 80 });
  const file = input('file', { class: 'file-input', accept: 'image/png,image/jpeg,image/gif,image/webp', 'aria-label': 'Avatar', id: nextId('av') });
  const remove = el('button.btn.btn-ghost.btn-sm', { type: 'button' }, 'Remove avatar');
  const avatarErr = errorBox();
  const dname = input('text', { maxlength: 64, value: me.display_name || '' });
  const status = input('text', { maxlength: 100, value: me.status_text || '', placeholder: 'What are you up to?' });
  const bio = el('textarea', { maxlength: 500, rows: 3, value: me.bio || '' });
  const notify = input('checkbox', { id: nextId('n'), checked: ctx.notificationsEnabled() });
  const err = errorBox();
  const save = el('button.btn.btn-primary', { type: 'submit' }, 'Save');
  const changeAvatar = async (call) => {
    showError(avatarErr, '');
    file.disabled = remove.disabled = true;
    try {
      const user = await call();
      ctx.onProfile(user?.id ? user : await api.me());
      avatar.src = ctx.store.me.avatar_url;
    } catch (e) {
      showError(avatarErr, e.message);
    }
    file.disabled = remove.disabled = false;
    file.value = '';
  };
  file.addEventListener('change', () => {
    const f = file.files?.[0];
    if (f && f.size > MAX_AVATAR_BYTES) showError(avatarErr, 'That image is larger than 5 MB.');
    else if (f) changeAvatar(() => api.uploadAvatar(f));
  });
  remove.addEventListener('click', () => changeAvatar(api.deleteAvatar));
  notify.addEventListener('change', async () => (notify.checked = await ctx.setNotifications(notify.checked)));
  const form = el('form.form', { novalidate: true },
    el('div.profile-head', avatar, el('div.profile-id', el('strong', displayName(me)), el('span.muted', `@${me.username}${me.kind === 'guest' ? ' · guest' : ''}`),
      el('div.picker-actions', file, el('label.btn.btn-secondary.btn-sm', { for: file.id, 'aria-hidden': 'true' }, icon('upload'), 'Change avatar'), remove), avatarErr)),
    field('Display name', dname), field('Status', status), field('Bio', bio),
    el('div.field-check', notify, el('label', { for: notify.id }, 'Desktop notifications for mentions and direct messages')),
    err, actions(close, save));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    save.disabled = true;
    showError(err, '');
    try {
      ctx.onProfile(await api.updateMe({ display_name: dname.value.trim() || null, bio: bio.value, status_text: status.value.trim() }));
      close();
    } catch (e2) {
      save.disabled = false;
      showError(err, e2.message);
    }
  });
  body.append(form);
}

// ---- user card ----

export function userCard(ctx, userId) {
  const u = ctx.store.user(userId);
  if (!u) return;
  const { body, close } = openDialog(displayName(u));
  const st = u.status || 'offline';
  const line = st === 'offline' ? `Offline${u.last_seen_at ? ` · last seen ${timeAgo(u.last_seen_at)}` : ''}` : { online: 'Online', away: 'Away', dnd: 'Do not disturb' }[st] || st;
  const err = errorBox();
  body.append(
    el('div.profile-head', el('span.avatar-wrap', el('img.avatar.avatar-xl', { src: u.avatar_url, alt: '', width: 80, height: 80 }), el(`span.presence.presence-${st}`, { 'aria-hidden': 'true' })),
      el('div.profile-id', el('span.muted', `@${u.username}${u.kind !== 'user' ? ` · ${u.kind}` : ''}${u.is_admin ? ' · admin' : ''}`), el('span.muted', line))),
    u.status_text && el('p', u.status_text), u.bio && el('p.card-bio', u.bio), err);
  if (!ctx.store.isMe(u) && u.kind !== 'bot') {
    const dm = el('button.btn.btn-primary', { type: 'button' }, 'Send direct message');
    dm.onclick = async () => {
      dm.disabled = true;
      try {
        await ctx.startDm(u.id);
        close();
      } catch (e) {
        dm.disabled = false;
        showError(err, e.message);
      }
    };
    body.append(el('div.dialog-actions', dm));
  }
}
