// REST client for /api/v1. The browser is authenticated by the HttpOnly session
// cookie the server sets at sign-in: no token handling here.

export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message || code);
    Object.assign(this, { status, code, field: extra.field ?? null, retryAfterMs: extra.retry_after_ms ?? null });
  }
}

async function request(method, path, body, type) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body instanceof Blob) {
    init.body = body;
    init.headers['Content-Type'] = type || body.type || 'application/octet-stream';
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.');
  }
  let data = null;
  try {
    data = JSON.parse(await res.text());
  } catch {}
  if (!res.ok) {
    const e = data?.error || {};
    throw new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText || 'Request failed', e);
  }
  return data;
}

const query = (params) => {
  const s = new URLSearchParams(Object.entries(params).filter(([, v]) => v != null && v !== '')).toString();
  return s ? `?${s}` : '';
};
const id = encodeURIComponent;
// Some answers are a bare object, others wrap it ({user}, {room}); accept both.
const unwrap = (key) => (d) => (d && typeof d[key] === 'object' && d[key] ? d[key] : d);
const user = unwrap('user');
const room = unwrap('room');

export const api = {
  me: () => request('GET', '/me').then(user),
  updateMe: (patch) => request('PATCH', '/me', patch).then(user),
  uploadAvatar: (file) => request('PUT', '/me/avatar', file, file.type).then(user),
  deleteAvatar: () => request('DELETE', '/me/avatar').then(user),
  guest: (name, avatar) => request('POST', '/auth/guest', avatar ? { name, avatar } : { name }),
  login: (username, password) => request('POST', '/auth/login', { username, password }),
  register: (username, password) => request('POST', '/auth/register', { username, password }),
  logout: () => request('POST', '/auth/logout'),
  searchUsers: (q) => request('GET', `/users${query({ q })}`).then((d) => d.users || []),
  rooms: () => request('GET', '/rooms').then((d) => d.rooms || []),
  room: (r) => request('GET', `/rooms/${id(r)}`).then(room),
  createRoom: (body) => request('POST', '/rooms', body).then(room),
  joinRoom: (r, password) => request('POST', `/rooms/${id(r)}/join`, password ? { password } : {}).then(room),
  leaveRoom: (r) => request('POST', `/rooms/${id(r)}/leave`, {}),
  members: (r) => request('GET', `/rooms/${id(r)}/members`).then((d) => d.members || []),
  invite: (r, userId) => request('POST', `/rooms/${id(r)}/invites`, { user_id: userId }),
  messages: (r, params) => request('GET', `/rooms/${id(r)}/messages${query(params)}`),
  dm: (userIds) => request('POST', '/dms', { user_ids: userIds }).then(room),
};
