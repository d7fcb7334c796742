// The gateway: one self-reconnecting WebSocket. A `send` stays in the outbox until
// acknowledged, resent (same client_id) after a reconnect.
import {ApiError, api} from './api.js';
const offline = msg => new ApiError(0, 'offline', msg || 'Not connected. Try again in a moment.');
export class Connection extends EventTarget {
	ws = null;
	state = 'connecting';
	connected = false;
	flushed = false;
	everReady = false;
	stopped = false;
	attempt = 0;
	nextReq = 1;
	pending = new Map();
	outbox = new Map();
	kick = () => !this.stopped && !this.connected && ((this.attempt = 0), this.open());
	onVisible = () => document.visibilityState === 'visible' && this.kick();
	onOffline = () => !this.connected && this.setState('offline');
	emit = (type, detail) => this.dispatchEvent(new CustomEvent(type, {detail}));
	listen(on) {
		on.call(window, 'online', this.kick);
		on.call(window, 'offline', this.onOffline);
		on.call(document, 'visibilitychange', this.onVisible);
	}
	start() {
		this.stopped = false;
		this.listen(addEventListener);
		this.open();
	}
	stop() {
		this.stopped = true;
		this.listen(removeEventListener);
		clearTimeout(this.retry);
		clearInterval(this.heartbeat);
		this.drop(1000);
		this.failPending(offline('Signed out'));
	}
	drop(code) {
		if (this.ws) (this.ws.onclose = null), this.ws.close(code);
	}
	request(frame, timeout = 15000) {
		if (!this.connected) return Promise.reject(offline());
		return new Promise((resolve, reject) => {
			const req = this.nextReq++;
			const timer = setTimeout(() => (this.pending.delete(req), reject(new ApiError(0, 'timeout', 'The server did not answer in time.'))), timeout);
			this.pending.set(req, {resolve, reject, timer});
			this.transmit({...frame, req});
		});
	}
	notify(frame) {
		if (this.connected) this.transmit(frame);
	}
	sendMessage(frame) {
		const known = this.outbox.get(frame.client_id);
		if (known) return known.promise;
		const entry = {frame, req: null};
		entry.promise = new Promise((resolve, reject) => Object.assign(entry, {resolve, reject}));
		this.outbox.set(frame.client_id, entry);
		if (this.flushed) this.transmitEntry(frame.client_id, entry);
		return entry.promise;
	}
	discard(clientId) {
		const e = this.outbox.get(clientId);
		if (!e) return;
		this.outbox.delete(clientId);
		this.pending.delete(e.req);
		e.reject(new ApiError(0, 'discarded', 'Discarded'));
	}
	flushOutbox() {
		this.flushed = this.connected;
		for (const [key, entry] of this.outbox) this.transmitEntry(key, entry);
	}
	transmitEntry(key, entry) {
		if (!this.connected) return;
		this.pending.delete(entry.req);
		entry.req = this.nextReq++;
		this.pending.set(entry.req, {key});
		this.transmit({...entry.frame, req: entry.req});
	}
	transmit(frame) {
		try {
			this.ws.send(JSON.stringify(frame));
		} catch {}
	}
	setState(state) {
		if (this.state !== state) (this.state = state), this.emit('state', {state});
	}
	open() {
		clearTimeout(this.retry);
		if (this.stopped) return;
		this.drop();
		let ws;
		try {
			ws = this.ws = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/v1/ws`);
		} catch {
			return this.scheduleReconnect(false);
		}
		this.connected = this.flushed = false;
		let gotReady = false;
		ws.onmessage = ev => {
			this.lastFrameAt = Date.now();
			let f;
			try {
				f = JSON.parse(ev.data);
			} catch {
				return;
			}
			if (f.type === 'reply') return this.onReply(f);
			if (f.type !== 'ready') return this.emit('event', {frame: f});
			gotReady = this.connected = true;
			this.attempt = 0;
			const reconnect = this.everReady;
			this.everReady = true;
			this.setState('connected');
			this.startHeartbeat();
			this.emit('ready', {frame: f, reconnect});
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
		if (p.key == null) return clearTimeout(p.timer), err ? p.reject(err) : p.resolve(f.data);
		const entry = this.outbox.get(p.key);
		if (!entry || entry.req !== f.req) return;
		if (err?.code === 'rate_limited') {
			// Still queued: sent again when the server allows.
			entry.req = null;
			return setTimeout(() => this.flushed && this.outbox.get(p.key) === entry && this.transmitEntry(p.key, entry), Math.max(250, err.retryAfterMs || 1000));
		}
		this.outbox.delete(p.key);
		err ? entry.reject(err) : entry.resolve(f.data);
	}
	failPending(err) {
		for (const [req, p] of this.pending) {
			if (p.key == null) clearTimeout(p.timer), p.reject(err);
			else if (this.outbox.get(p.key)?.req === req) this.outbox.get(p.key).req = null;
		}
		this.pending.clear();
	}
	scheduleReconnect(neverReady) {
		if (this.stopped) return;
		this.setState(navigator.onLine === false ? 'offline' : this.everReady ? 'reconnecting' : 'connecting');
		const n = this.attempt++;
		const cap = Math.min(10000, 500 * 2 ** n);
		this.retry = setTimeout(() => this.open(), cap / 2 + (Math.random() * cap) / 2);
		// A socket refused before `ready` may mean the session is gone (the upgrade
		// got a 401, which the WebSocket API hides); REST can tell.
		if (neverReady && n >= 1) api.me().catch(e => e.status === 401 && !this.stopped && this.emit('unauthorized'));
	}
	startHeartbeat() {
		clearInterval(this.heartbeat);
		this.heartbeat = setInterval(() => {
			const sent = Date.now();
			this.request({type: 'ping'}, 10000).catch(e => e.code === 'timeout' && this.lastFrameAt < sent && this.ws?.close());
		}, 25000);
	}
}
