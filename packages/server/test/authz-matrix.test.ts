// Authorization matrix: every REST route of the protocol's ROUTES table and every client frame
// type of its ClientFrame schema, tried by every kind of caller: the one with the rights the
// route needs (`owner`), a plain `member`, a `nonMember`, a `removed` member, an `anonymous`
// caller, an `expired` token, and `otherUser` (a member acting on another user's resource) where
// that applies. Each allowed attempt must succeed (so the matrix cannot pass by refusing all);
// each refused one must carry the documented code and not one protected byte (message text,
// member names, the group's title). The tables are keyed by the protocol's own lists: a route or
// frame type without an entry fails the first tests. authz.test.ts covers the basic cases; this
// file covers all of them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { CLIENT_FRAME_TYPES, ROUTES, ServerFrame, type ClientFrameType, type Session } from '@confab/protocol';
import { useNode } from './clients.js';
import { http, register, uname } from './helpers.js';
import { rawSocket, type RawSocket } from './ws-raw.js';

const SECRET = 'authz-matrix-test-secret-0123456789-abcdefghijklmn';
const GROUP_NAME = 'matrix-private-title';
const SECRET_TEXT = 'matrix-secret-text';

type Actor = 'owner' | 'member' | 'nonMember' | 'removed' | 'anonymous' | 'expired' | 'otherUser';
const ACTORS: readonly Actor[] = ['owner', 'member', 'nonMember', 'removed', 'anonymous', 'expired', 'otherUser'];

interface Fixture {
  url: string;
  owner: Session;
  member: Session;
  nonMember: Session;
  removed: Session;
  /** Added to the group so that the owner has someone to remove. */
  spare: Session;
  expiredToken: string;
  groupId: string;
  /** The owner's message with SECRET_TEXT. */
  secretId: string;
  /** The member's own message. */
  memberMsgId: string;
  /** Strings that a refused caller must never see. */
  protectedStrings: string[];
}

const tokenOf = (fx: Fixture, a: Actor): string | undefined => {
  switch (a) {
    case 'owner': return fx.owner.accessToken;
    case 'member': case 'otherUser': return fx.member.accessToken;
    case 'nonMember': return fx.nonMember.accessToken;
    case 'removed': return fx.removed.accessToken;
    case 'anonymous': return undefined;
    case 'expired': return fx.expiredToken;
  }
};
const sessionOf = (fx: Fixture, a: Actor): Session => (a === 'owner' ? fx.owner : a === 'nonMember' ? fx.nonMember : a === 'removed' ? fx.removed : fx.member);

// ---- REST ---------------------------------------------------------------------------------

/** A request; `token` replaces the actor's own (e.g. a fresh device to log out). */
interface Req { method: string; path: string; body?: unknown; token?: string }
/** `ok`: a 2xx answer (then `check`, if any, sees it); an error code: refused with it. */
type Outcome = 'ok' | 'forbidden' | 'not_authenticated' | 'token_expired' | 'user_not_found';
interface RestEntry {
  /** Routes anyone may call (no token): called anonymously; `check` sees the answer. */
  public?: (fx: Fixture) => Promise<void>;
  /** The request `actor` makes (ids filled in; may create what it acts on first). */
  req?: (fx: Fixture, actor: Actor) => Req | Promise<Req>;
  /** Expected outcome per actor; anonymous and expired are always refused with 401. `otherUser`: n/a when absent. */
  expect?: Partial<Record<Actor, Outcome>>;
  /** Extra checks of an allowed answer (e.g. nothing of the group in a non-member's list). */
  check?: (fx: Fixture, actor: Actor, body: any) => void;
}

const conv = (fx: Fixture) => `/v1/conversations/${fx.groupId}`;
const MEMBERS_ONLY: Partial<Record<Actor, Outcome>> = { owner: 'ok', member: 'ok', nonMember: 'forbidden', removed: 'forbidden' };
const ADMIN_ONLY: Partial<Record<Actor, Outcome>> = { owner: 'ok', member: 'forbidden', nonMember: 'forbidden', removed: 'forbidden' };
const ANY_USER: Partial<Record<Actor, Outcome>> = { owner: 'ok', member: 'ok', nonMember: 'ok', removed: 'ok' };
const outsider = (a: Actor) => a === 'nonMember' || a === 'removed';

