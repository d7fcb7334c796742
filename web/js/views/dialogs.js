// Modal dialogs built on <dialog>: room browser, room creation, invites,
// profile, room password prompt, user card. Each takes the app context
// (store + callbacks) and talks to the REST API directly.

import { api } from '../api.js';
import { displayName, el, icon, iconButton, localInputToRfc3339, MAX_AVATAR_BYTES, timeAgo } from '../util.js';

let seq = 0;

/** Opens a modal dialog; returns {dialog, body, close}. */
export function openDialog({ title, className = '', onClose, wide = false }) {
  const id = `dlg-title-${++seq}`;
  const body = el('div', { class: 'dialog-body' });
  const dialog = el(
    'dialog',
    { class: `dialog${wide ? ' dialog-wide' : ''} ${className}`, 'aria-labelledby': id },
    el(
      'div',
      { class: 'dialog-inner' },
      el('header', { class: 'dialog-head' }, el('h2', { id, text: title }), iconButton('x', 'Close', () => dialog.close())),
      body,
    ),
  );
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog) dialog.close(); // the backdrop
  });
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (onClose) onClose();
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  return { dialog, body, close: () => dialog.close() };
}

function field(label, input, hint) {
  const id = input.id || `f-${++seq}`;
  input.id = id;
  return el('div', { class: 'field' }, el('label', { class: 'field-label', for: id, text: label }), input, hint ? el('p', { class: 'hint', text: hint }) : null);
}

function errorBox() {
  return el('p', { class: 'form-error', role: 'alert', hidden: true });
}

function showError(box, msg) {
  box.textContent = msg || '';
  box.hidden = !msg;
}

const JOIN_ERRORS = {
  forbidden: 'You cannot join this room (wrong password, or guests are not allowed).',
  room_full: 'This room is full.',
  room_not_open: 'This room is not open yet.',
  room_closed: 'This room is closed.',
  banned: 'You are banned from this room.',
  not_found: 'This room does not exist (or is private).',
};

export function joinErrorText(e) {
  return e.message && e.code !== 'forbidden' ? e.message : JOIN_ERRORS[e.code] || e.message || 'Could not join the room.';
}

// ---- room browser --------------------------------------------------------------

export function browseRooms(ctx) {
  const { body, close } = openDialog({ title: 'Browse rooms', wide: true });
  const search = el('input', { type: 'search', placeholder: 'Filter rooms', 'aria-label': 'Filter rooms', autocomplete: 'off' });
  const list = el('ul', { class: 'browse-list', 'aria-label': 'Available rooms' });
  const status = el('p', { class: 'muted', role: 'status', text: 'Loading rooms…' });
  const err = errorBox();
  body.append(search, err, status, list);
  let rooms = [];

  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = rooms.filter((r) => r.kind !== 'dm' && (!q || r.name.toLowerCase().includes(q) || (r.topic || '').toLowerCase().includes(q)));
    status.textContent = shown.length ? '' : q ? 'No rooms match.' : 'No rooms to show.';
    list.replaceChildren(...shown.map((r) => row(r)));
  };

  const row = (r) => {
    const tags = [];
    if (r.kind === 'private') tags.push('private');
    if (r.has_password) tags.push('password');
    if (!r.guests_allowed) tags.push('accounts only');
    if (r.starts_at && new Date(r.starts_at) > Date.now()) tags.push('opens later');
    if (r.ends_at && new Date(r.ends_at) <= Date.now()) tags.push('closed');
    const rowErr = el('p', { class: 'form-error', hidden: true });
    const actions = el('div', { class: 'browse-actions' });
    const li = el(
      'li',
      { class: 'browse-item' },
      el('span', { class: 'browse-icon' }, icon(r.kind === 'private' || r.has_password ? 'lock' : 'hash')),
      el(
        'div',
        { class: 'browse-text' },
        el('span', { class: 'browse-name', text: r.name }),
        r.topic ? el('span', { class: 'browse-topic', text: r.topic }) : null,
        el(
          'span',
          { class: 'browse-meta' },
          `${r.member_count} member${r.member_count === 1 ? '' : 's'}`,
          tags.map((t) => el('span', { class: 'tag', text: t })),
        ),
        rowErr,
      ),
      actions,
    );
    const doJoin = async (password) => {
      showError(rowErr, '');
      showError(err, '');
      actions.querySelectorAll('button,input').forEach((b) => (b.disabled = true));
      try {
        const room = await api.joinRoom(r.id, password);
        ctx.onJoined(room);
        close();
      } catch (e) {
        actions.querySelectorAll('button,input').forEach((b) => (b.disabled = false));
        const msg = joinErrorText(e);
        showError(rowErr, msg);
        showError(err, `${r.name}: ${msg}`);
      }
    };
    if (r.joined) {
      actions.append(el('button', { type: 'button', class: 'btn btn-secondary btn-sm', text: 'Open', 'aria-label': `Open ${r.name}`, onclick: () => (ctx.onOpen(r.id), close()) }));
    } else if (r.has_password) {
      const pw = el('input', { type: 'password', class: 'input-sm', placeholder: 'Password', 'aria-label': `Password for ${r.name}` });
      pw.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') {
          e.preventDefault();
          doJoin(pw.value);
        }
      });
      actions.append(pw, el('button', { type: 'button', class: 'btn btn-primary btn-sm', text: 'Join', 'aria-label': `Join ${r.name}`, onclick: () => doJoin(pw.value) }));
    } else {
      actions.append(el('button', { type: 'button', class: 'btn btn-primary btn-sm', text: 'Join', 'aria-label': `Join ${r.name}`, onclick: () => doJoin() }));
    }
    return li;
  };

  search.addEventListener('input', render);
  api
    .rooms()
    .then((r) => {
      rooms = r.sort((a, b) => Number(!!a.joined) - Number(!!b.joined) || b.member_count - a.member_count || a.name.localeCompare(b.name));
      render();
    })
    .catch((e) => {
      status.textContent = '';
      showError(err, e.message);
    });
  search.focus();
}

