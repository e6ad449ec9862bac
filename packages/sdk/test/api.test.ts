// ConfabApi against a scripted fetch: routes, headers, bodies, error mapping, token refresh.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Session } from '@confab/protocol';
import { ConfabApi, ConfabError } from '../src/index.js';
import type { FetchInit, FetchLike } from '../src/index.js';
import { C1, DEVICE, USER, msg } from './fake-server.js';

interface Call { url: string; method: string; headers: Record<string, string>; body: unknown }
type Reply = { status: number; body?: unknown; raw?: string };

/** A fetch that records calls and answers from a handler. */
function fakeFetch(handler: (call: Call) => Reply | Promise<Reply>) {
  const calls: Call[] = [];
  const fetch: FetchLike = async (url: string, init: FetchInit) => {
    const call = { url, method: init.method, headers: init.headers, body: init.body === undefined ? undefined : JSON.parse(init.body) as unknown };
    calls.push(call);
    const r = await handler(call);
    return { status: r.status, text: () => Promise.resolve(r.raw ?? (r.body === undefined ? '' : JSON.stringify(r.body))) };
  };
  return { fetch, calls };
}

const session = (n: number, expiresIn = 900): Session => ({
  user: { id: USER, username: 'alice', createdAt: 1 }, deviceId: DEVICE, accessToken: `access${n}`, expiresIn, refreshToken: `refresh${n}`,
});
const user = { id: USER, username: 'alice', createdAt: 1 };
const me = { ...user, hideLastSeen: false };
const err = (status: number, code: string, extra: object = {}): Reply => ({ status, body: { error: { code, message: `${code}!`, ...extra } } });

test('login keeps the session; later calls carry the bearer token', async () => {
  const { fetch, calls } = fakeFetch((c) => (c.url.endsWith('/login') ? { status: 200, body: session(1) } : { status: 200, body: me }));
  const seen: Session[] = [];
  const api = new ConfabApi({ baseUrl: 'http://h:8080/', fetch, onSession: (s) => seen.push(s) });
  const s = await api.login('alice', 'secret123', 'laptop');
  assert.equal(s.accessToken, 'access1');
  assert.equal(api.session, s);
  assert.deepEqual(seen, [s]);
  assert.deepEqual(calls[0], {
    url: 'http://h:8080/v1/auth/login', method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    body: { username: 'alice', password: 'secret123', deviceName: 'laptop' },
  });
  assert.deepEqual(await api.me(), me);
  assert.equal(calls[1]!.url, 'http://h:8080/v1/me');
  assert.equal(calls[1]!.headers.authorization, 'Bearer access1');
});

