// SPDX-License-Identifier: MIT
// The imgw chat page: one WebSocket to the gateway carrying imgw frames
// (web/imgw.mjs), the user's sessions from the login result, history by
// SYNC, live pushes, and reconnection with backoff that syncs each session
// from the last seq the page saw.
import { OP, decodeFrame, encodeFrame, encodeLogin, encodeSend, encodeSync,
	 payloadText } from './imgw.mjs';

const REQUEST_TIMEOUT_MS = 10000;
// The gateway's default --heartbeat-timeout is 60 s.
const HEARTBEAT_MS = 20000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10000;
const SYNC_LIMIT = 100;
// History a session shows when opened for the first time.
const FIRST_OPEN_MESSAGES = 200;
const SESSION_KINDS = ['group', 'direct', 'notice'];

const $ = (id) => document.getElementById(id);

// One WebSocket and its requests, matched to responses by request id.
class Link {
	constructor(url, handlers) {
		this.handlers = handlers;
		this.nextId = 1;
		this.pending = new Map();
		this.ws = new WebSocket(url, 'imgw.v1');
		this.ws.binaryType = 'arraybuffer';
		this.ws.onopen = () => handlers.onOpen();
		this.ws.onmessage = (ev) => this.onMessage(ev.data);
		this.ws.onclose = (ev) => this.onClose(ev);
	}

	onMessage(data) {
		let frame;

		if (typeof data === 'string') {
			this.close(1003, 'text message');
			return;
		}
		try {
			frame = decodeFrame(data);
		} catch (err) {
			this.close(1007, 'invalid imgw frame');
			return;
		}
		const waiter = this.pending.get(frame.requestId);
		if (frame.op === OP.PUSH)
			this.handlers.onPush(frame.msg);
		else if (frame.op === OP.KICK)
			this.handlers.onKick(frame.msg.reason);
		else if (frame.requestId && waiter)
			waiter.settle(frame);
		else if (frame.op === OP.ERROR)
			this.handlers.onError(frame.msg);
	}

	onClose(ev) {
		for (const waiter of this.pending.values())
			waiter.fail(new Error('connection closed'));
		this.pending.clear();
		this.handlers.onClose(ev);
	}

	// Sends one request and resolves with its response frame. A request
	// without a response in time closes the link, so the page reconnects.
	request(op, body) {
		const id = this.nextId++;

		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => {
				this.pending.delete(id);
				reject(new Error(`op ${op} request timed out after ${REQUEST_TIMEOUT_MS} ms`));
				this.close(1000, 'request timed out');
			}, REQUEST_TIMEOUT_MS);
			const done = () => {
				clearTimeout(timer);
				this.pending.delete(id);
			};
			this.pending.set(id, {
				settle: (frame) => { done(); resolve(frame); },
				fail: (err) => { done(); reject(err); },
			});
			this.ws.send(encodeFrame(op, id, body));
		});
	}

	close(code, reason) {
		if (this.ws.readyState <= WebSocket.OPEN)
			this.ws.close(code, reason);
	}
}

const state = {
	creds: null,          // { url, user, token, device }
	link: null,
	stopped: true,        // no reconnect after a close
	retryMs: RETRY_MIN_MS,
	retryTimer: 0,
	heartbeatTimer: 0,
	sessions: new Map(),  // session id -> session, see sessionFor()
	openId: 0,
};

function setStatus(kind, text) {
	document.body.dataset.state = kind;
	$('status').textContent = text;
}

function sessionFor(id) {
	let s = state.sessions.get(id);

	if (!s) {
		// loaded: its history is fetched and seenSeq is contiguous.
		// XXX: A session created after the login shows as "session N" until the next login, because a push carries no session name.
		s = { id, name: `session ${id}`, kind: 'group', lastSeq: 0,
		      seenSeq: 0, loaded: false, unread: 0, syncing: 0,
		      messages: new Map() };
		state.sessions.set(id, s);
	}
	return s;
}

function formatTime(ms) {
	const d = new Date(ms);
	const time = d.toLocaleTimeString([], { hour: '2-digit',
						minute: '2-digit' });

	if (d.toDateString() === new Date().toDateString())
		return time;
	return `${d.toLocaleDateString()} ${time}`;
}

function renderSessions() {
	const list = $('sessions');

	list.replaceChildren();
	for (const s of state.sessions.values()) {
		const li = document.createElement('li');
		const name = document.createElement('span');
		const unread = document.createElement('span');

		li.dataset.session = String(s.id);
		li.title = `${s.kind} session ${s.id}`;
		if (s.id === state.openId)
			li.setAttribute('aria-current', 'true');
		name.className = 'name';
		name.textContent = s.name;
		unread.className = 'unread';
		unread.textContent = s.unread ? String(s.unread) : '';
		li.append(name, unread);
		li.addEventListener('click', () => openSession(s.id));
		list.append(li);
	}
}

