// Bad input: malformed JSON, unknown frame type, oversize frame, wrong field types, huge
// numbers, invalid UTF-8, a flood past the rate limit, unknown user or conversation: each gets
// its documented error; the server keeps serving everyone else; nothing partial is stored.
// Drives a raw `ws` socket (not the SDK) so the bytes on the wire are exactly the test's.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { ERROR_CODES, type Message, type Session } from '@confab/protocol';
import { http, register, startNode, type TestNode } from './helpers.js';

const DOCS = fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url));
const WAIT_MS = 10_000;
/** Every error code this file saw the server produce. */
const produced = new Set<string>();

type Frame = Record<string, any> & { type: string };

/** A raw WebSocket with a buffer of received frames and bounded waits on them. */
class Raw {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: { pred: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('error', () => undefined); // a close follows; a write after the peer closed is not a test failure
    ws.on('message', (data, isBinary) => {
      assert.equal(isBinary, false, 'the server only sends text frames');
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      const f = JSON.parse(buf.toString('utf8')) as Frame;
      const i = this.#waiters.findIndex((w) => w.pred(f));
      if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(f);
      else this.frames.push(f);
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static open(url: string): Promise<Raw> {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`, { perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new Raw(ws)));
      ws.once('error', reject);
    });
  }

  static async authed(url: string, token: string): Promise<Raw> {
    const r = await Raw.open(url);
    r.json({ type: 'hello', v: 1, token });
    const w = await r.next((f) => f.type === 'welcome' || f.type === 'error', 'welcome');
    assert.equal(w.type, 'welcome', JSON.stringify(w));
    return r;
  }

  json(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  raw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** The first buffered or future frame matching `pred` (removed from the buffer). */
  next(pred: (f: Frame) => boolean, what: string, timeoutMs = WAIT_MS): Promise<Frame> {
    const i = this.frames.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]!);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (f: Frame) => { clearTimeout(timer); resolve(f); } };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        reject(new Error(`no ${what} within ${timeoutMs} ms; buffered: ${JSON.stringify(this.frames).slice(0, 500)}`));
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  error(what: string): Promise<Frame> {
    return this.next((f) => f.type === 'error', `error frame (${what})`);
  }

  /** Waits for the close and returns its code. */
  async closeCode(): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('the server did not close the connection')), WAIT_MS); });
    try {
      return (await Promise.race([this.closed, timeout])).code;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await this.closed;
  }
}

/** Asserts an error frame's shape and code (and `id` echo: undefined means no id). */
function assertErrorFrame(e: Frame, code: string, id?: string): void {
  assert.equal(e.type, 'error');
  assert.equal(e.code, code, `expected ${code}, got ${JSON.stringify(e)}`);
  assert.equal(e.id, id, `error id: ${JSON.stringify(e)}`);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  produced.add(code);
}

/** Asserts a REST error: status, `{error: {code, message}}`. */
function assertHttpError(r: { status: number; body: any }, status: number, code: string): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.ok(r.body && typeof r.body === 'object' && r.body.error && typeof r.body.error === 'object', `error body: ${JSON.stringify(r.body)}`);
  assert.equal(r.body.error.code, code, JSON.stringify(r.body));
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 0);
  assert.equal(ERROR_CODES[code as keyof typeof ERROR_CODES].status, status, 'status is the registry one');
  produced.add(code);
}

const nodes: TestNode[] = [];
const sockets: Raw[] = [];
after(async () => {
  await Promise.all(sockets.map((s) => s.close()));
  await Promise.all(nodes.map((n) => n.close()));
});

async function node(limits: Parameters<typeof startNode>[0] = {}): Promise<TestNode> {
  const n = await startNode(limits);
  nodes.push(n);
  return n;
}

async function connect(url: string, token: string): Promise<Raw> {
  const r = await Raw.authed(url, token);
  sockets.push(r);
  return r;
}

async function openRaw(url: string): Promise<Raw> {
  const r = await Raw.open(url);
  sockets.push(r);
  return r;
}

async function readAll(url: string, token: string, cid: string): Promise<Message[]> {
  const all: Message[] = [];
  let after = 0;
  for (let page = 0; page < 1000; page++) {
    const r = await http(url, 'GET', `/v1/conversations/${cid}/messages?after=${after}&limit=200`, undefined, token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    all.push(...(r.body.messages as Message[]));
    if (!r.body.hasMore) return all;
    after = all[all.length - 1]!.seq;
  }
  throw new Error('history did not end');
}

// ---- one node, one misbehaving connection (alice), one well-behaved member (bob) -----------

let main: TestNode;
let alice: Session;
let bob: Session;
let carol: Session;
let group: string; // alice + bob
let foreign: string; // bob + carol: alice is not a member
let aws: Raw; // alice's connection, the one that misbehaves
let bws: Raw; // bob's connection, which must keep receiving
/** The entries the valid sends created, in order: history must be exactly these. */
const valid: Message[] = [];
let okCounter = 0;

/** A valid send on alice's connection is acked, gets the next seq, and bob receives it live. */
async function stillServes(ws: Raw = aws, text = `still here ${okCounter}`): Promise<Message> {
  const id = `ok${okCounter++}`;
  ws.json({ type: 'send', id, conversationId: group, clientId: `cid-${id}`, text });
  const ack = await ws.next((f) => (f.type === 'ack' || f.type === 'error') && f.id === id, `ack of ${id}`);
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  assert.equal(ack.duplicate, false);
  assert.equal(ack.message.text, text);
  valid.push(ack.message);
  assert.equal(ack.message.seq, valid.length, 'seq stays gap-free: no bad frame took a seq');
  const live = await bws.next((f) => f.type === 'message' && f.message.seq === ack.message.seq, `bob's live copy of seq ${ack.message.seq}`);
  assert.equal(live.message.messageId, ack.message.messageId);
  return ack.message;
}

/** Sends one bad frame on alice's connection, checks the error, then that the connection still serves. */
async function bad(data: string | Buffer, code: string, opts: { id?: string; binary?: boolean } = {}): Promise<Frame> {
  aws.raw(data, opts.binary ?? false);
  const e = await aws.error(code);
  assertErrorFrame(e, code, opts.id);
  await stillServes();
  return e;
}

before(async () => {
  // The rate limit has its own node below; here every valid send must go through.
  main = await node({ limits: { sendsPerSecond: 100_000, sendBurst: 100_000 } });
  [alice, bob, carol] = await Promise.all([register(main.url), register(main.url), register(main.url)]);
  const g = await http(main.url, 'POST', '/v1/conversations', { name: 'bad input', members: [bob.user.username] }, alice.accessToken);
  assert.equal(g.status, 201, JSON.stringify(g.body));
  group = g.body.id;
  const d = await http(main.url, 'POST', '/v1/conversations/direct', { username: carol.user.username }, bob.accessToken);
  assert.equal(d.status, 200, JSON.stringify(d.body));
  foreign = d.body.id;
  aws = await connect(main.url, alice.accessToken);
  bws = await connect(main.url, bob.accessToken);
});

describe('WebSocket: bad frames on an authenticated connection', () => {
  test('malformed JSON gets bad_json', async () => {
    for (const text of ['{"type":"send",', '', 'nul', '{"type":"ping"}garbage', "{'type':'ping'}", '{"type":"ping",}', `{"type":"read","id":"n1","conversationId":"${group}","seq":NaN}`]) {
      await bad(text, 'bad_json');
    }
  });

  test('an unknown or missing frame type gets unknown_type, with the request id echoed when readable', async () => {
    await bad(JSON.stringify({ type: 'nope', id: 'u1' }), 'unknown_type', { id: 'u1' });
    await bad(JSON.stringify({ type: 'SEND', id: 'u2', conversationId: group, clientId: 'x', text: 'x' }), 'unknown_type', { id: 'u2' });
    await bad(JSON.stringify({ type: 'constructor', id: 'u3' }), 'unknown_type', { id: 'u3' });
    await bad(JSON.stringify({ type: 'toString' }), 'unknown_type');
    await bad(JSON.stringify({ type: 5, id: 'u4' }), 'unknown_type', { id: 'u4' });
    await bad(JSON.stringify({ id: 'u5' }), 'unknown_type', { id: 'u5' });
    await bad(JSON.stringify({ type: 'x'.repeat(10_000) }), 'unknown_type');
    for (const text of ['null', '42', '"send"', '[]', '[{"type":"ping"}]', 'true']) await bad(text, 'unknown_type');
  });

  test('a frame over maxFrameBytes (but under 4x) gets frame_too_large and is not processed', async () => {
    const max = 64 * 1024;
    const pad = (total: number) => {
      const head = JSON.stringify({ type: 'send', id: 'big', conversationId: group, clientId: `big-${total}`, text: '' });
      return head.replace('"text":""', `"text":"${'a'.repeat(total - head.length)}"`);
    };
    assert.equal(Buffer.byteLength(pad(max + 1)), max + 1);
    await bad(pad(max + 1), 'frame_too_large');
    await bad(pad(3 * max), 'frame_too_large');
    await bad(Buffer.alloc(4 * max, 0x20), 'frame_too_large'); // exactly 4x: still an error frame
  });

  test('wrong field types get bad_request with details naming the fields', async () => {
    const cases: { frame: Record<string, unknown>; paths: string[] }[] = [
      { frame: { type: 'send', id: 'w1', conversationId: group, clientId: 5, text: 42 }, paths: ['clientId', 'text'] },
      { frame: { type: 'send', id: 'w2', conversationId: 'not-a-uuid', clientId: 'c', text: 'x' }, paths: ['conversationId'] },
      { frame: { type: 'send', id: 'w3', conversationId: group, clientId: 'has space', text: 'x' }, paths: ['clientId'] },
      { frame: { type: 'send', id: 'w4', conversationId: group, clientId: 'é', text: 'x' }, paths: ['clientId'] },
      { frame: { type: 'send', id: 'w5', conversationId: group, clientId: 'c'.repeat(65), text: 'x' }, paths: ['clientId'] },
      { frame: { type: 'send', id: 'w6', conversationId: group, clientId: 'c', text: '' }, paths: ['text'] },
      { frame: { type: 'send', id: 'w7', conversationId: group, clientId: 'c', text: ['x'] }, paths: ['text'] },
      { frame: { type: 'send', id: 'w8', conversationId: group, clientId: 'c' }, paths: ['text'] },
      { frame: { type: 'send', id: 'w9', conversationId: null, clientId: 'c', text: { x: 1 } }, paths: ['conversationId', 'text'] },
      { frame: { type: 'edit', id: 'w10', conversationId: group, messageId: 7, clientId: 'c', text: 'x' }, paths: ['messageId'] },
      { frame: { type: 'history', id: 'w11', conversationId: group, limit: 'ten' }, paths: ['limit'] },
      { frame: { type: 'ping', id: 17 }, paths: ['id'] },
    ];
    for (const { frame, paths } of cases) {
      const id = typeof frame.id === 'string' ? frame.id : undefined;
      const e = await bad(JSON.stringify(frame), 'bad_request', id === undefined ? {} : { id });
      assert.ok(Array.isArray(e.details) && e.details.length > 0, `details: ${JSON.stringify(e)}`);
      for (const d of e.details) assert.ok(typeof d.path === 'string' && typeof d.message === 'string', JSON.stringify(d));
      for (const p of paths) assert.ok(e.details.some((d: { path: string }) => d.path === p), `details name ${p}: ${JSON.stringify(e.details)}`);
    }
    // A request id that is not a valid id cannot be echoed.
    const e = await bad(JSON.stringify({ type: 'send', id: 'i'.repeat(65), conversationId: group, clientId: 'c', text: 'x' }), 'bad_request');
    assert.ok(e.details.some((d: { path: string }) => d.path === 'id'));
  });

  test('huge, negative, fractional and non-finite numbers get bad_request', async () => {
    const read = (seq: string, id: string) => `{"type":"read","id":"${id}","conversationId":"${group}","seq":${seq}}`;
    const cases: [string, string][] = [
      [read('1e300', 'h1'), 'h1'],
      [read(String(2 ** 60), 'h2'), 'h2'],
      [read('9007199254740992', 'h3'), 'h3'], // MAX_SAFE_INTEGER + 1
      [read('-1', 'h4'), 'h4'],
      [read('1.5', 'h5'), 'h5'],
      [read('1e400', 'h6'), 'h6'], // parses to Infinity
      [read('-1e400', 'h7'), 'h7'],
      [read('"5"', 'h8'), 'h8'],
      [`{"type":"sync","id":"h9","conversationId":"${group}","after":${2 ** 60}}`, 'h9'],
      [`{"type":"sync","id":"h10","conversationId":"${group}","after":-1}`, 'h10'],
      [`{"type":"history","id":"h11","conversationId":"${group}","limit":1e9}`, 'h11'],
      [`{"type":"history","id":"h12","conversationId":"${group}","limit":0}`, 'h12'],
      [`{"type":"history","id":"h13","conversationId":"${group}","before":1e300}`, 'h13'],
      [`{"type":"history","id":"h14","conversationId":"${group}","after":-5}`, 'h14'],
    ];
    for (const [frame, id] of cases) {
      const e = await bad(frame, 'bad_request', { id });
      assert.ok(Array.isArray(e.details) && e.details.length > 0);
    }
    // A seq that is a valid number but past the end of the log is seq_out_of_range, not a crash.
    const last = valid[valid.length - 1]!.seq;
    aws.json({ type: 'sync', id: 'h15', conversationId: group, after: Number.MAX_SAFE_INTEGER });
    assertErrorFrame(await aws.error('seq_out_of_range'), 'seq_out_of_range', 'h15');
    aws.json({ type: 'read', id: 'h16', conversationId: group, seq: Number.MAX_SAFE_INTEGER });
    assertErrorFrame(await aws.error('seq_out_of_range (read)'), 'seq_out_of_range', 'h16');
    assert.equal(valid[valid.length - 1]!.seq, last);
    await stillServes();
  });

  test('invalid UTF-8 in a text frame gets invalid_utf8, and the frame is not processed', async () => {
    await bad(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'invalid_utf8');
    // A well-formed send whose text holds invalid bytes: rejected whole, nothing stored.
    const send = (bytes: number[], n: number) => Buffer.concat([
      Buffer.from(`{"type":"send","id":"bad-utf8-${n}","conversationId":"${group}","clientId":"bad-utf8-${n}","text":"ok `),
      Buffer.from(bytes),
      Buffer.from(' ok"}'),
    ]);
    const invalid = [
      [0xc3], // truncated 2-byte sequence
      [0xc0, 0xaf], // overlong '/'
      [0xed, 0xa0, 0x80], // UTF-16 surrogate encoded in UTF-8
      [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
      [0x80], // lone continuation byte
      [0xe2, 0x82], // truncated 3-byte sequence
    ];
    for (let i = 0; i < invalid.length; i++) await bad(send(invalid[i]!, i), 'invalid_utf8');
    // Truncated at the very end of the frame.
    await bad(Buffer.from([...Buffer.from('{"type":"ping"} '), 0xf0, 0x9f, 0x98]), 'invalid_utf8');
    // The same bytes correctly encoded are fine (multi-byte text round-trips exactly).
    const m = await stillServes(aws, 'ok é € 😀 ok');
    assert.equal(m.text, 'ok é € 😀 ok');
  });

  test('text with lone surrogates (valid JSON escapes, not Unicode) gets bad_request; no mangled or oversize text is stored', async () => {
    // "\ud800" is valid JSON and valid UTF-8 on the wire, but no UTF-8 can store it: the store
    // would keep other text than the ack showed, and 8192 of them count as 16 KiB but read back
    // as 72 KiB of U+FFFD.
    const cases = ['a\\ud800b', '\\udc00', 'x\\ude00\\ud83d', '\\ud800'.repeat(8192)];
    for (const [i, escaped] of cases.entries()) {
      const id = `sur${i}`;
      aws.raw(`{"type":"send","id":"${id}","conversationId":"${group}","clientId":"sur-${i}","text":"${escaped}"}`);
      const e = await aws.next((f) => f.id === id, `answer to ${id}`);
      assertErrorFrame(e, 'bad_request', id);
      assert.ok(e.details?.some((d: { path: string }) => d.path === 'text'), JSON.stringify(e));
      await stillServes();
    }
    const r = await http(main.url, 'POST', `/v1/conversations/${group}/messages`, `{"clientId":"sur-rest","text":"a\\ud800"}`, alice.accessToken);
    assertHttpError(r, 400, 'bad_request');
    // A proper surrogate pair written as escapes is fine and reads back the same.
    aws.raw(`{"type":"send","id":"pair","conversationId":"${group}","clientId":"pair","text":"\\ud83d\\ude00"}`);
    const ack = await aws.next((f) => f.id === 'pair', 'ack of a surrogate pair');
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.message.text, '😀');
    valid.push(ack.message);
    await bws.next((f) => f.type === 'message' && f.message.seq === ack.message.seq, 'bob gets the pair');
    const stored = await http(main.url, 'GET', `/v1/conversations/${group}/messages?after=${ack.message.seq - 1}&limit=1`, undefined, bob.accessToken);
    assert.equal(stored.body.messages[0].text, '😀');
    await stillServes();
  });

  test('a binary frame gets binary_not_supported, even when it holds a valid frame', async () => {
    await bad(Buffer.from(JSON.stringify({ type: 'send', id: 'bin1', conversationId: group, clientId: 'bin-1', text: 'binary' })), 'binary_not_supported', { binary: true });
    await bad(Buffer.from([0, 1, 2, 255]), 'binary_not_supported', { binary: true });
  });

  test('message_too_large is counted in UTF-8 bytes, exactly at the 16 KiB boundary', async () => {
    const max = 16 * 1024;
    const cases: { text: string; ok: boolean }[] = [
      { text: 'a'.repeat(max), ok: true },
      { text: 'a'.repeat(max + 1), ok: false },
      { text: 'é'.repeat(max / 2), ok: true }, // 2 bytes each: 8192 chars = 16384 bytes
      { text: 'é'.repeat(max / 2) + 'a', ok: false },
      { text: 'é'.repeat(max / 2 + 1), ok: false }, // only 8193 UTF-16 units, but 16386 bytes
      { text: 'a' + '€'.repeat((max - 1) / 3), ok: true }, // 1 + 3 x 5461 = 16384
      { text: 'aa' + '€'.repeat((max - 1) / 3), ok: false }, // 16385
      { text: '😀'.repeat(max / 4), ok: true }, // 4 bytes (2 UTF-16 units) each
      { text: '😀'.repeat(max / 4) + 'a', ok: false },
      { text: 'a'.repeat(max - 1) + 'é', ok: false }, // the last character straddles the limit
    ];
    for (const [i, { text, ok }] of cases.entries()) {
      assert.equal(Buffer.byteLength(text) <= max, ok, `case ${i} is what it says`);
      if (ok) {
        const m = await stillServes(aws, text);
        assert.equal(m.text, text);
      } else {
        const id = `big${i}`;
        aws.json({ type: 'send', id, conversationId: group, clientId: `big-${i}`, text });
        assertErrorFrame(await aws.error(`message_too_large ${i}`), 'message_too_large', id);
        await stillServes();
      }
    }
    // Edits are held to the same limit.
    const target = valid[valid.length - 1]!;
    aws.json({ type: 'edit', id: 'bigedit', conversationId: group, messageId: target.messageId, clientId: 'big-edit', text: 'é'.repeat(max / 2) + 'a' });
    assertErrorFrame(await aws.error('message_too_large (edit)'), 'message_too_large', 'bigedit');
    await stillServes();
  });

  test('an unknown conversation gets conversation_not_found; one you are not in gets forbidden', async () => {
    const unknown = '01a2026d-7606-705c-bed7-fb9a4afb2868';
    for (const [cid, code] of [[unknown, 'conversation_not_found'], [foreign, 'forbidden']] as const) {
      aws.json({ type: 'send', id: `s-${code}`, conversationId: cid, clientId: `x-${code}`, text: 'let me in' });
      assertErrorFrame(await aws.error(`${code} (send)`), code, `s-${code}`);
      aws.json({ type: 'history', id: `h-${code}`, conversationId: cid });
      assertErrorFrame(await aws.error(`${code} (history)`), code, `h-${code}`);
      aws.json({ type: 'sync', id: `y-${code}`, conversationId: cid, after: 0 });
      assertErrorFrame(await aws.error(`${code} (sync)`), code, `y-${code}`);
      aws.json({ type: 'read', id: `r-${code}`, conversationId: cid, seq: 1 });
      assertErrorFrame(await aws.error(`${code} (read)`), code, `r-${code}`);
      await stillServes();
    }
    // A message id from another conversation is not found in this one.
    aws.json({ type: 'edit', id: 'e-nf', conversationId: group, messageId: unknown, clientId: 'e-nf', text: 'x' });
    assertErrorFrame(await aws.error('message_not_found'), 'message_not_found', 'e-nf');
    await stillServes();
    // Nothing of this reached the foreign conversation.
    const h = await http(main.url, 'GET', `/v1/conversations/${foreign}/messages`, undefined, bob.accessToken);
    assert.equal(h.status, 200);
    assert.deepEqual(h.body.messages, []);
  });

  test('deep nesting and __proto__ / constructor keys get an error, never a crash or a polluted prototype', async () => {
    const depth = 10_000;
    await bad('['.repeat(depth) + ']'.repeat(depth), 'unknown_type');
    await bad('{"a":'.repeat(depth) + '1' + '}'.repeat(depth), 'unknown_type');
    const deepText = `{"type":"send","id":"deep","conversationId":"${group}","clientId":"deep","text":${'{"a":'.repeat(depth)}"x"${'}'.repeat(depth)}}`;
    await bad(deepText, 'bad_request', { id: 'deep' });
    await bad(`{"type":"history","id":"deep2","conversationId":"${group}","limit":${'['.repeat(depth)}${']'.repeat(depth)}}`, 'bad_request', { id: 'deep2' });
    // The frame type and fields cannot be smuggled in through __proto__.
    await bad(`{"__proto__":{"type":"ping"}}`, 'unknown_type');
    await bad(`{"type":"send","id":"p1","__proto__":{"conversationId":"${group}","clientId":"p1","text":"smuggled"}}`, 'bad_request', { id: 'p1' });
    await bad(`{"type":"send","id":"p2","constructor":{"prototype":{"conversationId":"${group}","clientId":"p2","text":"smuggled"}}}`, 'bad_request', { id: 'p2' });
    // Extra __proto__ keys on a valid frame are ignored like any unknown field: they change nothing.
    aws.raw(`{"type":"send","id":"p3","conversationId":"${group}","clientId":"p3","text":"real","__proto__":{"text":"polluted","polluted":true,"isAdmin":true},"constructor":{"prototype":{"polluted":true}}}`);
    const ack = await aws.next((f) => f.id === 'p3', 'answer to p3');
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.message.text, 'real');
    assert.equal(ack.message.clientId, 'p3');
    valid.push(ack.message);
    assert.equal(ack.message.seq, valid.length);
    await bws.next((f) => f.type === 'message' && f.message.seq === ack.message.seq, 'bob gets p3');
    const probe: Record<string, unknown> = {};
    assert.equal(probe.polluted, undefined, 'Object.prototype is not polluted');
    assert.equal(probe.isAdmin, undefined);
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
    await stillServes();
  });

  test('a second hello gets already_authenticated and the connection keeps its user', async () => {
    aws.json({ type: 'hello', v: 1, token: bob.accessToken });
    assertErrorFrame(await aws.error('already_authenticated'), 'already_authenticated');
    const m = await stillServes();
    assert.equal(m.sender, alice.user.id, 'still alice, not bob');
  });

  test('a request after many bad frames interleaved with good ones still works (bad-frame count resets)', async () => {
    for (let i = 0; i < 60; i++) {
      aws.raw('not json');
      assertErrorFrame(await aws.error(`bad ${i}`), 'bad_json');
      aws.json({ type: 'ping', id: `pp${i}` });
      await aws.next((f) => f.type === 'pong' && f.id === `pp${i}`, 'pong');
    }
    await stillServes();
  });
});

describe('WebSocket: handshake errors and hard limits on other connections', () => {
  test('a frame before hello gets not_authenticated; the connection can still say hello', async () => {
    const ws = await openRaw(main.url);
    ws.json({ type: 'send', id: 'early', conversationId: group, clientId: 'early', text: 'before hello' });
    assertErrorFrame(await ws.error('not_authenticated'), 'not_authenticated', 'early');
    ws.json({ type: 'history', id: 'early2', conversationId: group });
    assertErrorFrame(await ws.error('not_authenticated'), 'not_authenticated', 'early2');
    ws.json({ type: 'hello', v: 1, token: alice.accessToken });
    await ws.next((f) => f.type === 'welcome', 'welcome');
    await stillServes(ws);
    await ws.close();
  });

  test('hello with v:2 gets unsupported_version, then close 4003', async () => {
    const ws = await openRaw(main.url);
    ws.json({ type: 'hello', v: 2, token: alice.accessToken });
    assertErrorFrame(await ws.error('unsupported_version'), 'unsupported_version');
    assert.equal(await ws.closeCode(), 4003);
    await stillServes();
  });

  test('a garbage or forged token gets invalid_token, then close 4001', async () => {
    const [h, p] = alice.accessToken.split('.');
    const forged = `${h}.${p}.${Buffer.from('not the signature').toString('base64url')}`;
    const noneAlg = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
    for (const token of ['garbage', forged, noneAlg, 'a.b.c']) {
      const ws = await openRaw(main.url);
      ws.json({ type: 'hello', v: 1, token });
      assertErrorFrame(await ws.error(`invalid_token for ${token.slice(0, 20)}`), 'invalid_token');
      assert.equal(await ws.closeCode(), 4001);
    }
    // A hello with a wrongly typed token is a bad_request (not a crash) and the connection stays.
    const ws = await openRaw(main.url);
    ws.json({ type: 'hello', v: 1, token: 12345 });
    assertErrorFrame(await ws.error('bad hello'), 'bad_request');
    ws.json({ type: 'hello', v: 1, token: alice.accessToken });
    await ws.next((f) => f.type === 'welcome', 'welcome after a bad hello');
    await ws.close();
    await stillServes();
  });

  test('hello with bad cursors (huge, negative, non-UUID keys) gets bad_request; a good hello then works', async () => {
    const ws = await openRaw(main.url);
    const hellos = [
      `{"type":"hello","v":1,"token":"${alice.accessToken}","cursors":{"${group}":${2 ** 60}}}`,
      `{"type":"hello","v":1,"token":"${alice.accessToken}","cursors":{"${group}":-1}}`,
      `{"type":"hello","v":1,"token":"${alice.accessToken}","cursors":{"${group}":1e400}}`,
      `{"type":"hello","v":1,"token":"${alice.accessToken}","cursors":{"not-a-uuid":1}}`,
      `{"type":"hello","v":1,"token":"${alice.accessToken}","cursors":[1,2]}`,
      `{"type":"hello","v":1e300,"token":"${alice.accessToken}"}`,
    ];
    for (const [i, h] of hellos.entries()) {
      ws.raw(h);
      assertErrorFrame(await ws.error(`bad hello ${i}`), 'bad_request');
    }
    // A __proto__ key among the cursors is dropped like an unknown field: no catch-up, no pollution.
    const proto = await openRaw(main.url);
    proto.raw(`{"type":"hello","v":1,"token":"${alice.accessToken}","cursors":{"__proto__":{"${group}":0}}}`);
    await proto.next((f) => f.type === 'welcome', 'welcome');
    proto.json({ type: 'ping', id: 'after-proto' });
    await proto.next((f) => f.type === 'pong', 'pong');
    assert.deepEqual(proto.frames.filter((f) => f.type === 'sync.page' || f.type === 'sync.done' || f.type === 'error'), []);
    assert.equal(({} as Record<string, unknown>)[group], undefined, 'Object.prototype is not polluted');
    await proto.close();
    // The connection that sent all those bad hellos can still authenticate and catch up.
    ws.json({ type: 'hello', v: 1, token: alice.accessToken, cursors: { [group]: 0 } });
    await ws.next((f) => f.type === 'welcome', 'welcome');
    const done = await ws.next((f) => f.type === 'sync.done', 'sync.done of the catch-up');
    assert.equal(done.seq, valid.length);
    const pages = ws.frames.filter((f) => f.type === 'sync.page').flatMap((f) => f.messages as Message[]);
    assert.deepEqual(pages.map((m) => m.seq), valid.map((m) => m.seq));
    await ws.close();
    await stillServes();
  });

  test('a frame over 4x maxFrameBytes closes the connection with 1009; everyone else is served', async () => {
    const ws = await connect(main.url, alice.accessToken);
    ws.raw(Buffer.alloc(4 * 64 * 1024 + 1, 0x61));
    assert.equal(await ws.closeCode(), 1009);
    await stillServes();
  });
});

describe('WebSocket: rate limit', () => {
  test('a flood past the rate limit gets rate_limited with retryAfterMs; nothing limited is stored; others are served', async () => {
    const n = await node({ limits: { sendsPerSecond: 5, sendBurst: 5 } });
    const [a, b] = await Promise.all([register(n.url), register(n.url)]);
    const g = await http(n.url, 'POST', '/v1/conversations', { name: 'flood', members: [b.user.username] }, a.accessToken);
    const cid = g.body.id as string;
    const flooder = await connect(n.url, a.accessToken);
    const other = await connect(n.url, b.accessToken);

    const FLOOD = 40;
    for (let i = 0; i < FLOOD; i++) flooder.json({ type: 'send', id: `f${i}`, conversationId: cid, clientId: `flood-${i}`, text: `flood ${i}` });
    const answers: Frame[] = [];
    for (let i = 0; i < FLOOD; i++) answers.push(await flooder.next((f) => f.id === `f${i}`, `answer to f${i}`));
    const acked = answers.filter((f) => f.type === 'ack');
    const limited = answers.filter((f) => f.type === 'error');
    assert.equal(acked.length + limited.length, FLOOD);
    assert.ok(acked.length >= 5 && acked.length <= 10, `the burst (5) and little more is accepted, got ${acked.length}`);
    for (const e of limited) {
      assertErrorFrame(e, 'rate_limited', e.id);
      assert.ok(Number.isInteger(e.retryAfterMs) && e.retryAfterMs > 0 && e.retryAfterMs <= 1000, `retryAfterMs ${e.retryAfterMs}`);
    }
    assert.deepEqual(acked.map((f) => f.message.seq), acked.map((_, i) => i + 1));

    // The other member is not limited by someone else's flood, and still receives live messages.
    other.json({ type: 'send', id: 'o1', conversationId: cid, clientId: 'other-1', text: 'unaffected' });
    const oa = await other.next((f) => f.id === 'o1', 'ack of the other member');
    assert.equal(oa.type, 'ack', JSON.stringify(oa));
    for (const m of acked) await other.next((f) => f.type === 'message' && f.message.seq === m.message.seq, `live seq ${m.message.seq}`);

    // After waiting what the server asked, the same send (same client id) goes through once.
    const first = limited[0]!;
    await new Promise((r) => setTimeout(r, first.retryAfterMs));
    const i = Number(String(first.id).slice(1));
    flooder.json({ type: 'send', id: 'retry', conversationId: cid, clientId: `flood-${i}`, text: `flood ${i}` });
    const ra = await flooder.next((f) => f.id === 'retry', 'ack of the retry');
    assert.equal(ra.type, 'ack', JSON.stringify(ra));
    assert.equal(ra.duplicate, false);

    const log = await readAll(n.url, a.accessToken, cid);
    assert.deepEqual(log.map((m) => m.seq), log.map((_, k) => k + 1));
    assert.deepEqual(new Set(log.map((m) => m.clientId)), new Set([...acked.map((f) => f.message.clientId), 'other-1', `flood-${i}`]));
  });
});

describe('WebSocket: maxBadFrames and the hello deadline', () => {
  test('maxBadFrames consecutive bad frames close the connection with 4004; a good frame resets the count', async () => {
    const n = await node({ limits: { maxBadFrames: 5 } });
    const a = await register(n.url);
    const ws = await connect(n.url, a.accessToken);
    // 4 bad, 1 good, 4 bad: never 5 in a row.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 4; i++) {
        ws.raw('{oops');
        assertErrorFrame(await ws.error('bad'), 'bad_json');
      }
      ws.json({ type: 'ping', id: `p${round}` });
      await ws.next((f) => f.type === 'pong', 'pong');
    }
    const kinds: [string | Buffer, boolean][] = [['{oops', false], ['{"type":"nope"}', false], [Buffer.from([0xff]), false], [Buffer.from('x'), true], ['{"type":"ping","id":5}', false]];
    for (const [data, binary] of kinds) ws.raw(data, binary);
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) codes.push((await ws.error(`bad frame ${i}`)).code);
    assert.deepEqual(codes, ['bad_json', 'unknown_type', 'invalid_utf8', 'binary_not_supported', 'bad_request']);
    assert.equal(await ws.closeCode(), 4004);
    // The node itself is fine.
    const again = await connect(n.url, a.accessToken);
    again.json({ type: 'ping', id: 'alive' });
    await again.next((f) => f.type === 'pong', 'pong on a new connection');
  });