// ---- room creation ---------------------------------------------------------------

export function createRoom(ctx) {
  const { body, close } = openDialog({ title: 'Create a room' });
  const name = el('input', { type: 'text', name: 'name', maxlength: 80, autocomplete: 'off', required: true });
  const topic = el('input', { type: 'text', name: 'topic', maxlength: 250, autocomplete: 'off' });
  const kindPublic = el('input', { type: 'radio', name: 'kind', value: 'public', checked: true, id: `k-pub-${++seq}` });
  const kindPrivate = el('input', { type: 'radio', name: 'kind', value: 'private', id: `k-priv-${++seq}` });
  const password = el('input', { type: 'password', name: 'password', autocomplete: 'new-password' });
  const guests = el('input', { type: 'checkbox', name: 'guests_allowed', checked: true, id: `g-${++seq}` });
  const starts = el('input', { type: 'datetime-local', name: 'starts_at' });
  const ends = el('input', { type: 'datetime-local', name: 'ends_at' });
  const limit = el('input', { type: 'number', name: 'member_limit', min: 1, step: 1, inputmode: 'numeric' });
  const err = errorBox();
  const submit = el('button', { type: 'submit', class: 'btn btn-primary', text: 'Create' });
  const form = el(
    'form',
    { class: 'form', novalidate: true },
    field('Name', name),
    field('Topic', topic, 'Optional. Shown in the room header.'),
    el(
      'fieldset',
      { class: 'field' },
      el('legend', { class: 'field-label', text: 'Visibility' }),
      el(
        'div',
        { class: 'choice-row' },
        el('label', { class: 'choice', for: kindPublic.id }, kindPublic, el('span', null, el('strong', { text: 'Public' }), el('small', { text: 'Anyone can find and join' }))),
        el('label', { class: 'choice', for: kindPrivate.id }, kindPrivate, el('span', null, el('strong', { text: 'Private' }), el('small', { text: 'Invite only' }))),
      ),
    ),
    field('Password', password, 'Optional. People need it to join.'),
    el('div', { class: 'field field-check' }, guests, el('label', { for: guests.id, text: 'Guests allowed' })),
    el('div', { class: 'field-row' }, field('Opens at', starts), field('Closes at', ends)),
    field('Member limit', limit, 'Optional. Counts everyone, you included.'),
    err,
    el('div', { class: 'dialog-actions' }, el('button', { type: 'button', class: 'btn btn-ghost', text: 'Cancel', onclick: () => close() }), submit),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showError(err, '');
    if (!name.value.trim()) {
      showError(err, 'Give the room a name.');
      name.focus();
      return;
    }
    const payload = {
      name: name.value.trim(),
      topic: topic.value.trim() || undefined,
      kind: kindPrivate.checked ? 'private' : 'public',
      guests_allowed: guests.checked,
    };
    if (password.value) payload.password = password.value;
    const s = localInputToRfc3339(starts.value);
    const en = localInputToRfc3339(ends.value);
    if (s) payload.starts_at = s;
    if (en) payload.ends_at = en;
    if (limit.value) payload.member_limit = Number(limit.value);
    submit.disabled = true;
    try {
      const room = await api.createRoom(payload);
      ctx.onJoined(room);
      close();
    } catch (e2) {
      submit.disabled = false;
      showError(err, e2.field ? `${e2.message}` : e2.message);
    }
  });
  body.append(form);
  name.focus();
}

