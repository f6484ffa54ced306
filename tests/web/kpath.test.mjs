// SPDX-License-Identifier: MIT
// WebSocket and TCP members of one super session with the gateway's kernel
// path on: BPF objects pinned by imgw-loader into a private pin directory,
// broadcasts checked byte for byte and in order on every member, and the
// gateway's counters showing the kernel carried WebSocket-framed copies.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { payloadText } from '../../web/imgw.mjs';
import { TcpClient, WsClient, repoRoot, startStack } from './lib.mjs';

const buildDir = process.env.IMGW_BUILD || path.join(repoRoot, 'build');
const loader = path.join(buildDir, 'imgw-loader');
const pinDir = `/sys/fs/bpf/imgw-wstest-${process.pid}`;
let stack;
let skip = '';

function load() {
	if (process.getuid() !== 0)
		return 'not root';
	if (!fs.existsSync(loader))
		return `${loader} is missing`;
	try {
		execFileSync(loader, ['--pin-dir', pinDir, 'load'],
			     { stdio: 'pipe' });
	} catch (err) {
		return `imgw-loader load failed: ${String(err.stderr).trim()}`;
	}
	return '';
}

before(async () => {
	skip = load();
	if (skip) {
		console.log(`skipped: ${skip}`);
		return;
	}
	stack = await startStack({ gwArgs: ['--kernel-path', 'on',
					     '--bpf-pin-dir', pinDir] });
});

after(async () => {
	if (stack)
		await stack.stop();
	if (!skip)
		execFileSync(loader, ['--pin-dir', pinDir, 'unload'],
			     { stdio: 'pipe' });
});

async function kpathState() {
	const res = await fetch(`http://127.0.0.1:${stack.ports.gwHttp}/v1/kpath`);
	return res.json();
}

test('kernel path carries websocket broadcasts', async (t) => {
	if (skip) {
		t.skip(skip);
		return;
	}
	const sid = await stack.group('kroom', ['kw1', 'kw2', 'kt1']);
	const w1 = await WsClient.open(stack.wsUrl);
	const w2 = await WsClient.open(stack.wsUrl);
	const t1 = await TcpClient.open(stack.ports.gw);
	await w1.login('kw1', await stack.token('kw1'));
	await w2.login('kw2', await stack.token('kw2'));
	await t1.login('kt1', await stack.token('kt1'));
	await stack.admin('POST', `/v1/sessions/${sid}/super`,
			  { action: 'upgrade' });
	const before = await kpathState();
	assert.equal(before.enabled, true);

	// Sizes across the 7-bit and 16-bit WebSocket length forms.
	const sizes = [1, 100, 125, 126, 1000, 4000, 20000];
	const sent = [];
	for (let i = 0; i < 30; i++) {
		const text = `k${i}-` + 'x'.repeat(sizes[i % sizes.length]);
		const r = await stack.admin('POST',
			`/v1/sessions/${sid}/messages`,
			{ sender: 'system', payload: text });
		sent.push({ seq: r.seq, text });
	}
	for (const c of [w1, w2, t1]) {
		for (const want of sent) {
			const p = await c.nextPush();
			assert.equal(Number(p.msg.seq), want.seq);
			assert.equal(payloadText(p.msg.payload), want.text);
		}
	}

	// The first message carried the upgrade through userspace; the rest
	// went out as SUPER broadcasts, and the kernel took its share of them.
	const after = await kpathState();
	assert.equal(after.mirror_failures, 0);
	assert.ok(after.broadcasts_kernel - before.broadcasts_kernel >= 20,
		  `kernel broadcasts ${after.broadcasts_kernel - before.broadcasts_kernel}, expected at least 20`);
	assert.ok(after.deliveries_kernel - before.deliveries_kernel >= 40,
		  `kernel deliveries ${after.deliveries_kernel - before.deliveries_kernel}, expected at least 40 of 87`);
	w1.ws.close();
	w2.ws.close();
	t1.close();
});