  test('no hello within helloTimeoutMs closes with 4100', async () => {
    const n = await node({ limits: { helloTimeoutMs: 200 } });
    const ws = await openRaw(n.url);
    assert.equal(await ws.closeCode(), 4100);
  });
});

describe('REST: bad requests', () => {
  const url = () => main.url;

  test('malformed JSON body gets 400 bad_json', async () => {
    for (const body of ['{"name":', '{name: "x"}', 'nope', '{"name":"x"}}']) {
      assertHttpError(await http(url(), 'POST', '/v1/conversations', body, alice.accessToken), 400, 'bad_json');
    }
    assertHttpError(await http(url(), 'POST', '/v1/auth/login', '{"username":', undefined), 400, 'bad_json');
  });

  test('wrong types get 400 bad_request with details', async () => {
    const r = await http(url(), 'POST', '/v1/conversations', { name: 5, members: 'bob' }, alice.accessToken);
    assertHttpError(r, 400, 'bad_request');
    const paths = (r.body.error.details as { path: string }[]).map((d) => d.path);
    assert.ok(paths.includes('name') && paths.includes('members'), JSON.stringify(r.body));
    const s = await http(url(), 'POST', `/v1/conversations/${group}/messages`, { clientId: 'rest-bad', text: 7 }, alice.accessToken);
    assertHttpError(s, 400, 'bad_request');
    assert.ok(s.body.error.details.some((d: { path: string }) => d.path === 'text'));
    for (const body of ['[]', 'null', '"text"', '42']) {
      assertHttpError(await http(url(), 'POST', `/v1/conversations/${group}/messages`, body, alice.accessToken), 400, 'bad_request');
    }
    // Query strings too, including huge and non-numeric values.
    for (const q of ['after=abc', 'after=-1', 'after=1e300', `after=${2 ** 60}`, 'limit=0', 'limit=1e9', 'before=1.5']) {
      const h = await http(url(), 'GET', `/v1/conversations/${group}/messages?${q}`, undefined, alice.accessToken);
      assertHttpError(h, 400, 'bad_request');
      assert.ok(Array.isArray(h.body.error.details), q);
    }
    // A body without a JSON content type.
    const res = await fetch(`${url()}/v1/conversations`, { method: 'POST', headers: { authorization: `Bearer ${alice.accessToken}`, 'content-type': 'text/plain' }, body: '{"name":"x"}' });
    assertHttpError({ status: res.status, body: await res.json() }, 400, 'bad_request');
  });

  test('a body over the limit gets 413 frame_too_large', async () => {
    const big = JSON.stringify({ clientId: 'rest-big', text: 'a'.repeat(64 * 1024) });
    assertHttpError(await http(url(), 'POST', `/v1/conversations/${group}/messages`, big, alice.accessToken), 413, 'frame_too_large');
  });

  test('a message over maxMessageBytes gets 413 message_too_large', async () => {
    const r = await http(url(), 'POST', `/v1/conversations/${group}/messages`, { clientId: 'rest-long', text: 'é'.repeat(8192) + 'a' }, alice.accessToken);
    assertHttpError(r, 413, 'message_too_large');
  });

  test('unknown route gets 404 route_not_found; bad UUID in the path gets 400 bad_request', async () => {
    assertHttpError(await http(url(), 'GET', '/v1/nope', undefined, alice.accessToken), 404, 'route_not_found');
    assertHttpError(await http(url(), 'DELETE', '/v1/me', undefined, alice.accessToken), 404, 'route_not_found');
    assertHttpError(await http(url(), 'GET', '/v1/ws', undefined), 404, 'route_not_found');
    for (const path of ['/v1/conversations/not-a-uuid', '/v1/conversations/not-a-uuid/messages', `/v1/conversations/${group}/members/123`, `/v1/conversations/${group.toUpperCase()}`]) {
      const r = await http(url(), 'GET', path, undefined, alice.accessToken);
      if (path.endsWith('/members/123')) assertHttpError(r, 404, 'route_not_found'); // GET on that path is no route
      else assertHttpError(r, 400, 'bad_request');
    }
    assertHttpError(await http(url(), 'DELETE', `/v1/conversations/${group}/members/nope`, undefined, alice.accessToken), 400, 'bad_request');
  });

  test('missing or bad bearer gets 401', async () => {
    assertHttpError(await http(url(), 'GET', '/v1/me', undefined), 401, 'not_authenticated');
    const res = await fetch(`${url()}/v1/me`, { headers: { authorization: 'Basic abc' } });
    assertHttpError({ status: res.status, body: await res.json() }, 401, 'not_authenticated');
    assertHttpError(await http(url(), 'GET', '/v1/me', undefined, 'garbage'), 401, 'invalid_token');
    assertHttpError(await http(url(), 'POST', `/v1/conversations/${group}/messages`, { clientId: 'anon', text: 'x' }), 401, 'not_authenticated');
  });

  test('__proto__ / constructor.prototype bodies and deep nesting get 400 and pollute nothing', async () => {
    for (const body of [
      '{"__proto__":{"polluted":true},"name":"proto"}',
      '{"name":"proto","members":[],"__proto__":{"isAdmin":true}}',
      '{"constructor":{"prototype":{"polluted":true}},"name":"proto"}',
    ]) {
      // Refused by the JSON parser itself (fastify onProtoPoisoning/onConstructorPoisoning: 'error').
      assertHttpError(await http(url(), 'POST', '/v1/conversations', body, alice.accessToken), 400, 'bad_json');
    }
    const deep = '['.repeat(10_000) + ']'.repeat(10_000);
    assertHttpError(await http(url(), 'POST', `/v1/conversations/${group}/messages`, `{"clientId":"deep","text":${deep}}`, alice.accessToken), 400, 'bad_request');
    const probe: Record<string, unknown> = {};
    assert.equal(probe.polluted, undefined);
    assert.equal(probe.isAdmin, undefined);
    const list = await http(url(), 'GET', '/v1/conversations', undefined, alice.accessToken);
    assert.ok(!list.body.conversations.some((c: { name: string | null }) => c.name === 'proto'), 'no group was created');
  });

  test('unknown users get 404 user_not_found and no conversation is created', async () => {
    const before = (await http(url(), 'GET', '/v1/conversations', undefined, alice.accessToken)).body.conversations.length as number;
    const carolBefore = (await http(url(), 'GET', '/v1/conversations', undefined, carol.accessToken)).body.conversations.length as number;
    assertHttpError(await http(url(), 'POST', '/v1/conversations/direct', { username: 'nobody-here-xyz' }, alice.accessToken), 404, 'user_not_found');
    const g = await http(url(), 'POST', '/v1/conversations', { name: 'ghosts', members: [carol.user.username, 'nobody-here-xyz', 'ghost-2'] }, alice.accessToken);
    assertHttpError(g, 404, 'user_not_found');
    assert.ok(JSON.stringify(g.body.error).includes('nobody-here-xyz'), 'the error names the unknown user');
    assertHttpError(await http(url(), 'POST', `/v1/conversations/${group}/members`, { members: ['ghost-3'] }, alice.accessToken), 404, 'user_not_found');
    assertHttpError(await http(url(), 'GET', '/v1/users/ghost-4', undefined, alice.accessToken), 404, 'user_not_found');
    assert.equal((await http(url(), 'GET', '/v1/conversations', undefined, alice.accessToken)).body.conversations.length, before);
    assert.equal((await http(url(), 'GET', '/v1/conversations', undefined, carol.accessToken)).body.conversations.length, carolBefore, 'carol was not half-added to a group');
    const members = await http(url(), 'GET', `/v1/conversations/${group}/members`, undefined, alice.accessToken);
    assert.equal(members.body.members.length, 2);
  });

  test('unknown or foreign conversations over REST get conversation_not_found / forbidden', async () => {
    const unknown = '01a2026d-7606-705c-bed7-fb9a4afb2869';
    assertHttpError(await http(url(), 'GET', `/v1/conversations/${unknown}/messages`, undefined, alice.accessToken), 404, 'conversation_not_found');
    assertHttpError(await http(url(), 'POST', `/v1/conversations/${unknown}/messages`, { clientId: 'u', text: 'x' }, alice.accessToken), 404, 'conversation_not_found');
    assertHttpError(await http(url(), 'GET', `/v1/conversations/${foreign}/messages`, undefined, alice.accessToken), 403, 'forbidden');
    assertHttpError(await http(url(), 'POST', `/v1/conversations/${foreign}/messages`, { clientId: 'f', text: 'x' }, alice.accessToken), 403, 'forbidden');
  });
});

