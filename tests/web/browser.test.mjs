// SPDX-License-Identifier: MIT
// The chat page of web/ in Debian's Chromium, driven headless by
// playwright-core: two users chat in a group, and the receiving page
// reconnects after a gateway restart and shows what was sent meanwhile.
// Also the gateway's static file serving under /web/. With IMGW_SCREENSHOT
// set to a path, the chat test saves a screenshot of the page there.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { WsClient, repoRoot, sleep, startStack } from './lib.mjs';

const CHROMIUM = '/usr/bin/chromium';
const WAIT_MS = 20000;

let chromium = null;
let skipReason = '';
if (!existsSync(CHROMIUM)) {
	skipReason = `${CHROMIUM} not found (Debian package chromium)`;
} else {
	try {
		({ chromium } = await import('playwright-core'));
	} catch (err) {
		skipReason = `playwright-core not installed: ${err.message}`;
	}
}
if (skipReason)
	console.log(`skipped: ${skipReason}`);

describe('web directory', () => {
	let stack;

	before(async () => {
		stack = await startStack({
			gwArgs: ['--web-dir', path.join(repoRoot, 'web')] });
	});
	after(async () => stack && stack.stop());

	const get = (p) => fetch(`${stack.adminUrl}${p}`,
				 { redirect: 'manual' });

	test('files with their content type', async () => {
		const cases = [['/web/', 'text/html; charset=utf-8'],
			       ['/web/index.html', 'text/html; charset=utf-8'],
			       ['/web/chat.mjs', 'text/javascript; charset=utf-8'],
			       ['/web/imgw.mjs', 'text/javascript; charset=utf-8'],
			       ['/web/chat.css', 'text/css; charset=utf-8']];
		for (const [p, type] of cases) {
			const res = await get(p);
			assert.equal(res.status, 200, p);
			assert.equal(res.headers.get('content-type'), type, p);
			assert.ok((await res.text()).length > 0, p);
		}
	});

	test('/web redirects to /web/', async () => {
		const res = await get('/web');
		assert.equal(res.status, 301);
		assert.equal(res.headers.get('location'), '/web/');
	});

	test('path traversal is rejected', async () => {
		// fetch() normalizes "..", so the request goes out raw.
		for (const p of ['/web/../Makefile', '/web/%2e%2e/Makefile',
				 '/web/.%2e/Makefile', '/web/%2E%2E%2FMakefile',
				 '/web/chat.mjs%00.png', '/web//etc/passwd',
				 '/web/./chat.mjs']) {
			const status = await rawGetStatus(stack.ports.gwHttp, p);
			assert.equal(status, 400, p);
		}
	});

	test('missing file is 404', async () => {
		assert.equal((await get('/web/nope.html')).status, 404);
	});
});

describe('without --web-dir', () => {
	test('nothing is served', async () => {
		const stack = await startStack();
		try {
			const res = await fetch(`${stack.adminUrl}/web/`);
			assert.equal(res.status, 404);
		} finally {
			await stack.stop();
		}
	});
});

