// Abuse suite, outbound: one budget per connection that every byte counts against. A client that
// asks for large answers and does not read them (120 `history` frames on a WebSocket, or 120
// pipelined REST history requests on one keep-alive connection) raises the node's memory by a
// small multiple of MAX_OUTBOUND_BYTES at most, is refused (`rate_limited`) or cut, and the others'
// pings are answered meanwhile; holding the socket open with unsolicited pongs does not keep
// anything held. The node runs as a child process so that its RSS can be read from /proc.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import type { ServerFrame, Session } from '@confab/protocol';
import { http, register, scrape, spawnNode, tempDir, uname, type ChildNode } from './helpers.js';

const BOUND = 1024 * 1024; // MAX_OUTBOUND_BYTES, the default
const HEARTBEAT = { interval: 500, timeout: 4000 };
const TEXT = 'x'.repeat(16_000);
const REQUESTS = 120;

const rssMiB = (pid: number): number => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A WebSocket client that reads everything; `ping()` resolves with its round trip in ms. */
async function pinger(url: string, token: string): Promise<{ ping(): Promise<number>; close(): void }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`);
  const waiting = new Map<string, () => void>();
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.on('message', (d: Buffer) => {
      const f = JSON.parse(d.toString()) as ServerFrame;
      if (f.type === 'welcome') resolve();
      if (f.type === 'pong' && f.id) waiting.get(f.id)?.();
    });
    ws.once('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, token })));
  });
  let n = 0;
  return {
    ping: () => new Promise<number>((resolve, reject) => {
      const id = `p${n++}`;
      const t0 = performance.now();
      const timer = setTimeout(() => reject(new Error('no pong within 10 s')), 10_000);
      waiting.set(id, () => { clearTimeout(timer); waiting.delete(id); resolve(performance.now() - t0); });
      ws.send(JSON.stringify({ type: 'ping', id }));
    }),
    close: () => ws.terminate(),
  };
}

/** Pings every 50 ms while `during` runs; the round trips. */
async function pingWhile(p: Awaited<ReturnType<typeof pinger>>, during: Promise<unknown>): Promise<number[]> {
  let done = false;
  void during.finally(() => { done = true; });
  const rtts: number[] = [];
  while (!done) {
    rtts.push(await p.ping());
    await sleep(50);
  }
  return rtts;
}

/** Samples the node's RSS every 100 ms for `ms`; the highest. */
async function peakRss(pid: number, ms: number): Promise<number> {
  let peak = 0;
  for (const end = Date.now() + ms; Date.now() < end;) {
    peak = Math.max(peak, rssMiB(pid));
    await sleep(100);
  }
  return peak;
}

/** A WebSocket client past hello whose socket then reads nothing (it neither reads frames nor answers pings). */
async function stalledSocket(url: string, token: string): Promise<{ ws: WebSocket; frames: ServerFrame[]; resume(): void; closed: Promise<number> }> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`);
  const frames: ServerFrame[] = [];
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve) => {
    ws.on('message', (d: Buffer) => {
      const f = JSON.parse(d.toString()) as ServerFrame;
      frames.push(f);
      if (f.type === 'welcome') resolve();
    });
    ws.once('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, token })));
  });
  const socket = (ws as unknown as { _socket: Socket })._socket;
  socket.pause();
  return { ws, frames, closed, resume: () => socket.resume() };
}

