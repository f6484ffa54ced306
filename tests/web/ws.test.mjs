// SPDX-License-Identifier: MIT
// The gateway's WebSocket side driven by the npm ws client: login, chat and
// super-session broadcasts shared with TCP clients, the opening handshake
// checks, and the close code of each WebSocket protocol error.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import { decodeFrame, encodeFrame, encodeLogin, encodeSend, encodeSync, payloadText }
	from '../../web/imgw.mjs';
import { OP, TcpClient, WsClient, startStack, wsFrame } from './lib.mjs';

const BINARY = 0x2, TEXT = 0x1, CONT = 0x0, CLOSE = 0x8, PING = 0x9;

let stack;

before(async () => {
	stack = await startStack({ gwArgs: ['--max-frame', '200000'],
				   bizArgs: ['--max-payload', '150000'] });
});
after(async () => stack && stack.stop());

async function loggedIn(user) {
	const c = await WsClient.open(stack.wsUrl);
	await c.login(user, await stack.token(user));
	return c;
}

function loginFrame(user, token) {
	return Buffer.from(encodeFrame(OP.LOGIN, 1, encodeLogin({
		token, userId: user, deviceId: 'raw', platform: 'test' })));
}

describe('chat', () => {
	test('ws and tcp members chat in a group', async () => {
		const sid = await stack.group('mixed', ['wsa', 'tcpb']);
		const a = await loggedIn('wsa');
		const b = await TcpClient.open(stack.ports.gw);
		await b.login('tcpb', await stack.token('tcpb'));

		const sent = await a.send(OP.SEND, encodeSend({ sessionId: sid,
			clientMsgId: 'm1', payload: 'from websocket' }));
		assert.equal(sent.msg.code, 0);
		const atB = await b.nextPush();
		assert.equal(atB.msg.sender, 'wsa');
		assert.equal(payloadText(atB.msg.payload), 'from websocket');

		await b.send(OP.SEND, encodeSend({ sessionId: sid,
			clientMsgId: 'm2', payload: 'from tcp' }));
		const atA = await a.nextPush();
		assert.equal(atA.msg.sender, 'tcpb');
		assert.equal(payloadText(atA.msg.payload), 'from tcp');

		const sync = await a.send(OP.SYNC, encodeSync({ sessionId: sid,
							      fromSeq: 1 }));
		assert.deepEqual(sync.msg.messages.map((m) =>
			payloadText(m.payload)), ['from websocket', 'from tcp']);
		a.ws.close(1000, 'done');
		assert.equal((await a.closed).code, 1000);
		b.close();
	});

	test('super broadcast reaches ws and tcp members', async () => {
		const sid = await stack.group('big', ['sw1', 'sw2', 'st1']);
		const w1 = await WsClient.open(stack.wsUrl);
		const w2 = await WsClient.open(stack.wsUrl);
		const t1 = await TcpClient.open(stack.ports.gw);
		const ids = [await w1.login('sw1', await stack.token('sw1')),
			     await w2.login('sw2', await stack.token('sw2')),
			     await t1.login('st1', await stack.token('st1'))]
			.map((r) => r.connId).sort();
		await stack.admin('POST', `/v1/sessions/${sid}/super`,
				  { action: 'upgrade' });
		// The upgrade DELIVER comes with the next message.
		await stack.admin('POST', `/v1/sessions/${sid}/messages`,
				  { sender: 'system', payload: 'first' });
		for (const c of [w1, w2, t1])
			assert.equal(payloadText((await c.nextPush()).msg.payload),
				     'first');
		await stack.admin('POST', `/v1/sessions/${sid}/messages`,
				  { sender: 'system', payload: 'second' });
		for (const c of [w1, w2, t1])
			assert.equal(payloadText((await c.nextPush()).msg.payload),
				     'second');
		// 'second' went out from the gateway's cache of the session.
		const res = await fetch(
			`http://127.0.0.1:${stack.ports.gwHttp}/v1/sessions`);
		const cache = (await res.json()).find((e) =>
			e.session_id === sid);
		assert.ok(cache, `session ${sid} is not cached`);
		assert.deepEqual(cache.connections.sort(), ids);
		w1.ws.close();
		w2.ws.close();
		t1.close();
	});

	test('16- and 64-bit payload lengths', async () => {
		const sid = await stack.group('long', ['la', 'lb']);
		const a = await loggedIn('la');
		const b = await loggedIn('lb');
		for (const size of [300, 70000]) {
			const r = await a.send(OP.SEND, encodeSend({ sessionId: sid,
				clientMsgId: `l${size}`, payload: 'x'.repeat(size) }));
			assert.equal(r.msg.code, 0, r.msg.reason);
			const p = await b.nextPush();
			assert.equal(p.msg.payload.length, size);
		}
		a.ws.close();
		b.ws.close();
	});

	test('fragmented login with a ping between fragments', async () => {
		const c = await WsClient.open(stack.wsUrl);
		const frame = loginFrame('frag', await stack.token('frag'));
		const pong = new Promise((r) => c.ws.once('pong', r));
		const result = new Promise((resolve) => {
			c.pending.set(1, { resolve });
		});
		c.raw(wsFrame({ fin: false, opcode: BINARY,
				payload: frame.subarray(0, 5) }));
		c.raw(wsFrame({ opcode: PING, payload: Buffer.from('p1') }));
		c.raw(wsFrame({ fin: false, opcode: CONT,
				payload: frame.subarray(5, 20) }));
		c.raw(wsFrame({ opcode: CONT, payload: frame.subarray(20) }));
		assert.equal((await pong).toString(), 'p1');
		const res = await result;
		assert.equal(res.op, OP.LOGIN_RESULT);
		assert.equal(res.msg.code, 0);
		c.ws.close();
	});
});

