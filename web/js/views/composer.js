// The composer: a growing textarea (Enter sends, Shift+Enter is a new line), the
// reply preview, per-room drafts, and the typing signal: at most one
// `typing active` per 3 s while typing, `active:false` on send or clear.

import { displayName, el, snippet } from '../util.js';

const TYPING_EVERY = 3000;

export class ComposerView {
  constructor(refs, store, actions) {
    Object.assign(this, refs, { store, actions, roomId: null, replyTo: null, drafts: new Map(), lastTyping: 0, typingActive: false, blocked: null });
    this.form.addEventListener('submit', (e) => (e.preventDefault(), this.submit()));
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) this.submit();
      else if (e.key === 'Escape' && this.replyTo) this.setReply(null);
      else if (!(e.key === 'ArrowUp' && !this.input.value && this.actions.editLast())) return;
      e.preventDefault();
    });
    this.input.addEventListener('input', () => {
      this.autosize();
      this.drafts.set(this.roomId, this.input.value);
      this.signalTyping();
    });
    this.replyCancel.addEventListener('click', () => (this.setReply(null), this.focus()));
  }

  setRoom(roomId) {
    if (this.typingActive) this.stopTyping();
    this.roomId = roomId;
    this.input.value = this.drafts.get(roomId) || '';
    this.setReply(null);
    const room = this.store.room(roomId);
    this.placeholder = room ? `Message ${room.kind === 'dm' ? '' : '#'}${this.store.roomTitle(room)}` : 'Message';
    this.input.placeholder = this.blocked || this.placeholder;
    this.autosize();
  }

  /** Disables the composer with a reason (room not open yet, closed), or enables it. */
  setBlocked(reason) {
    if (reason === this.blocked) return;
    this.blocked = reason;
    this.input.disabled = this.send.disabled = !!reason;
    this.input.placeholder = reason || this.placeholder || 'Message';
    this.form.classList.toggle('blocked', !!reason);
  }

  setReply(msg) {
    this.replyTo = msg;
    this.reply.hidden = !msg;
    if (msg) {
      const text = snippet(msg.body, 100);
      this.replyText.replaceChildren(el('strong', `Replying to ${displayName(this.store.resolveUser(msg.author))}`), text ? ` — ${text}` : '');
    }
  }

  focus() {
    if (!this.input.disabled) this.input.focus();
  }

  autosize() {
    const ta = this.input;
    ta.style.height = 'auto';
    ta.style.height = `${Math.min(ta.scrollHeight, Math.max(120, innerHeight * 0.4))}px`;
  }

  signalTyping() {
    if (!this.input.value.trim()) return this.typingActive && this.stopTyping();
    if (Date.now() - this.lastTyping < TYPING_EVERY) return;
    this.lastTyping = Date.now();
    this.typingActive = true;
    this.actions.typing(this.roomId, true);
  }

  stopTyping() {
    this.typingActive = false;
    this.lastTyping = 0;
    this.actions.typing(this.roomId, false);
  }

  submit() {
    const body = this.input.value;
    if (this.blocked || !body.trim()) return;
    if (this.typingActive) this.stopTyping();
    this.actions.send(this.roomId, body, this.replyTo?.id || null);
    this.input.value = '';
    this.drafts.delete(this.roomId);
    this.setReply(null);
    this.autosize();
    this.input.focus();
  }
}
