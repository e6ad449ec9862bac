// Protocol fuzzing with fast-check, against a real node over real sockets: more than 10,000
// random and mutated frames over several connections (authenticated and not): valid frames
// with mutated fields, random JSON, deep nesting, huge strings, `__proto__`/`constructor` keys,
// numbers at the extremes, binary frames and invalid UTF-8; then random REST bodies and
// queries. The node runs in a child process (fuzz-node.ts) that watches itself: no uncaught
// exception or unhandled rejection, no event-loop stall over 1 s (monitorEventLoopDelay there),
// nothing added to Object.prototype; and here: every WebSocket reply a well-formed server frame,
// every REST answer a documented error or a 2xx, and a normal client can still send and receive
// afterwards. The seed is printed on failure; FUZZ_SEED=n replays a run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import { CLIENT_FRAME_TYPES, ERROR_CODES, ServerFrame, type Session } from '@confab/protocol';
import { device, login } from './clients.js';
import type { FuzzNodeReport } from './fuzz-node.js';
import { http, register, uname } from './helpers.js';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const WS_FRAMES = 10_500;
const REST_REQUESTS = 900;
const MAX_FRAME = 16 * 1024;

// ---- generators -----------------------------------------------------------------------------

interface Ids { conversationId: string; messageId: string; userId: string; token: string }

const EXTREME_NUMBERS = ['1e309', '-1e309', '-0', '1e-400', '9007199254740993', '-9007199254740993', '9007199254740991', '-1', '0.5', '1.7976931348623157e308', '5e-324', '123456789012345678901234567890'];
const ODD_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', '\u0000', 'type'];

/** Valid client frames of every type, with ids from the fixture. */
function validFrame(ids: Ids): fc.Arbitrary<Record<string, unknown>> {
  const id = fc.string({ minLength: 1, maxLength: 8 });
  const seq = fc.nat({ max: 50 });
  const text = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' });
  const clientId = fc.stringMatching(/^[a-z0-9]{1,12}$/);
  const cid = fc.constantFrom(ids.conversationId, '01a2026d-7606-705c-bed7-fb9a4afb2868');
  const byType: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
    hello: fc.record({ type: fc.constant('hello'), v: fc.constant(1), token: fc.constantFrom(ids.token, 'x.y.z'), cursors: fc.option(fc.dictionary(cid, seq, { maxKeys: 2 }), { nil: undefined }) }),
    send: fc.record({ type: fc.constant('send'), id, conversationId: cid, clientId, text }),
    edit: fc.record({ type: fc.constant('edit'), id, conversationId: cid, messageId: fc.constant(ids.messageId), clientId, text }),
    delete: fc.record({ type: fc.constant('delete'), id, conversationId: cid, messageId: fc.constant(ids.messageId), clientId }),
    read: fc.record({ type: fc.constant('read'), id, conversationId: cid, seq }),
    sync: fc.record({ type: fc.constant('sync'), id, conversationId: cid, after: seq }),
    history: fc.record({ type: fc.constant('history'), id, conversationId: cid, before: fc.option(seq, { nil: undefined }), after: fc.option(seq, { nil: undefined }), limit: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }) }),
    ping: fc.record({ type: fc.constant('ping'), id: fc.option(id, { nil: undefined }) }),
    received: fc.record({ type: fc.constant('received'), conversationId: cid, seq }),
    typing: fc.record({ type: fc.constant('typing'), conversationId: cid, typing: fc.boolean() }),
    'presence.set': fc.record({ type: fc.constant('presence.set'), status: fc.constantFrom('online', 'away') }),
    'presence.watch': fc.record({ type: fc.constant('presence.watch'), id, userIds: fc.array(fc.constantFrom(ids.userId, '01a2026d-759c-72cf-bcf4-95578b9fbd3a'), { maxLength: 3 }) }),
  };
  for (const t of CLIENT_FRAME_TYPES) assert.ok(byType[t], `no generator for frame type ${t}`);
  return fc.oneof(...CLIENT_FRAME_TYPES.map((t) => byType[t]!));
}