// Each case writes raw frames after the handshake and expects the gateway
// to close with code; npm ws reports 1005 for a close frame without a code
// and 1006 when the TCP connection ended without any close frame.
const protocolErrors = [
	['text message', 1003, () => [wsFrame({ opcode: TEXT,
		payload: Buffer.from('hello') })]],
	['unmasked frame', 1002, () => [wsFrame({ opcode: BINARY,
		payload: Buffer.alloc(12), mask: false })]],
	['data frame while a message is open', 1002, () => [
		wsFrame({ fin: false, opcode: BINARY, payload: Buffer.alloc(4) }),
		wsFrame({ opcode: BINARY, payload: Buffer.alloc(4) })]],
	['continuation without a message', 1002, () => [
		wsFrame({ opcode: CONT, payload: Buffer.alloc(4) })]],
	['ping over 125 bytes', 1002, () => [
		wsFrame({ opcode: PING, payload: Buffer.alloc(126) })]],
	['fragmented ping', 1002, () => [
		wsFrame({ fin: false, opcode: PING, payload: Buffer.alloc(2) })]],
	['reserved close code 1005', 1002, () => [
		wsFrame({ opcode: CLOSE, payload: Buffer.from([0x03, 0xed]) })]],
	['reserved close code 1004', 1002, () => [
		wsFrame({ opcode: CLOSE, payload: Buffer.from([0x03, 0xec]) })]],
	['unassigned close code 2000', 1002, () => [
		wsFrame({ opcode: CLOSE, payload: Buffer.from([0x07, 0xd0]) })]],
	['close frame with a 1-byte body', 1002, () => [
		wsFrame({ opcode: CLOSE, payload: Buffer.from([0x03]) })]],
	['reserved bit set', 1002, () => [
		wsFrame({ opcode: BINARY, payload: Buffer.alloc(12), rsv: 4 })]],
	['message that is not one imgw frame', 1007, () => [
		wsFrame({ opcode: BINARY, payload: Buffer.alloc(5) })]],
];