/** An allowed answer to a caller outside the group holds nothing of it. */
function nothingOfTheGroup(fx: Fixture, a: Actor, body: unknown): void {
  if (!outsider(a)) return;
  const text = JSON.stringify(body);
  for (const s of [SECRET_TEXT, GROUP_NAME, fx.groupId]) assert.ok(!text.includes(s), `${a} sees ${s}`);
}

async function ownerMessage(fx: Fixture, text: string): Promise<string> {
  const r = await http(fx.url, 'POST', `${conv(fx)}/messages`, { clientId: `o-${uname()}`, text }, fx.owner.accessToken);
  assert.equal(r.status, 201);
  return r.body.message.messageId as string;
}

const REST: Record<string, RestEntry> = {
  'GET /healthz': { public: async (fx) => { assert.deepEqual((await http(fx.url, 'GET', '/healthz')).body, { status: 'ok' }); } },
  'GET /readyz': { public: async (fx) => { assert.deepEqual((await http(fx.url, 'GET', '/readyz')).body, { status: 'ready' }); } },
  'GET /metrics': {
    // Operational figures only (counts by type, code and route template): no text, name or id.
    public: async (fx) => {
      const r = await fetch(`${fx.url}/metrics`);
      assert.equal(r.status, 200);
      const text = await r.text();
      assert.match(text, /confab_connections/);
      for (const s of [SECRET_TEXT, GROUP_NAME, fx.groupId, fx.owner.user.username]) assert.ok(!text.includes(s), `/metrics shows ${s}`);
    },
  },
  'POST /v1/auth/register': {
    public: async (fx) => {
      const r = await http(fx.url, 'POST', '/v1/auth/register', { username: uname('pub'), password: 'correct horse' });
      assert.equal(r.status, 201);
      assertNoProtected(fx, r.body, 'register');
    },
  },
  'POST /v1/auth/login': {
    public: async (fx) => {
      const bad = await http(fx.url, 'POST', '/v1/auth/login', { username: fx.owner.user.username, password: 'not the password' });
      assert.equal(bad.status, 401);
      assert.deepEqual(Object.keys(bad.body as object), ['error']);
      assertNoProtected(fx, bad.body, 'login');
    },
  },
  'POST /v1/auth/refresh': {
    public: async (fx) => {
      const bad = await http(fx.url, 'POST', '/v1/auth/refresh', { refreshToken: 'x'.repeat(43) });
      assert.equal(bad.status, 401);
      assert.deepEqual(Object.keys(bad.body as object), ['error']);
    },
  },
  'POST /v1/auth/logout': {
    // Everyone may log out their own device (a fresh one here), and nothing else.
    req: async (fx, a) => {
      if (a === 'anonymous' || a === 'expired') return { method: 'POST', path: '/v1/auth/logout', body: {} };
      const s = await http(fx.url, 'POST', '/v1/auth/login', { username: sessionOf(fx, a).user.username, password: 'correct horse' });
      return { method: 'POST', path: '/v1/auth/logout', body: {}, token: s.body.accessToken as string };
    },
    expect: ANY_USER,
  },
  'GET /v1/me': {
    req: () => ({ method: 'GET', path: '/v1/me' }),
    expect: ANY_USER,
    check: (fx, a, body) => assert.equal(body.id, sessionOf(fx, a).user.id, 'only the caller'),
  },
  'PATCH /v1/me': {
    req: () => ({ method: 'PATCH', path: '/v1/me', body: { hideLastSeen: false } }),
    expect: ANY_USER,
    check: (fx, a, body) => assert.equal(body.id, sessionOf(fx, a).user.id, 'only the caller'),
  },
  'GET /v1/presence': {
    req: (fx) => ({ method: 'GET', path: `/v1/presence?users=${fx.owner.user.id},${fx.member.user.id}` }),
    expect: ANY_USER,
    check: (fx, a, body) => {
      if (outsider(a)) {
        assert.deepEqual(body.users, [], `${a} sees no presence`);
        assert.deepEqual([...body.denied].sort(), [fx.owner.user.id, fx.member.user.id].sort());
      } else assert.equal(body.users.length, a === 'owner' || a === 'member' ? 2 : 0);
    },
  },
  'GET /v1/users/:username': {
    // The user directory: any logged-in user may look a username up (no conversation data).
    req: (fx) => ({ method: 'GET', path: `/v1/users/${fx.owner.user.username}` }),
    expect: ANY_USER,
    check: (fx, a, body) => { assert.deepEqual(Object.keys(body as object).sort(), ['createdAt', 'id', 'username']); nothingOfTheGroup(fx, a, body); },
  },
  'GET /v1/conversations': {
    req: () => ({ method: 'GET', path: '/v1/conversations' }),
    expect: ANY_USER,
    check: (fx, a, body) => {
      nothingOfTheGroup(fx, a, body);
      if (!outsider(a)) assert.ok(body.conversations.some((c: { id: string }) => c.id === fx.groupId));
    },
  },
  'POST /v1/conversations/direct': {
    req: (fx) => ({ method: 'POST', path: '/v1/conversations/direct', body: { username: fx.spare.user.username } }),
    expect: ANY_USER,
    check: nothingOfTheGroup,
  },
  'POST /v1/conversations': {
    req: (fx) => ({ method: 'POST', path: '/v1/conversations', body: { name: 'another group', members: [fx.spare.user.username] } }),
    expect: ANY_USER,
    check: nothingOfTheGroup,
  },
  'GET /v1/conversations/:id': { req: (fx) => ({ method: 'GET', path: conv(fx) }), expect: MEMBERS_ONLY, check: (_fx, _a, body) => assert.equal(body.name, GROUP_NAME) },
  'PATCH /v1/conversations/:id': { req: (fx) => ({ method: 'PATCH', path: conv(fx), body: { name: GROUP_NAME } }), expect: ADMIN_ONLY },
  'GET /v1/conversations/:id/members': { req: (fx) => ({ method: 'GET', path: `${conv(fx)}/members` }), expect: MEMBERS_ONLY },
  'POST /v1/conversations/:id/members': {
    // Re-adding a member changes nothing; outsiders try to add themselves.
    req: (fx, a) => ({ method: 'POST', path: `${conv(fx)}/members`, body: { members: [outsider(a) ? sessionOf(fx, a).user.username : fx.member.user.username] } }),
    expect: ADMIN_ONLY,
  },
  'DELETE /v1/conversations/:id/members/:userId': {
    // Run with the owner last: the owner removes the spare member; the others try to.
    req: (fx) => ({ method: 'DELETE', path: `${conv(fx)}/members/${fx.spare.user.id}` }),
    expect: ADMIN_ONLY,
  },
  'PUT /v1/conversations/:id/members/:userId/role': {
    req: (fx, a) => ({ method: 'PUT', path: `${conv(fx)}/members/${a === 'owner' ? fx.member.user.id : sessionOf(fx, a).user.id}/role`, body: { role: a === 'owner' ? 'member' : 'admin' } }),
    expect: ADMIN_ONLY,
  },
  'GET /v1/conversations/:id/messages': {
    req: (fx) => ({ method: 'GET', path: `${conv(fx)}/messages` }),
    expect: MEMBERS_ONLY,
    check: (_fx, _a, body) => assert.ok(body.messages.some((m: { text: string }) => m.text === SECRET_TEXT)),
  },
  'POST /v1/conversations/:id/messages': {
    req: (fx, a) => ({ method: 'POST', path: `${conv(fx)}/messages`, body: { clientId: `m-${a}-${uname()}`, text: `written by ${a}` } }),
    expect: MEMBERS_ONLY,
  },
  'PATCH /v1/conversations/:id/messages/:messageId': {
    // Members edit their own message; `otherUser` is the member editing the owner's.
    req: async (fx, a) => {
      const target = a === 'owner' ? await ownerMessage(fx, 'to be edited') : a === 'member' ? fx.memberMsgId : fx.secretId;
      return { method: 'PATCH', path: `${conv(fx)}/messages/${target}`, body: { clientId: `e-${a}-${uname()}`, text: `edited by ${a}` } };
    },
    expect: { ...MEMBERS_ONLY, otherUser: 'forbidden' },
  },
  'DELETE /v1/conversations/:id/messages/:messageId': {
    req: async (fx, a) => {
      let target = fx.secretId;
      if (a === 'owner') target = await ownerMessage(fx, 'to be deleted');
      if (a === 'member') {
        const r = await http(fx.url, 'POST', `${conv(fx)}/messages`, { clientId: `md-${uname()}`, text: 'mine, to delete' }, fx.member.accessToken);
        target = r.body.message.messageId as string;
      }
      return { method: 'DELETE', path: `${conv(fx)}/messages/${target}`, body: { clientId: `d-${a}-${uname()}` } };
    },
    expect: { ...MEMBERS_ONLY, otherUser: 'forbidden' },
  },
  'GET /v1/conversations/:id/receipts': { req: (fx) => ({ method: 'GET', path: `${conv(fx)}/receipts` }), expect: MEMBERS_ONLY },
  'POST /v1/conversations/:id/read': { req: (fx) => ({ method: 'POST', path: `${conv(fx)}/read`, body: { seq: 1 } }), expect: MEMBERS_ONLY },
};