/** A JSON text: a valid frame with one or more mutations. */
function mutatedFrame(ids: Ids): fc.Arbitrary<string> {
  const mutation = fc.oneof(
    fc.record({ op: fc.constant('set' as const), key: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('type', 'id', 'conversationId', 'text', 'seq', 'v', 'token', 'cursors', 'userIds', 'limit', 'after')), value: fc.jsonValue({ maxDepth: 3 }) }),
    fc.record({ op: fc.constant('drop' as const), index: fc.nat() }),
    fc.record({ op: fc.constant('number' as const), key: fc.constantFrom('seq', 'after', 'before', 'limit', 'v', 'id', 'text', 'type'), raw: fc.constantFrom(...EXTREME_NUMBERS) }),
    fc.record({ op: fc.constant('type' as const), type: fc.oneof(fc.constantFrom(...CLIENT_FRAME_TYPES), fc.string({ maxLength: 12 })) }),
    fc.record({ op: fc.constant('odd-key' as const), key: fc.constantFrom(...ODD_KEYS), value: fc.jsonValue({ maxDepth: 2 }) }),
  );
  return fc.tuple(validFrame(ids), fc.array(mutation, { minLength: 0, maxLength: 3 })).map(([frame, muts]) => {
    const f: Record<string, unknown> = { ...frame };
    const raws: string[] = [];
    const prefix: string[] = [];
    for (const m of muts) {
      if (m.op === 'set') f[m.key] = m.value;
      else if (m.op === 'drop') { const keys = Object.keys(f); if (keys.length) delete f[keys[m.index % keys.length]!]; }
      else if (m.op === 'number') { f[m.key] = `@@RAW${raws.length}@@`; raws.push(m.raw); }
      else if (m.op === 'type') f.type = m.type;
      else prefix.push(`${JSON.stringify(m.key)}:${JSON.stringify(m.value)}`);
    }
    let text = JSON.stringify(f);
    raws.forEach((r, i) => { text = text.replace(`"@@RAW${i}@@"`, r); });
    if (prefix.length) text = `{${prefix.join(',')}${text.length > 2 ? ',' : ''}${text.slice(1)}`;
    return text;
  });
}

type Wire = { kind: 'text'; data: string } | { kind: 'bytes'; data: Buffer; binary: boolean };

/** Everything the fuzzer sends on a WebSocket. */
function wireFrame(ids: Ids): fc.Arbitrary<Wire> {
  const text = (a: fc.Arbitrary<string>) => a.map((data): Wire => ({ kind: 'text', data }));
  const deep = fc.tuple(fc.integer({ min: 100, max: 5000 }), fc.constantFrom('[', '{"a":'), fc.boolean()).map(([n, open, closeIt]) => {
    const close = open === '[' ? ']' : '}';
    const inner = `${open.repeat(n)}1${closeIt ? close.repeat(n) : ''}`;
    return `{"type":"send","id":"deep","conversationId":${JSON.stringify(ids.conversationId)},"clientId":"d","text":${inner}}`;
  });
  const huge = fc.tuple(fc.constantFrom(MAX_FRAME - 200, MAX_FRAME + 10, MAX_FRAME * 3, MAX_FRAME * 5), fc.constantFrom('a', 'é', '😀', '\\u0000', '\\ud800')).map(([n, unit]) =>
    `{"type":"send","id":"huge","conversationId":${JSON.stringify(ids.conversationId)},"clientId":"h","text":"${unit.repeat(Math.max(1, Math.floor(n / Buffer.byteLength(unit))))}"}`);
  const invalidUtf8 = fc.tuple(fc.constantFrom(
    [0xff], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0x80], [0xfe, 0xfe],
  ), fc.nat({ max: 20 })).map(([bad, at]): Wire => {
    const base = Buffer.from(`{"type":"ping","id":"u${at}"}`);
    const i = Math.min(at, base.length);
    return { kind: 'bytes', binary: false, data: Buffer.concat([base.subarray(0, i), Buffer.from(bad), base.subarray(i)]) };
  });
  const binary = fc.uint8Array({ maxLength: 256 }).map((b): Wire => ({ kind: 'bytes', binary: true, data: Buffer.from(b) }));
  return fc.oneof(
    { weight: 30, arbitrary: text(mutatedFrame(ids)) },
    { weight: 8, arbitrary: text(validFrame(ids).map((f) => JSON.stringify(f))) },
    { weight: 10, arbitrary: text(fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v))) },
    { weight: 6, arbitrary: text(fc.string({ maxLength: 64, unit: 'binary' })) },
    { weight: 2, arbitrary: text(deep) },
    { weight: 1, arbitrary: text(huge) },
    { weight: 4, arbitrary: invalidUtf8 },
    { weight: 4, arbitrary: binary },
  );
}