// ---- invites ----------------------------------------------------------------------

export function invite(ctx, room) {
  const { body } = openDialog({ title: `Invite people to #${room.name}` });
  const q = el('input', { type: 'search', placeholder: 'Search by name', 'aria-label': 'Search people', autocomplete: 'off' });
  const list = el('ul', { class: 'people-list', 'aria-label': 'People' });
  const status = el('p', { class: 'muted', role: 'status', text: 'Type a name to search.' });
  const err = errorBox();
  body.append(q, err, status, list);
  let timer = null;
  let token = 0;
  const members = ctx.store.members.get(room.id) || new Map();
  const run = async () => {
    const t = ++token;
    const text = q.value.trim();
    if (!text) {
      list.replaceChildren();
      status.textContent = 'Type a name to search.';
      return;
    }
    try {
      const users = await api.searchUsers(text);
      if (t !== token) return;
      status.textContent = users.length ? '' : 'Nobody found.';
      list.replaceChildren(
        ...users.map((u) => {
          const isMember = members.has(u.id);
          const btn = el('button', {
            type: 'button',
            class: 'btn btn-secondary btn-sm',
            text: isMember ? 'Member' : 'Invite',
            'aria-label': isMember ? `${displayName(u)} is a member` : `Invite ${displayName(u)}`,
            disabled: isMember,
            onclick: async () => {
              btn.disabled = true;
              showError(err, '');
              try {
                await api.invite(room.id, u.id);
                btn.textContent = 'Invited';
                btn.setAttribute('aria-label', `${displayName(u)} invited`);
                ctx.toast(`${displayName(u)} was added to #${room.name}`);
              } catch (e) {
                btn.disabled = false;
                showError(err, e.message);
              }
            },
          });
          return el(
            'li',
            { class: 'person' },
            el('img', { class: 'avatar avatar-sm', src: u.avatar_url, alt: '', width: 32, height: 32 }),
            el('span', { class: 'person-text' }, el('span', { class: 'person-name', text: displayName(u) }), el('span', { class: 'muted', text: `@${u.username}` })),
            btn,
          );
        }),
      );
    } catch (e) {
      if (t === token) showError(err, e.message);
    }
  };
  q.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(run, 200);
  });
  q.focus();
}

// ---- password prompt ----------------------------------------------------------------

/** Asks for a room's password and joins; resolves with the room or null. */
export function joinWithPassword(room) {
  return new Promise((resolve) => {
    let done = false;
    const { body, close } = openDialog({ title: `Join #${room.name}`, onClose: () => !done && resolve(null) });
    const pw = el('input', { type: 'password', autocomplete: 'off' });
    const err = errorBox();
    const btn = el('button', { type: 'submit', class: 'btn btn-primary', text: 'Join' });
    const form = el(
      'form',
      { class: 'form', novalidate: true },
      el('p', { class: 'muted', text: 'This room is protected by a password.' }),
      field('Room password', pw),
      err,
      el('div', { class: 'dialog-actions' }, el('button', { type: 'button', class: 'btn btn-ghost', text: 'Cancel', onclick: () => close() }), btn),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      btn.disabled = true;
      showError(err, '');
      try {
        const joined = await api.joinRoom(room.id, pw.value);
        done = true;
        resolve(joined);
        close();
      } catch (e2) {
        btn.disabled = false;
        showError(err, e2.code === 'forbidden' ? 'Wrong password.' : joinErrorText(e2));
        pw.select();
      }
    });
    body.append(form);
    pw.focus();
  });
}

// ---- profile -------------------------------------------------------------------------