test('routes, methods and bodies follow the route table', async () => {
  const conversation = { id: C1, kind: 'group', name: 'Team', memberCount: 1, role: 'owner', createdAt: 1, updatedAt: 1, lastSeq: 0, lastMessage: null, readSeq: 0, unread: 0 };
  const members = { members: [{ userId: USER, username: 'alice', role: 'owner', joinedAt: 1 }] };
  const sent = { message: msg(C1, 1), duplicate: false };
  const { fetch, calls } = fakeFetch((c) => {
    if (c.method === 'DELETE' && c.url.includes('/members/')) return { status: 204 };
    if (c.url.includes('/members')) return { status: 200, body: members };
    if (c.url.includes('/messages?') || (c.url.endsWith('/messages') && c.method === 'GET')) return { status: 200, body: { messages: [msg(C1, 1)], hasMore: false } };
    if (c.url.includes('/messages')) return { status: 200, body: sent };
    if (c.url.endsWith('/read')) return { status: 200, body: { conversationId: C1, seq: 1, unread: 0 } };
    if (c.url.endsWith('/v1/conversations') && c.method === 'GET') return { status: 200, body: { conversations: [conversation], totalUnread: 0 } };
    if (c.url.includes('/users/')) return { status: 200, body: user };
    return { status: 200, body: conversation };
  });
  const api = new ConfabApi({ baseUrl: 'http://h', fetch, token: 'T' });
  const mid = msg(C1, 1).messageId;
  await api.user('bob smith');
  await api.conversations();
  await api.direct('bob');
  await api.createGroup('Team', ['bob', 'carol']);
  await api.conversation(C1);
  await api.rename(C1, 'New');
  await api.members(C1);
  await api.addMembers(C1, ['dave']);
  await api.removeMember(C1, USER);
  await api.setRole(C1, USER, 'admin');
  await api.history(C1, { before: 10, limit: 5 });
  await api.history(C1);
  assert.equal((await api.sendMessage(C1, 'hi', 'cid-1')).message.seq, 1);
  await api.editMessage(C1, mid, 'fixed', 'cid-2');
  await api.deleteMessage(C1, mid, 'cid-3');
  assert.deepEqual(await api.markRead(C1, 1), { conversationId: C1, seq: 1, unread: 0 });
  const base = `http://h/v1/conversations/${C1}`;
  assert.deepEqual(calls.map((c) => `${c.method} ${c.url}`), [
    'GET http://h/v1/users/bob%20smith',
    'GET http://h/v1/conversations',
    'POST http://h/v1/conversations/direct',
    'POST http://h/v1/conversations',
    `GET ${base}`,
    `PATCH ${base}`,
    `GET ${base}/members`,
    `POST ${base}/members`,
    `DELETE ${base}/members/${USER}`,
    `PUT ${base}/members/${USER}/role`,
    `GET ${base}/messages?before=10&limit=5`,
    `GET ${base}/messages`,
    `POST ${base}/messages`,
    `PATCH ${base}/messages/${mid}`,
    `DELETE ${base}/messages/${mid}`,
    `POST ${base}/read`,
  ]);
  assert.deepEqual(calls.map((c) => c.body).filter((b) => b !== undefined), [
    { username: 'bob' }, { name: 'Team', members: ['bob', 'carol'] }, { name: 'New' }, { members: ['dave'] }, { role: 'admin' },
    { clientId: 'cid-1', text: 'hi' }, { clientId: 'cid-2', text: 'fixed' }, { clientId: 'cid-3' }, { seq: 1 },
  ]);
  assert.ok(calls.every((c) => c.headers.authorization === 'Bearer T'));
});

test('error bodies become ConfabError with code, status, retryAfterMs, details and retryable', async () => {
  const replies: Reply[] = [
    err(429, 'rate_limited', { retryAfterMs: 250 }),
    err(400, 'bad_request', { details: [{ path: 'text', message: 'too short' }] }),
    err(403, 'forbidden'),
    { status: 502, raw: '<html>bad gateway</html>' },
    { status: 200, body: { id: 'not-a-user' } },
  ];
  const { fetch } = fakeFetch(() => replies.shift()!);
  const api = new ConfabApi({ baseUrl: 'http://h', fetch, token: 'T' });
  const e1 = await api.me().catch((e: unknown) => e);
  assert.ok(e1 instanceof ConfabError);
  assert.deepEqual([e1.code, e1.status, e1.retryAfterMs, e1.retryable, e1.message], ['rate_limited', 429, 250, true, 'rate_limited!']);
  const e2 = await api.me().catch((e: unknown) => e);
  assert.ok(e2 instanceof ConfabError);
  assert.deepEqual([e2.code, e2.retryable, e2.details], ['bad_request', false, [{ path: 'text', message: 'too short' }]]);
  await assert.rejects(api.me(), (e: unknown) => e instanceof ConfabError && e.code === 'forbidden' && e.status === 403 && !e.retryable);
  await assert.rejects(api.me(), (e: unknown) => e instanceof ConfabError && e.code === 'internal' && e.status === 502 && e.retryable);
  await assert.rejects(api.me(), (e: unknown) => e instanceof ConfabError && e.code === 'bad_response' && (e.details?.length ?? 0) > 0);
});

test('a failed fetch is a retryable network error', async () => {
  const api = new ConfabApi({ baseUrl: 'http://h', fetch: () => Promise.reject(new Error('ECONNREFUSED')), token: 'T' });
  await assert.rejects(api.me(), (e: unknown) => e instanceof ConfabError && e.code === 'network' && e.retryable && /ECONNREFUSED/.test(e.message));
});