describe('protocol errors', () => {
	for (const [name, code, frames] of protocolErrors) {
		test(`${name} closes with ${code}`, async () => {
			const c = await WsClient.open(stack.wsUrl);
			for (const f of frames())
				c.raw(f);
			assert.equal((await c.closed).code, code);
		});
	}

	test('message over max-frame closes with 1009 before its payload',
	     async () => {
		const c = await WsClient.open(stack.wsUrl);
		// Announce 1 MiB and send the header, mask and one payload
		// byte: wslay 1.1.1 reports a frame with its first payload
		// byte, never with the header alone.
		const header = Buffer.alloc(15);
		header[0] = 0x80 | BINARY;
		header[1] = 0x80 | 127;
		header.writeBigUInt64BE(1n << 20n, 2);
		c.raw(header);
		assert.equal((await c.closed).code, 1009);
	});

	test('client close is answered with the same code', async () => {
		const c = await WsClient.open(stack.wsUrl);
		c.ws.close(4001, 'leaving');
		const closed = await c.closed;
		assert.equal(closed.code, 4001);
	});

	test('close without a code is answered without 1005', async () => {
		const c = await WsClient.open(stack.wsUrl);
		const got = [];
		c.ws._socket.on('data', (d) => got.push(d));
		c.raw(wsFrame({ opcode: CLOSE }));
		await c.closed;
		const all = Buffer.concat(got);
		// The reply is a close frame with an empty body.
		assert.deepEqual([...all.subarray(-2)], [0x88, 0x00]);
	});

	test('kick closes with 1000 and the reason', async () => {
		const first = await loggedIn('dup');
		const second = await WsClient.open(stack.wsUrl);
		await second.login('dup', await stack.token('dup'));
		const kick = await first.nextPush();
		assert.equal(kick.op, OP.KICK);
		const closed = await first.closed;
		assert.equal(closed.code, 1000);
		assert.equal(closed.reason, 'duplicate login');
		second.ws.close();
	});
});

// Sends a raw handshake request and returns the status line.
async function handshake(port, lines) {
	const sock = net.connect(port, '127.0.0.1');
	let text = '';
	sock.on('data', (d) => { text += d.toString(); });
	sock.write(lines.join('\r\n') + '\r\n\r\n');
	await new Promise((r) => sock.on('close', r));
	return text.split('\r\n')[0];
}

describe('handshake', () => {
	const good = (port) => ['GET / HTTP/1.1', `Host: 127.0.0.1:${port}`,
		'Upgrade: websocket', 'Connection: keep-alive, Upgrade',
		'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
		'Sec-WebSocket-Version: 13'];

	test('selects imgw.v1', async () => {
		const c = await WsClient.open(stack.wsUrl);
		assert.equal(c.ws.protocol, 'imgw.v1');
		c.ws.close();
	});

	test('rejects version 8 with 426', async () => {
		const req = good(stack.ports.gw).map((l) =>
			l.replace('Version: 13', 'Version: 8'));
		assert.match(await handshake(stack.ports.gw, req), / 426 /);
	});

	test('rejects HTTP/1.0 with 400', async () => {
		const req = good(stack.ports.gw);
		req[0] = 'GET / HTTP/1.0';
		assert.match(await handshake(stack.ports.gw, req), / 400 /);
	});

	test('rejects a bad key with 400', async () => {
		const req = good(stack.ports.gw).map((l) =>
			l.replace(/Key: .*/, 'Key: c2hvcnQ='));
		assert.match(await handshake(stack.ports.gw, req), / 400 /);
	});

	test('GET without Upgrade gets an imgw ERROR', async () => {
		const req = good(stack.ports.gw).filter((l) =>
			!l.startsWith('Upgrade'));
		const sock = net.connect(stack.ports.gw, '127.0.0.1');
		const chunks = [];
		sock.on('data', (d) => chunks.push(d));
		sock.write(req.join('\r\n') + '\r\n\r\n');
		await new Promise((r) => sock.on('close', r));
		const reply = decodeFrame(new Uint8Array(Buffer.concat(chunks)));
		assert.equal(reply.op, OP.ERROR);
		// The fifth byte, '/', is read as the frame's version.
		assert.equal(reply.msg.code, 2, 'ERROR_BAD_VERSION');
	});
});

describe('origins', () => {
	let s2;

	before(async () => {
		s2 = await startStack({ gwArgs: ['--ws-origins',
			'http://good.example,http://127.0.0.1:8000'] });
	});
	after(async () => s2 && s2.stop());

	test('allowed origin is accepted', async () => {
		const c = await WsClient.open(s2.wsUrl,
					      { origin: 'http://good.example' });
		c.ws.close();
	});

	test('other origin is rejected with 403', async () => {
		await assert.rejects(WsClient.open(s2.wsUrl,
			{ origin: 'http://evil.example' }), /403/);
	});

	test('missing origin is rejected with 403', async () => {
		await assert.rejects(WsClient.open(s2.wsUrl), /403/);
	});
});