export function profile(ctx) {
  const me = ctx.store.me;
  const { body, close } = openDialog({ title: 'Profile' });
  const avatar = el('img', { class: 'avatar avatar-xl', src: me.avatar_url, alt: 'Your avatar', width: 80, height: 80 });
  const file = el('input', { type: 'file', class: 'file-input', accept: 'image/png,image/jpeg,image/gif,image/webp', 'aria-label': 'Avatar', id: `pf-${++seq}` });
  const avatarErr = errorBox();
  const removeBtn = el('button', { type: 'button', class: 'btn btn-ghost btn-sm', text: 'Remove avatar' });
  const displayNameIn = el('input', { type: 'text', maxlength: 64, value: me.display_name || '', autocomplete: 'off' });
  const bio = el('textarea', { maxlength: 500, rows: 3 });
  bio.value = me.bio || '';
  const statusIn = el('input', { type: 'text', maxlength: 100, value: me.status_text || '', autocomplete: 'off', placeholder: 'What are you up to?' });
  const notify = el('input', { type: 'checkbox', id: `nt-${++seq}`, checked: ctx.notificationsEnabled() });
  const err = errorBox();
  const save = el('button', { type: 'submit', class: 'btn btn-primary', text: 'Save' });

  const setBusy = (b) => {
    file.disabled = b;
    removeBtn.disabled = b;
  };
  file.addEventListener('change', async () => {
    const f = file.files && file.files[0];
    showError(avatarErr, '');
    if (!f) return;
    if (f.size > MAX_AVATAR_BYTES) return showError(avatarErr, 'That image is larger than 5 MB.');
    setBusy(true);
    try {
      const user = await api.uploadAvatar(f);
      ctx.onProfile(user);
      avatar.src = (user && user.avatar_url) || ctx.store.me.avatar_url;
    } catch (e) {
      showError(avatarErr, e.message);
    } finally {
      setBusy(false);
      file.value = '';
    }
  });
  removeBtn.addEventListener('click', async () => {
    setBusy(true);
    showError(avatarErr, '');
    try {
      const user = await api.deleteAvatar();
      if (user && user.id) ctx.onProfile(user);
      else ctx.onProfile(await api.me());
      avatar.src = ctx.store.me.avatar_url;
    } catch (e) {
      showError(avatarErr, e.message);
    } finally {
      setBusy(false);
    }
  });

  const form = el(
    'form',
    { class: 'form', novalidate: true },
    el(
      'div',
      { class: 'profile-head' },
      avatar,
      el(
        'div',
        { class: 'profile-id' },
        el('strong', { text: displayName(me) }),
        el('span', { class: 'muted', text: `@${me.username}${me.kind === 'guest' ? ' · guest' : ''}` }),
        el('div', { class: 'avatar-picker-actions' }, file, el('label', { for: file.id, class: 'btn btn-secondary btn-sm file-btn', 'aria-hidden': 'true' }, icon('upload'), 'Change avatar'), removeBtn),
        avatarErr,
      ),
    ),
    field('Display name', displayNameIn),
    field('Status', statusIn),
    field('Bio', bio),
    el('div', { class: 'field field-check' }, notify, el('label', { for: notify.id, text: 'Desktop notifications for mentions and direct messages' })),
    err,
    el('div', { class: 'dialog-actions' }, el('button', { type: 'button', class: 'btn btn-ghost', text: 'Cancel', onclick: () => close() }), save),
  );
  notify.addEventListener('change', async () => {
    notify.checked = await ctx.setNotifications(notify.checked);
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    save.disabled = true;
    showError(err, '');
    try {
      const user = await api.updateMe({ display_name: displayNameIn.value.trim() || null, bio: bio.value, status_text: statusIn.value.trim() });
      ctx.onProfile(user);
      close();
    } catch (e2) {
      save.disabled = false;
      showError(err, e2.message);
    }
  });
  body.append(form);
}

// ---- user card ------------------------------------------------------------------------

export function userCard(ctx, userId) {
  const u = ctx.store.user(userId);
  if (!u) return;
  const me = ctx.store.me;
  const { body, close } = openDialog({ title: displayName(u), className: 'dialog-card' });
  const status = u.status || 'offline';
  const statusLine = status === 'offline' ? (u.last_seen_at ? `Offline · last seen ${timeAgo(u.last_seen_at)}` : 'Offline') : { online: 'Online', away: 'Away', dnd: 'Do not disturb' }[status] || status;
  const err = errorBox();
  body.append(
    el(
      'div',
      { class: 'card-head' },
      el('span', { class: 'avatar-wrap' }, el('img', { class: 'avatar avatar-xl', src: u.avatar_url, alt: '', width: 80, height: 80 }), el('span', { class: `presence presence-${status}`, 'aria-hidden': 'true' })),
      el(
        'div',
        { class: 'profile-id' },
        el('span', { class: 'muted', text: `@${u.username}${u.kind !== 'user' ? ` · ${u.kind}` : ''}${u.is_admin ? ' · admin' : ''}` }),
        el('span', { class: 'muted', text: statusLine }),
      ),
    ),
    u.status_text ? el('p', { class: 'card-status', text: u.status_text }) : null,
    u.bio ? el('p', { class: 'card-bio', text: u.bio }) : null,
    err,
  );
  if (me && u.id !== me.id && u.kind !== 'bot') {
    body.append(
      el(
        'div',
        { class: 'dialog-actions' },
        el('button', {
          type: 'button',
          class: 'btn btn-primary',
          text: 'Send direct message',
          onclick: async (e) => {
            e.currentTarget.disabled = true;
            try {
              await ctx.startDm(u.id);
              close();
            } catch (e2) {
              showError(err, e2.message);
            }
          },
        }),
      ),
    );
  }
}
