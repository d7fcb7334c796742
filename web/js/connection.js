// The gateway connection: one WebSocket to /api/v1/ws that reconnects by itself.
//
// Owns: request/reply correlation (`req`), reconnect with exponential backoff and
// jitter, the heartbeat, and the outbox — sends made while disconnected (or whose
// reply was lost with the socket) are kept and sent again with the same client_id
// once the connection is back, so nothing typed is lost and nothing is duplicated
// (the server dedupes on client_id).
//
// Events (EventTarget): `state` {state}, `ready` {frame, reconnect}, `event` {frame},
// `unauthorized`. The app answers `ready` by resuming and then calls flushOutbox().

import { ApiError, api } from './api.js';

const BACKOFF_MIN = 500;
const BACKOFF_MAX = 10000;
const HEARTBEAT_MS = 25000;
const HEARTBEAT_TIMEOUT_MS = 10000;
const REQUEST_TIMEOUT_MS = 15000;

export class Connection extends EventTarget {
  constructor(path = '/api/v1/ws') {
    super();
    this.path = path;
    this.ws = null;
    this.state = 'connecting';
    this.ready = false; // `ready` frame received on the current socket
    this.flushed = false; // outbox may be transmitted directly
    this.everReady = false;
    this.stopped = false;
    this.attempt = 0;
    this.nextReq = 1;
    this.pending = new Map(); // req -> {resolve, reject, timer, outboxKey}
    this.outbox = new Map(); // client_id -> {frame, resolve, reject, req}
    this.retryTimer = null;
    this.heartbeatTimer = null;
    this.lastFrameAt = 0;

    this._onOnline = () => this._kick();
    this._onOffline = () => {
      if (!this.ready) this._setState('offline');
    };
    this._onVisible = () => {
      if (document.visibilityState === 'visible' && !this.ready) this._kick();
    };
  }

