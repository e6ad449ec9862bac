// Abuse suite, names and files: a request naming a foreign Host (a DNS-rebinding page) is refused
// on REST, on the WebSocket upgrade and on /metrics; /metrics can move to a port of its own and
// require a token; the data directory and every file in it belong to the node alone.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { http, register, startNode, tempDir, uname } from './helpers.js';

/** A request with exactly these headers (fetch would not let a test set Host). */
function raw(url: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers: { ...headers, ...(body ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 0, body: '' }); });
    req.on('error', reject);
    req.end(body);
  });
}

const upgrade = (host: string, origin?: string): Record<string, string> => ({
  host, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), ...(origin ? { origin } : {}),
});

describe('hostile: the Host check', () => {
  test('a foreign Host is refused with 421 on REST, on the WebSocket upgrade and on /metrics; the node\'s own names pass', async () => {
    const n = await startNode({ defaults: true, config: { allowedHosts: 'chat.example.com' } });
    try {
      const login = JSON.stringify({ username: 'whoever', password: 'whatever' });
      for (const host of ['evil.example', 'evil.example:8080', 'localhost.evil.example']) {
        const r = await raw(n.url, 'POST', '/v1/auth/login', { host, origin: `http://${host}` }, login);
        assert.equal(r.status, 421, `login via ${host}`);
        assert.equal(JSON.parse(r.body).error.code, 'host_not_allowed');
        assert.equal((await raw(n.url, 'GET', '/metrics', { host })).status, 421, `/metrics via ${host}`);
        assert.equal((await raw(n.url, 'GET', '/v1/ws', upgrade(host, `http://${host}`))).status, 421, `upgrade via ${host}`);
      }
      // Its own names: IP addresses, localhost, the listed host; and no Host at all (HTTP/1.0 health checks).
      for (const host of ['127.0.0.1', '[::1]:9', 'localhost:8080', 'app.localhost', 'chat.example.com', 'CHAT.example.com:443']) {
        assert.equal((await raw(n.url, 'GET', '/healthz', { host })).status, 200, `/healthz via ${host}`);
      }
      const user = await register(n.url, uname('hs'));
      assert.equal((await raw(n.url, 'GET', '/v1/me', { host: 'chat.example.com', authorization: `Bearer ${user.accessToken}` })).status, 200);
      assert.equal((await raw(n.url, 'GET', '/v1/ws', upgrade('chat.example.com'))).status, 101, 'an allowed host is upgraded');
    } finally {
      await n.close();
    }
  });

  test('METRICS_PORT serves /metrics on a listener of its own, with METRICS_TOKEN; the main port no longer serves it', async () => {
    const token = randomBytes(24).toString('base64url');
    const n = await startNode({ defaults: true, config: { metricsPort: 0, metricsToken: token } });
    try {
      const metricsUrl = n.node.metricsUrl;
      assert.notEqual(metricsUrl, '');
      assert.equal((await raw(n.url, 'GET', '/metrics', { host: '127.0.0.1' })).status, 404, 'not on the main port');
      assert.equal((await raw(metricsUrl, 'GET', '/metrics', { host: '127.0.0.1' })).status, 401, 'no token');
      assert.equal((await raw(metricsUrl, 'GET', '/metrics', { host: '127.0.0.1', authorization: 'Bearer wrong' })).status, 401, 'a wrong token');
      const ok = await raw(metricsUrl, 'GET', '/metrics', { host: '127.0.0.1', authorization: `Bearer ${token}` });
      assert.equal(ok.status, 200);
      assert.match(ok.body, /confab_connections /);
      assert.equal((await raw(metricsUrl, 'GET', '/metrics', { host: 'evil.example', authorization: `Bearer ${token}` })).status, 421);
      assert.equal((await raw(metricsUrl, 'GET', '/v1/me', { host: '127.0.0.1' })).status, 404, 'nothing else is served there');
    } finally {
      await n.close();
    }
  });

  test('METRICS_TOKEN on the main port', async () => {
    const token = randomBytes(24).toString('base64url');
    const n = await startNode({ defaults: true, config: { metricsToken: token } });
    try {
      assert.equal((await http(n.url, 'GET', '/metrics')).status, 401);
      const r = await fetch(`${n.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200);
    } finally {
      await n.close();
    }
  });
});

describe('hostile: data files', () => {
  const modes = (dir: string): Record<string, number> => Object.fromEntries([['.', statSync(dir).mode & 0o777], ...readdirSync(dir).map((f) => [f, statSync(join(dir, f)).mode & 0o777])]);

  test('with umask 022 the data directory is 0700 and every file in it 0600, after start and after writes', async () => {
    const old = process.umask(0o022);
    const dataDir = join(tempDir(), 'data');
    try {
      const n = await startNode({ defaults: true, dataDir });
      try {
        const a = await register(n.url, uname('fm'));
        const g = await http(n.url, 'POST', '/v1/conversations', { name: 'files', members: [] }, a.accessToken);
        for (let i = 0; i < 20; i++) await http(n.url, 'POST', `/v1/conversations/${g.body.id}/messages`, { clientId: `f${i}`, text: 'private' }, a.accessToken);
        const m = modes(dataDir);
        for (const f of ['confab.db', 'confab.db-wal', 'confab.db-shm', 'jwt-secret']) assert.ok(f in m, `${f} exists`);
        assert.equal(m['.'], 0o700, 'the directory');
        for (const [f, mode] of Object.entries(m)) if (f !== '.') assert.equal(mode, 0o600, `${f} is ${mode.toString(8)}`);
      } finally {
        await n.close();
      }
    } finally {
      process.umask(old);
    }
  });

  test('a world-readable data directory left by an earlier version is tightened at start', async () => {
    const dataDir = join(tempDir(), 'old');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, 'notes.txt'), 'left here', { mode: 0o644 });
    chmodSync(join(dataDir, 'notes.txt'), 0o644);
    const n = await startNode({ defaults: true, dataDir });
    try {
      const m = modes(dataDir);
      assert.equal(m['.'], 0o700);
      assert.equal(m['notes.txt'], 0o600);
      assert.equal(m['confab.db'], 0o600);
    } finally {
      await n.close();
    }
  });
});
