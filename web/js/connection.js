// The gateway connection: one WebSocket to /api/v1/ws that comes back by itself.
//
// Owns request/reply correlation (`req`), reconnecting with exponential backoff
// and jitter, a heartbeat, and the outbox: a `send` stays in the outbox until the
// server acknowledged it, and is sent again (same client_id, so the server stores
// it once) on every reconnect. Nothing typed is lost, nothing is duplicated.
//
// Events: `state` {state}, `ready` {frame, reconnect}, `event` {frame},
// `unauthorized`. The app answers `ready` by resuming, then calls flushOutbox().

import { ApiError, api } from './api.js';

const MIN_DELAY = 500;
const MAX_DELAY = 10000;
const PING_EVERY = 25000;
const TIMEOUT = 15000;
const offline = (msg) => new ApiError(0, 'offline', msg || 'Not connected. Try again in a moment.');

export class Connection extends EventTarget {
  constructor(path = '/api/v1/ws') {
    super();
    this.path = path;
    this.ws = null;
    this.state = 'connecting';
    this.connected = false; // the current socket sent `ready`
    this.flushed = false; // the outbox may be transmitted directly
    this.everReady = false;
    this.stopped = false;
    this.attempt = 0;
    this.nextReq = 1;
    this.pending = new Map(); // req -> {resolve, reject, timer} | {key} for outbox entries
    this.outbox = new Map(); // client_id -> {frame, resolve, reject, promise, req}
    this.kick = () => !this.stopped && !this.connected && ((this.attempt = 0), this.open());
    this.onVisible = () => document.visibilityState === 'visible' && this.kick();
    this.onOffline = () => !this.connected && this.setState('offline');
  }

  start() {
    this.stopped = false;
    addEventListener('online', this.kick);
    addEventListener('offline', this.onOffline);
    document.addEventListener('visibilitychange', this.onVisible);
    this.open();
  }

  stop() {
    this.stopped = true;
    removeEventListener('online', this.kick);
    removeEventListener('offline', this.onOffline);
    document.removeEventListener('visibilitychange', this.onVisible);
    clearTimeout(this.retry);
    clearInterval(this.heartbeat);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000);
    }
    this.failPending(offline('Signed out'));
  }

  /** Sends a frame; resolves with the reply's `data`, rejects with an ApiError. */
  request(frame, timeout = TIMEOUT) {
    if (!this.connected) return Promise.reject(offline());
    return new Promise((resolve, reject) => {
      const req = this.nextReq++;
      const timer = setTimeout(() => {
        this.pending.delete(req);
        reject(new ApiError(0, 'timeout', 'The server did not answer in time.'));
      }, timeout);
      this.pending.set(req, { resolve, reject, timer });
      this.transmit({ ...frame, req });
    });
  }

  /** Fire-and-forget for ephemeral frames (typing, read); dropped while offline. */
  notify(frame) {
    if (this.connected) this.transmit(frame);
  }

  /** Queues a `send` (keyed by client_id); resolves with the stored message. */
  sendMessage(frame) {
    const known = this.outbox.get(frame.client_id);
    if (known) return known.promise;
    const entry = { frame, req: null };
    entry.promise = new Promise((resolve, reject) => Object.assign(entry, { resolve, reject }));
    this.outbox.set(frame.client_id, entry);
    if (this.flushed) this.transmitEntry(frame.client_id, entry);
    return entry.promise;
  }

  /** Drops a queued send the user discarded. */
  discard(clientId) {
    const e = this.outbox.get(clientId);
    if (!e) return;
    this.outbox.delete(clientId);
    this.pending.delete(e.req);
    e.reject(new ApiError(0, 'discarded', 'Discarded'));
  }

  /** Transmits the outbox; the app calls it once `resume` was applied. */
  flushOutbox() {
    this.flushed = this.connected;
    for (const [key, entry] of this.outbox) this.transmitEntry(key, entry);
  }

  transmitEntry(key, entry) {
    if (!this.connected) return;
    this.pending.delete(entry.req);
    entry.req = this.nextReq++;
    this.pending.set(entry.req, { key });
    this.transmit({ ...entry.frame, req: entry.req });
  }

  transmit(frame) {
    try {
      this.ws.send(JSON.stringify(frame));
    } catch {} // closing: onclose reconnects and the outbox keeps what matters
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state } }));
  }

  open() {
    clearTimeout(this.retry);
    if (this.stopped) return;
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
    }
    let ws;
    try {
      ws = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${this.path}`);
    } catch {
      return this.scheduleReconnect(false);
    }
    this.ws = ws;
    this.connected = this.flushed = false;
    let gotReady = false;
    ws.onmessage = (ev) => {
      this.lastFrameAt = Date.now();
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (f.type === 'reply') return this.onReply(f);
      if (f.type !== 'ready') return this.dispatchEvent(new CustomEvent('event', { detail: { frame: f } }));
      gotReady = this.connected = true;
      this.attempt = 0;
      const reconnect = this.everReady;
      this.everReady = true;
      this.setState('connected');
      this.startHeartbeat();
      this.dispatchEvent(new CustomEvent('ready', { detail: { frame: f, reconnect } }));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.connected = this.flushed = false;
      clearInterval(this.heartbeat);
      this.failPending(offline('Connection lost. Try again in a moment.'));
      this.scheduleReconnect(!gotReady);
    };
  }

  onReply(f) {
    const p = this.pending.get(f.req);
    if (!p) return;
    this.pending.delete(f.req);
    const err = f.ok ? null : new ApiError(0, f.error?.code || 'error', f.error?.message || 'Request failed', f.error || {});
    if (p.key == null) {
      clearTimeout(p.timer);
      return err ? p.reject(err) : p.resolve(f.data);
    }
    const entry = this.outbox.get(p.key);
    if (!entry || entry.req !== f.req) return;
    if (err?.code === 'rate_limited') {
      // Still queued: send again when the server says we may.
      entry.req = null;
      setTimeout(() => this.flushed && this.outbox.get(p.key) === entry && this.transmitEntry(p.key, entry), Math.max(250, err.retryAfterMs || 1000));
      return;
    }
    this.outbox.delete(p.key);
    err ? entry.reject(err) : entry.resolve(f.data);
  }

  failPending(err) {
    for (const [req, p] of this.pending) {
      if (p.key != null) {
        const entry = this.outbox.get(p.key);
        if (entry?.req === req) entry.req = null; // sent again on reconnect
      } else {
        clearTimeout(p.timer);
        p.reject(err);
      }
    }
    this.pending.clear();
  }

  scheduleReconnect(neverReady) {
    if (this.stopped) return;
    this.setState(navigator.onLine === false ? 'offline' : this.everReady ? 'reconnecting' : 'connecting');
    const n = this.attempt++;
    const cap = Math.min(MAX_DELAY, MIN_DELAY * 2 ** n);
    this.retry = setTimeout(() => this.open(), cap / 2 + (Math.random() * cap) / 2);
    // A socket refused before `ready` may mean the session is gone (the upgrade
    // got a 401, which the WebSocket API hides); REST can tell.
    if (neverReady && n >= 1) api.me().catch((e) => e.status === 401 && !this.stopped && this.dispatchEvent(new CustomEvent('unauthorized')));
  }

  startHeartbeat() {
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      const sent = Date.now();
      // No answer and no other traffic: the socket is dead, replace it.
      this.request({ type: 'ping' }, 10000).catch((e) => e.code === 'timeout' && this.lastFrameAt < sent && this.ws?.close());
    }, PING_EVERY);
  }
}
