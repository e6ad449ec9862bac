// The web client in a real browser: Debian's Chromium driven by playwright-core, against a real
// node started in this process (port 0, empty data directory) serving the built client at `/`.
// Each user is a separate browser context (its own storage, its own sockets).
import { test, before, after } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { http, startNode } from '../../server/test/helpers.js';
import type { TestNode } from '../../server/test/helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DIST = fileURLToPath(new URL('../dist', import.meta.url));
const SHOTS = fileURLToPath(new URL('../../../.test-output/web', import.meta.url));
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WIDE = { width: 1180, height: 760 };
const NARROW = { width: 390, height: 760 };
const PASSWORD = 'correct horse battery';

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let node: TestNode;
let browser: Browser;

interface User {
  name: string;
  context: BrowserContext;
  page: Page;
  /** Every dialog (alert, confirm, ...) the page opened. */
  dialogs: string[];
  /** Uncaught errors of the page. */
  errors: string[];
}

async function newUser(name: string, options: { viewport?: { width: number; height: number }; dark?: boolean } = {}): Promise<User> {
  const context = await browser.newContext({ viewport: options.viewport ?? WIDE, colorScheme: options.dark ? 'dark' : 'light', deviceScaleFactor: 1 });
  const page = await context.newPage();
  const user: User = { name, context, page, dialogs: [], errors: [] };
  page.on('dialog', (d) => { user.dialogs.push(d.message()); void d.dismiss(); });
  page.on('pageerror', (e) => user.errors.push(e.message));
  return user;
}

async function signUp(u: User, shot?: string): Promise<void> {
  await u.page.goto(`${node.url}/`);
  await u.page.getByRole('button', { name: 'Create an account' }).click();
  await u.page.getByLabel('Username').fill(u.name);
  await u.page.getByLabel('Password').fill(PASSWORD);
  if (shot) await screenshot(u.page, shot);
  await u.page.getByRole('button', { name: 'Sign up' }).click();
  await u.page.locator('.side-head').waitFor();
}

async function startChat(u: User, peer: string): Promise<void> {
  await u.page.getByRole('button', { name: 'New chat' }).click();
  await u.page.getByLabel('Username').fill(peer);
  await u.page.getByRole('button', { name: 'Start chat' }).click();
  await u.page.getByRole('heading', { name: peer }).waitFor();
}

/** Opens a conversation from the list by its title. */
async function openConversation(u: User, title: string): Promise<void> {
  await u.page.locator('a.conv', { hasText: title }).click();
  await u.page.getByRole('heading', { name: title }).waitFor();
}

async function send(u: User, text: string): Promise<void> {
  const box = u.page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}

/**
 * Holds `u`'s next history page: it is read from the server at once, and handed to the window
 * only on `release()`. `pageRead` resolves when the server has answered.
 */
async function holdHistory(u: User): Promise<{ pageRead: Promise<void>; release: () => void }> {
  let release!: () => void;
  const held = new Promise<void>((r) => { release = r; });
  let read!: () => void;
  const pageRead = new Promise<void>((r) => { read = r; });
  await u.page.route(/\/v1\/conversations\/[^/]+\/messages(\?|$)/, async (route) => {
    const response = await route.fetch();
    read();
    await held;
    await route.fulfill({ response });
  });
  return { pageRead, release };
}

/** Texts of the message bubbles on screen, in order. */
function texts(u: User): Promise<string[]> {
  return u.page.locator('.message-list li.msg .text').allTextContents();
}

function bubble(u: User, text: string) {
  return u.page.locator('.message-list li.msg', { has: u.page.locator('.text', { hasText: text }) });
}

