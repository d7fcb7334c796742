// Entry point: shows the join screen or the app, depending on the session.

import { api } from './api.js';
import { App, roomIdFromPath, toast } from './app.js';
import { bootError, JoinView } from './views/join.js';

const root = document.getElementById('root');

function showJoin(note) {
  const view = new JoinView(root, {
    roomHint: roomIdFromPath(),
    onJoined: (user) => {
      view.unmount();
      startApp(user);
    },
  });
  view.mount();
  if (note) toast(note);
}

function startApp(user) {
  const app = new App(root, user, { onSignedOut: (note) => showJoin(note) });
  app.start();
}

async function boot() {
  try {
    startApp(await api.me());
  } catch (e) {
    if (e.status === 401) showJoin();
    else bootError(root, `Hubbub could not start: ${e.message}`, boot);
  }
}

boot();