function messageItem(m) {
	const li = document.createElement('li');
	const meta = document.createElement('div');
	const sender = document.createElement('span');
	const time = document.createElement('time');
	const text = document.createElement('span');

	li.dataset.seq = String(m.seq);
	if (m.sender === state.creds.user)
		li.className = 'mine';
	meta.className = 'meta';
	sender.className = 'sender';
	sender.textContent = m.sender;
	time.className = 'time';
	time.dateTime = new Date(m.timeMs).toISOString();
	time.textContent = formatTime(m.timeMs);
	text.className = 'text';
	text.textContent = m.text;
	meta.append(sender, time);
	li.append(meta, text);
	return li;
}

function renderMessages() {
	const s = state.sessions.get(state.openId);
	const list = $('messages');

	list.replaceChildren();
	if (!s)
		return;
	const sorted = [...s.messages.values()].sort((a, b) => a.seq - b.seq);
	for (const m of sorted)
		list.append(messageItem(m));
	list.scrollTop = list.scrollHeight;
}

function addMessage(s, push) {
	if (s.messages.has(push.seq))
		return;
	s.messages.set(push.seq, { seq: push.seq, sender: push.sender,
				   timeMs: push.timeMs,
				   text: payloadText(push.payload) });
}

// Fetches the messages of s from fromSeq on, page by page.
async function syncSession(s, fromSeq) {
	s.syncing++;
	try {
		await syncPages(s, fromSeq);
	} finally {
		s.syncing--;
	}
	if (s.id === state.openId)
		renderMessages();
}

async function syncPages(s, fromSeq) {
	let from = fromSeq;

	for (;;) {
		const f = await state.link.request(OP.SYNC, encodeSync({
			sessionId: s.id, fromSeq: from, limit: SYNC_LIMIT }));
		if (f.op !== OP.SYNC_RESULT || f.msg.code !== 0)
			throw new Error(`sync of session ${s.id} failed: ${f.msg.reason || f.msg.text || `op ${f.op}`}`);
		for (const m of f.msg.messages)
			addMessage(s, m);
		s.lastSeq = Math.max(s.lastSeq, f.msg.lastSeq);
		const last = f.msg.messages.at(-1);
		if (last)
			s.seenSeq = Math.max(s.seenSeq, last.seq);
		if (!f.msg.more || !last)
			break;
		from = last.seq + 1;
	}
	s.seenSeq = Math.max(s.seenSeq, s.lastSeq);
}

function reportSyncError(err) {
	$('send-error').textContent = err.message;
}

async function openSession(id) {
	const s = sessionFor(id);

	state.openId = id;
	s.unread = 0;
	$('session-title').textContent = s.name;
	$('composer').hidden = false;
	renderSessions();
	renderMessages();
	if (s.loaded || !state.link)
		return;
	s.loaded = true;
	s.seenSeq = 0;
	try {
		await syncSession(s, Math.max(1, s.lastSeq - FIRST_OPEN_MESSAGES + 1));
	} catch (err) {
		s.loaded = false;
		reportSyncError(err);
	}
}

function onPush(push) {
	const s = sessionFor(push.sessionId);

	s.lastSeq = Math.max(s.lastSeq, push.seq);
	if (!s.loaded) {
		if (push.seq > s.seenSeq) {
			s.unread += push.seq - s.seenSeq;
			s.seenSeq = push.seq;
		}
		renderSessions();
		return;
	}
	// A running sync ends at lastSeq, which already counts this push.
	if (push.seq > s.seenSeq + 1 && !s.syncing) {
		// A gap: fetch the missing messages with this one.
		syncSession(s, s.seenSeq + 1).catch(reportSyncError);
		return;
	}
	addMessage(s, push);
	s.seenSeq = Math.max(s.seenSeq, push.seq);
	if (s.id === state.openId) {
		renderMessages();
	} else {
		s.unread++;
		renderSessions();
	}
}

// Takes the session list of a login: new sessions are added, and each
// known one catches up from the last seq the page saw.
function mergeSessions(infos) {
	const catchUp = [];

	for (const info of infos) {
		const known = state.sessions.has(info.sessionId);
		const s = sessionFor(info.sessionId);

		s.name = info.name || (info.members.length ?
			info.members.join(', ') : `session ${s.id}`);
		s.kind = SESSION_KINDS[info.kind] || 'group';
		s.lastSeq = Math.max(s.lastSeq, info.lastSeq);
		if (!known) {
			s.seenSeq = info.lastSeq;
		} else if (s.loaded && s.lastSeq > s.seenSeq) {
			catchUp.push(s);
		} else if (s.lastSeq > s.seenSeq) {
			s.unread += s.lastSeq - s.seenSeq;
			s.seenSeq = s.lastSeq;
		}
	}
	renderSessions();
	for (const s of catchUp)
		syncSession(s, s.seenSeq + 1).catch(reportSyncError);
}

function stopHeartbeat() {
	clearInterval(state.heartbeatTimer);
	state.heartbeatTimer = 0;
}

