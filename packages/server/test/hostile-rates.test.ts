// Abuse suite, rates: valid but expensive requests, each bounded by the budget its frame or route
// declares (protocol FRAME_RATES and ROUTES). Typing is throttled as a state; a flood of renames
// or group creations is refused past the user's `changes` budget, and its fan-out is coalesced;
// read receipts that move nothing write nothing; registrations are refused before any password
// is hashed when the name is taken, and per address; a removed member's resend is refused.
// Every node here runs with the defaults (`defaults: true`) unless a test says otherwise.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { DEFAULT_LIMITS, type ServerFrame } from '@confab/protocol';
import { http, register, scrape, startNode, uname } from './helpers.js';
import { rawSocket, type RawSocket } from './ws-raw.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** POST a JSON body from the local address `from` (127.0.0.x): the node sees another client. */
function postFrom(from: string, url: string, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request({ host: u.hostname, port: u.port, path, method: 'POST', localAddress: from, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

/** Runs `n` calls of `fn`, `concurrency` at a time; their results in order. */
async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  }));
  return out;
}

const count = (statuses: number[], s: number) => statuses.filter((x) => x === s).length;

describe('hostile: typing, renames and group creation', () => {
  test('alternating typing true/false from one member reaches the others at most once per interval, and the latest state wins', async (t) => {
    const INTERVAL = 300;
    // The request budget is raised so that the typing throttle alone is measured here.
    const n = await startNode({ defaults: true, limits: { typingIntervalMs: INTERVAL, requestsPerSecond: 100_000, requestBurst: 100_000, userRequestsPerSecond: 100_000, userRequestBurst: 100_000 } });
    const sockets: RawSocket[] = [];
    try {
      const [a, ...others] = await Promise.all(Array.from({ length: 5 }, () => register(n.url, uname('ty'))));
      const g = await http(n.url, 'POST', '/v1/conversations', { name: 'typing', members: others.map((s) => s.user.username) }, a!.accessToken);
      const sa = await rawSocket(n.url);
      sockets.push(sa);
      await sa.hello(a!.accessToken);
      const receivers = await Promise.all(others.map(async (s) => {
        const r = await rawSocket(n.url);
        sockets.push(r);
        await r.hello(s.accessToken);
        return r;
      }));
      const t0 = Date.now();
      const FRAMES = 2000;
      for (let i = 0; i < FRAMES; i++) {
        sa.send({ type: 'typing', conversationId: g.body.id, typing: i % 2 === 0 });
        if (i % 100 === 99) await sleep(20); // spread over a few intervals
      }
      sa.send({ type: 'typing', conversationId: g.body.id, typing: true }); // the last state: typing
      const sentMs = Date.now() - t0;
      await sleep(3 * INTERVAL);
      const elapsed = Date.now() - t0;
      const per = receivers.map((r) => r.frames.filter((f) => f.type === 'typing'));
      const total = per.reduce((x, f) => x + f.length, 0);
      t.diagnostic(`${FRAMES + 1} frames over ${sentMs} ms became ${total} deliveries to ${receivers.length} members (${per[0]!.length} each) in ${elapsed} ms`);
      for (const frames of per) {
        assert.ok(frames.length >= 1 && frames.length <= Math.ceil(elapsed / INTERVAL) + 1, `${frames.length} typing frames in ${elapsed} ms`);
        const last = frames.at(-1)!;
        assert.ok(last.type === 'typing' && last.typing, 'the latest state (typing) is what they hold');
      }
      const errors = sa.frames.filter((f) => f.type === 'error');
      assert.deepEqual(errors, [], 'a member typing is never refused');
    } finally {
      for (const s of sockets) s.ws.terminate();
      await n.close();
    }
  });

  test('a flood of renames is refused past the changes budget; the members get a few coalesced views, not one per rename', async (t) => {
    const n = await startNode({ defaults: true });
    const sockets: RawSocket[] = [];
    try {
      const [owner, ...members] = await Promise.all(Array.from({ length: 12 }, () => register(n.url, uname('rn'))));
      const g = await http(n.url, 'POST', '/v1/conversations', { name: 'rename me', members: members.map((s) => s.user.username) }, owner!.accessToken);
      const rs = await Promise.all(members.map(async (s) => {
        const r = await rawSocket(n.url);
        sockets.push(r);
        await r.hello(s.accessToken);
        return r;
      }));
      const RENAMES = 200;
      const t0 = Date.now();
      const answers = await pool(RENAMES, 8, (i) => http(n.url, 'PATCH', `/v1/conversations/${g.body.id}`, { name: `name ${i}` }, owner!.accessToken));
      const elapsed = Date.now() - t0;
      const statuses = answers.map((x) => x.status);
      const accepted = count(statuses, 200);
      await sleep(1500); // the last coalesced view
      const views = rs.map((r) => r.frames.filter((f) => f.type === 'conversation' && f.change === 'updated').length);
      t.diagnostic(`${RENAMES} renames in ${elapsed} ms: ${accepted} accepted, ${count(statuses, 429)} refused; views per member ${Math.min(...views)}-${Math.max(...views)}`);
      assert.equal(accepted + count(statuses, 429), RENAMES, 'each rename was done or refused');
      const budget = DEFAULT_LIMITS.userChangeBurst + (elapsed / 60_000) * DEFAULT_LIMITS.userChangesPerMinute;
      assert.ok(accepted <= Math.ceil(budget) + 1, `${accepted} renames accepted, the budget allows ${budget.toFixed(1)}`);
      const refused = answers.find((x) => x.status === 429)!;
      assert.equal(refused.body.error.code, 'rate_limited');
      assert.ok(refused.body.error.retryAfterMs > 0);
      for (const v of views) assert.ok(v >= 1 && v <= Math.ceil(elapsed / 1000) + 2, `${v} views for ${accepted} renames in ${elapsed} ms`);
      // The latest name is what everyone holds.
      const latest = (await http(n.url, 'GET', `/v1/conversations/${g.body.id}`, undefined, owner!.accessToken)).body.name as string;
      for (const r of rs) {
        const last = r.frames.filter((f) => f.type === 'conversation').at(-1);
        assert.equal(last?.type === 'conversation' && last.conversation?.name, latest);
      }
    } finally {
      for (const s of sockets) s.ws.terminate();
      await n.close();
    }
  });

  test('1,000 group creations from one account, each adding a victim, are throttled', async (t) => {
    const n = await startNode({ defaults: true });
    try {
      const [spammer, victim] = await Promise.all([register(n.url, uname('sp')), register(n.url, uname('vi'))]);
      const t0 = Date.now();
      const statuses = (await pool(1000, 16, (i) => http(n.url, 'POST', '/v1/conversations', { name: `spam ${i}`, members: [victim.user.username] }, spammer.accessToken))).map((r) => r.status);
      const elapsed = Date.now() - t0;
      const created = count(statuses, 201);
      t.diagnostic(`1000 creations in ${elapsed} ms: ${created} created, ${count(statuses, 429)} refused`);
      assert.equal(created + count(statuses, 429), 1000);
      const budget = (DEFAULT_LIMITS.userChangeBurst + (elapsed / 60_000) * DEFAULT_LIMITS.userChangesPerMinute) / 3; // a group costs 3
      assert.ok(created <= Math.ceil(budget) + 1, `${created} groups created, the budget allows ${budget.toFixed(1)}`);
      const list = await http(n.url, 'GET', '/v1/conversations', undefined, victim.accessToken);
      assert.equal(list.body.conversations.length, created, 'the victim is in the groups that were created, no more');
    } finally {
      await n.close();
    }
  });
});

