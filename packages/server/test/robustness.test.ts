// Failure paths found in review: a reset upgrade, revoked devices and expired tokens on open
// sockets, the per-user send limit over REST, a bounded shutdown, malformed URLs, bad limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { ConfigError, loadConfig } from '../src/index.js';
import { http, register, startNode, uname } from './helpers.js';
import { rawSocket } from './ws-raw.js';

test('an upgrade to an unknown path that the peer resets does not take the node down', async () => {
  const node = await startNode();
  try {
    const { port } = new URL(node.url);
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const sock = connect(Number(port), '127.0.0.1', () => {
          sock.write('GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
          sock.resetAndDestroy();
          resolve();
        });
        sock.on('error', () => resolve());
      });
    }
    const res = await http(node.url, 'GET', '/healthz');
    assert.equal(res.status, 200);
  } finally {
    await node.close();
  }
});

test('logging out closes the open sockets of that device only; so does refresh-token reuse', async () => {
  const node = await startNode();
  try {
    const a = await register(node.url, uname('lo'));
    const other = (await http(node.url, 'POST', '/v1/auth/login', { username: a.user.username, password: 'correct horse' })).body;
    const s1 = await rawSocket(node.url);
    await s1.hello(a.accessToken);
    const s2 = await rawSocket(node.url);
    await s2.hello(other.accessToken);
    assert.equal((await http(node.url, 'POST', '/v1/auth/logout', {}, a.accessToken)).status, 204);
    assert.equal((await s1.closed).code, 4001);
    s2.send({ type: 'ping', id: 'still' });
    await s2.next((f) => f.type === 'pong');
    // The second device's refresh token is stolen and used twice: the device is revoked and its socket closed.
    const r1 = await http(node.url, 'POST', '/v1/auth/refresh', { refreshToken: other.refreshToken });
    assert.equal(r1.status, 200);
    const r2 = await http(node.url, 'POST', '/v1/auth/refresh', { refreshToken: other.refreshToken });
    assert.equal(r2.body.error.code, 'invalid_refresh_token');
    assert.equal((await s2.closed).code, 4001);
  } finally {
    await node.close();
  }
});

test('a socket is closed with 4002 when its access token expires', async () => {
  const dataDir = (await import('./helpers.js')).tempDir();
  const base = loadConfig(['--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'silent', '--access-token-ttl', '1'], {});
  const { build } = await import('../src/index.js');
  const n = await build(base);
  const url = await n.listen();
  try {
    const a = await register(url, uname('exp'));
    const s = await rawSocket(url);
    const t0 = Date.now();
    await s.hello(a.accessToken);
    const closed = await s.closed;
    assert.equal(closed.code, 4002);
    assert.ok(Date.now() - t0 < 2500, 'closed at expiry');
  } finally {
    await n.close();
  }
});

test('the per-user send limit covers REST and every device together', async () => {
  const node = await startNode({ limits: { userSendsPerSecond: 1, userSendBurst: 5 } });
  try {
    const [a, b] = await Promise.all([register(node.url, uname('ur')), register(node.url, uname('ur'))]);
    const conv = (await http(node.url, 'POST', '/v1/conversations/direct', { username: b.user.username }, a.accessToken)).body;
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await http(node.url, 'POST', `/v1/conversations/${conv.id}/messages`, { clientId: `u${i}`, text: 'x' }, a.accessToken));
    assert.deepEqual(results.map((r) => r.status), [201, 201, 201, 201, 201, 429]);
    assert.equal(results[5]!.body.error.code, 'rate_limited');
    assert.ok(results[5]!.body.error.retryAfterMs > 0);
    const s = await rawSocket(node.url);
    await s.hello(a.accessToken);
    s.send({ type: 'send', id: 'w', conversationId: conv.id, clientId: 'ws1', text: 'y' });
    const err = await s.next((f) => 'id' in f && f.id === 'w');
    assert.equal(err.type === 'error' && err.code, 'rate_limited', 'the same user over a socket is limited too');
    assert.equal((await http(node.url, 'GET', `/v1/conversations/${conv.id}/messages`, undefined, a.accessToken)).body.messages.length, 5);
    s.ws.close();
  } finally {
    await node.close();
  }
});

test('shutdown is bounded even when a client never completes the closing handshake', async () => {
  const node = await startNode();
  const a = await register(node.url, uname('sd'));
  const ws = new WebSocket(`${node.url.replace('http', 'ws')}/v1/ws`);
  await new Promise((r) => ws.once('open', r));
  ws.send(JSON.stringify({ type: 'hello', v: 1, token: a.accessToken }));
  await new Promise((r) => ws.once('message', r));
  // Stop reading: the close frame is never answered.
  (ws as unknown as { _socket: { pause(): void } })._socket.pause();
  const t0 = Date.now();
  await node.close();
  assert.ok(Date.now() - t0 < 5000, `closed in ${Date.now() - t0} ms`);
  ws.terminate();
});

test('malformed URLs get the protocol error shape; limits below 1 are refused', async () => {
  const node = await startNode();
  try {
    const a = await register(node.url, uname('mu'));
    const r = await http(node.url, 'GET', '/v1/users/%ZZ', undefined, a.accessToken);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'bad_request');
  } finally {
    await node.close();
  }
  for (const flag of ['--max-page-size', '--sends-per-second', '--user-send-burst', '--heartbeat-interval-ms']) {
    assert.throws(() => loadConfig([flag, '0'], {}), ConfigError, flag);
  }
});

test('text with NUL is refused like lone surrogates: no store could keep it as acked', async () => {
  const node = await startNode();
  try {
    const [a, b] = await Promise.all([register(node.url, uname('nu')), register(node.url, uname('nu'))]);
    const conv = (await http(node.url, 'POST', '/v1/conversations/direct', { username: b.user.username }, a.accessToken)).body;
    const r = await http(node.url, 'POST', `/v1/conversations/${conv.id}/messages`, '{"clientId":"n1","text":"a\\u0000b"}', a.accessToken);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'bad_request');
    assert.equal(r.body.error.details[0].path, 'text');
    assert.equal((await http(node.url, 'GET', `/v1/conversations/${conv.id}/messages`, undefined, a.accessToken)).body.messages.length, 0);
  } finally {
    await node.close();
  }
});