test('token_expired: one refresh for concurrent calls, then the calls are retried', async () => {
  let refreshes = 0;
  const { fetch, calls } = fakeFetch((c) => {
    if (c.url.endsWith('/login')) return { status: 200, body: session(1) };
    if (c.url.endsWith('/refresh')) {
      refreshes++;
      assert.deepEqual(c.body, { refreshToken: 'refresh1' });
      return { status: 200, body: session(2) };
    }
    if (c.headers.authorization !== 'Bearer access2') return err(401, 'token_expired');
    return { status: 200, body: c.url.endsWith('/v1/me') ? me : user };
  });
  const api = new ConfabApi({ baseUrl: 'http://h', fetch });
  await api.login('alice', 'secret123');
  const [a, b] = await Promise.all([api.me(), api.user('alice')]);
  assert.deepEqual([a, b], [me, user]);
  assert.equal(refreshes, 1);
  assert.equal(api.session?.refreshToken, 'refresh2');
  assert.equal(calls.filter((c) => c.url.endsWith('/refresh')).length, 1);
});

test('accessToken() refreshes ahead of the announced expiry', async () => {
  let now = 0;
  const { fetch, calls } = fakeFetch((c) => ({ status: 200, body: c.url.endsWith('/refresh') ? session(2) : session(1, 60) }));
  const api = new ConfabApi({ baseUrl: 'http://h', fetch, now: () => now });
  await api.login('alice', 'secret123');
  assert.equal(await api.accessToken(), 'access1');
  now = 31_000; // within 30 s of the 60 s expiry
  assert.equal(await api.accessToken(), 'access2');
  assert.equal(await api.accessToken(true), 'access2');
  assert.equal(calls.filter((c) => c.url.endsWith('/refresh')).length, 2);
});

test('leave removes the caller; logout revokes the refresh token and forgets the session', async () => {
  const { fetch, calls } = fakeFetch((c) => (c.url.endsWith('/login') ? { status: 200, body: session(1) } : { status: 204 }));
  const api = new ConfabApi({ baseUrl: 'http://h', fetch });
  await api.login('alice', 'secret123');
  await api.leave(C1);
  await api.logout();
  assert.deepEqual(calls.slice(1).map((c) => [c.method, c.url, c.body]), [
    ['DELETE', `http://h/v1/conversations/${C1}/members/${USER}`, undefined],
    ['POST', 'http://h/v1/auth/logout', { refreshToken: 'refresh1' }],
  ]);
  assert.equal(api.session, undefined);
  await assert.rejects(api.me(), (e: unknown) => e instanceof ConfabError && e.code === 'not_authenticated');
});

test('getAccessToken wins over the held token', async () => {
  const { fetch, calls } = fakeFetch(() => ({ status: 200, body: me }));
  const api = new ConfabApi({ baseUrl: 'http://h', fetch, token: 'fixed', getAccessToken: () => Promise.resolve('dynamic') });
  await api.me();
  assert.equal(calls[0]!.headers.authorization, 'Bearer dynamic');
});

test('receipts, presence and settings: routes, query and bodies', async () => {
  const BOB = '01a2026d-759c-72cf-bcf4-95578b9fbd3b';
  const receipts = { conversationId: C1, delivered: 4, read: 2, members: [{ userId: BOB, username: 'bob', delivered: 4, read: 2 }] };
  const presence = { users: [{ userId: BOB, status: 'offline', lastSeen: 1_700_000_000_000 }], denied: [USER] };
  const { fetch, calls } = fakeFetch((c) => {
    if (c.url.endsWith('/receipts')) return { status: 200, body: receipts };
    if (c.url.includes('/v1/presence')) return { status: 200, body: presence };
    return { status: 200, body: { ...me, hideLastSeen: c.method === 'PATCH' } };
  });
  const api = new ConfabApi({ baseUrl: 'http://h', fetch, token: 'T' });
  assert.deepEqual(await api.receipts(C1), receipts);
  assert.deepEqual(await api.presence([BOB, USER]), presence);
  assert.deepEqual(await api.presence([]), { users: [], denied: [] }, 'nothing to ask: no request');
  assert.deepEqual(await api.updateMe({ hideLastSeen: true }), { ...me, hideLastSeen: true });
  assert.equal((await api.me()).hideLastSeen, false);
  assert.deepEqual(calls.map((c) => [c.method, c.url, c.body]), [
    ['GET', `http://h/v1/conversations/${C1}/receipts`, undefined],
    ['GET', `http://h/v1/presence?users=${BOB},${USER}`, undefined],
    ['PATCH', 'http://h/v1/me', { hideLastSeen: true }],
    ['GET', 'http://h/v1/me', undefined],
  ]);
});