async function login() {
	const { user, token, device } = state.creds;
	let f;

	try {
		f = await state.link.request(OP.LOGIN, encodeLogin({
			token, userId: user, deviceId: device,
			platform: 'web' }));
	} catch {
		return;    // onClose reconnects
	}
	if (f.op !== OP.LOGIN_RESULT || f.msg.code !== 0) {
		stop(`login failed: ${f.msg.reason || f.msg.text || `op ${f.op}`}`);
		return;
	}
	state.retryMs = RETRY_MIN_MS;
	setStatus('connected', `connected as ${user}`);
	$('login').hidden = true;
	$('chat').hidden = false;
	$('logout').hidden = false;
	$('who').textContent = user;
	mergeSessions(f.msg.sessions);
	state.heartbeatTimer = setInterval(() => {
		state.link.request(OP.HEARTBEAT).catch(() => {});
	}, HEARTBEAT_MS);
}

function scheduleReconnect(why) {
	const jitter = 0.8 + 0.4 * Math.random();
	const delay = Math.round(state.retryMs * jitter);

	setStatus('reconnecting', `${why}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
	state.retryMs = Math.min(state.retryMs * 2, RETRY_MAX_MS);
	state.retryTimer = setTimeout(connect, delay);
}

function connect() {
	let link;

	state.retryTimer = 0;
	try {
		link = openLink();
	} catch (err) {
		stop(`cannot connect to ${state.creds.url}: ${err.message}`);
		return;
	}
	state.link = link;
	if (document.body.dataset.state !== 'reconnecting')
		setStatus('connecting', 'connecting');
}

function openLink() {
	const link = new Link(state.creds.url, {
		onOpen: () => login(),
		onPush,
		onKick: (reason) => stop(`disconnected by the gateway: ${reason}`),
		onError: (e) => {
			$('send-error').textContent = `gateway error ${e.code}: ${e.text}`;
		},
		onClose: (ev) => {
			if (state.link !== link)
				return;
			stopHeartbeat();
			state.link = null;
			if (!state.stopped)
				scheduleReconnect(`connection closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`);
		},
	});
	return link;
}

// Closes the connection for good, for a kick, a failed login or a logout.
function stop(why) {
	const link = state.link;

	state.stopped = true;
	clearTimeout(state.retryTimer);
	stopHeartbeat();
	state.link = null;
	if (link)
		link.close(1000, 'stopped');
	setStatus('stopped', why);
	if ($('chat').hidden)
		$('login-error').textContent = why;
}

function deviceId() {
	let id = sessionStorage.getItem('imgw-device');

	// One device per tab, so two tabs of one user do not kick each other.
	if (!id) {
		id = `web-${crypto.randomUUID().slice(0, 8)}`;
		sessionStorage.setItem('imgw-device', id);
	}
	return id;
}

async function send(ev) {
	ev.preventDefault();
	const input = $('text');
	const s = state.sessions.get(state.openId);

	$('send-error').textContent = '';
	if (!s || !input.value)
		return;
	if (!state.link || document.body.dataset.state !== 'connected') {
		// XXX: Messages typed while disconnected are not queued: the user has to send them again after the reconnect.
		$('send-error').textContent = 'not connected: message not sent';
		return;
	}
	const text = input.value;
	input.value = '';
	try {
		const f = await state.link.request(OP.SEND, encodeSend({
			sessionId: s.id, clientMsgId: crypto.randomUUID(),
			payload: text }));
		if (f.op !== OP.SEND_RESULT || f.msg.code !== 0)
			throw new Error(f.msg.reason || f.msg.text || `op ${f.op}`);
		onPush({ sessionId: s.id, seq: f.msg.seq,
			 sender: state.creds.user, timeMs: f.msg.timeMs,
			 payload: new TextEncoder().encode(text) });
	} catch (err) {
		input.value = text;
		$('send-error').textContent = `message not sent: ${err.message}`;
	}
}

function defaultWsUrl() {
	const params = new URLSearchParams(location.search);
	const port = Number(location.port);

	if (params.get('ws'))
		return params.get('ws');
	// The page comes from the admin port (--http, default 7071), which
	// is usually next to the client port (--listen, default 7070).
	return `ws://${location.hostname || '127.0.0.1'}:${port ? port - 1 : 7070}/`;
}

function init() {
	const params = new URLSearchParams(location.search);

	$('ws-url').value = defaultWsUrl();
	$('user').value = params.get('user') || '';
	$('login').addEventListener('submit', (ev) => {
		ev.preventDefault();
		$('login-error').textContent = '';
		// A new login replaces a connection that is still retrying.
		stop('connecting');
		state.creds = { url: $('ws-url').value.trim(),
				user: $('user').value.trim(),
				token: $('token').value.trim(),
				device: deviceId() };
		state.stopped = false;
		state.retryMs = RETRY_MIN_MS;
		state.sessions.clear();
		state.openId = 0;
		connect();
	});
	$('composer').addEventListener('submit', send);
	$('logout').addEventListener('click', () => {
		stop('logged out');
		$('chat').hidden = true;
		$('login').hidden = false;
		$('logout').hidden = true;
		$('who').textContent = '';
		$('composer').hidden = true;
		$('session-title').textContent = 'Pick a session';
	});
}

init();