describe('hostile: writes that move nothing, and registration', () => {
  test('a flood of read frames that do not move the cursor makes no writes; the excess is refused; another client is served', async (t) => {
    const n = await startNode({ defaults: true });
    try {
      const [a, b] = await Promise.all([register(n.url, uname('rf')), register(n.url, uname('rg'))]);
      const dm = (await http(n.url, 'POST', '/v1/conversations/direct', { username: b.user.username }, a.accessToken)).body;
      await http(n.url, 'POST', `/v1/conversations/${dm.id}/messages`, { clientId: 'm1', text: 'hello' }, b.accessToken);
      const sa = await rawSocket(n.url);
      await sa.hello(a.accessToken);
      sa.send({ type: 'read', id: 'first', conversationId: dm.id, seq: 1 });
      await sa.next((f) => f.type === 'ok' && f.id === 'first');
      const before = await scrape(n.url);
      const FLOOD = 2000;
      for (let i = 0; i < FLOOD; i++) sa.send({ type: 'read', id: `r${i}`, conversationId: dm.id, seq: i % 2 });
      const other = await rawSocket(n.url);
      await other.hello(b.accessToken);
      other.send({ type: 'ping', id: 'alive' });
      await other.next((f) => f.type === 'pong');
      await sa.next((f) => (f.type === 'ok' || f.type === 'error') && f.id === `r${FLOOD - 1}`, 30_000);
      const after = await scrape(n.url);
      const writes = (after('confab_store_calls_total', { method: 'advanceReadCursor' }) ?? 0) - (before('confab_store_calls_total', { method: 'advanceReadCursor' }) ?? 0);
      const answered = sa.frames.filter((f): f is Extract<ServerFrame, { type: 'ok' }> => f.type === 'ok' && f.id.startsWith('r')).length;
      const refused = sa.frames.filter((f) => f.type === 'error' && f.code === 'rate_limited').length;
      t.diagnostic(`${FLOOD} reads that move nothing: ${answered} ok, ${refused} refused, ${writes} cursor writes`);
      assert.equal(writes, 0, 'no cursor write');
      assert.equal(answered + refused, FLOOD);
      assert.ok(answered <= DEFAULT_LIMITS.requestBurst + 50, `${answered} served: the per-connection request budget holds`);
      sa.ws.terminate();
      other.ws.terminate();
    } finally {
      await n.close();
    }
  });

  test('a registration flood against a taken name is refused without hashing; new names from one address are throttled, another address is not', async (t) => {
    const n = await startNode({ defaults: true });
    try {
      const taken = await register(n.url, uname('tk'));
      const hashes = async () => (await scrape(n.url))('confab_password_hashes_total', { op: 'hash' }) ?? 0;
      const before = await hashes();
      const statuses = (await pool(581, 16, () => http(n.url, 'POST', '/v1/auth/register', { username: taken.user.username, password: 'another password' }))).map((r) => r.status);
      const hashed = (await hashes()) - before;
      t.diagnostic(`581 registrations of a taken name: ${count(statuses, 409)} x 409, ${count(statuses, 429)} x 429, ${hashed} passwords hashed`);
      assert.equal(hashed, 0, 'no password was hashed');
      assert.equal(count(statuses, 409) + count(statuses, 429), 581);
      // New names from one address: the hourly allowance, then 429 with a wait.
      const fresh = await pool(60, 4, () => postFrom('127.0.0.2', n.url, '/v1/auth/register', { username: uname('nw'), password: 'a good password' }));
      const ok = count(fresh.map((r) => r.status), 201);
      t.diagnostic(`60 new registrations from 127.0.0.2: ${ok} created`);
      assert.ok(ok >= 1 && ok <= 20, `${ok} created: at most REGISTRATIONS_PER_ADDRESS (20) an hour`);
      const no = fresh.find((r) => r.status === 429)!;
      assert.equal(no.body.error.code, 'rate_limited');
      assert.ok(no.body.error.retryAfterMs > 0);
      // Another address is not affected (once the node-wide allowance, 20 a second, has refilled).
      await sleep(1500);
      assert.equal((await postFrom('127.0.0.3', n.url, '/v1/auth/register', { username: uname('ot'), password: 'a good password' })).status, 201);
    } finally {
      await n.close();
    }
  });

  test("a removed member's resend of an old client id is refused like any other send from a non-member", async () => {
    const n = await startNode({ defaults: true });
    try {
      const [owner, member] = await Promise.all([register(n.url, uname('ow')), register(n.url, uname('mb'))]);
      const g = (await http(n.url, 'POST', '/v1/conversations', { name: 'leaving', members: [member.user.username] }, owner.accessToken)).body;
      const sent = await http(n.url, 'POST', `/v1/conversations/${g.id}/messages`, { clientId: 'old-1', text: 'before removal' }, member.accessToken);
      assert.equal(sent.status, 201);
      await http(n.url, 'DELETE', `/v1/conversations/${g.id}/messages/${sent.body.message.messageId}`, { clientId: 'del-1' }, owner.accessToken);
      assert.equal((await http(n.url, 'DELETE', `/v1/conversations/${g.id}/members/${member.user.id}`, undefined, owner.accessToken)).status, 204);
      const again = await http(n.url, 'POST', `/v1/conversations/${g.id}/messages`, { clientId: 'old-1', text: 'before removal' }, member.accessToken);
      assert.equal(again.status, 403);
      assert.equal(again.body.error.code, 'forbidden');
      assert.ok(!JSON.stringify(again.body).includes(sent.body.message.messageId), 'nothing of the message comes back');
      const ws = await rawSocket(n.url);
      await ws.hello(member.accessToken);
      ws.send({ type: 'send', id: 's1', conversationId: g.id, clientId: 'old-1', text: 'before removal' });
      const err = await ws.next((f) => f.type === 'error' && f.id === 's1');
      assert.equal(err.type === 'error' && err.code, 'forbidden');
      ws.ws.terminate();
    } finally {
      await n.close();
    }
  });
});