// Sends GET path as written, without URL normalization, and returns the
// HTTP status.
async function rawGetStatus(port, p) {
	const net = await import('node:net');

	return new Promise((resolve, reject) => {
		const sock = net.connect(port, '127.0.0.1');
		let reply = '';
		sock.on('connect', () => sock.write(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`));
		sock.on('data', (d) => { reply += d.toString(); });
		sock.on('end', () => resolve(Number(reply.split(' ')[1])));
		sock.on('error', reject);
	});
}

async function logIn(page, url, wsUrl, user, token) {
	await page.goto(`${url}?ws=${encodeURIComponent(wsUrl)}`);
	await page.fill('#user', user);
	await page.fill('#token', token);
	await page.click('#login button[type=submit]');
	await page.waitForSelector('body[data-state="connected"]',
				   { timeout: WAIT_MS });
}

function messageAt(page, text) {
	return page.locator('#messages li', { hasText: text });
}

async function sendFrom(page, text) {
	await page.fill('#text', text);
	await page.click('#composer button[type=submit]');
	await messageAt(page, text).waitFor({ timeout: WAIT_MS });
}

describe('chat page in chromium', { skip: skipReason || false }, () => {
	let stack, context, userDir;

	before(async () => {
		stack = await startStack({
			gwArgs: ['--web-dir', path.join(repoRoot, 'web')] });
		userDir = mkdtempSync(path.join(tmpdir(), 'imgw-chromium-'));
		context = await chromium.launchPersistentContext(userDir, {
			executablePath: CHROMIUM,
			headless: true,
			viewport: { width: 960, height: 600 },
			args: ['--headless', '--no-sandbox', '--disable-gpu',
			       '--disable-quic', '--no-first-run',
			       '--disable-background-networking',
			       '--disable-component-update',
			       '--disable-sync'],
		});
	});
	after(async () => {
		if (context)
			await context.close();
		if (userDir)
			rmSync(userDir, { recursive: true, force: true });
		if (stack)
			await stack.stop();
	});

	test('two users chat and one reconnects', async () => {
		const sid = await stack.group('team room', ['alice', 'bob']);
		const ops = await stack.group('ops', ['alice', 'bob']);
		await stack.admin('POST', `/v1/sessions/${sid}/messages`,
				  { sender: 'alice', payload: 'history before login' });
		const pageUrl = `${stack.adminUrl}/web/`;
		const alice = await context.newPage();
		const bob = await context.newPage();
		const pageErrors = [];
		for (const p of [alice, bob])
			p.on('pageerror', (err) => pageErrors.push(err.message));

		await logIn(alice, pageUrl, stack.wsUrl, 'alice',
			    await stack.token('alice'));
		await logIn(bob, pageUrl, stack.wsUrl, 'bob',
			    await stack.token('bob'));
		for (const p of [alice, bob]) {
			const item = p.locator(`#sessions li[data-session="${sid}"]`);
			assert.equal(await item.locator('.name').textContent(),
				     'team room');
			await item.click();
			// SYNC brought the message stored before the login.
			await messageAt(p, 'history before login')
				.waitFor({ timeout: WAIT_MS });
		}

		await sendFrom(alice, 'hello bob');
		const live = messageAt(bob, 'hello bob');
		await live.waitFor({ timeout: WAIT_MS });
		assert.equal(await live.locator('.sender').textContent(), 'alice');
		const stamp = await live.locator('time').getAttribute('datetime');
		assert.ok(Math.abs(Date.parse(stamp) - Date.now()) < 60000,
			  `message time ${stamp} is not now`);
		await sendFrom(bob, 'hi alice');
		await messageAt(alice, 'hi alice').waitFor({ timeout: WAIT_MS });

		// Drop both pages' connections: the gateway goes away, a
		// message is stored meanwhile, and the gateway comes back.
		const restart = await stack.stopGateway();
		await bob.waitForSelector('body[data-state="reconnecting"]',
					  { timeout: WAIT_MS });
		await stack.admin('POST', `/v1/sessions/${sid}/messages`,
				  { sender: 'alice', payload: 'sent while you were away' });
		await restart();
		await bob.waitForSelector('body[data-state="connected"]',
					  { timeout: WAIT_MS });
		await messageAt(bob, 'sent while you were away')
			.waitFor({ timeout: WAIT_MS });
		await alice.waitForSelector('body[data-state="connected"]',
					    { timeout: WAIT_MS });
		await sendFrom(alice, 'back online');
		await messageAt(bob, 'back online').waitFor({ timeout: WAIT_MS });

		// A message in a session that is not open counts as unread.
		await stack.admin('POST', `/v1/sessions/${ops}/messages`,
				  { sender: 'alice', payload: 'deploy at five' });
		const opsItem = bob.locator(`#sessions li[data-session="${ops}"]`);
		await opsItem.locator('.unread', { hasText: '1' })
			.waitFor({ timeout: WAIT_MS });
		assert.equal(await opsItem.locator('.name').textContent(), 'ops');

		// Each message shows once, in seq order.
		const texts = await bob.locator('#messages .text').allTextContents();
		assert.deepEqual(texts, ['history before login', 'hello bob',
					 'hi alice', 'sent while you were away',
					 'back online']);
		assert.deepEqual(pageErrors, []);
		if (process.env.IMGW_SCREENSHOT)
			await bob.screenshot({ path: process.env.IMGW_SCREENSHOT });

		// A login of bob's device elsewhere kicks the page, which
		// stops instead of reconnecting and kicking back.
		const device = await bob.evaluate(() =>
			sessionStorage.getItem('imgw-device'));
		assert.match(device, /^web-/);
		const other = await WsClient.open(stack.wsUrl);
		await other.login('bob', await stack.token('bob'), device);
		await bob.waitForSelector('body[data-state="stopped"]',
					  { timeout: WAIT_MS });
		assert.match(await bob.locator('#status').textContent(),
			     /duplicate login/);
		await sleep(1500);
		assert.equal(await bob.getAttribute('body', 'data-state'),
			     'stopped');
		assert.equal(other.ws.readyState, other.ws.OPEN,
			     'the page logged in again and kicked the new client');
		other.ws.close();
	});
});