interface RestRequest { method: string; path: string; text: string | undefined; contentType: string | undefined }

/** REST requests to a few routes: valid bodies, mutated ones, garbage, odd queries. */
function restRequests(ids: Ids, a: Session, b: Session): fc.Arbitrary<RestRequest> {
  const cid = ids.conversationId;
  const routes: { method: string; path: string; valid: fc.Arbitrary<unknown> }[] = [
    { method: 'POST', path: `/v1/conversations/${cid}/messages`, valid: fc.record({ clientId: fc.stringMatching(/^[a-z0-9]{1,10}$/), text: fc.string({ minLength: 1, maxLength: 20 }) }) },
    { method: 'POST', path: '/v1/conversations', valid: fc.record({ name: fc.string({ minLength: 1, maxLength: 20 }), members: fc.array(fc.constantFrom(b.user.username, 'nobody'), { maxLength: 3 }) }) },
    { method: 'POST', path: '/v1/conversations/direct', valid: fc.record({ username: fc.constantFrom(b.user.username, 'nobody', a.user.username) }) },
    { method: 'POST', path: `/v1/conversations/${cid}/read`, valid: fc.record({ seq: fc.nat({ max: 10 }) }) },
    { method: 'PATCH', path: '/v1/me', valid: fc.record({ hideLastSeen: fc.boolean() }) },
    { method: 'PATCH', path: `/v1/conversations/${cid}`, valid: fc.record({ name: fc.string({ minLength: 1, maxLength: 20 }) }) },
    { method: 'POST', path: `/v1/conversations/${cid}/members`, valid: fc.record({ members: fc.array(fc.constantFrom(b.user.username, 'nobody'), { minLength: 1, maxLength: 2 }) }) },
  ];
  const body = (valid: fc.Arbitrary<unknown>) => fc.oneof(
    valid.map((v) => JSON.stringify(v)),
    fc.tuple(valid, fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 })).map(([v, k, x]) => JSON.stringify({ ...(v as object), [k]: x })),
    fc.tuple(valid, fc.constantFrom(...EXTREME_NUMBERS)).map(([v, n]) => JSON.stringify(v).replace(/:("[^"]*"|true|false|\d+)/, `:${n}`)),
    fc.tuple(valid, fc.constantFrom('__proto__', 'constructor')).map(([v, k]) => `{"${k}":{"isAdmin":true},${JSON.stringify(v).slice(1)}`),
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 100, unit: 'binary' }),
    fc.integer({ min: 50, max: 3000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
    fc.constantFrom('', '{', 'null', '"x"', '{"text":"' + 'x'.repeat(MAX_FRAME + 10) + '"}'),
  );
  const query = fc.oneof(
    fc.record({ before: fc.oneof(fc.nat().map(String), fc.constantFrom(...EXTREME_NUMBERS), fc.string({ maxLength: 8 })), limit: fc.oneof(fc.nat().map(String), fc.constantFrom(...EXTREME_NUMBERS), fc.string({ maxLength: 8 })) }).map((q) => `?before=${encodeURIComponent(q.before)}&limit=${encodeURIComponent(q.limit)}`),
    fc.string({ maxLength: 40 }).map((s) => `?${encodeURIComponent(s)}=${encodeURIComponent(s)}&after=${encodeURIComponent(s)}`),
    fc.constantFrom('?after=1&after=2', '?limit[]=1', '?__proto__[x]=1', '?constructor[prototype][x]=1', '?users=' + 'a,'.repeat(30_000)),
  );
  const requests: fc.Arbitrary<RestRequest> = fc.oneof(
    { weight: 5, arbitrary: fc.tuple(fc.constantFrom(...routes), fc.constant(null)).chain(([r]) => body(r.valid).map((text) => ({ method: r.method, path: r.path, text, contentType: 'application/json' }))) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...routes), fc.string({ maxLength: 40 }), fc.constantFrom('text/plain', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', 'multipart/form-data')).map(([r, text, contentType]) => ({ method: r.method, path: r.path, text, contentType })) },
    { weight: 2, arbitrary: query.map((q) => ({ method: 'GET', path: `/v1/conversations/${cid}/messages${q}`, text: undefined, contentType: undefined })) },
    { weight: 1, arbitrary: query.map((q) => ({ method: 'GET', path: `/v1/presence${q}`, text: undefined, contentType: undefined })) },
  );
  return requests;
}

// ---- a fuzzing connection -----------------------------------------------------------------

class FuzzConn {
  ws!: WebSocket;
  readonly bad: string[] = [];
  replies = 0;
  /** Reply types, and error codes as `error:<code>`, seen. */
  readonly seen = new Set<string>();
  reconnects = 0;
  closes = new Map<number, number>();
  #marks = new Map<string, () => void>();
  #open!: Promise<void>;

  constructor(private readonly url: string, private readonly token: string | undefined) {}

  async connect(): Promise<void> {
    this.ws = new WebSocket(`${this.url.replace(/^http/, 'ws')}/v1/ws`, { maxPayload: 64 * 1024 * 1024 });
    const ws = this.ws;
    let welcomed!: () => void;
    const welcome = new Promise<void>((r) => { welcomed = r; });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.replies++;
      if (isBinary) { this.bad.push('a binary frame from the server'); return; }
      let f: unknown;
      try {
        f = JSON.parse(data.toString('utf8'));
      } catch {
        this.bad.push(`not JSON: ${data.toString('utf8').slice(0, 200)}`);
        return;
      }
      const r = ServerFrame.safeParse(f);
      if (!r.success) this.bad.push(`not a server frame: ${JSON.stringify(f).slice(0, 300)} ${JSON.stringify(r.error.issues).slice(0, 300)}`);
      const frame = f as { type?: string; id?: string; code?: string };
      this.seen.add(frame.type === 'error' ? `error:${frame.code}` : String(frame.type));
      if (frame.type === 'welcome') welcomed();
      if (typeof frame.id === 'string') this.#marks.get(frame.id)?.();
    });
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
      for (const done of this.#marks.values()) done();
      welcomed();
    });
    this.#open = new Promise<void>((resolve) => { ws.once('open', () => resolve()); ws.once('close', () => resolve()); });
    await this.#open;
    if (this.token && ws.readyState === ws.OPEN) {
      ws.send(JSON.stringify({ type: 'hello', v: 1, token: this.token }));
      await welcome;
    }
  }

  /** Sends what it can; reconnects first if the node closed the socket. Returns whether it was sent. */
  async send(w: Wire): Promise<boolean> {
    if (this.ws.readyState !== this.ws.OPEN) {
      this.reconnects++;
      await this.connect();
      if (!this.isOpen()) return false;
    }
    if (w.kind === 'text') this.ws.send(w.data);
    else this.ws.send(w.data, { binary: w.binary });
    return true;
  }

  /** A ping behind what was sent; resolves on its answer (a pong, or an error before hello) or on close. */
  mark(id: string, timeoutMs = 15_000): Promise<boolean> {
    if (this.ws.readyState !== this.ws.OPEN) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.#marks.delete(id); resolve(false); }, timeoutMs);
      this.#marks.set(id, () => { clearTimeout(timer); this.#marks.delete(id); resolve(true); });
      this.ws.send(JSON.stringify({ type: 'ping', id }));
    });
  }

  isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close(): void {
    this.ws.terminate();
  }
}

