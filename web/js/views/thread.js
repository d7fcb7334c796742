// The thread panel: root, live replies, its own composer (thread_root).
import {api} from '../api.js';
import {dayKey} from '../util.js';
import {flash, reconcile, replies} from './messages.js';
export class ThreadView {
	constructor({panel, list}, store, messages, composer, onToggle) {
		Object.assign(this, {panel, list, store, messages, composer, onToggle, rootId: null, roomId: null, nodes: new Map()});
	}
	async open(roomId, rootId) {
		if (this.rootId !== rootId) {
			this.close(false);
			Object.assign(this, {roomId, rootId});
			const root = this.store.findMessage(roomId, rootId);
			this.store.setThread(rootId, root ? [root] : []);
			this.panel.hidden = false;
			this.onToggle(true);
			this.composer.setRoom(roomId, rootId);
			this.render();
		}
		this.composer.focus();
		try {
			const {messages} = await api.thread(rootId);
			if (this.rootId === rootId) this.store.setThread(rootId, messages);
		} catch (e) {
			if (this.rootId === rootId) this.messages.actions.toast(`Could not load the thread: ${e.message}`, 'error');
		}
	}
	close(refocus = true) {
		if (!this.rootId) return;
		this.store.setThread(this.rootId, null);
		this.rootId = null;
		this.nodes.clear();
		this.list.replaceChildren();
		this.panel.hidden = true;
		this.onToggle(false, refocus);
	}
	render() {
		const th = this.store.threads.get(this.rootId);
		if (!th) return;
		const {store, messages: mv} = this;
		const root = th.get(this.rootId);
		const list = [...th.values()].filter(m => m.id !== this.rootId).sort((a, b) => a.seq - b.seq);
		const n = Math.max(root?.reply_count || 0, list.length);
		const items = [root && mv.msgItem(root, null, true, true), {key: 'count', kind: 'count', ver: n ? replies(n) : 'No replies yet'}].filter(Boolean);
		let prev = null;
		for (const m of [...list, ...[...store.timeline(this.roomId).pending.values()].filter(m => m.thread_root === this.rootId)]) {
			items.push(mv.msgItem(m, prev, !prev || dayKey(prev.created_at) !== dayKey(m.created_at), true));
			prev = m;
		}
		const l = this.list;
		const bottom = l.scrollHeight - l.scrollTop - l.clientHeight < 48;
		reconcile(l, this.nodes, items, i => mv.build(i));
		if (bottom) l.scrollTop = l.scrollHeight;
	}
	reveal(id) {
		this.render();
		const node = document.getElementById(`t-${id}`);
		if (node) node.scrollIntoView({block: 'center'}), flash(node);
	}
}
