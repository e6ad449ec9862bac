// Failed-login throttling per account and per client address: `rate_limited` (429, retryAfterMs)
// once the allowance is used up, the password then not even checked; unknown usernames are
// throttled exactly like existing ones; a success resets the account's allowance; parallel
// guesses are counted; X-Forwarded-For counts only from TRUST_PROXY.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoginThrottle } from '../src/core/login-throttle.js';
import { http, register, startNode, uname } from './helpers.js';

const login = (url: string, username: string, password: string, headers: Record<string, string> = {}) =>
  fetch(`${url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ username, password }) })
    .then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

/** The answer without its numbers (the wait differs by milliseconds between two runs). */
const shape = (r: { status: number; body: any }) => JSON.stringify({ ...r, body: r.body.error ? { ...r.body.error, retryAfterMs: typeof r.body.error.retryAfterMs, message: String(r.body.error.message).replace(/\d+/g, 'N') } : r.body });

test('per account: after the allowance, even the right password is refused with rate_limited; unknown accounts look the same', async () => {
  const node = await startNode({ config: { loginFailuresPerAccount: 3, loginFailuresPerIp: 1000, loginFailureWindowSec: 3600 } });
  try {
    const a = await register(node.url, uname('lt'));
    const ghost = uname('ghost');
    const seen: { known: string[]; unknown: string[] } = { known: [], unknown: [] };
    for (let i = 0; i < 3; i++) {
      const k = await login(node.url, a.user.username, 'wrong password');
      const u = await login(node.url, ghost, 'wrong password');
      assert.equal(k.status, 401);
      assert.equal(k.body.error.code, 'invalid_credentials');
      seen.known.push(shape(k));
      seen.unknown.push(shape(u));
    }
    const right = await login(node.url, a.user.username, 'correct horse');
    assert.equal(right.status, 429);
    assert.equal(right.body.error.code, 'rate_limited');
    assert.ok(Number.isInteger(right.body.error.retryAfterMs) && right.body.error.retryAfterMs > 0);
    assert.ok(right.body.error.retryAfterMs <= 3600_000 / 3 + 1000, `wait ${right.body.error.retryAfterMs}`);
    assert.deepEqual(Object.keys(right.body), ['error'], 'no session');
    seen.known.push(shape(right));
    seen.unknown.push(shape(await login(node.url, ghost, 'correct horse')));
    assert.deepEqual(seen.unknown, seen.known, 'an unknown account is answered exactly like an existing one');
    // Another account from the same address is not affected.
    const b = await register(node.url, uname('lt'));
    assert.equal((await login(node.url, b.user.username, 'correct horse')).status, 200);
    // The account's existing sessions keep working: only logins are throttled.
    assert.equal((await http(node.url, 'GET', '/v1/me', undefined, a.accessToken)).status, 200);
  } finally {
    await node.close();
  }
});

test('a success resets the account allowance', async () => {
  const node = await startNode({ config: { loginFailuresPerAccount: 3, loginFailuresPerIp: 1000 } });
  try {
    const a = await register(node.url, uname('lr'));
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2; i++) assert.equal((await login(node.url, a.user.username, 'typo')).status, 401);
      assert.equal((await login(node.url, a.user.username, 'correct horse')).status, 200, `round ${round}`);
    }
  } finally {
    await node.close();
  }
});

test('parallel guesses are counted: with an allowance of 3, 10 at once give 3 x 401 and 7 x 429', async () => {
  const node = await startNode({ config: { loginFailuresPerAccount: 3, loginFailuresPerIp: 1000 } });
  try {
    const a = await register(node.url, uname('lp'));
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => login(node.url, a.user.username, `guess ${i}`)));
    assert.deepEqual(results.map((r) => r.status).sort(), [401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
  } finally {
    await node.close();
  }
});

test('per address: failures over many usernames exhaust it; X-Forwarded-For is ignored unless TRUST_PROXY', async () => {
  const direct = await startNode({ config: { loginFailuresPerAccount: 1000, loginFailuresPerIp: 4 } });
  try {
    const a = await register(direct.url, uname('li'));
    for (let i = 0; i < 4; i++) assert.equal((await login(direct.url, uname('spray'), 'x', { 'x-forwarded-for': `10.0.0.${i}` })).status, 401);
    const r = await login(direct.url, a.user.username, 'correct horse', { 'x-forwarded-for': '10.9.9.9' });
    assert.equal(r.status, 429, 'a forged X-Forwarded-For does not escape the limit');
    assert.equal(r.body.error.code, 'rate_limited');
  } finally {
    await direct.close();
  }
  const proxied = await startNode({ config: { loginFailuresPerAccount: 1000, loginFailuresPerIp: 4, trustProxy: '127.0.0.1' } });
  try {
    const a = await register(proxied.url, uname('lx'));
    for (let i = 0; i < 4; i++) assert.equal((await login(proxied.url, uname('spray'), 'x', { 'x-forwarded-for': '10.0.0.1' })).status, 401);
    assert.equal((await login(proxied.url, a.user.username, 'correct horse', { 'x-forwarded-for': '10.0.0.1' })).status, 429, 'client 10.0.0.1 is limited');
    assert.equal((await login(proxied.url, a.user.username, 'correct horse', { 'x-forwarded-for': '10.0.0.2' })).status, 200, 'client 10.0.0.2 is not');
  } finally {
    await proxied.close();
  }
});

test('LoginThrottle: the allowance refills over the window; 0 disables a limit', () => {
  let t = 0;
  const th = new LoginThrottle({ perAccount: 2, perIp: 0, windowSec: 60 }, () => t);
  th.begin('ip', 'alice');
  th.begin('ip', 'Alice'); // usernames are matched case-insensitively
  assert.throws(() => th.begin('ip', 'alice'), (e: { code?: string; extra?: { retryAfterMs?: number } }) => e.code === 'rate_limited' && e.extra?.retryAfterMs === 30_000);
  t += 29_000;
  assert.throws(() => th.begin('ip', 'alice'), { code: 'rate_limited' });
  t += 1_000;
  th.begin('ip', 'alice'); // one failure refilled after a window / allowance
  assert.throws(() => th.begin('ip', 'alice'), { code: 'rate_limited' });
  // Not a failure (e.g. the store was down): given back.
  const other = new LoginThrottle({ perAccount: 1, perIp: 1, windowSec: 60 }, () => t);
  other.begin('ip2', 'bob').void();
  other.begin('ip2', 'bob');
  assert.throws(() => other.begin('ip2', 'carol'), { code: 'rate_limited' }, 'the address allowance is used up');
});
