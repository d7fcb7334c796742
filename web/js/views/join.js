// The join screen: a guest (name + avatar, previewed locally) or an account.
import {api} from '../api.js';
import {el, hueOf, hydrateIcons, initials, MAX_AVATAR_BYTES, readAsDataURL} from '../util.js';
export class JoinView {
	constructor(root, {onJoined, invited}) {
		Object.assign(this, {root, onJoined, invited, file: null, url: null});
	}
	mount() {
		this.root.replaceChildren(document.getElementById('tpl-join').content.cloneNode(true));
		hydrateIcons(this.root);
		const $ = r => this.root.querySelector(`[data-ref="${r}"]`);
		Object.assign(this, {
			guestForm: $('guest-form'), accountForm: $('account-form'), name: $('name'), input: $('avatar'),
			preview: $('preview'), img: $('preview-img'), initials: $('preview-initials'), clear: $('clear-avatar'),
			guestError: $('guest-error'), accountError: $('account-error'),
		});
		if (this.invited) $('subtitle').textContent = 'You were invited to a room. Pick a name to join the conversation.';
		this.name.addEventListener('input', () => this.updatePreview());
		this.input.addEventListener('change', () => this.pick(this.input.files?.[0] || null));
		this.clear.addEventListener('click', () => this.pick(null));
		this.guestForm.addEventListener('submit', e => (e.preventDefault(), this.joinGuest()));
		this.accountForm.addEventListener('submit', e => (e.preventDefault(), this.account(this.mode === 'register')));
		// One form in the DOM at a time: "Name" never sits beside "Username".
		this.switcher = $('switch');
		this.accountForm.remove();
		$('show-login').addEventListener('click', () => this.showAccount('login'));
		$('show-register').addEventListener('click', () => this.showAccount('register'));
		this.accountForm.querySelector('[data-ref="show-guest"]').addEventListener('click', () => this.showGuest());
		this.updatePreview();
		this.name.focus();
	}
	showAccount(mode) {
		this.mode = mode;
		const label = mode === 'register' ? 'Create account' : 'Sign in';
		const q = r => this.accountForm.querySelector(`[data-ref="${r}"]`);
		q('account-title').textContent = q('account-submit').textContent = label;
		this.accountForm.elements.password.autocomplete = mode === 'register' ? 'new-password' : 'current-password';
		this.error(this.accountError, '');
		this.guestForm.replaceWith(this.accountForm);
		this.switcher.remove();
		this.accountForm.elements.username.focus();
	}
	showGuest() {
		this.accountForm.replaceWith(this.guestForm);
		this.guestForm.after(this.switcher);
		this.name.focus();
	}
	unmount() {
		if (this.url) URL.revokeObjectURL(this.url);
		this.root.replaceChildren();
	}
	pick(f) {
		this.error(this.guestError, '');
		const bad = f && (!f.type.startsWith('image/') ? 'Choose an image file (PNG, JPEG, GIF or WebP).' : f.size > MAX_AVATAR_BYTES ? 'That image is larger than 5 MB. Choose a smaller one.' : '');
		if (bad) this.error(this.guestError, bad);
		if (bad || !f) this.input.value = '';
		this.file = bad ? null : f;
		if (this.url) URL.revokeObjectURL(this.url);
		this.url = this.file ? URL.createObjectURL(this.file) : null;
		this.updatePreview();
	}
	updatePreview() {
		const name = this.name.value.trim();
		this.img.hidden = this.clear.hidden = !this.url;
		this.initials.hidden = !!this.url;
		if (this.url) this.img.src = this.url;
		else {
			this.img.removeAttribute('src');
			this.initials.textContent = initials(name);
			this.preview.style.setProperty('--hue', hueOf(name));
		}
	}
	error = (node, msg) => ((node.textContent = msg), (node.hidden = !msg));
	busy = (form, on) => form.querySelectorAll('button, input').forEach(c => (c.disabled = on));
	async joinGuest() {
		const name = this.name.value.trim();
		this.error(this.guestError, '');
		if (!name) return this.error(this.guestError, 'Enter a name to join.'), this.name.focus();
		this.busy(this.guestForm, true);
		try {
			this.onJoined((await api.guest(name, this.file && (await readAsDataURL(this.file)))).user);
		} catch (e) {
			this.busy(this.guestForm, false);
			this.error(this.guestError, e.message || (e.code === 'conflict' ? `The name "${name}" is taken.` : 'Could not join.'));
			(e.field === 'avatar' ? this.input : this.name).focus();
		}
	}
	async account(register) {
		const {username, password} = this.accountForm.elements;
		this.error(this.accountError, '');
		if (!username.value.trim() || !password.value) return this.error(this.accountError, 'Enter your username and password.');
		this.busy(this.accountForm, true);
		try {
			this.onJoined((await api[register ? 'register' : 'login'](username.value.trim(), password.value)).user);
		} catch (e) {
			this.busy(this.accountForm, false);
			this.error(this.accountError, !register && e.code === 'unauthorized' ? 'Wrong username or password.' : e.message);
		}
	}
}
export function bootError(root, message, retry) {
	root.replaceChildren(el('div.boot', el('p', {role: 'alert', text: message}), el('button.btn.btn-primary', {onclick: retry}, 'Try again')));
}
