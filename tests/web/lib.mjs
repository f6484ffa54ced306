// SPDX-License-Identifier: MIT
// Test helpers: a bizsvr and a gateway on random loopback ports in a temp
// directory, the admin calls the tests use, and imgw clients over the npm
// ws package and over plain TCP that match replies to requests.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

import { OP, FRAME_HEADER_LEN, decodeFrame, encodeFrame, encodeLogin }
	from '../../web/imgw.mjs';

export { OP };
export const repoRoot = path.resolve(fileURLToPath(import.meta.url),
				     '../../..');
const buildDir = process.env.IMGW_BUILD || path.join(repoRoot, 'build');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Below Linux's default ephemeral range (32768-60999), so no outgoing
// connection takes the port.
function randomPort() {
	return 20000 + Math.floor(Math.random() * 12000);
}

function startDaemon(name, args, dir) {
	const proc = spawn(path.join(buildDir, name), args,
			   { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
	const exited = new Promise((resolve) => proc.on('exit',
		(code, signal) => resolve({ code, signal })));
	return { proc, exited };
}

async function waitUp(url, ready, what, daemon) {
	let gone = false;

	daemon.exited.then(() => { gone = true; });
	for (let i = 0; i < 100 && !gone; i++) {
		try {
			const res = await fetch(url);
			if (res.ok && ready(await res.json()))
				return;
		} catch { /* not listening yet */ }
		await sleep(50);
	}
	throw new Error(`${what} not ready at ${url}: ${gone ? 'it exited' : 'timed out after 5 s'}`);
}

// Starts bizsvr and imgw; gwArgs and bizArgs are extra flags. Retries with
// other ports when one is taken by another process.
export async function startStack(options = {}) {
	for (let attempt = 1; ; attempt++) {
		try {
			return await startStackOnce(options);
		} catch (err) {
			if (attempt === 3)
				throw err;
		}
	}
}

async function startStackOnce({ gwArgs = [], bizArgs = [] }) {
	const dir = mkdtempSync(path.join(tmpdir(), 'imgw-web-'));
	const base = randomPort();
	const ports = { biz: base, bizHttp: base + 1, gw: base + 2,
			gwHttp: base + 3 };
	const biz = startDaemon('bizsvr', ['--listen', `127.0.0.1:${ports.biz}`,
		'--http', `127.0.0.1:${ports.bizHttp}`, '--db',
		path.join(dir, 'imgw.db'), '--secret', 'web-test-secret',
		...bizArgs], dir);
	try {
		await waitUp(`http://127.0.0.1:${ports.bizHttp}/healthz`,
			     () => true, 'bizsvr', biz);
	} catch (err) {
		biz.proc.kill('SIGTERM');
		throw err;
	}
	const gwFlags = ['--listen', `127.0.0.1:${ports.gw}`,
		'--http', `127.0.0.1:${ports.gwHttp}`, '--bizsvr',
		`127.0.0.1:${ports.biz}`, ...gwArgs];
	const startGateway = async () => {
		const daemon = startDaemon('imgw', gwFlags, dir);
		try {
			await waitUp(`http://127.0.0.1:${ports.gwHttp}/healthz`,
				     (j) => j.upstream === 'up', 'imgw', daemon);
		} catch (err) {
			daemon.proc.kill('SIGTERM');
			await daemon.exited;
			throw err;
		}
		return daemon;
	};
	let gw;
	try {
		gw = await startGateway();
	} catch (err) {
		biz.proc.kill('SIGTERM');
		await biz.exited;
		throw err;
	}
	const stack = {
		ports,
		wsUrl: `ws://127.0.0.1:${ports.gw}/`,
		adminUrl: `http://127.0.0.1:${ports.gwHttp}`,
		// Stops the gateway (checking its exit status) and returns a
		// function that starts it again on the same ports.
		async stopGateway() {
			gw.proc.kill('SIGTERM');
			assert.deepEqual(await gw.exited,
					 { code: 0, signal: null },
					 'imgw exit on SIGTERM');
			return async () => {
				gw = await startGateway();
			};
		},
		async stop() {
			gw.proc.kill('SIGTERM');
			const g = await gw.exited;
			biz.proc.kill('SIGTERM');
			const b = await biz.exited;
			rmSync(dir, { recursive: true, force: true });
			assert.deepEqual(g, { code: 0, signal: null },
					 'imgw exit on SIGTERM');
			assert.deepEqual(b, { code: 0, signal: null },
					 'bizsvr exit on SIGTERM');
		},
		async admin(method, urlPath, body) {
			const res = await fetch(
				`http://127.0.0.1:${ports.bizHttp}${urlPath}`,
				{ method, body: body && JSON.stringify(body),
				  headers: { 'Content-Type': 'application/json' } });
			const json = await res.json();
			assert.ok(res.status < 300,
				  `${method} ${urlPath}: ${res.status} ${JSON.stringify(json)}`);
			return json;
		},
		async token(user) {
			return (await stack.admin('POST', '/v1/tokens',
						  { user_id: user })).token;
		},
		async group(name, members) {
			return (await stack.admin('POST', '/v1/sessions',
				{ kind: 'group', name, members })).session_id;
		},
	};
	return stack;
}

// Frame bookkeeping shared by both transports: replies by request id,
// pushes and kicks in arrival order.
class FrameQueue {
	constructor() {
		this.nextId = 1;
		this.pending = new Map();
		this.pushes = [];
		this.waiters = [];
		this.errors = [];
	}

	onFrame(data) {
		const f = decodeFrame(data);
		if (f.op === OP.PUSH || f.op === OP.KICK || f.op === OP.ERROR) {
			this.pushes.push(f);
			const w = this.waiters.shift();
			if (w)
				w();
		}
		const p = this.pending.get(f.requestId);
		if (f.requestId && p && f.op !== OP.PUSH) {
			this.pending.delete(f.requestId);
			p.resolve(f);
		}
	}

	request(write, op, body) {
		const id = this.nextId++;
		return new Promise((resolve, reject) => {
			const timer = setTimeout(() => reject(new Error(
				`no answer to op ${op} request ${id} in 5 s`)), 5000);
			this.pending.set(id, { resolve: (f) => {
				clearTimeout(timer);
				resolve(f);
			} });
			write(encodeFrame(op, id, body));
		});
	}

	async nextPush(timeoutMs = 5000) {
		const deadline = Date.now() + timeoutMs;
		while (!this.pushes.length) {
			const left = deadline - Date.now();
			if (left <= 0)
				throw new Error(`no push within ${timeoutMs} ms`);
			await new Promise((resolve) => {
				const t = setTimeout(resolve, left);
				this.waiters.push(() => {
					clearTimeout(t);
					resolve();
				});
			});
		}
		return this.pushes.shift();
	}
}

// An imgw client over the npm ws package.
export class WsClient extends FrameQueue {
	static async open(url, options = {}) {
		const c = new WsClient();
		c.ws = new WebSocket(url, 'imgw.v1', options);
		c.ws.binaryType = 'nodebuffer';
		c.closed = new Promise((resolve) => c.ws.on('close',
			(code, reason) => resolve({ code,
						    reason: reason.toString() })));
		c.ws.on('message', (data, isBinary) => {
			assert.ok(isBinary, 'the gateway sent a text message');
			c.onFrame(new Uint8Array(data));
		});
		await new Promise((resolve, reject) => {
			c.ws.once('open', resolve);
			c.ws.once('error', reject);
		});
		return c;
	}

	send(op, body) {
		return this.request((f) => this.ws.send(f), op, body);
	}

	async login(user, token, device = 'web') {
		const f = await this.send(OP.LOGIN, encodeLogin({ token,
			userId: user, deviceId: device, platform: 'web' }));
		assert.equal(f.op, OP.LOGIN_RESULT);
		assert.equal(f.msg.code, 0, `login of ${user}: ${f.msg.reason}`);
		return f.msg;
	}

	// Writes bytes to the socket under ws, bypassing its framing.
	raw(bytes) {
		this.ws._socket.write(bytes);
	}
}

// An imgw client over TCP, the mobile clients' binary protocol.
export class TcpClient extends FrameQueue {
	static async open(port) {
		const c = new TcpClient();
		c.sock = net.connect(port, '127.0.0.1');
		c.buf = Buffer.alloc(0);
		c.sock.on('data', (chunk) => {
			c.buf = Buffer.concat([c.buf, chunk]);
			while (c.buf.length >= FRAME_HEADER_LEN) {
				const len = FRAME_HEADER_LEN + c.buf.readUInt32BE(0);
				if (c.buf.length < len)
					break;
				c.onFrame(new Uint8Array(c.buf.subarray(0, len)));
				c.buf = c.buf.subarray(len);
			}
		});
		await new Promise((resolve, reject) => {
			c.sock.once('connect', resolve);
			c.sock.once('error', reject);
		});
		return c;
	}

	send(op, body) {
		return this.request((f) => this.sock.write(f), op, body);
	}

	login(user, token, device = 'phone') {
		return WsClient.prototype.login.call(this, user, token, device);
	}

	close() {
		this.sock.destroy();
	}
}

// Returns one client-to-server WebSocket frame, masked unless mask is false.
export function wsFrame({ fin = true, opcode, payload = Buffer.alloc(0),
			  mask = true, rsv = 0 }) {
	const len = payload.length;
	let header;

	if (len < 126) {
		header = Buffer.from([0, len]);
	} else if (len <= 0xffff) {
		header = Buffer.alloc(4);
		header[1] = 126;
		header.writeUInt16BE(len, 2);
	} else {
		header = Buffer.alloc(10);
		header[1] = 127;
		header.writeBigUInt64BE(BigInt(len), 2);
	}
	header[0] = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
	if (!mask)
		return Buffer.concat([header, payload]);
	header[1] |= 0x80;
	const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
	const body = Buffer.from(payload);
	for (let i = 0; i < body.length; i++)
		body[i] ^= key[i % 4];
	return Buffer.concat([header, key, body]);
}