function assertNoProtected(fx: Fixture, body: unknown, what: string): void {
  const text = JSON.stringify(body ?? null);
  for (const s of fx.protectedStrings) assert.ok(!text.includes(s), `${what}: the answer holds "${s}": ${text.slice(0, 300)}`);
}

// ---- WebSocket ----------------------------------------------------------------------------

type FrameOutcome = 'ok' | 'forbidden' | 'not_authenticated' | 'denied';
interface FrameEntry {
  /** The frame `actor` sends (after hello, except for `anonymous`). */
  frame: (fx: Fixture, actor: Actor) => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Per actor; `anonymous` is always not_authenticated, `expired` never gets past hello. `otherUser`: n/a when absent. */
  expect: Partial<Record<Actor, FrameOutcome>>;
}

const F_MEMBERS: Partial<Record<Actor, FrameOutcome>> = { owner: 'ok', member: 'ok', nonMember: 'forbidden', removed: 'forbidden' };
let reqN = 0;
const rid = () => `q${++reqN}`;

const FRAMES: Record<ClientFrameType, FrameEntry> = {
  // hello is the authentication itself: outsiders' cursors for the group get `conversation removed`, no entry.
  hello: { frame: (fx, a) => ({ type: 'hello', v: 1, token: tokenOf(fx, a), cursors: { [fx.groupId]: 0 } }), expect: { owner: 'ok', member: 'ok', nonMember: 'denied', removed: 'denied' } },
  send: { frame: (fx, a) => ({ type: 'send', id: rid(), conversationId: fx.groupId, clientId: `ws-${a}-${uname()}`, text: `ws by ${a}` }), expect: F_MEMBERS },
  edit: {
    frame: async (fx, a) => ({ type: 'edit', id: rid(), conversationId: fx.groupId, messageId: a === 'owner' ? await ownerMessage(fx, 'ws edit') : a === 'member' ? fx.memberMsgId : fx.secretId, clientId: `we-${a}-${uname()}`, text: 'ws edited' }),
    expect: { ...F_MEMBERS, otherUser: 'forbidden' },
  },
  delete: {
    frame: async (fx, a) => ({ type: 'delete', id: rid(), conversationId: fx.groupId, messageId: a === 'owner' ? await ownerMessage(fx, 'ws delete') : fx.secretId, clientId: `wd-${a}-${uname()}` }),
    expect: { owner: 'ok', member: 'forbidden', nonMember: 'forbidden', removed: 'forbidden', otherUser: 'forbidden' },
  },
  read: { frame: (fx) => ({ type: 'read', id: rid(), conversationId: fx.groupId, seq: 1 }), expect: F_MEMBERS },
  sync: { frame: (fx) => ({ type: 'sync', id: rid(), conversationId: fx.groupId, after: 0 }), expect: F_MEMBERS },
  history: { frame: (fx) => ({ type: 'history', id: rid(), conversationId: fx.groupId }), expect: F_MEMBERS },
  ping: { frame: () => ({ type: 'ping', id: rid() }), expect: { owner: 'ok', member: 'ok', nonMember: 'ok', removed: 'ok' } },
  received: { frame: (fx) => ({ type: 'received', id: rid(), conversationId: fx.groupId, seq: 1 }), expect: F_MEMBERS },
  typing: { frame: (fx) => ({ type: 'typing', conversationId: fx.groupId, typing: true }), expect: F_MEMBERS },
  'presence.set': { frame: () => ({ type: 'presence.set', status: 'online' }), expect: { owner: 'ok', member: 'ok', nonMember: 'ok', removed: 'ok' } },
  'presence.watch': { frame: (fx) => ({ type: 'presence.watch', id: rid(), userIds: [fx.owner.user.id, fx.member.user.id] }), expect: { owner: 'ok', member: 'ok', nonMember: 'denied', removed: 'denied' } },
};