async function statusOf(u: User, text: string): Promise<string | null> {
  return bubble(u, text).getAttribute('data-status', { timeout: 2000 });
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

async function closeAll(users: User[]): Promise<void> {
  for (const u of users) await u.context.close();
}

/** Signs in over REST (a separate device) to look at what the server committed. */
async function serverHistory(username: string, conversationId: string): Promise<string[]> {
  const login = await http(node.url, 'POST', '/v1/auth/login', { username, password: PASSWORD });
  assert.equal(login.status, 200);
  const h = await http(node.url, 'GET', `/v1/conversations/${conversationId}/messages?limit=200`, undefined, login.body.accessToken);
  assert.equal(h.status, 200);
  return (h.body.messages as { kind: string; text: string }[]).filter((m) => m.kind === 'message').map((m) => m.text);
}

function activeConversationId(u: User): string {
  const m = /#\/c\/([0-9a-f-]{36})$/.exec(u.page.url());
  assert.ok(m, `no conversation open in ${u.name}'s window (${u.page.url()})`);
  return m[1]!;
}

function noErrors(t: TestContext, users: User[]): void {
  for (const u of users) assert.deepEqual(u.errors, [], `${u.name}'s page threw`);
  void t;
}

if (!existsSync(CHROMIUM)) {
  const why = `Chromium not found at ${CHROMIUM}`;
  if (process.env.CI === 'true') test('web client: Chromium is required when CI=true', () => { throw new Error(`${why}; .ci/run installs it (apt-get install -y chromium)`); });
  else test('web client in Chromium', { skip: `${why}; install it (Debian/Ubuntu: sudo apt-get install chromium) or set CHROMIUM_PATH` }, () => undefined);
} else {
  before(async () => {
    assert.ok(existsSync(join(DIST, 'index.html')), `no web build in ${DIST}: run \`npm run build -w @confab/web\` (npm install does it)`);
    mkdirSync(SHOTS, { recursive: true });
    node = await startNode({ config: { webRoot: DIST } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });

  after(async () => {
    await browser?.close();
    await node?.close();
  });

  test('the node serves the client at / with a strict CSP; the API, health and JSON 404s are untouched', async () => {
    const index = await fetch(`${node.url}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
    const csp = index.headers.get('content-security-policy') ?? '';
    for (const d of ["default-src 'self'", "script-src 'self'", "connect-src 'self' ws: wss:", "frame-ancestors 'none'", "object-src 'none'"]) assert.ok(csp.includes(d), `CSP has ${d}: ${csp}`);
    assert.equal(index.headers.get('cache-control'), 'no-store');
    const html = await index.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert.ok(asset, 'the page loads a hashed script');
    const js = await fetch(node.url + asset);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const health = await fetch(`${node.url}/healthz`);
    assert.deepEqual(await health.json(), { status: 'ok' });
    for (const path of ['/v1/nothing-here', '/nothing-here', '/assets/missing.js']) {
      const r = await fetch(node.url + path);
      assert.equal(r.status, 404, path);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'route_not_found', path);
    }
  });

  test('1:1 in two windows: live both ways, ✓ then ✓✓ then read, typing shows and goes, edit and delete', { timeout: 60_000 }, async (t) => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    t.after(() => closeAll([alice, bob]));
    await signUp(alice, 'sign-in-wide');
    await signUp(bob);

    await startChat(alice, 'bob');
    await send(alice, 'Hello Bob! How was the trip?');
    // Bob is on his list: the message reaches his device (✓✓ for Alice) but is not read yet.
    const row = bob.page.locator('a.conv', { hasText: 'alice' });
    await row.waitFor();
    await waitFor('the preview and unread badge in bob\'s list', async () => (await row.textContent())!.includes('Hello Bob! How was the trip?') && (await row.locator('.badge').textContent()) === '1');
    await waitFor('✓✓ delivered for alice', async () => (await statusOf(alice, 'Hello Bob!')) === 'delivered');
    await screenshot(bob.page, 'list-wide');

    // Bob opens it: read for Alice, and his badge is gone.
    await openConversation(bob, 'alice');
    await waitFor('read mark for alice', async () => (await statusOf(alice, 'Hello Bob!')) === 'read');
    await waitFor('bob\'s badge cleared', async () => (await row.locator('.badge').count()) === 0);

    // Bob types: Alice sees it; it goes when his message arrives. Shift+Enter makes a new line.
    const box = bob.page.getByLabel('Message', { exact: true });
    await box.pressSequentially('Great, thanks');
    await alice.page.getByTestId('typing').filter({ hasText: 'bob is typing' }).waitFor();
    await box.press('Shift+Enter');
    await box.pressSequentially('Photos soon');
    await box.press('Enter');
    await waitFor('the composer to be cleared after sending', async () => (await box.inputValue()) === '');
    await waitFor('bob\'s message at alice', async () => (await texts(alice)).includes('Great, thanks\nPhotos soon'));
    await alice.page.getByTestId('typing').waitFor({ state: 'detached' });
    await waitFor('read mark for bob (alice has it open)', async () => (await statusOf(bob, 'Great, thanks')) === 'read');

    await send(alice, 'Can\'t wait to see them');
    await waitFor('alice\'s reply at bob', async () => (await texts(bob)).includes('Can\'t wait to see them'));
    assert.deepEqual(await texts(alice), await texts(bob), 'both windows show the same conversation');
    assert.deepEqual(await texts(bob), ['Hello Bob! How was the trip?', 'Great, thanks\nPhotos soon', 'Can\'t wait to see them']);

    // Alice edits and deletes her own messages; Bob sees both live.
    await bubble(alice, 'Hello Bob!').hover();
    await bubble(alice, 'Hello Bob!').getByRole('button', { name: 'Edit message' }).click();
    const abox = alice.page.getByLabel('Message', { exact: true });
    // The composer takes the text on the next render: wait for it rather than read it at once.
    await waitFor('the composer to hold the message being edited', async () => (await abox.inputValue()) === 'Hello Bob! How was the trip?');
    await abox.fill('Hello Bob! How was the trip to Lisbon?');
    await abox.press('Enter');
    await waitFor('the edit at bob', async () => (await texts(bob))[0] === 'Hello Bob! How was the trip to Lisbon?');
    await bubble(bob, 'Lisbon').locator('.edited').waitFor();
    await bubble(alice, 'Can\'t wait').hover();
    await bubble(alice, 'Can\'t wait').getByRole('button', { name: 'Delete message' }).click();
    await waitFor('the delete at bob', async () => (await texts(bob)).includes('This message was deleted') && !(await texts(bob)).includes('Can\'t wait to see them'));
    // Bob cannot edit Alice's messages.
    assert.equal(await bubble(bob, 'Lisbon').getByRole('button', { name: 'Edit message' }).count(), 0);
    await screenshot(alice.page, 'conversation-wide');

    // A reload stays signed in and shows the same history.
    await bob.page.reload();
    await bob.page.getByRole('heading', { name: 'alice' }).waitFor();
    await waitFor('history after reload', async () => (await texts(bob)).length === 3);
    assert.deepEqual(await texts(bob), ['Hello Bob! How was the trip to Lisbon?', 'Great, thanks\nPhotos soon', 'This message was deleted']);
    noErrors(t, [alice, bob]);
  });

  test('a group of three in three windows: created, members added and removed, messages live everywhere in one order', { timeout: 60_000 }, async (t) => {
    const dave = await newUser('dave');
    const erin = await newUser('erin');
    const frank = await newUser('frank', { viewport: NARROW });
    t.after(() => closeAll([dave, erin, frank]));
    await signUp(dave);
    await signUp(erin);
    await signUp(frank, 'sign-in-narrow');

    await dave.page.getByRole('button', { name: 'New group' }).click();
    await dave.page.getByLabel('Group name').fill('Weekend trip');
    await dave.page.getByLabel('Members', { exact: true }).fill('erin');
    await dave.page.getByRole('button', { name: 'Create group' }).click();
    await dave.page.getByRole('heading', { name: 'Weekend trip' }).waitFor();

    // Frank is added from the members panel and sees the group appear live.
    await dave.page.getByRole('button', { name: 'Group members' }).click();
    await dave.page.getByLabel('Add members').fill('frank');
    await dave.page.getByRole('button', { name: 'Add', exact: true }).click();
    await dave.page.locator('[data-member="frank"]').waitFor();
    await frank.page.locator('a.conv', { hasText: 'Weekend trip' }).waitFor();
    await erin.page.locator('a.conv', { hasText: 'Weekend trip' }).waitFor();
    await dave.page.getByRole('button', { name: 'Close members' }).click();

    await openConversation(erin, 'Weekend trip');
    await openConversation(frank, 'Weekend trip');
    await send(dave, 'Saturday at 9?');
    await waitFor('dave\'s message at erin and frank', async () => (await texts(erin)).length === 1 && (await texts(frank)).length === 1);
    await send(erin, 'Works for me');
    await waitFor('erin\'s message at frank', async () => (await texts(frank)).length === 2);
    await send(frank, 'I\'ll bring coffee ☕ https://example.com/coffee');
    const all = ['Saturday at 9?', 'Works for me', 'I\'ll bring coffee ☕ https://example.com/coffee'];
    for (const u of [dave, erin, frank]) await waitFor(`all three messages at ${u.name}`, async () => (await texts(u)).length === 3);
    for (const u of [dave, erin, frank]) assert.deepEqual(await texts(u), all, `${u.name} sees the same order`);
    // In a group, sender names label the others' messages; read means read by everyone.
    assert.equal(await bubble(frank, 'Saturday').locator('.sender').textContent(), 'dave');
    await waitFor('dave\'s message read by both', async () => (await statusOf(dave, 'Saturday')) === 'read');
    const link = frank.page.locator('.message-list a', { hasText: 'https://example.com/coffee' });
    assert.equal(await link.getAttribute('href'), 'https://example.com/coffee');
    assert.match((await link.getAttribute('rel')) ?? '', /noopener/);
    await screenshot(frank.page, 'conversation-narrow');

    // Dave removes Erin: the group leaves her list.
    await dave.page.getByRole('button', { name: 'Group members' }).click();
    await dave.page.getByRole('button', { name: 'Remove erin' }).click();
    await dave.page.locator('[data-member="erin"]').waitFor({ state: 'detached' });
    await erin.page.locator('a.conv', { hasText: 'Weekend trip' }).waitFor({ state: 'detached' });
    await frank.page.getByRole('link', { name: 'Back to conversations' }).click();
    await frank.page.locator('a.conv', { hasText: 'Weekend trip' }).waitFor();
    await screenshot(frank.page, 'list-narrow');
    noErrors(t, [dave, erin, frank]);
  });

  test('offline: two messages written offline are queued (not sent), then arrive once and in order', { timeout: 60_000 }, async (t) => {
    const gina = await newUser('gina');
    const hugo = await newUser('hugo');
    t.after(() => closeAll([gina, hugo]));
    await signUp(gina);
    await signUp(hugo);
    await startChat(gina, 'hugo');
    await send(gina, 'before the tunnel');
    await openConversation(hugo, 'gina');
    await waitFor('the first message at hugo', async () => (await texts(hugo)).length === 1);
    const conversationId = activeConversationId(gina);
    const presence = hugo.page.getByTestId('subtitle');
    await waitFor('gina online for hugo', async () => (await presence.textContent()) === 'online');

    await gina.context.setOffline(true);
    // The app noticed (the browser's offline event): the banner is up and the socket is gone.
    await gina.page.getByRole('status').filter({ hasText: 'You are offline' }).first().waitFor();
    await send(gina, 'in the tunnel 1');
    await send(gina, 'in the tunnel 2');
    assert.equal(await statusOf(gina, 'in the tunnel 1'), 'pending');
    assert.equal(await statusOf(gina, 'in the tunnel 2'), 'pending');
    await gina.page.getByRole('status').filter({ hasText: '2 messages waiting to send' }).first().waitFor();
    // Queued, not sent: the server has neither, hugo has neither, and they are kept for a reload.
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await serverHistory('hugo', conversationId), ['before the tunnel']);
    assert.deepEqual(await texts(hugo), ['before the tunnel']);
    // (Inside page.evaluate: the page's globals; the tests are type-checked without the DOM library.)
    const stored = await gina.page.evaluate(() => Object.entries((globalThis as unknown as { localStorage: Record<string, string> }).localStorage).filter(([k]) => k.startsWith('confab.outbox.')).map(([, v]) => v).join(''));
    assert.ok(stored.includes('in the tunnel 1') && stored.includes('in the tunnel 2'), 'the outbox is persisted');
    assert.equal(await statusOf(gina, 'in the tunnel 1'), 'pending');
    await screenshot(gina.page, 'offline-wide');
    // Her device dropped its socket, so the server counts her offline too.
    await waitFor('gina offline for hugo', async () => (await presence.textContent())!.startsWith('last seen'));

    await gina.context.setOffline(false);
    const expected = ['before the tunnel', 'in the tunnel 1', 'in the tunnel 2'];
    await waitFor('both queued messages at hugo', async () => (await texts(hugo)).length === 3);
    await gina.page.getByRole('status').waitFor({ state: 'detached' });
    await waitFor('gina\'s messages acknowledged', async () => (await statusOf(gina, 'in the tunnel 2')) !== 'pending');
    // Give any duplicate time to show up before counting.
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(await texts(hugo), expected, 'hugo got each once, in order');
    assert.deepEqual(await texts(gina), expected);
    assert.deepEqual(await serverHistory('hugo', conversationId), expected, 'the server committed each once, in order');
    const storedAfter = await gina.page.evaluate(() => Object.keys((globalThis as unknown as { localStorage: Record<string, string> }).localStorage).filter((k) => k.startsWith('confab.outbox.')).length);
    assert.equal(storedAfter, 0, 'the outbox is empty once acknowledged');
    await waitFor('gina online again for hugo', async () => (await presence.textContent()) === 'online');
    noErrors(t, [gina, hugo]);
  });

  test('user text is never HTML: <img onerror> and <script> show as text, no dialog fires, only http(s) links', { timeout: 60_000 }, async (t) => {
    const ivan = await newUser('ivan');
    const judy = await newUser('judy', { dark: true });
    t.after(() => closeAll([ivan, judy]));
    await signUp(ivan);
    await signUp(judy);
    await startChat(ivan, 'judy');
    await openConversation(judy, 'ivan');
    const payloads = [
      '<img src=x onerror=alert(1)>',
      '<script>alert(2)</script>',
      'javascript:alert(3) and <a href="javascript:alert(4)">click</a> but https://example.org/ok?a=1&b=<b>2</b> works',
    ];
    for (const p of payloads) await send(ivan, p);
    await waitFor('the payloads at judy', async () => (await texts(judy)).length === 3);
    await new Promise((r) => setTimeout(r, 500));
    for (const u of [ivan, judy]) {
      assert.deepEqual(await texts(u), payloads, `${u.name} sees the text as typed`);
      assert.equal(await u.page.locator('.message-list img, .message-list script, .message-list b').count(), 0, 'no element made from user text');
      const hrefs = await u.page.locator('.message-list a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      assert.deepEqual(hrefs, ['https://example.org/ok?a=1&b='], 'only the http(s) URL is a link (cut at <)');
      assert.deepEqual(u.dialogs, [], `no dialog in ${u.name}'s window`);
    }
    await screenshot(judy.page, 'conversation-dark');
    noErrors(t, [ivan, judy]);
  });

  test('a message that arrives live while the history loads stays on screen (the page was read before it)', { timeout: 60_000 }, async (t) => {
    const wade = await newUser('wade');
    const xena = await newUser('xena');
    t.after(() => closeAll([wade, xena]));
    await signUp(wade);
    await signUp(xena);
    await startChat(wade, 'xena');
    await send(wade, 'before');
    await waitFor('the first message at xena', async () => (await xena.page.locator('a.conv', { hasText: 'wade' }).count()) === 1);
    // Xena's first page of history is read now, and handed to her window only after the next
    // message has reached her live.
    const { pageRead, release } = await holdHistory(xena);
    await xena.page.locator('a.conv', { hasText: 'wade' }).click();
    await pageRead;
    await send(wade, 'during');
    await waitFor('the live message in xena\'s list', async () => (await xena.page.locator('a.conv', { hasText: 'during' }).count()) === 1);
    release();
    await waitFor('both messages at xena', async () => (await texts(xena)).length === 2);
    assert.deepEqual(await texts(xena), ['before', 'during']);
    noErrors(t, [wade, xena]);
  });

  test('an edit and a delete that arrive live while the history loads are applied to the page (read before them)', { timeout: 60_000 }, async (t) => {
    const yuri = await newUser('yuri');
    const zoe = await newUser('zoe');
    t.after(() => closeAll([yuri, zoe]));
    await signUp(yuri);
    await signUp(zoe);
    await startChat(yuri, 'zoe');
    await send(yuri, 'first draft');
    await send(yuri, 'to be deleted');
    await waitFor('the messages at zoe', async () => (await zoe.page.locator('a.conv', { hasText: 'to be deleted' }).count()) === 1);
    // Zoe's first page of history is read now, with both messages as they were, and handed to
    // her window only after the edit and the delete have reached her live.
    const { pageRead, release } = await holdHistory(zoe);
    await zoe.page.locator('a.conv', { hasText: 'yuri' }).click();
    await pageRead;
    await bubble(yuri, 'first draft').hover();
    await bubble(yuri, 'first draft').getByRole('button', { name: 'Edit message' }).click();
    const box = yuri.page.getByLabel('Message', { exact: true });
    await waitFor('the composer to hold the message being edited', async () => (await box.inputValue()) === 'first draft');
    await box.fill('final text');
    await box.press('Enter');
    await bubble(yuri, 'to be deleted').hover();
    await bubble(yuri, 'to be deleted').getByRole('button', { name: 'Delete message' }).click();
    await waitFor('the edit and the delete in yuri\'s window', async () => (await texts(yuri)).join('|') === 'final text|This message was deleted');
    // Live entries arrive in order: once this one is in zoe's list, so are the edit and the delete.
    await send(yuri, 'done');
    await waitFor('the live message in zoe\'s list', async () => (await zoe.page.locator('a.conv', { hasText: 'done' }).count()) === 1);
    release();
    await waitFor('three messages at zoe', async () => (await texts(zoe)).length === 3);
    assert.deepEqual(await texts(zoe), ['final text', 'This message was deleted', 'done']);
    await bubble(zoe, 'final text').locator('.edited').waitFor();
    noErrors(t, [yuri, zoe]);
  });

  test('one browser, two windows, two users: each window keeps its own user across reloads; a new tab resumes the last one', { timeout: 60_000 }, async (t) => {
    const mona = await newUser('mona');
    t.after(() => closeAll([mona]));
    await signUp(mona);
    // A second window of the same browser (shared localStorage): mona's device is in use, so it
    // offers the sign-in screen instead of sharing her session.
    const second = await mona.context.newPage();
    await second.goto(`${node.url}/`);
    await second.getByRole('button', { name: 'Create an account' }).click();
    await second.getByLabel('Username').fill('nina');
    await second.getByLabel('Password').fill(PASSWORD);
    await second.getByRole('button', { name: 'Sign up' }).click();
    const nina: User = { name: 'nina', context: mona.context, page: second, dialogs: [], errors: [] };
    await startChat(nina, 'mona');
    await send(nina, 'hello from the other window');
    await openConversation(mona, 'nina');
    await waitFor('the message in mona\'s window', async () => (await texts(mona)).includes('hello from the other window'));

    await mona.page.reload();
    await second.reload();
    assert.equal(await mona.page.locator('.me strong').textContent(), 'mona');
    assert.equal(await second.locator('.me strong').textContent(), 'nina');
    await send(mona, 'still me after a reload');
    await waitFor('mona\'s reply in nina\'s window', async () => (await texts(nina)).includes('still me after a reload'));

    // nina's window closes; a new tab resumes the device signed in last (nina's), now free.
    await second.close();
    const third = await mona.context.newPage();
    await third.goto(`${node.url}/`);
    await third.locator('.side-head').waitFor();
    assert.equal(await third.locator('.me strong').textContent(), 'nina');
  });

  test('keyboard and labels: every control has a name; a chat is started and used without the mouse', { timeout: 60_000 }, async (t) => {
    assert.equal((await http(node.url, 'POST', '/v1/auth/register', { username: 'rosa', password: PASSWORD })).status, 201);
    const quinn = await newUser('quinn', { viewport: NARROW });
    t.after(() => closeAll([quinn]));
    await signUp(quinn);
    const page = quinn.page;
    const focused = () => page.evaluate(() => {
      const el = (globalThis as unknown as { document: { activeElement: { getAttribute(n: string): string | null; id: string } | null } }).document.activeElement;
      return el ? el.getAttribute('aria-label') ?? el.id : '';
    });
    for (let i = 0; i < 10 && (await focused()) !== 'New chat'; i++) await page.keyboard.press('Tab');
    assert.equal(await focused(), 'New chat', 'Tab reaches the New chat button');
    await page.keyboard.press('Enter');
    await waitFor('the dialog to focus its field', async () => (await focused()) === 'direct-user');
    await page.keyboard.type('rosa');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'rosa' }).waitFor();
    await waitFor('the composer to have the focus in a new conversation', async () => (await focused()) === 'composer');
    await page.keyboard.type('typed without a mouse');
    await page.keyboard.press('Enter');
    await waitFor('the message', async () => (await texts(quinn)).includes('typed without a mouse'));
    assert.equal(await page.title(), 'Confab');

    const unnamed = await page.locator('button, a[href], input, textarea').evaluateAll((els) => els
      .filter((el) => !(el.getAttribute('aria-label') || (el as unknown as { labels?: { length: number } }).labels?.length || el.textContent?.trim()))
      .map((el) => el.outerHTML));
    assert.deepEqual(unnamed, [], 'every control has an accessible name');
  });

  test('history scrolls upwards page by page to the beginning', { timeout: 60_000 }, async (t) => {
    // 120 messages from olga to pete over REST, then pete opens the conversation.
    const olga = await http(node.url, 'POST', '/v1/auth/register', { username: 'olga', password: PASSWORD });
    const pete = await newUser('pete');
    t.after(() => closeAll([pete]));
    await signUp(pete);
    const direct = await http(node.url, 'POST', '/v1/conversations/direct', { username: 'pete' }, olga.body.accessToken);
    const all = Array.from({ length: 120 }, (_, i) => `message number ${i + 1}`);
    for (const [i, text] of all.entries()) {
      const r = await http(node.url, 'POST', `/v1/conversations/${direct.body.id}/messages`, { clientId: `seed-${i}`, text }, olga.body.accessToken);
      assert.equal(r.status, 201);
    }
    await openConversation(pete, 'olga');
    await waitFor('the latest page', async () => (await texts(pete)).length >= 50);
    const first = await texts(pete);
    assert.ok(first.length < 120, 'not everything at once');
    assert.deepEqual(first, all.slice(-first.length), 'the latest page, oldest first');
    const list = pete.page.getByLabel('Messages');
    for (let i = 0; i < 10 && (await texts(pete)).length < 120; i++) {
      await list.evaluate((el) => { el.scrollTop = 0; });
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.deepEqual(await texts(pete), all, 'every message once, in order');
    await pete.page.getByText('This is the beginning of the conversation.').waitFor();

    // Reading far up, a new message does not yank the view down: a button offers to jump.
    const before = await list.evaluate((el) => el.scrollTop);
    const r = await http(node.url, 'POST', `/v1/conversations/${direct.body.id}/messages`, { clientId: 'seed-new', text: 'a new one' }, olga.body.accessToken);
    assert.equal(r.status, 201);
    const jump = pete.page.getByRole('button', { name: 'New messages' });
    await jump.waitFor();
    assert.equal(await list.evaluate((el) => el.scrollTop), before, 'the view stayed where it was');
    await jump.click();
    await jump.waitFor({ state: 'detached' });
    assert.ok(await bubble(pete, 'a new one').isVisible());
    await waitFor('the view at the bottom', () => list.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight < 60));
  });

  test('figures: bundle size and time to first render of the conversation list', { timeout: 60_000 }, async (t) => {
    const files = readdirSync(join(DIST, 'assets'));
    let raw = 0;
    let gz = 0;
    for (const f of files.filter((x) => /\.(js|css)$/.test(x))) {
      const b = readFileSync(join(DIST, 'assets', f));
      raw += b.length;
      gz += gzipSync(b, { level: 9 }).length;
      t.diagnostic(`bundle ${f}: ${(b.length / 1024).toFixed(1)} KiB raw, ${(gzipSync(b, { level: 9 }).length / 1024).toFixed(1)} KiB gzip`);
    }
    t.diagnostic(`bundle total (js + css): ${(raw / 1024).toFixed(1)} KiB raw, ${(gz / 1024).toFixed(1)} KiB gzip`);
    assert.ok(raw > 0);

    // A signed-in user with a few conversations reloads the page: the app marks the first render
    // of the list (performance.mark 'confab:list-rendered'); its startTime is ms since navigation.
    const peers = ['sam', 'tess', 'uma'];
    for (const username of peers) assert.equal((await http(node.url, 'POST', '/v1/auth/register', { username, password: PASSWORD })).status, 201);
    const kim = await newUser('kim');
    t.after(() => closeAll([kim]));
    await signUp(kim);
    for (const peer of peers) {
      await startChat(kim, peer);
      await send(kim, `hi ${peer}`);
    }
    const runs: number[] = [];
    for (let i = 0; i < 5; i++) {
      await kim.page.reload();
      await kim.page.waitForFunction(() => performance.getEntriesByName('confab:list-rendered').length > 0);
      runs.push(await kim.page.evaluate(() => performance.getEntriesByName('confab:list-rendered')[0]!.startTime));
      assert.equal(await kim.page.locator('a.conv').count(), 3, 'the list is there when the mark is set');
    }
    const sorted = [...runs].sort((a, b) => a - b);
    t.diagnostic(`first render of the conversation list, ms after navigation start (5 reloads, localhost): ${runs.map((r) => r.toFixed(0)).join(', ')}; median ${sorted[2]!.toFixed(0)}`);
  });
}