  start() {
    this.stopped = false;
    window.addEventListener('online', this._onOnline);
    window.addEventListener('offline', this._onOffline);
    document.addEventListener('visibilitychange', this._onVisible);
    this._open();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this._onOnline);
    window.removeEventListener('offline', this._onOffline);
    document.removeEventListener('visibilitychange', this._onVisible);
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeatTimer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000, 'bye');
      this.ws = null;
    }
    this._failPending(new ApiError(0, 'offline', 'Signed out'));
  }

  get connected() {
    return this.ready;
  }

  /** Sends a frame and resolves with the reply's `data` (rejects with ApiError). */
  request(frame, timeout = REQUEST_TIMEOUT_MS) {
    if (!this.ready) return Promise.reject(new ApiError(0, 'offline', 'Not connected. Try again in a moment.'));
    return new Promise((resolve, reject) => {
      const req = this.nextReq++;
      const timer = setTimeout(() => {
        this.pending.delete(req);
        reject(new ApiError(0, 'timeout', 'The server did not answer in time.'));
      }, timeout);
      this.pending.set(req, { resolve, reject, timer });
      this._transmit({ ...frame, req });
    });
  }

  /** Fire-and-forget for ephemeral frames (typing, read); dropped while offline. */
  notify(frame) {
    if (this.ready) this._transmit(frame);
  }

  /**
   * Queues a `send` frame keyed by its client_id. It is transmitted now if
   * possible, else on reconnect; the promise resolves with the stored message.
   */
  sendMessage(frame) {
    const key = frame.client_id;
    const existing = this.outbox.get(key);
    if (existing) return existing.promise;
    let entry;
    const promise = new Promise((resolve, reject) => {
      entry = { frame, resolve, reject, req: null };
    });
    entry.promise = promise;
    this.outbox.set(key, entry);
    if (this.ready && this.flushed) this._transmitOutbox(key, entry);
    return promise;
  }

  /** Whether a message with this client_id is still waiting to be sent. */
  isQueued(clientId) {
    return this.outbox.has(clientId);
  }

  /** Drops a queued send (the user discarded it). */
  discard(clientId) {
    const e = this.outbox.get(clientId);
    if (!e) return;
    this.outbox.delete(clientId);
    if (e.req != null) this.pending.delete(e.req);
    e.reject(new ApiError(0, 'discarded', 'Discarded'));
  }

  /** Transmits everything in the outbox (after the app applied `resume`). */
  flushOutbox() {
    this.flushed = true;
    for (const [key, entry] of this.outbox) this._transmitOutbox(key, entry);
  }

  _transmitOutbox(key, entry) {
    if (!this.ready) return;
    if (entry.req != null) this.pending.delete(entry.req);
    const req = this.nextReq++;
    entry.req = req;
    this.pending.set(req, { outboxKey: key });
    this._transmit({ ...entry.frame, req });
  }

  _transmit(frame) {
    try {
      this.ws.send(JSON.stringify(frame));
    } catch {
      // The socket is closing; onclose will schedule a reconnect and the outbox
      // keeps what matters.
    }
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state } }));
  }

  _url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}${this.path}`;
  }

  _open() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    if (this.ws) {
      this.ws.onclose = null;
      try {
        this.ws.close();
      } catch {
        /* already closed */
      }
    }
    let ws;
    try {
      ws = new WebSocket(this._url());
    } catch {
      this._scheduleReconnect(false);
      return;
    }
    this.ws = ws;
    this.ready = false;
    this.flushed = false;
    let gotReady = false;
    ws.onmessage = (ev) => {
      this.lastFrameAt = Date.now();
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame.type === 'ready') {
        gotReady = true;
        this.ready = true;
        this.attempt = 0;
        const reconnect = this.everReady;
        this.everReady = true;
        this._setState('connected');
        this._startHeartbeat();
        this.dispatchEvent(new CustomEvent('ready', { detail: { frame, reconnect } }));
        return;
      }
      if (frame.type === 'reply') {
        this._onReply(frame);
        return;
      }
      this.dispatchEvent(new CustomEvent('event', { detail: { frame } }));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      this.flushed = false;
      clearInterval(this.heartbeatTimer);
      this._failPending(new ApiError(0, 'offline', 'Connection lost. Try again in a moment.'));
      this._scheduleReconnect(!gotReady);
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  _onReply(frame) {
    const p = this.pending.get(frame.req);
    if (!p) return;
    this.pending.delete(frame.req);
    if (p.outboxKey != null) {
      const entry = this.outbox.get(p.outboxKey);
      if (!entry || entry.req !== frame.req) return;
      if (frame.ok) {
        this.outbox.delete(p.outboxKey);
        entry.resolve(frame.data);
      } else {
        const e = frame.error || {};
        if (e.code === 'rate_limited') {
          // Keep it queued and try again when the server says we may.
          entry.req = null;
          const wait = Math.max(250, e.retry_after_ms || 1000);
          setTimeout(() => {
            if (this.outbox.get(p.outboxKey) === entry && this.ready && this.flushed) this._transmitOutbox(p.outboxKey, entry);
          }, wait);
          return;
        }
        this.outbox.delete(p.outboxKey);
        entry.reject(new ApiError(0, e.code || 'error', e.message || 'Not sent', e));
      }
      return;
    }
    clearTimeout(p.timer);
    if (frame.ok) p.resolve(frame.data);
    else {
      const e = frame.error || {};
      p.reject(new ApiError(0, e.code || 'error', e.message || 'Request failed', e));
    }
  }

  _failPending(err) {
    for (const [req, p] of this.pending) {
      if (p.outboxKey != null) {
        const entry = this.outbox.get(p.outboxKey);
        if (entry && entry.req === req) entry.req = null; // resent on reconnect
        continue;
      }
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  _scheduleReconnect(neverReady) {
    if (this.stopped) return;
    this._setState(navigator.onLine === false ? 'offline' : this.everReady ? 'reconnecting' : 'connecting');
    const n = this.attempt++;
    const cap = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** n);
    const delay = cap / 2 + Math.random() * (cap / 2);
    this.retryTimer = setTimeout(() => this._open(), delay);
    // A socket that never became ready may mean the session is gone (the upgrade
    // was refused with 401). Ask REST, which can tell us.
    if (neverReady && n >= 1) {
      api.me().catch((e) => {
        if (e.status === 401 && !this.stopped) this.dispatchEvent(new CustomEvent('unauthorized'));
      });
    }
  }

  /** Reconnects now instead of waiting for the backoff timer. */
  _kick() {
    if (this.stopped || this.ready) return;
    this.attempt = 0;
    this._open();
  }

  _startHeartbeat() {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => {
      if (!this.ready) return;
      const sentAt = Date.now();
      this.request({ type: 'ping' }, HEARTBEAT_TIMEOUT_MS).catch((e) => {
        // No answer and no other traffic since: the socket is dead; replace it.
        if (e.code === 'timeout' && this.lastFrameAt < sentAt && this.ws) this.ws.close();
      });
    }, HEARTBEAT_MS);
  }
}
