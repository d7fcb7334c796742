// REST client for /api/v1, authenticated by the HttpOnly session cookie.
export class ApiError extends Error {
	constructor(status, code, message, extra = {}) {
		super(message || code);
		Object.assign(this, {status, code, field: extra.field ?? null, retryAfterMs: extra.retry_after_ms ?? null});
	}
}
const parse = text => {
	try {
		return JSON.parse(text);
	} catch {
		return null;
	}
};
const failure = (status, e = {}, fallback) => new ApiError(status, e.code || `http_${status}`, e.message || fallback || 'Request failed', e);
async function request(method, path, body, type) {
	const headers = {Accept: 'application/json'};
	if (body !== undefined) headers['Content-Type'] = body instanceof Blob ? type || body.type || 'application/octet-stream' : 'application/json';
	let res;
	try {
		res = await fetch(`/api/v1${path}`, {method, credentials: 'same-origin', headers, body: body instanceof Blob || body === undefined ? body : JSON.stringify(body)});
	} catch {
		throw new ApiError(0, 'network', 'Cannot reach the server.');
	}
	const data = parse(await res.text());
	if (!res.ok) throw failure(res.status, data?.error, res.statusText);
	return data;
}
const query = params => {
	const s = new URLSearchParams(Object.entries(params).filter(([, v]) => v != null && v !== '')).toString();
	return s ? `?${s}` : '';
};
const id = encodeURIComponent;
const unwrap = key => d => (d && typeof d[key] === 'object' && d[key] ? d[key] : d);
const user = unwrap('user');
const room = unwrap('room');
const get = (path, list) => request('GET', path).then(d => (list ? d[list] || [] : d));
export const api = {
	me: () => get('/me').then(user),
	updateMe: patch => request('PATCH', '/me', patch).then(user),
	uploadAvatar: file => request('PUT', '/me/avatar', file, file.type).then(user),
	deleteAvatar: () => request('DELETE', '/me/avatar').then(user),
	guest: (name, avatar) => request('POST', '/auth/guest', avatar ? {name, avatar} : {name}),
	login: (username, password) => request('POST', '/auth/login', {username, password}),
	register: (username, password) => request('POST', '/auth/register', {username, password}),
	logout: () => request('POST', '/auth/logout'),
	searchUsers: q => get(`/users${query({q})}`, 'users'),
	rooms: () => get('/rooms', 'rooms'),
	room: r => get(`/rooms/${id(r)}`).then(room),
	createRoom: body => request('POST', '/rooms', body).then(room),
	joinRoom: (r, password) => request('POST', `/rooms/${id(r)}/join`, password ? {password} : {}).then(room),
	leaveRoom: r => request('POST', `/rooms/${id(r)}/leave`, {}),
	members: r => get(`/rooms/${id(r)}/members`, 'members'),
	invite: (r, userId) => request('POST', `/rooms/${id(r)}/invites`, {user_id: userId}),
	messages: (r, params) => get(`/rooms/${id(r)}/messages${query(params)}`),
	dm: userIds => request('POST', '/dms', {user_ids: userIds}).then(room),
	message: m => get(`/messages/${id(m)}`).then(unwrap('message')),
	reactions: m => get(`/messages/${id(m)}/reactions`, 'reactions'),
	thread: (m, after) => get(`/messages/${id(m)}/thread${query({after_seq: after, limit: 200})}`),
	pin: (m, on) => request(on ? 'PUT' : 'DELETE', `/messages/${id(m)}/pin`),
	pins: r => get(`/rooms/${id(r)}/pins`, 'messages'),
	setLevel: (r, level) => request('PUT', `/rooms/${id(r)}/notifications`, {level}),
	search: (q, roomId) => get(`/search${query({q, room_id: roomId, limit: 50})}`, 'results'),
	emoji: () => get('/emoji'),
	upload(file, onProgress) {
		const xhr = new XMLHttpRequest();
		const p = new Promise((resolve, reject) => {
			xhr.upload.onprogress = e => e.lengthComputable && onProgress(e.loaded / e.total);
			xhr.onload = () => {
				const d = parse(xhr.responseText);
				xhr.status < 300 && d ? resolve(d) : reject(failure(xhr.status, d?.error, 'Upload failed'));
			};
			xhr.onerror = () => reject(new ApiError(0, 'network', 'Upload failed'));
			xhr.onabort = () => reject(new ApiError(0, 'aborted', 'Cancelled'));
			xhr.open('POST', '/api/v1/uploads');
			xhr.setRequestHeader('Accept', 'application/json');
			const form = new FormData();
			form.append('file', file, file.name || 'file');
			xhr.send(form);
		});
		p.abort = () => xhr.abort();
		return p;
	},
};