describe('hostile: clients that ask for large answers and stop reading', () => {
  let node: ChildNode;
  let pid: number;
  let owner: Session;
  let reader: Session;
  let group: string;

  before(async () => {
    node = await spawnNode(tempDir(), ['--heartbeat-interval-ms', String(HEARTBEAT.interval), '--heartbeat-timeout-ms', String(HEARTBEAT.timeout)], { LOG_LEVEL: 'info' });
    pid = node.child.pid!;
    const senders = await Promise.all([0, 1, 2, 3].map(() => register(node.url, uname('big'))));
    [owner] = senders as [Session];
    reader = await register(node.url, uname('rd'));
    const g = await http(node.url, 'POST', '/v1/conversations', { name: 'big pages', members: [...senders.slice(1), reader].map((s) => s.user.username) }, owner.accessToken);
    group = g.body.id as string;
    // 400 messages of 16 kB: 200 of them (a full page by count) are 3.2 MB, three times the bound.
    await Promise.all(senders.map(async (s, k) => {
      for (let i = 0; i < 100; i += 10) {
        await Promise.all(Array.from({ length: 10 }, (_, j) => http(node.url, 'POST', `/v1/conversations/${group}/messages`, { clientId: `b${k}-${i + j}`, text: TEXT }, s.accessToken)
          .then((r) => assert.equal(r.status, 201, JSON.stringify(r.body)))));
      }
    }));
    // Warm: the paths the attacks take have run once, so what follows measures holding, not code.
    for (let i = 0; i < 3; i++) assert.equal((await http(node.url, 'GET', `/v1/conversations/${group}/messages?limit=200`, undefined, reader.accessToken)).status, 200);
  });
  after(() => { node?.child.kill('SIGKILL'); });

  test(`${REQUESTS} history frames on a WebSocket that is not read: memory stays within a few bounds, the excess is refused, the others' pings are answered`, async (t) => {
    const p = await pinger(node.url, owner.accessToken);
    const attacker = await stalledSocket(node.url, reader.accessToken);
    const baseline = await peakRss(pid, 300);
    const readsBefore = (await scrape(node.url))('confab_store_calls_total', { method: 'readBefore' }) ?? 0;
    for (let i = 0; i < REQUESTS; i++) attacker.ws.send(JSON.stringify({ type: 'history', id: `h${i}`, conversationId: group, limit: 200 }));
    const sampled = peakRss(pid, 3000);
    const rtts = await pingWhile(p, sampled);
    const peak = await sampled;
    const m = await scrape(node.url);
    const maxBuffered = m('confab_outbound_buffered_bytes_max') ?? 0;
    t.diagnostic(`RSS ${baseline.toFixed(1)} -> peak ${peak.toFixed(1)} MiB (+${(peak - baseline).toFixed(1)}); most waiting for one connection ${maxBuffered} bytes; others' pings ${rtts.length}, max ${Math.max(...rtts).toFixed(1)} ms`);
    assert.ok(peak - baseline < 16 * BOUND / 2 ** 20, `RSS grew by ${(peak - baseline).toFixed(1)} MiB, more than 16 x MAX_OUTBOUND_BYTES`);
    assert.ok(maxBuffered <= BOUND, `at most the bound waited for one connection (saw ${maxBuffered})`);
    assert.ok(rtts.length > 0);
    // Read now: a few pages were answered; what came after was refused (rate_limited) or held
    // and dropped with the connection: it was cut (4104) once the bound waited in the node, or
    // dropped at the heartbeat timeout, whichever came first on this machine's socket buffers.
    attacker.resume();
    const code = await attacker.closed;
    const pages = attacker.frames.filter((f) => f.type === 'history.result');
    const refused = attacker.frames.filter((f) => f.type === 'error' && f.code === 'rate_limited');
    const reads = ((await scrape(node.url))('confab_store_calls_total', { method: 'readBefore' }) ?? 0) - readsBefore;
    t.diagnostic(`answered ${pages.length}, refused ${refused.length}, pages read from the store ${reads}, then closed with ${code}`);
    assert.ok(pages.length >= 1 && pages.length <= 5, `${pages.length} pages answered`);
    assert.ok(reads <= 8, `the node read ${reads} pages for it: at most 4 run at a time, and a queued one runs only after an answer was written`);
    for (const page of pages) {
      const bytes = page.type === 'history.result' ? page.messages.reduce((n, x) => n + Buffer.byteLength(JSON.stringify(x)) + 1, 0) : 0;
      assert.ok(bytes <= 256 * 1024, `a page holds at most maxPageBytes (${bytes})`);
    }
    assert.ok(pages.every((f) => f.type === 'history.result' && f.hasMore), 'short pages say there is more');
    assert.ok(code === 4104 || code === 1006, `cut (4104) or dropped at the heartbeat timeout (1006), not ${code}`);
    p.close();
  });

  test('unsolicited pongs do not keep a socket that does not read: it is dropped at the heartbeat timeout and its memory freed', async (t) => {
    const attacker = await stalledSocket(node.url, reader.accessToken);
    // Pages it never reads: less than the bound, so only the heartbeat can drop it.
    for (let i = 0; i < 3; i++) attacker.ws.send(JSON.stringify({ type: 'history', id: `q${i}`, conversationId: group, limit: 200 }));
    const t0 = Date.now();
    const pongs = setInterval(() => attacker.ws.pong(), 200);
    const socketGone = new Promise<void>((resolve) => ((attacker.ws as unknown as { _socket: Socket })._socket).once('close', () => resolve()));
    await Promise.race([socketGone, sleep(HEARTBEAT.timeout + 3 * HEARTBEAT.interval + 5000)]);
    clearInterval(pongs);
    const elapsed = Date.now() - t0;
    t.diagnostic(`dropped after ${elapsed} ms of pongs every 200 ms (heartbeat timeout ${HEARTBEAT.timeout} ms)`);
    assert.ok(elapsed < HEARTBEAT.timeout + 3 * HEARTBEAT.interval + 5000, 'the node dropped it');
    const m = await scrape(node.url);
    assert.equal(m('confab_outbound_buffered_bytes'), 0, 'nothing is held for it any more');
    assert.ok((m('confab_slow_consumers_total', { bound: 'stalled' }) ?? 0) >= 1, 'counted as a stalled slow consumer');
  });

  test(`${REQUESTS} pipelined REST history requests on a connection that is not read: at most MAX_PIPELINED_REQUESTS run, memory stays within a few bounds, the connection is closed after the refusal`, async (t) => {
    const p = await pinger(node.url, owner.accessToken);
    const { port } = new URL(node.url);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.pause();
    const baseline = await peakRss(pid, 300);
    const request = `GET /v1/conversations/${group}/messages?limit=200 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${reader.accessToken}\r\n\r\n`;
    socket.write(request.repeat(REQUESTS));
    const sampled = peakRss(pid, 3000);
    const rtts = await pingWhile(p, sampled);
    const peak = await sampled;
    t.diagnostic(`RSS ${baseline.toFixed(1)} -> peak ${peak.toFixed(1)} MiB; others' pings ${rtts.length}, max ${Math.max(...rtts).toFixed(1)} ms`);
    assert.ok(peak - baseline < 16 * BOUND / 2 ** 20, `RSS grew by ${(peak - baseline).toFixed(1)} MiB, more than 16 x MAX_OUTBOUND_BYTES`);
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => { text += d; });
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.resume();
    await Promise.race([ended, sleep(15_000)]);
    socket.destroy();
    // Answers follow each other without a line break: a status line starts right after a body.
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((x) => Number(x[1]));
    t.diagnostic(`answers: ${statuses.filter((s) => s === 200).length} x 200, ${statuses.filter((s) => s === 429).length} x 429, then closed`);
    assert.ok(statuses.filter((s) => s === 200).length <= 8, 'at most MAX_PIPELINED_REQUESTS (8) ran');
    assert.ok(statuses.includes(429), 'the excess was refused with 429');
    assert.match(text, /"code":"rate_limited"/);
    assert.ok(statuses.length < REQUESTS, 'the connection was closed after the refusal: the rest never ran');
    // The node serves as before.
    assert.equal((await http(node.url, 'GET', `/v1/conversations/${group}/messages?limit=1`, undefined, reader.accessToken)).status, 200);
    p.close();
  });
});
