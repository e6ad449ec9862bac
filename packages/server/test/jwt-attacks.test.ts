// Access-token attacks: every forged, tampered, misdirected, expired or not-yet-valid token is
// refused over REST (401 with the documented code, nothing but the error in the body, nothing
// committed) and over the WebSocket `hello` (the error frame, then close 4001 or 4002, never a
// `welcome`). A valid token and tokens within the documented clock skew are accepted, so the
// checks below cannot pass by refusing everything.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair, exportSPKI, SignJWT, type JWTPayload } from 'jose';
import type { Session } from '@confab/protocol';
import { TokenIssuer } from '../src/core/tokens.js';
import { useNode } from './clients.js';
import { http, register, uname } from './helpers.js';
import { rawSocket } from './ws-raw.js';

const SECRET = 'jwt-attacks-test-secret-0123456789-abcdefghijklmnop';
const KEY = new TextEncoder().encode(SECRET);
const SKEW = 30;
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const nowSec = () => Math.floor(Date.now() / 1000);

/** A token with these claims, signed HS256 with `key` (the node's secret unless given). */
function sign(claims: JWTPayload, header: Record<string, unknown> = { alg: 'HS256', typ: 'JWT' }, key: Uint8Array = KEY): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);
}

describe('JWT attacks', () => {
  const node = useNode({ config: { jwtSecret: SECRET, jwtClockSkewSec: SKEW } });
  let a: Session;
  let b: Session;
  let conversationId: string;
  const groupName = 'jwt-attack-private-group';
  const secretText = 'jwt-attack-secret-text';

  before(async () => {
    [a, b] = await Promise.all([register(node.url, uname('ja')), register(node.url, uname('jb'))]);
    const g = await http(node.url, 'POST', '/v1/conversations', { name: groupName, members: [b.user.username] }, a.accessToken);
    assert.equal(g.status, 201);
    conversationId = g.body.id;
    assert.equal((await http(node.url, 'POST', `/v1/conversations/${conversationId}/messages`, { clientId: 'c1', text: secretText }, a.accessToken)).status, 201);
  });

  /** Claims of a good token for `a`, to start each attack from. */
  const good = (extra: JWTPayload = {}): JWTPayload => ({ sub: a.user.id, did: a.deviceId, iss: 'confab', aud: 'confab', iat: nowSec(), exp: nowSec() + 600, ...extra });

  async function messageCount(): Promise<number> {
    const r = await http(node.url, 'GET', `/v1/conversations/${conversationId}/messages`, undefined, b.accessToken);
    assert.equal(r.status, 200);
    return r.body.messages.length as number;
  }

  /** The token is refused on every route tried and on the WebSocket, with `code`. */
  async function refused(name: string, token: string, code: 'invalid_token' | 'token_expired'): Promise<void> {
    const before = await messageCount();
    const attempts: [string, string, unknown?][] = [
      ['GET', '/v1/me'],
      ['GET', '/v1/conversations'],
      ['GET', `/v1/conversations/${conversationId}`],
      ['GET', `/v1/conversations/${conversationId}/members`],
      ['GET', `/v1/conversations/${conversationId}/messages`],
      ['POST', `/v1/conversations/${conversationId}/messages`, { clientId: `attack-${name}`, text: 'forged write' }],
      ['POST', '/v1/auth/logout', {}],
    ];
    for (const [method, path, body] of attempts) {
      const r = await http(node.url, method, path, body, token);
      assert.equal(r.status, 401, `${name}: ${method} ${path} status`);
      assert.deepEqual(Object.keys(r.body as object), ['error'], `${name}: ${method} ${path} answers only the error`);
      assert.equal(r.body.error.code, code, `${name}: ${method} ${path} code`);
      const text = JSON.stringify(r.body);
      for (const secret of [a.user.username, b.user.username, secretText, groupName, conversationId]) assert.ok(!text.includes(secret), `${name}: ${method} ${path} leaks ${secret}`);
    }
    assert.equal(await messageCount(), before, `${name}: nothing was committed`);
    // The device is not logged out by the forged logout: its real token still works.
    assert.equal((await http(node.url, 'GET', '/v1/me', undefined, a.accessToken)).status, 200, `${name}: the real token still works`);

    const ws = await rawSocket(node.url);
    ws.send({ type: 'hello', v: 1, token });
    const err = await ws.next((f) => f.type === 'error');
    assert.equal(err.type === 'error' && err.code, code, `${name}: ws error code`);
    const closed = await ws.closed;
    assert.equal(closed.code, code === 'token_expired' ? 4002 : 4001, `${name}: ws close code`);
    assert.ok(!ws.frames.some((f) => f.type === 'welcome' || f.type === 'sync.page' || f.type === 'message'), `${name}: no welcome or data over ws`);
    for (const secret of [a.user.username, secretText, groupName]) assert.ok(!JSON.stringify(ws.frames).includes(secret), `${name}: ws leaks ${secret}`);
  }

  async function accepted(name: string, token: string): Promise<void> {
    const r = await http(node.url, 'GET', '/v1/me', undefined, token);
    assert.equal(r.status, 200, `${name}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.id, a.user.id);
    const ws = await rawSocket(node.url);
    const welcome = await ws.hello(token);
    assert.equal(welcome.type === 'welcome' && welcome.userId, a.user.id, name);
    ws.ws.close();
    await ws.closed;
  }

  test('controls: the issued token, one built here with the right secret, and iat/nbf within the clock skew are accepted', async () => {
    await accepted('issued', a.accessToken);
    await accepted('rebuilt', await sign(good()));
    await accepted('iat 10 s ahead (skew 30 s)', await sign(good({ iat: nowSec() + 10 })));
    await accepted('nbf 10 s ahead (skew 30 s)', await sign(good({ nbf: nowSec() + 10 })));
  });

  test('alg=none, with and without a signature part', async () => {
    const p = b64(good());
    await refused('none, empty signature', `${b64({ alg: 'none', typ: 'JWT' })}.${p}.`, 'invalid_token');
    await refused('none, two parts', `${b64({ alg: 'none', typ: 'JWT' })}.${p}`, 'invalid_token');
    await refused('None (case)', `${b64({ alg: 'None' })}.${p}.`, 'invalid_token');
    const real = a.accessToken.split('.')[2]!;
    await refused('none, real signature kept', `${b64({ alg: 'none' })}.${a.accessToken.split('.')[1]}.${real}`, 'invalid_token');
  });

  test('HS/RS confusion: RS256 with a key pair, and HS256 keyed with the public key', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const rs = await new SignJWT(good()).setProtectedHeader({ alg: 'RS256', typ: 'JWT' }).sign(privateKey);
    await refused('RS256', rs, 'invalid_token');
    const pem = await exportSPKI(publicKey);
    await refused('HS256 keyed with the public key PEM', await sign(good(), undefined, new TextEncoder().encode(pem)), 'invalid_token');
    // Other HMACs with the right secret are refused too: the allow-list is HS256 alone.
    await refused('HS512 with the right secret', await sign(good(), { alg: 'HS512', typ: 'JWT' }), 'invalid_token');
    await refused('HS384 with the right secret', await sign(good(), { alg: 'HS384', typ: 'JWT' }), 'invalid_token');
  });

  test('wrong issuer, wrong audience, another secret', async () => {
    await refused('wrong issuer', await sign(good({ iss: 'someone-else' })), 'invalid_token');
    await refused('no issuer', await sign(good({ iss: undefined })), 'invalid_token');
    await refused('wrong audience', await sign(good({ aud: 'another-service' })), 'invalid_token');
    await refused('audience list without confab', await sign(good({ aud: ['x', 'y'] })), 'invalid_token');
    await refused('another secret', await sign(good(), undefined, new TextEncoder().encode('another-secret-of-enough-length-0123456789')), 'invalid_token');
  });

  test('expired (strictly: no skew on exp), and not yet valid (iat or nbf in the future)', async () => {
    await refused('expired an hour ago', await sign(good({ iat: nowSec() - 7200, exp: nowSec() - 3600 })), 'token_expired');
    await refused('expired a second ago', await sign(good({ iat: nowSec() - 900, exp: nowSec() - 1 })), 'token_expired');
    await refused('no exp', await sign(good({ exp: undefined })), 'invalid_token');
    await refused('nbf an hour ahead', await sign(good({ nbf: nowSec() + 3600 })), 'invalid_token');
    await refused('iat an hour ahead', await sign(good({ iat: nowSec() + 3600, exp: nowSec() + 4000 })), 'invalid_token');
    await refused('no iat', await sign(good({ iat: undefined })), 'invalid_token');
    await refused('exp not a number', await sign(good({ exp: 'never' as unknown as number })), 'invalid_token');
  });

  test('tampered header or payload (the original signature kept)', async () => {
    const [h, p, s] = a.accessToken.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as Record<string, unknown>;
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    await refused('header: kid added', `${b64({ ...header, kid: 'x' })}.${p}.${s}`, 'invalid_token');
    await refused('header: alg HS512', `${b64({ ...header, alg: 'HS512' })}.${p}.${s}`, 'invalid_token');
    await refused('header: crit extension', `${b64({ ...header, crit: ['b64'], b64: false })}.${p}.${s}`, 'invalid_token');
    await refused('payload: another user', `${h}.${b64({ ...payload, sub: b.user.id, did: b.deviceId })}.${s}`, 'invalid_token');
    await refused('payload: exp pushed out', `${h}.${b64({ ...payload, exp: nowSec() + 86_400 * 365 })}.${s}`, 'invalid_token');
    await refused('signature: one bit flipped', `${h}.${p}.${flip(s)}`, 'invalid_token');
  });

  test('missing or malformed sub/did, even when signed with the right secret', async () => {
    await refused('no sub', await sign(good({ sub: undefined })), 'invalid_token');
    await refused('no did', await sign(good({ did: undefined })), 'invalid_token');
    await refused('did not a string', await sign(good({ did: 42 })), 'invalid_token');
    await refused('sub not an id', await sign(good({ sub: "' OR 1=1 --" })), 'invalid_token');
    await refused('did not an id', await sign(good({ did: '../../etc/passwd' })), 'invalid_token');
    await refused('did of another user', await sign(good({ did: b.deviceId })), 'invalid_token');
    await refused('unknown device', await sign(good({ did: '01a2026d-75df-77b0-b9f4-af28accc21e4' })), 'invalid_token');
  });

  test('truncated tokens and non-JWT garbage', async () => {
    const t = a.accessToken;
    const [h, p] = t.split('.') as [string, string, string];
    await refused('signature cut short', t.slice(0, -5), 'invalid_token');
    await refused('signature part removed', `${h}.${p}.`, 'invalid_token');
    await refused('two parts', `${h}.${p}`, 'invalid_token');
    await refused('header only', h, 'invalid_token');
    await refused('half a token', t.slice(0, Math.floor(t.length / 2)), 'invalid_token');
    await refused('four parts', `${t}.${h}`, 'invalid_token');
    for (const garbage of ['x', '...', 'not-a-jwt', 'eyJ.eyJ.eyJ', '%00%00', b64('{'), `${b64('[]')}.${b64('[]')}.`, `${b64('null')}.${b64('1')}.AA`, 'A'.repeat(4000)]) {
      await refused(`garbage ${garbage.slice(0, 20)}`, garbage, 'invalid_token');
    }
  });

  test('TokenIssuer: the skew is configurable and never applies to exp', async () => {
    const strict = new TokenIssuer(SECRET, 900, 0);
    await assert.rejects(strict.verify(await sign(good({ iat: nowSec() + 10 }))), { code: 'invalid_token' });
    await assert.rejects(strict.verify(await sign(good({ nbf: nowSec() + 10 }))), { code: 'invalid_token' });
    const lenient = new TokenIssuer(SECRET, 900, 3600);
    assert.equal((await lenient.verify(await sign(good({ iat: nowSec() + 600 })))).userId, a.user.id);
    await assert.rejects(lenient.verify(await sign(good({ exp: nowSec() - 1 }))), { code: 'token_expired' });
  });
});

function flip(s: string): string {
  const buf = Buffer.from(s, 'base64url');
  buf[0] = buf[0]! ^ 1;
  return buf.toString('base64url');
}