/**
 * Sends `frame` and collects every frame up to its answer. Frames answered only when they fail
 * (`received`, `typing`, `presence.set`) are followed by a request that reads the store (an
 * error, if any, has come once its answer has), or, when an error is expected, by waiting for it.
 */
async function exchange(ws: RawSocket, frame: Record<string, unknown>, watchId: string, expectError: boolean): Promise<ServerFrame[]> {
  const from = ws.frames.length;
  ws.send(frame);
  const answered = typeof frame.id === 'string' && frame.type !== 'received';
  if (answered) await ws.next((f) => 'id' in f && f.id === frame.id);
  else if (expectError) await ws.next((f) => f.type === 'error');
  else {
    const end = rid();
    ws.send({ type: 'presence.watch', id: end, userIds: [watchId] });
    await ws.next((f) => 'id' in f && f.id === end);
  }
  const end = rid();
  ws.send({ type: 'ping', id: end });
  await ws.next((f) => 'id' in f && f.id === end); // a pong, or not_authenticated before hello
  return ws.frames.slice(from, -1);
}

describe('authorization matrix', () => {
  const node = useNode({ config: { jwtSecret: SECRET }, limits: { helloTimeoutMs: 120_000 } }); // the anonymous socket stays for the whole run
  let fx: Fixture;
  const sockets: RawSocket[] = [];

  before(async () => {
    const [owner, member, nonMember, removed, spare] = await Promise.all(['o', 'm', 'n', 'r', 's'].map((p) => register(node.url, uname(`mx${p}`))));
    const g = await http(node.url, 'POST', '/v1/conversations', { name: GROUP_NAME, members: [member!.user.username, removed!.user.username, spare!.user.username] }, owner!.accessToken);
    assert.equal(g.status, 201);
    const groupId = g.body.id as string;
    const secret = await http(node.url, 'POST', `/v1/conversations/${groupId}/messages`, { clientId: 'secret', text: SECRET_TEXT }, owner!.accessToken);
    const mine = await http(node.url, 'POST', `/v1/conversations/${groupId}/messages`, { clientId: 'mine', text: 'member text' }, member!.accessToken);
    assert.equal((await http(node.url, 'DELETE', `/v1/conversations/${groupId}/members/${removed!.user.id}`, undefined, owner!.accessToken)).status, 204);
    const now = Math.floor(Date.now() / 1000);
    const expiredToken = await new SignJWT({ did: owner!.deviceId }).setProtectedHeader({ alg: 'HS256' }).setSubject(owner!.user.id)
      .setIssuer('confab').setAudience('confab').setIssuedAt(now - 3600).setExpirationTime(now - 60).sign(new TextEncoder().encode(SECRET));
    fx = {
      url: node.url, owner: owner!, member: member!, nonMember: nonMember!, removed: removed!, spare: spare!, expiredToken, groupId,
      secretId: secret.body.message.messageId, memberMsgId: mine.body.message.messageId,
      protectedStrings: [SECRET_TEXT, GROUP_NAME, 'member text', owner!.user.username, member!.user.username, spare!.user.username],
    };
  });
  after(() => { for (const s of sockets) s.ws.terminate(); });

  test('every route of ROUTES has a matrix entry, and every entry a route', () => {
    const keys = ROUTES.map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(keys.filter((k) => !(k in REST)), [], 'routes without a matrix entry');
    assert.deepEqual(Object.keys(REST).filter((k) => !keys.includes(k)), [], 'matrix entries without a route');
    for (const r of ROUTES) {
      const e = REST[`${r.method} ${r.path}`]!;
      assert.equal(r.auth ? Boolean(e.req && e.expect) : Boolean(e.public), true, `${r.method} ${r.path}: auth ${r.auth} needs ${r.auth ? 'req + expect' : 'public'}`);
      if (r.auth) for (const a of ['owner', 'member', 'nonMember', 'removed'] as const) assert.ok(e.expect![a], `${r.method} ${r.path}: no expectation for ${a}`);
    }
  });

  test('every client frame type has a matrix entry, and every entry a frame type', () => {
    assert.deepEqual(CLIENT_FRAME_TYPES.filter((t) => !(t in FRAMES)), [], 'frame types without a matrix entry');
    assert.deepEqual(Object.keys(FRAMES).filter((t) => !(CLIENT_FRAME_TYPES as string[]).includes(t)), [], 'matrix entries without a frame type');
    for (const [t, e] of Object.entries(FRAMES)) for (const a of ['owner', 'member', 'nonMember', 'removed'] as const) assert.ok(e.expect[a], `${t}: no expectation for ${a}`);
  });

  test('REST: every route × every caller', async () => {
    for (const r of ROUTES) {
      const key = `${r.method} ${r.path}`;
      const e = REST[key]!;
      if (e.public) {
        await e.public(fx);
        continue;
      }
      // Refused callers first: the owner's allowed call may change what it acts on.
      const order: Actor[] = ['anonymous', 'expired', 'otherUser', 'nonMember', 'removed', 'member', 'owner'];
      for (const a of order) {
        const expected: Outcome | undefined = a === 'anonymous' ? 'not_authenticated' : a === 'expired' ? 'token_expired' : e.expect![a];
        if (!expected) continue; // otherUser: not applicable to this route
        const req = await e.req!(fx, a);
        const res = await http(fx.url, req.method, req.path, req.body, req.token ?? tokenOf(fx, a));
        const what = `${key} as ${a}`;
        if (expected === 'ok') {
          assert.ok(res.status >= 200 && res.status < 300, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
          e.check?.(fx, a, res.body);
        } else {
          assert.equal(res.body?.error?.code, expected, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
          assert.equal(res.status, expected === 'forbidden' ? 403 : expected === 'user_not_found' ? 404 : 401, what);
          assert.deepEqual(Object.keys(res.body as object), ['error'], `${what}: only the error`);
          assertNoProtected(fx, res.body, what);
        }
      }
    }
    // Nothing a refused caller sent was committed.
    const log = await http(fx.url, 'GET', `${conv(fx)}/messages?limit=1000`, undefined, fx.owner.accessToken);
    for (const m of log.body.messages as { text: string }[]) assert.ok(!/by (nonMember|removed|anonymous|expired|otherUser)/.test(m.text), `committed: ${m.text}`);
  });

  test('WebSocket: every frame type × every caller', async () => {
    const open = async (a: Actor) => {
      const ws = await rawSocket(fx.url);
      sockets.push(ws);
      if (a !== 'anonymous') await ws.hello(tokenOf(fx, a)!);
      return ws;
    };
    const conns = new Map<Actor, RawSocket>();
    for (const a of ['owner', 'member', 'nonMember', 'removed', 'anonymous'] as const) conns.set(a, await open(a));
    conns.set('otherUser', conns.get('member')!);

    for (const type of CLIENT_FRAME_TYPES) {
      const e = FRAMES[type];
      for (const a of ACTORS) {
        const what = `${type} as ${a}`;
        if (type === 'hello' || a === 'expired') {
          // A fresh connection: hello (this actor's token; expired for `expired`) then the frame.
          if (a === 'anonymous' || a === 'otherUser') continue;
          const ws = await rawSocket(fx.url);
          sockets.push(ws);
          if (type === 'hello' && a !== 'expired') {
            ws.send(await e.frame(fx, a));
            await ws.next((f) => f.type === 'welcome');
            const end = rid();
            if (e.expect[a] === 'denied') {
              await ws.next((f) => f.type === 'conversation' && f.change === 'removed' && f.conversationId === fx.groupId);
            } else {
              await ws.next((f) => f.type === 'sync.done' && f.conversationId === fx.groupId);
            }
            ws.send({ type: 'ping', id: end });
            await ws.next((f) => f.type === 'pong' && f.id === end);
            if (e.expect[a] === 'denied') {
              assert.ok(!ws.frames.some((f) => f.type === 'sync.page' || f.type === 'message'), `${what}: no entries`);
              assertNoProtected(fx, ws.frames.filter((f) => f.type !== 'welcome'), what);
            } else {
              assert.ok(ws.frames.some((f) => f.type === 'sync.page' && JSON.stringify(f).includes(SECRET_TEXT)), `${what}: caught up`);
            }
          } else {
            // expired: the hello fails, and the frame behind it is never served.
            ws.send({ type: 'hello', v: 1, token: fx.expiredToken });
            if (type !== 'hello') ws.send(await FRAMES[type].frame(fx, 'owner'));
            const closed = await ws.closed;
            assert.equal(closed.code, 4002, what);
            assert.deepEqual(ws.frames.map((f) => f.type === 'error' && f.code), ['token_expired'], `${what}: ${JSON.stringify(ws.frames)}`);
          }
          continue;
        }
        const expected: FrameOutcome | undefined = a === 'anonymous' ? 'not_authenticated' : e.expect[a];
        if (!expected) continue;
        const ws = conns.get(a)!;
        const got = await exchange(ws, await e.frame(fx, a), fx.owner.user.id, expected === 'forbidden' || expected === 'not_authenticated');
        const errors = got.filter((f) => f.type === 'error');
        for (const f of got) assert.ok(ServerFrame.safeParse(f).success, `${what}: malformed ${JSON.stringify(f)}`);
        if (expected === 'ok') {
          assert.deepEqual(errors, [], `${what}: ${JSON.stringify(errors)}`);
        } else if (expected === 'denied') {
          assert.deepEqual(errors, [], what);
          const answer = got.find((f) => f.type === 'presence' && f.id !== undefined);
          assert.ok(answer && answer.type === 'presence', what);
          assert.deepEqual(answer.users, [], `${what}: no presence`);
          assert.equal(answer.denied?.length, 2, what);
        } else {
          assert.equal(errors.length, 1, `${what}: ${JSON.stringify(got)}`);
          assert.equal(errors[0]!.type === 'error' && errors[0]!.code, expected, `${what}: ${JSON.stringify(errors)}`);
        }
        // A member's socket also carries the group's live traffic; an outsider's carries nothing of it.
        assertNoProtected(fx, a === 'owner' || a === 'member' || a === 'otherUser' ? errors : got, what);
      }
    }
    // The outsiders' sockets never received anything of the group, over the whole run.
    for (const a of ['nonMember', 'removed', 'anonymous'] as const) {
      const ws = conns.get(a)!;
      assert.ok(!ws.frames.some((f) => (f.type === 'message' || f.type === 'typing' || f.type === 'receipts' || f.type === 'read.state') && 'conversationId' in f && f.conversationId === fx.groupId), `${a} received live data of the group`);
      assertNoProtected(fx, ws.frames.filter((f) => f.type !== 'welcome'), `${a}'s socket`);
    }
    // Members did not get typing from outsiders.
    const owner = conns.get('owner')!;
    assert.ok(!owner.frames.some((f) => f.type === 'typing' && (f.userId === fx.nonMember.user.id || f.userId === fx.removed.user.id)), 'typing from an outsider was forwarded');
  });

  test('a removed member\'s live subscription is cut: no entry after the removal reaches it', async () => {
    const [o, victim] = await Promise.all([register(fx.url, uname('cuto')), register(fx.url, uname('cutv'))]);
    const g = await http(fx.url, 'POST', '/v1/conversations', { name: 'cut-test', members: [victim.user.username] }, o.accessToken);
    const direct = await http(fx.url, 'POST', '/v1/conversations/direct', { username: victim.user.username }, o.accessToken);
    const ws = await rawSocket(fx.url);
    sockets.push(ws);
    await ws.hello(victim.accessToken);
    const send = (cid: string, text: string) => http(fx.url, 'POST', `/v1/conversations/${cid}/messages`, { clientId: uname('c'), text }, o.accessToken);
    assert.equal((await send(g.body.id, 'before removal')).status, 201);
    await ws.next((f) => f.type === 'message' && f.message.text === 'before removal');
    assert.equal((await http(fx.url, 'DELETE', `/v1/conversations/${g.body.id}/members/${victim.user.id}`, undefined, o.accessToken)).status, 204);
    // Bounded wait: the removal reaches the socket (it is told, and its stream is dropped).
    await ws.next((f) => f.type === 'conversation' && f.change === 'removed' && f.conversationId === g.body.id, 1000);
    for (let i = 0; i < 5; i++) assert.equal((await send(g.body.id, `after removal ${i}`)).status, 201);
    // A marker in another conversation, sent last: once it is here, anything earlier would be too.
    assert.equal((await send(direct.body.id, 'marker')).status, 201);
    await ws.next((f) => f.type === 'message' && f.message.text === 'marker');
    assert.ok(!ws.frames.some((f) => JSON.stringify(f).includes('after removal')), 'an entry after the removal reached the removed member');
    // And it cannot get them back with sync or history.
    const back = await exchange(ws, { type: 'sync', id: rid(), conversationId: g.body.id, after: 0 }, o.user.id, true);
    assert.equal(back.find((f) => f.type === 'error')?.type === 'error' && (back.find((f) => f.type === 'error') as { code: string }).code, 'forbidden');
    assert.ok(!JSON.stringify(back).includes('after removal'));
  });
});
