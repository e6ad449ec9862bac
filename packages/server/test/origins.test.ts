// The Origin allow-list (ALLOWED_ORIGINS) on the WebSocket upgrade and the REST API (CORS), and
// the security headers of every HTTP answer.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { WebSocket } from 'ws';
import { loadConfig } from '../src/index.js';
import { originPolicy } from '../src/http/origins.js';
import { register, startNode, uname, type TestNode } from './helpers.js';

/** A WebSocket handshake with these headers: the upgrade's status, or the refusal's status and body. */
function upgrade(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({
      host: u.hostname, port: u.port, path: '/v1/ws', setHost: !('host' in headers),
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', ...headers },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 0, body: '' }); });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function call(url: string, method: string, path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url + path, { method, headers });
}

describe('default: no Origin and same-origin only', () => {
  let node: TestNode;
  before(async () => { node = await startNode(); });
  after(async () => { await node.close(); });

  test('WebSocket: no Origin and the same origin upgrade; another origin gets 403 origin_not_allowed', async () => {
    const host = new URL(node.url).host;
    assert.equal((await upgrade(node.url, {})).status, 101, 'no Origin (non-browser client)');
    assert.equal((await upgrade(node.url, { origin: `http://${host}` })).status, 101, 'same origin');
    assert.equal((await upgrade(node.url, { origin: `HTTP://${host.toUpperCase()}` })).status, 101, 'same origin, other case');
    for (const origin of ['https://evil.example', `http://${host}.evil.example`, 'null', 'not an origin', `http://127.0.0.2:${new URL(node.url).port}`]) {
      const r = await upgrade(node.url, { origin });
      assert.equal(r.status, 403, origin);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'origin_not_allowed', origin);
    }
    // The SDK-like client (no Origin) still talks: hello, welcome.
    const s = await register(node.url, uname('or'));
    const ws = new WebSocket(`${node.url.replace('http', 'ws')}/v1/ws`);
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'hello', v: 1, token: s.accessToken }));
    const first = await new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
    assert.equal((JSON.parse(first) as { type: string }).type, 'welcome');
    ws.close();
  });

  test('REST: another origin is refused (also its preflight); the same origin and no Origin are served', async () => {
    const host = new URL(node.url).host;
    const evil = await call(node.url, 'GET', '/healthz', { origin: 'https://evil.example' });
    assert.equal(evil.status, 403);
    assert.equal(((await evil.json()) as { error: { code: string } }).error.code, 'origin_not_allowed');
    assert.equal(evil.headers.get('access-control-allow-origin'), null);
    const pre = await call(node.url, 'OPTIONS', '/v1/me', { origin: 'https://evil.example', 'access-control-request-method': 'GET' });
    assert.equal(pre.status, 403);
    assert.equal(pre.headers.get('access-control-allow-origin'), null);
    assert.equal((await call(node.url, 'GET', '/healthz')).status, 200);
    const same = await call(node.url, 'GET', '/healthz', { origin: `http://${host}` });
    assert.equal(same.status, 200);
  });

  test('security headers on answers, errors and unknown routes', async () => {
    for (const [method, path] of [['GET', '/healthz'], ['GET', '/v1/me'], ['GET', '/v1/nope'], ['POST', '/v1/auth/login']] as const) {
      const r = await fetch(node.url + path, { method, headers: method === 'POST' ? { 'content-type': 'application/json' } : {}, body: method === 'POST' ? '{}' : undefined });
      const what = `${method} ${path}`;
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', what);
      assert.equal(r.headers.get('x-frame-options'), 'DENY', what);
      assert.equal(r.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'", what);
      assert.equal(r.headers.get('referrer-policy'), 'no-referrer', what);
      assert.equal(r.headers.get('cache-control'), 'no-store', what);
      assert.equal(r.headers.get('strict-transport-security'), 'max-age=31536000', what);
    }
  });
});

describe('ALLOWED_ORIGINS lists origins', () => {
  let node: TestNode;
  const app = 'https://app.example.com';
  before(async () => { node = await startNode({ config: { allowedOrigins: `${app}, http://localhost:3000` } }); });
  after(async () => { await node.close(); });

  test('listed origins upgrade and get CORS; preflights are answered; others are refused', async () => {
    assert.equal((await upgrade(node.url, { origin: app })).status, 101);
    assert.equal((await upgrade(node.url, { origin: 'http://localhost:3000' })).status, 101);
    assert.equal((await upgrade(node.url, { origin: 'http://localhost:3001' })).status, 403);
    assert.equal((await upgrade(node.url, { origin: 'http://app.example.com' })).status, 403, 'scheme matters');
    const pre = await call(node.url, 'OPTIONS', '/v1/conversations', { origin: app, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), app);
    assert.equal(pre.headers.get('access-control-allow-methods'), 'GET, POST, PATCH, PUT, DELETE');
    assert.equal(pre.headers.get('access-control-allow-headers'), 'Authorization, Content-Type');
    assert.match(pre.headers.get('vary') ?? '', /Origin/);
    const s = await register(node.url, uname('co'));
    const me = await call(node.url, 'GET', '/v1/me', { origin: app, authorization: `Bearer ${s.accessToken}` });
    assert.equal(me.status, 200);
    assert.equal(me.headers.get('access-control-allow-origin'), app);
    const other = await call(node.url, 'GET', '/v1/me', { origin: 'https://other.example.com', authorization: `Bearer ${s.accessToken}` });
    assert.equal(other.status, 403);
    assert.ok(!(await other.text()).includes(s.user.username), 'nothing of the caller');
  });
});

describe('ALLOWED_ORIGINS=*', () => {
  let node: TestNode;
  before(async () => { node = await startNode({ config: { allowedOrigins: '*' } }); });
  after(async () => { await node.close(); });

  test('every origin upgrades and gets CORS', async () => {
    assert.equal((await upgrade(node.url, { origin: 'https://anyone.example' })).status, 101);
    const r = await call(node.url, 'GET', '/healthz', { origin: 'https://anyone.example' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://anyone.example');
  });
});

test('ALLOWED_ORIGINS entries must be origins', () => {
  assert.throws(() => loadConfig([], { ALLOWED_ORIGINS: 'https://ok.example, https://bad.example/path' }), /ALLOWED_ORIGINS/);
  assert.throws(() => loadConfig([], { ALLOWED_ORIGINS: 'app.example.com' }), /ALLOWED_ORIGINS/);
  assert.equal(loadConfig([], { ALLOWED_ORIGINS: 'https://ok.example:8443,*' }).allowedOrigins, 'https://ok.example:8443,*');
  const p = originPolicy('https://ok.example:8443');
  assert.equal(p.allows('https://OK.example:8443', 'node:8080'), true);
  assert.equal(p.allows('https://ok.example', 'node:8080'), false);
  assert.equal(p.allows(undefined, undefined), true);
});
