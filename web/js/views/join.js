// The join screen: join as a guest (name + optional avatar with a live preview),
// or sign in / create an account. Calls onJoined(user) after the server set the
// session cookie.

import { api } from '../api.js';
import { el, hueOf, hydrateIcons, initials, MAX_AVATAR_BYTES, readAsDataURL } from '../util.js';

export class JoinView {
  constructor(root, { onJoined, roomHint }) {
    this.root = root;
    this.onJoined = onJoined;
    this.roomHint = roomHint;
    this.avatarFile = null;
    this.previewUrl = null;
  }

  mount() {
    const tpl = document.getElementById('tpl-join');
    this.root.replaceChildren(tpl.content.cloneNode(true));
    hydrateIcons(this.root);
    const $ = (ref) => this.root.querySelector(`[data-ref="${ref}"]`);
    this.guestForm = $('guest-form');
    this.accountForm = $('account-form');
    this.nameInput = $('name');
    this.fileInput = $('avatar');
    this.preview = $('preview');
    this.previewImg = $('preview-img');
    this.previewInitials = $('preview-initials');
    this.clearAvatar = $('clear-avatar');
    this.guestError = $('guest-error');
    this.accountError = $('account-error');
    if (this.roomHint) $('subtitle').textContent = 'You were invited to a room. Pick a name to join the conversation.';

    this.nameInput.addEventListener('input', () => this.updatePreview());
    this.fileInput.addEventListener('change', () => this.pickFile());
    this.clearAvatar.addEventListener('click', () => {
      this.fileInput.value = '';
      this.setFile(null);
    });
    this.guestForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.joinGuest();
    });
    this.accountForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const mode = e.submitter && e.submitter.dataset.mode === 'register' ? 'register' : 'login';
      this.account(mode);
    });
    this.updatePreview();
    this.nameInput.focus();
  }

  unmount() {
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.root.replaceChildren();
  }

  pickFile() {
    const f = this.fileInput.files && this.fileInput.files[0];
    this.guestError.textContent = '';
    if (f && !f.type.startsWith('image/')) {
      this.showError(this.guestError, 'Choose an image file (PNG, JPEG, GIF or WebP).');
      this.fileInput.value = '';
      return this.setFile(null);
    }
    if (f && f.size > MAX_AVATAR_BYTES) {
      this.showError(this.guestError, 'That image is larger than 5 MB. Choose a smaller one.');
      this.fileInput.value = '';
      return this.setFile(null);
    }
    this.setFile(f || null);
  }

  setFile(file) {
    this.avatarFile = file;
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.previewUrl = file ? URL.createObjectURL(file) : null;
    this.updatePreview();
  }

  updatePreview() {
    const name = this.nameInput.value.trim();
    if (this.previewUrl) {
      this.previewImg.src = this.previewUrl;
      this.previewImg.hidden = false;
      this.previewInitials.hidden = true;
      this.clearAvatar.hidden = false;
    } else {
      this.previewImg.removeAttribute('src');
      this.previewImg.hidden = true;
      this.previewInitials.hidden = false;
      this.previewInitials.textContent = initials(name);
      this.preview.style.setProperty('--avatar-hue', String(hueOf(name)));
      this.clearAvatar.hidden = true;
    }
  }

  showError(node, msg) {
    node.textContent = msg;
    node.hidden = !msg;
  }

  busy(form, on) {
    for (const b of form.querySelectorAll('button, input')) b.disabled = on;
    form.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  async joinGuest() {
    const name = this.nameInput.value.trim();
    this.showError(this.guestError, '');
    if (!name) {
      this.showError(this.guestError, 'Enter a name to join.');
      this.nameInput.focus();
      return;
    }
    this.busy(this.guestForm, true);
    try {
      const avatar = this.avatarFile ? await readAsDataURL(this.avatarFile) : null;
      const res = await api.guest(name, avatar);
      this.onJoined(res.user);
    } catch (e) {
      this.busy(this.guestForm, false);
      const msg =
        e.code === 'conflict'
          ? e.message || `The name "${name}" is taken. Choose another one.`
          : e.message || 'Could not join.';
      this.showError(this.guestError, msg);
      (e.field === 'avatar' ? this.fileInput : this.nameInput).focus();
    }
  }

  async account(mode) {
    const username = this.accountForm.elements.username.value.trim();
    const password = this.accountForm.elements.password.value;
    this.showError(this.accountError, '');
    if (!username || !password) {
      this.showError(this.accountError, 'Enter your username and password.');
      return;
    }
    this.busy(this.accountForm, true);
    try {
      const res = mode === 'register' ? await api.register(username, password) : await api.login(username, password);
      this.onJoined(res.user);
    } catch (e) {
      this.busy(this.accountForm, false);
      let msg = e.message || 'Something went wrong.';
      if (mode === 'login' && e.code === 'unauthorized') msg = 'Wrong username or password.';
      this.showError(this.accountError, msg);
    }
  }
}

export function bootError(root, message, retry) {
  root.replaceChildren(
    el(
      'div',
      { class: 'boot' },
      el('p', { role: 'alert', text: message }),
      el('button', { type: 'button', class: 'btn btn-primary', onclick: retry, text: 'Try again' }),
    ),
  );
}
