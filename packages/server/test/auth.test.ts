// Accounts and device sessions over REST: register, login, refresh rotation with reuse
// detection, password policy, and tokens that never show up in logs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { build, loadConfig } from '../src/index.js';
import { http, tempDir, uname } from './helpers.js';

let url: string;
let close: () => Promise<void>;
const logLines: string[] = [];

before(async () => {
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { logLines.push(chunk.toString()); cb(); } });
  const node = await build(loadConfig(['--port', '0', '--host', '127.0.0.1', '--data-dir', tempDir(), '--log-level', 'trace'], {}), { log: pino({ level: 'trace' }, sink) });
  url = await node.listen();
  close = () => node.close();
});
after(async () => { await close(); });

test('register, log in on a second device, both work', async () => {
  const username = uname('acc');
  const r = await http(url, 'POST', '/v1/auth/register', { username, password: 'long enough' });
  assert.equal(r.status, 201);
  assert.equal(r.body.user.username, username);
  assert.ok(r.body.accessToken && r.body.refreshToken && r.body.deviceId);
  assert.equal(r.body.expiresIn, 900);
  const l = await http(url, 'POST', '/v1/auth/login', { username, password: 'long enough' });
  assert.equal(l.status, 200);
  assert.notEqual(l.body.deviceId, r.body.deviceId, 'one device id per login');
  for (const s of [r.body, l.body]) assert.equal((await http(url, 'GET', '/v1/me', undefined, s.accessToken)).body.username, username);
  const dup = await http(url, 'POST', '/v1/auth/register', { username, password: 'something else' });
  assert.equal(dup.status, 409);
  assert.equal(dup.body.error.code, 'username_taken');
});

test('wrong password and unknown user look the same', async () => {
  const username = uname('acc');
  await http(url, 'POST', '/v1/auth/register', { username, password: 'long enough' });
  const wrong = await http(url, 'POST', '/v1/auth/login', { username, password: 'not the one' });
  const unknown = await http(url, 'POST', '/v1/auth/login', { username: uname('nobody'), password: 'long enough' });
  assert.equal(wrong.status, 401);
  assert.deepEqual(wrong.body, unknown.body);
  assert.equal(wrong.body.error.code, 'invalid_credentials');
});

test('password policy and username rules', async () => {
  const weak = await http(url, 'POST', '/v1/auth/register', { username: uname('acc'), password: 'short' });
  assert.equal(weak.status, 400);
  assert.equal(weak.body.error.code, 'weak_password');
  for (const username of ['ab', 'Upper', 'has space', '.dot', 'x'.repeat(33)]) {
    const r = await http(url, 'POST', '/v1/auth/register', { username, password: 'long enough' });
    assert.equal(r.status, 400, username);
    assert.equal(r.body.error.code, 'bad_request', username);
    assert.equal(r.body.error.details[0].path, 'username');
  }
});

test('password policy: 8 characters at least, 256 UTF-8 bytes at most, not the username', async () => {
  const username = uname('longname'); // 8+ characters: refused only for being the username
  const refused: [string, RegExp][] = [
    ['1234567', /at least 8 characters/],
    ['😀😀😀😀😀😀😀', /at least 8 characters/], // 7 characters, 28 bytes
    ['x'.repeat(257), /at most 256 bytes/],
    ['é'.repeat(129), /at most 256 bytes/], // 129 characters, 258 bytes
    [username, /not be the username/],
    [username.toUpperCase(), /not be the username/],
  ];
  for (const [password, why] of refused) {
    const r = await http(url, 'POST', '/v1/auth/register', { username, password });
    assert.equal(r.status, 400, password.slice(0, 20));
    assert.equal(r.body.error.code, 'weak_password', password.slice(0, 20));
    assert.match(r.body.error.message, why);
  }
  for (const password of ['12345678', '😀😀😀😀😀😀😀😀', 'x'.repeat(256), 'é'.repeat(128), `${username}!`]) {
    const u = uname('pw');
    const r = await http(url, 'POST', '/v1/auth/register', { username: u, password });
    assert.equal(r.status, 201, `${password.slice(0, 20)}: ${JSON.stringify(r.body)}`);
    assert.equal((await http(url, 'POST', '/v1/auth/login', { username: u, password })).status, 200);
  }
  // A login with a password longer than any account can have is refused like a wrong one.
  const long = await http(url, 'POST', '/v1/auth/login', { username, password: 'x'.repeat(2000) });
  const wrong = await http(url, 'POST', '/v1/auth/login', { username, password: 'x'.repeat(20) });
  assert.equal(long.status, 401);
  assert.deepEqual(long.body, wrong.body);
});

test('refresh rotates; an old refresh token used again logs the device out', async () => {
  const username = uname('rot');
  const s0 = (await http(url, 'POST', '/v1/auth/register', { username, password: 'long enough' })).body;
  const s1 = await http(url, 'POST', '/v1/auth/refresh', { refreshToken: s0.refreshToken });
  assert.equal(s1.status, 200);
  assert.equal(s1.body.deviceId, s0.deviceId, 'same device');
  assert.notEqual(s1.body.refreshToken, s0.refreshToken);
  assert.equal((await http(url, 'GET', '/v1/me', undefined, s1.body.accessToken)).status, 200);
  // Someone replays the first refresh token: refused, and the device is revoked.
  const replay = await http(url, 'POST', '/v1/auth/refresh', { refreshToken: s0.refreshToken });
  assert.equal(replay.status, 401);
  assert.equal(replay.body.error.code, 'invalid_refresh_token');
  assert.equal((await http(url, 'POST', '/v1/auth/refresh', { refreshToken: s1.body.refreshToken })).status, 401);
  assert.equal((await http(url, 'GET', '/v1/me', undefined, s1.body.accessToken)).body.error.code, 'invalid_token');
});

test('health and readiness', async () => {
  assert.deepEqual((await http(url, 'GET', '/healthz')).body, { status: 'ok' });
  assert.deepEqual((await http(url, 'GET', '/readyz')).body, { status: 'ready' });
});

test('no token, password, refresh token or message text ever reaches the log', async () => {
  const username = uname('log');
  const s = (await http(url, 'POST', '/v1/auth/register', { username, password: 'my secret passphrase' })).body;
  const r = (await http(url, 'POST', '/v1/auth/refresh', { refreshToken: s.refreshToken })).body;
  await http(url, 'GET', '/v1/me', undefined, s.accessToken);
  await http(url, 'GET', '/v1/nope', undefined, s.accessToken);
  const group = (await http(url, 'POST', '/v1/conversations', { name: 'log check', members: [] }, r.accessToken)).body;
  const sent = await http(url, 'POST', `/v1/conversations/${group.id}/messages`, { clientId: 'log-1', text: 'a very private message' }, r.accessToken);
  assert.equal(sent.status, 201);
  const all = logLines.join('');
  assert.ok(logLines.length > 0, 'the node logged at trace level');
  for (const secret of [s.accessToken, s.refreshToken, r.accessToken, r.refreshToken, 'my secret passphrase', 'a very private message']) assert.ok(!all.includes(secret));
});
