// Entry point: the join screen without a session, the app with one.
import {api} from './api.js';
import {App, roomIdFromPath} from './app.js';
import {toast} from './util.js';
import {bootError, JoinView} from './views/join.js';
const root = document.getElementById('root');
function showJoin(note) {
	const view = new JoinView(root, {invited: !!roomIdFromPath(), onJoined: user => (view.unmount(), startApp(user))});
	view.mount();
	if (note) toast(note);
}
const startApp = user => new App(root, user, showJoin).start();
async function boot() {
	try {
		startApp(await api.me());
	} catch (e) {
		if (e.status === 401) showJoin();
		else bootError(root, `Hubbub could not start: ${e.message}`, boot);
	}
}
boot();
