// REST client for /api/v1. The browser authenticates with the HttpOnly session
// cookie the server sets on sign-in, so there is no token handling here.

export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.field = extra.field ?? null;
    this.retryAfterMs = extra.retry_after_ms ?? null;
  }
}

const BASE = '/api/v1';

async function request(method, path, body, contentType) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    init.body = body;
    init.headers['Content-Type'] = contentType || body.type || 'application/octet-stream';
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let res;
  try {
    res = await fetch(BASE + path, init);
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = data && data.error ? data.error : {};
    throw new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText || 'Request failed', e);
  }
  return data;
}

const q = (params) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') s.set(k, v);
  const str = s.toString();
  return str ? `?${str}` : '';
};

// Some endpoints answer a bare object, others wrap it; accept both.
const unwrap = (key) => (d) => (d && d[key] && typeof d[key] === 'object' ? d[key] : d);

export const api = {
  me: () => request('GET', '/me').then(unwrap('user')),
  updateMe: (patch) => request('PATCH', '/me', patch).then(unwrap('user')),
  uploadAvatar: (file) => request('PUT', '/me/avatar', file, file.type).then(unwrap('user')),
  deleteAvatar: () => request('DELETE', '/me/avatar').then(unwrap('user')),

  guest: (name, avatar) => request('POST', '/auth/guest', avatar ? { name, avatar } : { name }),
  login: (username, password) => request('POST', '/auth/login', { username, password }),
  register: (username, password) => request('POST', '/auth/register', { username, password }),
  logout: () => request('POST', '/auth/logout'),

  searchUsers: (query) => request('GET', `/users${q({ q: query })}`).then((d) => d.users || []),

  rooms: () => request('GET', '/rooms').then((d) => d.rooms || []),
  room: (id) => request('GET', `/rooms/${encodeURIComponent(id)}`).then(unwrap('room')),
  createRoom: (body) => request('POST', '/rooms', body).then(unwrap('room')),
  joinRoom: (id, password) =>
    request('POST', `/rooms/${encodeURIComponent(id)}/join`, password ? { password } : {}).then(unwrap('room')),
  leaveRoom: (id) => request('POST', `/rooms/${encodeURIComponent(id)}/leave`, {}),
  members: (id) => request('GET', `/rooms/${encodeURIComponent(id)}/members`).then((d) => d.members || []),
  invite: (id, userId) => request('POST', `/rooms/${encodeURIComponent(id)}/invites`, { user_id: userId }),
  messages: (id, params) => request('GET', `/rooms/${encodeURIComponent(id)}/messages${q(params)}`),
  dm: (userIds) => request('POST', '/dms', { user_ids: userIds }).then(unwrap('room')),
};