// ---- the run ------------------------------------------------------------------------------

/** The node under test, in a child process (see fuzz-node.ts). */
class FuzzNode {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  url = '';

  constructor() {
    this.child = fork(fileURLToPath(new URL('./fuzz-node.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  #ask<T>(message: unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.child.once('message', (m) => resolve(m as T));
      void this.exited.then((code) => reject(new Error(`the node process exited (${code})`)));
      this.child.send(message as object);
    });
  }

  async start(limits: object): Promise<void> {
    this.url = (await this.#ask<{ url: string }>({ type: 'start', limits })).url;
  }

  report(): Promise<FuzzNodeReport> {
    return this.#ask({ type: 'report' });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) this.child.send({ type: 'stop' });
    await this.exited;
  }
}

describe(`protocol fuzzing (seed ${SEED}; replay with FUZZ_SEED=${SEED})`, () => {
  let node: FuzzNode;
  let a: Session;
  let b: Session;
  let ids: Ids;
  let wire: Wire[];
  let rest: RestRequest[];

  before(async () => {
    node = new FuzzNode();
    await node.start({ maxFrameBytes: MAX_FRAME, maxMessageBytes: 4096, helloTimeoutMs: 60_000 });
    [a, b] = await Promise.all([register(node.url, uname('fza')), register(node.url, uname('fzb'))]);
    const g = await http(node.url, 'POST', '/v1/conversations', { name: 'fuzz', members: [b.user.username] }, a.accessToken);
    const m = await http(node.url, 'POST', `/v1/conversations/${g.body.id}/messages`, { clientId: 'seed', text: 'seed' }, a.accessToken);
    ids = { conversationId: g.body.id, messageId: m.body.message.messageId, userId: b.user.id, token: a.accessToken };
    wire = fc.sample(wireFrame(ids), { numRuns: WS_FRAMES + 400, seed: SEED });
    rest = fc.sample(restRequests(ids, a, b), { numRuns: REST_REQUESTS, seed: SEED });
  });

  after(async () => {
    await node.stop();
  });

  test(`${WS_FRAMES} random and mutated frames over 4 connections`, { timeout: 120_000 }, async () => {
    const conns = [new FuzzConn(node.url, a.accessToken), new FuzzConn(node.url, b.accessToken), new FuzzConn(node.url, undefined), new FuzzConn(node.url, undefined)];
    await Promise.all(conns.map((c) => c.connect()));
    let sent = 0;
    let round = 0;
    let next = 0;
    while (sent < WS_FRAMES && next < wire.length) {
      const batch = wire.slice(next, next + 200);
      next += batch.length;
      round++;
      await Promise.all(conns.map(async (c, ci) => {
        for (let i = ci; i < batch.length; i += conns.length) if (await c.send(batch[i]!)) sent++;
        await c.mark(`mark-${round}-${ci}`);
      }));
    }
    const bad = conns.flatMap((c) => c.bad);
    assert.deepEqual(bad.slice(0, 5), [], `seed ${SEED}: ill-formed replies`);
    assert.ok(conns.reduce((n, c) => n + c.replies, 0) > WS_FRAMES / 2, 'the node answered');
    // The run reached what it is meant to reach: each kind of refusal, and real work.
    const seen = new Set(conns.flatMap((c) => [...c.seen]));
    for (const want of ['ack', 'history.result', 'pong', 'presence', 'error:bad_json', 'error:bad_request', 'error:unknown_type', 'error:invalid_utf8', 'error:binary_not_supported', 'error:frame_too_large', 'error:not_authenticated']) {
      assert.ok(seen.has(want), `no ${want} in the whole run: ${[...seen].join(' ')}`);
    }
    const closes = new Set(conns.flatMap((c) => [...c.closes.keys()]));
    assert.ok(closes.has(1009), `closes seen: ${[...closes].join(' ')}`);
    for (const c of conns) c.close();
    assert.ok(sent >= 10_000, `sent ${sent}`);
  });

  test(`${REST_REQUESTS} random REST bodies and queries`, { timeout: 60_000 }, async () => {
    const samples = rest;
    const problems: string[] = [];
    // A few at a time: enough to overlap, not so many that one slow answer is mistaken for a hang.
    for (let i = 0; i < samples.length; i += 8) {
      await Promise.all(samples.slice(i, i + 8).map(async (s) => {
        const headers: Record<string, string> = { authorization: `Bearer ${a.accessToken}` };
        if (s.contentType) headers['content-type'] = s.contentType;
        const res = await fetch(node.url + s.path, { method: s.method, headers, body: s.text, signal: AbortSignal.timeout(20_000) });
        const text = await res.text();
        const what = `${s.method} ${s.path.slice(0, 80)} ${String(s.text).slice(0, 120)} -> ${res.status} ${text.slice(0, 200)}`;
        if (res.status >= 500) { problems.push(`5xx: ${what}`); return; }
        let parsed: any;
        try { parsed = text ? JSON.parse(text) : undefined; } catch { problems.push(`not JSON: ${what}`); return; }
        if (res.status >= 400) {
          const code = parsed?.error?.code as keyof typeof ERROR_CODES | undefined;
          if (!code || !(code in ERROR_CODES) || typeof parsed.error.message !== 'string') problems.push(`not an error body: ${what}`);
          else if (ERROR_CODES[code].status !== res.status) problems.push(`status ${res.status} for ${code}: ${what}`);
        }
      }));
    }
    assert.deepEqual(problems.slice(0, 5), [], `seed ${SEED}`);
  });

  // Found by this fuzzer: Node's HTTP parser refused these before any route ran, and the answer
  // was the framework's own JSON, not the protocol's error shape.
  test('regression: oversized headers get 431 headers_too_large, a malformed request 400 bad_request, in the protocol\'s shape', async () => {
    const long = await fetch(`${node.url}/v1/presence?users=${'a,'.repeat(20_000)}`, { headers: { authorization: `Bearer ${a.accessToken}` } });
    assert.equal(long.status, 431);
    assert.equal(((await long.json()) as { error: { code: string } }).error.code, 'headers_too_large');
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(new URL(node.url).port), '127.0.0.1', () => sock.write('GET /v1/me HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'));
      let out = '';
      sock.on('data', (d) => { out += d.toString(); });
      sock.on('close', () => resolve(out));
      sock.on('error', reject);
    });
    assert.match(raw, /^HTTP\/1.1 400 /);
    assert.deepEqual(Object.keys((JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { error: object }).error).sort(), ['code', 'message']);
    assert.equal((JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { error: { code: string } }).error.code, 'bad_request');
  });

  test('afterwards: no crash, no unhandled error, no stall, nothing polluted, and a normal client still works', async () => {
    assert.equal(node.child.exitCode, null, 'the node process is alive');
    const report = await node.report();
    assert.deepEqual(report.faults, [], `seed ${SEED}`);
    assert.ok(report.maxDelayMs < 1000, `seed ${SEED}: the node's event loop stalled for ${report.maxDelayMs.toFixed(0)} ms`);
    assert.deepEqual(report.prototypeKeys, [], 'Object.prototype was polluted in the node');
    const [x, y] = await Promise.all([register(node.url, uname('fzx')), register(node.url, uname('fzy'))]);
    const dx = await device(node.url, x);
    const dy = await device(node.url, await login(node.url, y.user.username));
    try {
      const chat = await dx.api.direct(y.user.username);
      const sent = await dx.client.send(chat.id, 'still alive');
      const [got] = await dy.waitFor(chat.id, 1);
      assert.equal(got?.messageId, sent.messageId);
      assert.equal(got?.text, 'still alive');
    } finally {
      await Promise.all([dx.client.close(), dy.client.close()]);
    }
  });
});
