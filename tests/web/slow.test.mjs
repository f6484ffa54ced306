// SPDX-License-Identifier: MIT
// A WebSocket member that stops reading is closed as slow once its output
// passes --out-cap, while another WebSocket member of the same group keeps
// receiving every message.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { encodeSend, payloadText } from '../../web/imgw.mjs';
import { OP, TcpClient, WsClient, startStack } from './lib.mjs';

const OUT_CAP = 256 * 1024;
const PAYLOAD = 100 * 1000;
// The stalled client's receive buffer and the gateway's send buffer fill
// before the gateway's output buffer grows. Linux caps them at tcp_rmem[2]
// and tcp_wmem[2] (6 MB and 4 MB by default, 32 MB and 4 MB on some
// machines), so 400 messages of 100 kB (40 MB) are an upper bound.
const MAX_MESSAGES = 400;

let stack;

before(async () => {
	stack = await startStack({
		gwArgs: ['--out-cap', String(OUT_CAP), '--max-frame', '200000'],
		bizArgs: ['--max-payload', '150000'] });
});
after(async () => stack && stack.stop());

async function connectionIds() {
	const res = await fetch(`${stack.adminUrl}/v1/connections`);
	return (await res.json()).map((c) => c.id);
}

async function slowCloses() {
	const text = await (await fetch(`${stack.adminUrl}/metrics`)).text();
	const line = text.split('\n').find((l) =>
		l.startsWith('imgw_slow_closes_total '));
	return Number(line.split(' ')[1]);
}

async function loggedIn(user) {
	const c = await WsClient.open(stack.wsUrl);
	return { c, id: (await c.login(user, await stack.token(user))).connId };
}

test('ws reader that stops is closed as slow', async () => {
	const sid = await stack.group('slow', ['sender', 'fast', 'stalled']);
	const sender = await TcpClient.open(stack.ports.gw);
	await sender.login('sender', await stack.token('sender'));
	const fast = await loggedIn('fast');
	const stalled = await loggedIn('stalled');
	const slowBefore = await slowCloses();

	// The socket under ws stops reading, so the gateway's output to it
	// backs up.
	stalled.c.ws._socket.pause();
	let sent = 0;
	while (sent < MAX_MESSAGES &&
	       (await connectionIds()).includes(stalled.id)) {
		for (let i = 0; i < 10; i++, sent++) {
			const r = await sender.send(OP.SEND, encodeSend({
				sessionId: sid, clientMsgId: `s${sent}`,
				payload: `${sent} `.padEnd(PAYLOAD, 'x') }));
			assert.equal(r.msg.code, 0, r.msg.reason);
			const p = await fast.c.nextPush();
			assert.equal(payloadText(p.msg.payload).split(' ')[0],
				     String(sent));
		}
	}
	const ids = await connectionIds();
	assert.ok(!ids.includes(stalled.id),
		  `stalled connection ${stalled.id} still open after ${sent} messages of ${PAYLOAD} bytes`);
	assert.ok(ids.includes(fast.id), 'the fast member was closed too');
	assert.equal(await slowCloses(), slowBefore + 1);

	// The fast member still receives.
	const r = await sender.send(OP.SEND, encodeSend({ sessionId: sid,
		clientMsgId: 'after', payload: 'after the slow close' }));
	assert.equal(r.msg.code, 0);
	assert.equal(payloadText((await fast.c.nextPush()).msg.payload),
		     'after the slow close');

	// The gateway sends no close frame behind the backlog, so ws reports
	// 1006 once it reads what was buffered.
	stalled.c.ws._socket.resume();
	assert.equal((await stalled.c.closed).code, 1006);
	fast.c.ws.close();
	sender.close();
});