describe('after all the bad input', () => {
  test('nothing partial is stored: history is exactly the valid messages, seq 1..k; bob saw exactly those', async () => {
    await stillServes();
    const log = await readAll(main.url, bob.accessToken, group);
    assert.equal(log.length, valid.length);
    assert.deepEqual(log.map((m) => m.seq), valid.map((_, i) => i + 1));
    assert.deepEqual(log.map((m) => m.messageId), valid.map((m) => m.messageId));
    assert.deepEqual(log.map((m) => m.text), valid.map((m) => m.text));
    const foreignLog = await readAll(main.url, bob.accessToken, foreign);
    assert.equal(foreignLog.length, 0);
    // Bob got every entry live exactly once and nothing else; alice has no unanswered error.
    assert.deepEqual(bws.frames.filter((f) => f.type === 'message' || f.type === 'error'), []);
    assert.deepEqual(aws.frames.filter((f) => f.type === 'error'), []);
  });

  test('every error code exists in docs/protocol.md with a table row', () => {
    const docs = readFileSync(DOCS, 'utf8');
    for (const code of Object.keys(ERROR_CODES)) {
      assert.ok(docs.includes(code), `docs mention ${code}`);
      assert.ok(docs.includes(`| \`${code}\` |`), `docs have a table row for ${code}`);
    }
    for (const code of produced) assert.ok(code in ERROR_CODES, `${code} is a registered error code`);
    assert.ok(produced.size >= 15, `this file exercised ${produced.size} codes: ${[...produced].join(', ')}`);
  });
});
