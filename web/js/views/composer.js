// The composer: a growing textarea, Enter to send (Shift+Enter for a new line),
// the reply preview, per-room drafts, and the typing signal (at most one
// `typing active` every 3 s while typing, `active:false` on send or clear).

import { displayName } from '../util.js';

const TYPING_EVERY_MS = 3000;

export class ComposerView {
  constructor(refs, store, { send, typing, editLast }) {
    this.form = refs.form;
    this.input = refs.input;
    this.sendBtn = refs.send;
    this.replyBar = refs.reply;
    this.replyText = refs.replyText;
    this.hint = refs.hint;
    this.store = store;
    this.onSend = send;
    this.onTyping = typing;
    this.onEditLast = editLast;
    this.roomId = null;
    this.replyTo = null;
    this.drafts = new Map();
    this.lastTypingAt = 0;
    this.typingActive = false;
    this.blockedReason = null;

    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        this.submit();
      } else if (e.key === 'Escape' && this.replyTo) {
        e.preventDefault();
        this.setReply(null);
      } else if (e.key === 'ArrowUp' && !this.input.value && !e.shiftKey) {
        if (this.onEditLast()) e.preventDefault();
      }
    });
    this.input.addEventListener('input', () => {
      this.autosize();
      this.drafts.set(this.roomId, this.input.value);
      this.updateSendState();
      this.signalTyping();
    });
    refs.replyCancel.addEventListener('click', () => {
      this.setReply(null);
      this.focus();
    });
  }

  setRoom(roomId) {
    if (this.roomId && this.typingActive) this.stopTyping();
    this.roomId = roomId;
    this.input.value = this.drafts.get(roomId) || '';
    this.setReply(null);
    const room = this.store.room(roomId);
    this.input.placeholder = room ? (room.kind === 'dm' ? `Message ${this.store.roomTitle(room)}` : `Message #${room.name}`) : 'Message';
    this.autosize();
    this.updateSendState();
  }

  /** Disables the composer with a reason (room not open yet, closed), or enables it. */
  setBlocked(reason) {
    if (reason === this.blockedReason) return;
    this.blockedReason = reason;
    this.input.disabled = !!reason;
    if (reason) {
      this.input.dataset.placeholder = this.input.placeholder;
      this.input.placeholder = reason;
    } else if (this.input.dataset.placeholder) {
      this.input.placeholder = this.input.dataset.placeholder;
      delete this.input.dataset.placeholder;
    }
    this.form.classList.toggle('blocked', !!reason);
    this.updateSendState();
  }

  setReply(msg) {
    this.replyTo = msg;
    this.replyBar.hidden = !msg;
    if (msg) {
      const who = displayName(this.store.resolveUser(msg.author));
      const snippet = (msg.body || '').replace(/\s+/g, ' ').slice(0, 100);
      this.replyText.textContent = '';
      const strong = document.createElement('strong');
      strong.textContent = `Replying to ${who}`;
      this.replyText.append(strong, document.createTextNode(snippet ? ` — ${snippet}` : ''));
    }
  }

  focus() {
    if (!this.input.disabled) this.input.focus();
  }

  autosize() {
    const ta = this.input;
    ta.style.height = 'auto';
    const max = Math.max(120, Math.floor(window.innerHeight * 0.4));
    ta.style.height = `${Math.min(ta.scrollHeight, max)}px`;
    ta.style.overflowY = ta.scrollHeight > max ? 'auto' : 'hidden';
  }

  // Send stays enabled while typing is allowed (an empty submit is ignored); the
  // empty look comes from CSS (:placeholder-shown).
  updateSendState() {
    this.sendBtn.disabled = !!this.blockedReason;
  }

  signalTyping() {
    if (!this.roomId) return;
    if (!this.input.value.trim()) {
      if (this.typingActive) this.stopTyping();
      return;
    }
    const now = Date.now();
    if (now - this.lastTypingAt >= TYPING_EVERY_MS) {
      this.lastTypingAt = now;
      this.typingActive = true;
      this.onTyping(this.roomId, true);
    }
  }

  stopTyping() {
    this.typingActive = false;
    this.lastTypingAt = 0;
    this.onTyping(this.roomId, false);
  }

  submit() {
    if (this.blockedReason) return;
    const body = this.input.value;
    if (!body.trim()) return;
    const replyTo = this.replyTo ? this.replyTo.id : null;
    if (this.typingActive) this.stopTyping();
    this.onSend(this.roomId, body, replyTo);
    this.input.value = '';
    this.drafts.delete(this.roomId);
    this.setReply(null);
    this.autosize();
    this.updateSendState();
    this.input.focus();
  }
}
