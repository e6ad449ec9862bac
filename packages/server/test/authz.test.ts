// Issue "chat core", test 6: a non-member can neither read history, nor send, nor receive
// live messages; a bad or expired token is refused (REST and WebSocket).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { useNode } from './clients.js';
import { http, register, startNode, uname } from './helpers.js';
import { rawSocket } from './ws-raw.js';

describe('authorization', () => {
  const node = useNode();

  async function setup() {
    const [a, b, out] = await Promise.all([register(node.url, uname('m')), register(node.url, uname('m')), register(node.url, uname('n'))]);
    const da = await node.dev(a);
    const dout = await node.dev(out);
    const group = await da.api.createGroup('private', [b.user.username]);
    await da.client.send(group.id, 'secret 1');
    return { a, b, out, da, dout, group };
  }

  test('a non-member cannot read, send, sync or receive', async () => {
    const { a, out, da, dout, group } = await setup();
    const hist = await http(node.url, 'GET', `/v1/conversations/${group.id}/messages`, undefined, out.accessToken);
    assert.equal(hist.status, 403);
    assert.equal(hist.body.error.code, 'forbidden');
    assert.ok(!JSON.stringify(hist.body).includes('secret'));
    for (const path of ['', '/members']) {
      const r = await http(node.url, 'GET', `/v1/conversations/${group.id}${path}`, undefined, out.accessToken);
      assert.equal(r.status, 403, `GET ${path}`);
    }
    const send = await http(node.url, 'POST', `/v1/conversations/${group.id}/messages`, { clientId: 'x', text: 'intrusion' }, out.accessToken);
    assert.equal(send.status, 403);
    await assert.rejects(dout.client.send(group.id, 'intrusion'), { code: 'forbidden' });
    await assert.rejects(dout.client.history(group.id), { code: 'forbidden' });
    await assert.rejects(dout.client.sync(group.id, 0), { code: 'forbidden' });
    await assert.rejects(dout.client.markRead(group.id, 1), { code: 'forbidden' });
    const rename = await http(node.url, 'PATCH', `/v1/conversations/${group.id}`, { name: 'mine' }, out.accessToken);
    assert.equal(rename.status, 403);
    const add = await http(node.url, 'POST', `/v1/conversations/${group.id}/members`, { members: [out.user.username] }, out.accessToken);
    assert.equal(add.status, 403);
    // Live: the outsider is connected while members talk; it receives nothing of it.
    for (let i = 0; i < 20; i++) await da.client.send(group.id, `secret live ${i}`);
    const marker = await dout.api.direct(a.user.username);
    const m = await da.client.send(marker.id, 'marker');
    await dout.waitFor(marker.id, 1);
    assert.equal(dout.seen.at(-1)?.messageId, m.messageId);
    assert.equal(dout.of(group.id).length, 0, 'no live message of a conversation it is not in');
    assert.equal((await http(node.url, 'GET', `/v1/conversations/${group.id}/messages`, undefined, a.accessToken)).body.messages.length, 21, 'nothing was added by the outsider');
  });

  test('a removed member loses access at once', async () => {
    const { a, b, da, group } = await setup();
    const db = await node.dev(b);
    await db.client.send(group.id, 'still in');
    const r = await http(node.url, 'DELETE', `/v1/conversations/${group.id}/members/${b.user.id}`, undefined, a.accessToken);
    assert.equal(r.status, 204);
    await assert.rejects(db.client.send(group.id, 'gone'), { code: 'forbidden' });
    assert.equal((await http(node.url, 'GET', `/v1/conversations/${group.id}/messages`, undefined, b.accessToken)).status, 403);
    await da.client.send(group.id, 'after removal');
    const marker = await da.api.direct(b.user.username);
    await da.client.send(marker.id, 'marker');
    await db.waitFor(marker.id, 1);
    assert.ok(!db.of(group.id).some((m) => m.text === 'after removal'));
  });

  test('bad, forged, expired and logged-out tokens are refused', async () => {
    const { a, group } = await setup();
    const path = `/v1/conversations/${group.id}/messages`;
    const secret = readFileSync(join(node.node.dataDir, 'jwt-secret'), 'utf8').trim();
    const key = new TextEncoder().encode(secret);
    const now = Math.floor(Date.now() / 1000);
    const claims = { did: a.deviceId };
    const expired = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(a.user.id).setIssuer('confab').setAudience('confab').setIssuedAt(now - 3600).setExpirationTime(now - 60).sign(key);
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(a.user.id).setIssuer('confab').setAudience('confab').setExpirationTime(now + 600).sign(new TextEncoder().encode('x'.repeat(48)));
    const otherAudience = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(a.user.id).setIssuer('confab').setAudience('elsewhere').setExpirationTime(now + 600).sign(key);
    const [h, p] = a.accessToken.split('.');
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${p}.`;
    const cases: [string, string, string][] = [
      ['garbage', 'not-a-jwt', 'invalid_token'],
      ['forged signature', forged, 'invalid_token'],
      ['alg none', none, 'invalid_token'],
      ['wrong audience', otherAudience, 'invalid_token'],
      ['tampered payload', `${h}.${Buffer.from(JSON.stringify({ sub: a.user.id, did: a.deviceId, exp: now + 9999, iss: 'confab', aud: 'confab' })).toString('base64url')}.${a.accessToken.split('.')[2]}`, 'invalid_token'],
      ['expired', expired, 'token_expired'],
    ];
    for (const [name, token, code] of cases) {
      const r = await http(node.url, 'GET', path, undefined, token);
      assert.equal(r.status, 401, name);
      assert.equal(r.body.error.code, code, name);
      const raw = await rawSocket(node.url);
      raw.send({ type: 'hello', v: 1, token });
      const err = await raw.next((f) => f.type === 'error');
      assert.equal(err.type === 'error' && err.code, code, `ws ${name}`);
      const closed = await raw.closed;
      assert.equal(closed.code, code === 'token_expired' ? 4002 : 4001, `close code, ${name}`);
    }
    assert.equal((await http(node.url, 'GET', path)).body.error.code, 'not_authenticated');
    // Log out: the device's access token stops working at once, refresh too.
    const out = await http(node.url, 'POST', '/v1/auth/logout', {}, a.accessToken);
    assert.equal(out.status, 204);
    assert.equal((await http(node.url, 'GET', path, undefined, a.accessToken)).status, 401);
    assert.equal((await http(node.url, 'POST', '/v1/auth/refresh', { refreshToken: a.refreshToken })).body.error.code, 'invalid_refresh_token');
  });

  test('frames before hello are refused; a connection without hello is closed', async () => {
    const { group } = await setup();
    const short = await startNode({ limits: { helloTimeoutMs: 200 } });
    try {
      const raw = await rawSocket(short.url);
      raw.send({ type: 'send', id: 'r1', conversationId: group.id, clientId: 'x', text: 'hi' });
      const err = await raw.next((f) => f.type === 'error');
      assert.equal(err.type === 'error' && err.code, 'not_authenticated');
      assert.equal((await raw.closed).code, 4100);
    } finally {
      await short.close();
    }
  });
});
