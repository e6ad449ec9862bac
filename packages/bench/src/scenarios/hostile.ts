// Scenario "hostile": the attacks of the loopback attack report, each reproduced against a
// fresh node (its own temp data dir, 127.0.0.1, a free port) and measured. It reports what
// happened (statuses, close codes, counts, RSS, latencies), never what should have, so the same
// command gives the figures of a tree before its fixes and after them: `--cli` starts another
// checkout's `confab` instead of this tree's.
//
// Traffic stays on loopback: the node listens on 127.0.0.1; the attacker connects from
// 127.0.0.2, the innocent user from 127.0.0.3, the client whose pings are timed from 127.0.0.4,
// and every account made for the setup registers and connects from an address of its own in
// 127.1.0.0/16, so that limits per address (on trees that have them) meet the attacker only.
import { Agent } from 'node:http';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import { WebSocket, type RawData } from 'ws';
import type { ConversationId, UserId } from '@confab/protocol';
import { SqliteStore, newConversationId, newMessageId } from '@confab/server';
import type { FloodResult, FromHostileWorker, ToHostileWorker } from '../hostile-worker.js';
import type { Context, Opts, Scenario } from '../main.js';
import { cpuSeconds, rssMiB, startConfab, type ConfabProcess } from '../node.js';
import { HttpResponseReader, OP, errorCode, http, rawUpgrade, tcpPair, type HttpAnswer, type RawWs, type TcpEntry } from '../raw.js';
import { median } from '../report.js';
import { parseMetrics, pool, type MetricsView } from '../rest.js';
import { forkWorker, nextMessage, stopWorker } from '../workers.js';

/** Each attack: the finding of the report it reproduces, and a rough upper bound of its run time (s). */
const ATTACKS = {
  'history-unread': { finding: 1, seconds: 90 },
  'pong-hold': { finding: 1, seconds: 120 },
  'rest-pipeline': { finding: 1, seconds: 90 },
  'typing-alternate': { finding: 2, seconds: 90 },
  'rename-flood': { finding: 2, seconds: 180 },
  'unauth-flood': { finding: 3, seconds: 60 },
  'close-grace': { finding: 3, seconds: 70 },
  'read-flood': { finding: 4, seconds: 60 },
  'register-taken': { finding: 4, seconds: 60 },
  'register-new': { finding: 4, seconds: 120 },
  'group-flood': { finding: 4, seconds: 150 },
  'list-4000': { finding: 4, seconds: 90 },
  'data-files': { finding: 5, seconds: 30 },
  'removed-resend': { finding: 6, seconds: 30 },
  'foreign-host': { finding: 7, seconds: 30 },
} as const;
type AttackName = keyof typeof ATTACKS;
const NAMES = Object.keys(ATTACKS) as AttackName[];

const OPTIONS = {
  only: { type: 'string' },
  cli: { type: 'string' },
  'metrics-token': { type: 'string' },
  'node-env': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `hostile: the attacks of the loopback attack report, one fresh node each; prints what happened.
  --only A,B,...      run only these attacks (default: all, in this order):
                      ${NAMES.join(', ')}
  --cli PATH          start this confab command instead of this tree's (another checkout's
                      packages/cli/bin/confab.js, built), to measure that tree
  --metrics-token T   send "Authorization: Bearer T" when reading /metrics (trees that protect it)
  --node-env K=V,...  more environment for every node (settings the tree under test needs)
Every node runs with the defaults and --log-level warn, except where an attack's "node" row says.
Linux only (reads /proc); uses the local addresses 127.0.0.2-4 and 127.1.0.0/16.`;

// ---- settings -------------------------------------------------------------------------------

interface Settings { only: AttackName[]; cli: string | undefined; metricsToken: string | undefined; nodeEnv: Record<string, string> }

function settings(o: Opts): Settings {
  const only = typeof o.only === 'string' ? o.only.split(',').map((s) => s.trim()).filter(Boolean) : NAMES;
  const unknown = only.filter((n) => !(n in ATTACKS));
  if (unknown.length > 0) throw new Error(`--only: unknown attack(s) ${unknown.join(', ')}; known: ${NAMES.join(', ')}`);
  const nodeEnv: Record<string, string> = {};
  if (typeof o['node-env'] === 'string') {
    for (const kv of o['node-env'].split(',').filter(Boolean)) {
      const eq = kv.indexOf('=');
      if (eq < 1) throw new Error(`--node-env: "${kv}" is not KEY=VALUE`);
      nodeEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
  }
  return {
    only: NAMES.filter((n) => only.includes(n)),
    cli: typeof o.cli === 'string' ? o.cli : undefined,
    metricsToken: typeof o['metrics-token'] === 'string' ? o['metrics-token'] : undefined,
    nodeEnv,
  };
}

// ---- constants ------------------------------------------------------------------------------

const ATTACKER = '127.0.0.2';
const INNOCENT = '127.0.0.3';
const PINGER = '127.0.0.4';
/** The address of the i-th account made for the setup of a node. */
const setupAddress = (i: number) => `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
const PASSWORD = 'hostile-bench-password';
/** A message text just under the default MAX_MESSAGE_BYTES (16,384). */
const TEXT_16K = 'x'.repeat(16_000);
const LOG_ARGS = ['--log-level', 'warn'];
const WORKER = fileURLToPath(new URL('../hostile-worker.js', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
const r1 = (v: number) => Math.round(v * 10) / 10;
const r2 = (v: number) => Math.round(v * 100) / 100;
const mib = (bytes: number) => r1(bytes / 2 ** 20);
const tally = (m: Record<string, number>, k: string | number) => { m[k] = (m[k] ?? 0) + 1; };
/** `{"201":3,"429":2}` as `201:3 429:2` (sorted), or `-` when empty. */
const counts = (m: Record<string, number>) => Object.entries(m).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}:${v}`).join(' ') || '-';
const max = (xs: number[]) => (xs.length === 0 ? null : Math.max(...xs));
const med = (xs: number[]) => (xs.length === 0 ? null : median(xs));

// ---- rows -----------------------------------------------------------------------------------

export interface Row { finding: number; attack: AttackName; measure: string; value: number | string | null }

// ---- the node -------------------------------------------------------------------------------

interface Node {
  proc: ConfabProcess;
  url: string;
  port: number;
  readonly pid: number;
  /** Next setup address to hand out. */
  nextAddress: number;
}

/** What an attack is given: its rows, its node(s), and clean-up steps run when it ends (or the run is stopped). */
class Attack {
  readonly rows: Row[] = [];
  readonly #cleanups: (() => unknown)[] = [];

  constructor(readonly name: AttackName, private readonly s: Settings, private readonly ctx: Context) {}

  row(measure: string, value: number | string | null): void {
    this.rows.push({ finding: ATTACKS[this.name].finding, attack: this.name, measure, value });
    this.ctx.log(`${this.name}: ${measure} = ${value === null ? '-' : value}`);
  }

  log(m: string): void {
    this.ctx.log(`${this.name}: ${m}`);
  }

  /** The core of generator processes (when pinning). */
  get pinCore(): number | undefined {
    return this.ctx.pin ? 1 : undefined;
  }

  defer(fn: () => unknown): void {
    this.#cleanups.push(fn);
  }

  async cleanup(): Promise<void> {
    for (let fn = this.#cleanups.pop(); fn; fn = this.#cleanups.pop()) {
      try { await fn(); } catch (err) { this.ctx.log(`${this.name}: clean-up failed: ${(err as Error).message}`); }
    }
  }

  /** Starts a fresh node with `args` on top of the defaults; says which in a row. */
  async node(args: string[] = [], o: { umask?: number; dataDir?: string; note?: string } = {}): Promise<Node> {
    const proc = await startConfab([...LOG_ARGS, ...args], this.ctx.pin ? 0 : undefined, {
      defaults: true, // the attacks meet every limit as a deployment has it
      nodeFlags: this.ctx.nodeFlags,
      ...(Object.keys(this.s.nodeEnv).length > 0 ? { env: this.s.nodeEnv } : {}),
      ...(this.s.cli ? { cli: this.s.cli } : {}),
      ...(o.umask !== undefined ? { umask: o.umask } : {}),
      ...(o.dataDir ? { dataDir: o.dataDir } : {}),
    });
    this.defer(() => proc.stop());
    this.row('node', [args.length > 0 ? args.join(' ') : 'defaults', o.note].filter(Boolean).join('; '));
    return { proc, url: proc.url, port: Number(new URL(proc.url).port), get pid() { return proc.pid; }, nextAddress: 0 };
  }

  /** Reads /metrics (with the token if given); undefined when it does not answer 200. */
  async metrics(node: Node): Promise<MetricsView | undefined> {
    try {
      const a = await http(node.port, '/metrics', { headers: this.s.metricsToken ? { authorization: `Bearer ${this.s.metricsToken}` } : {}, timeoutMs: 10_000 });
      return a.status === 200 ? parseMetrics(a.text) : undefined;
    } catch {
      return undefined;
    }
  }
}

// ---- accounts and REST ----------------------------------------------------------------------

interface User { id: UserId; username: string; token: string; address: string }

/** Retries `call` while it answers 429 (waiting its retryAfterMs, at most 5 s at a time) for up to `forMs`. */
async function patiently(call: () => Promise<HttpAnswer>, forMs = 60_000): Promise<HttpAnswer> {
  const until = now() + forMs;
  for (;;) {
    const a = await call();
    if (a.status !== 429 || now() > until) return a;
    let wait = 1000;
    try { wait = Number((JSON.parse(a.text) as { error?: { retryAfterMs?: number } }).error?.retryAfterMs ?? 1000); } catch { /* keep 1 s */ }
    await sleep(Math.min(Math.max(wait, 20), 5000));
  }
}

/** Registers `username` from a setup address of its own (retrying 429s); the account and that address. */
async function register(node: Node, username: string): Promise<User> {
  const address = setupAddress(node.nextAddress++);
  const a = await patiently(() => http(node.port, '/v1/auth/register', { method: 'POST', body: { username, password: PASSWORD }, localAddress: address }));
  if (a.status !== 201 && a.status !== 200) throw new Error(`setup: register ${username}: ${a.status} ${a.text.slice(0, 200)}`);
  const s = JSON.parse(a.text) as { user: { id: UserId; username: string }; accessToken: string };
  return { id: s.user.id, username: s.user.username, token: s.accessToken, address };
}

const registerMany = (node: Node, n: number, prefix: string) => pool(n, 8, (i) => register(node, `${prefix}${i}`));

/** A REST call as `u` (from its address unless `from` is given). */
function api(node: Node, u: User, method: string, path: string, body?: unknown, o: { from?: string; agent?: Agent; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
  return http(node.port, path, {
    method, headers: { authorization: `Bearer ${u.token}`, ...o.headers }, ...(body !== undefined ? { body } : {}),
    localAddress: o.from ?? u.address, ...(o.agent ? { agent: o.agent } : {}),
  });
}

/** A setup call: retried on 429, must succeed. */
async function setup<T>(node: Node, u: User, method: string, path: string, body?: unknown): Promise<T> {
  const a = await patiently(() => api(node, u, method, path, body));
  if (a.status >= 300) throw new Error(`setup: ${method} ${path}: ${a.status} ${a.text.slice(0, 200)}`);
  return (a.text ? JSON.parse(a.text) : undefined) as T;
}

const createGroup = (node: Node, owner: User, members: User[], name: string) =>
  setup<{ id: ConversationId }>(node, owner, 'POST', '/v1/conversations', { name, members: members.map((m) => m.username) }).then((c) => c.id);

/** `status` or `status code` of an answer. */
const outcome = (a: HttpAnswer) => { const c = errorCode(a.text); return c ? `${a.status} ${c}` : String(a.status); };

// ---- WebSocket clients that read ------------------------------------------------------------

const TYPE = /^\{"type":"([a-z._]+)"/;

/** A normal client (the ws library), connected and welcomed; counts frames by type. */
class Client {
  readonly frames: Record<string, number> = {};
  closeCode: number | undefined;
  onText: ((type: string, text: string) => void) | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: RawData) => {
      const text = (data as Buffer).toString('utf8');
      const type = TYPE.exec(text)?.[1] ?? 'unknown';
      tally(this.frames, type);
      this.onText?.(type, text);
    });
    ws.on('close', (code: number) => { this.closeCode = code; });
  }

  /** Connects from `address`, says hello and resolves on `welcome`; rejects with the close code or error otherwise (ConnectError). */
  static connect(node: Node, token: string, address: string, timeoutMs = 15_000): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${node.port}/v1/ws`, { perMessageDeflate: false, localAddress: address });
      let done = false;
      const fail = (what: string) => { if (!done) { done = true; clearTimeout(timer); ws.terminate(); reject(new ConnectError(what)); } };
      const timer = setTimeout(() => fail('timeout'), timeoutMs);
      ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, token })));
      const onMessage = (data: RawData) => {
        if ((data as Buffer).toString('utf8', 0, 18) !== '{"type":"welcome",') return;
        done = true;
        clearTimeout(timer);
        ws.off('message', onMessage);
        const c = new Client(ws);
        resolve(c);
      };
      ws.on('message', onMessage);
      ws.on('close', (code: number) => fail(`close ${code}`));
      ws.on('error', (err: Error) => fail(`error ${err.message.slice(0, 60)}`));
    });
  }

  send(frame: object): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }
}

class ConnectError extends Error {}

const connectAll = (node: Node, users: User[], attack: Attack) => pool(users.length, 20, async (i) => {
  const c = await Client.connect(node, users[i]!.token, users[i]!.address);
  attack.defer(() => c.ws.terminate());
  return c;
});

/** Times a client's `ping` frames (one every `intervalMs`, whether or not the last was answered) until stopped. */
class Pinger {
  readonly #pending = new Map<number, number>();
  readonly #rtts: number[] = [];
  #sent = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly c: Client, readonly intervalMs: number) {
    c.onText = (type, text) => {
      if (type !== 'pong') return;
      const n = Number(/"id":"p(\d+)"/.exec(text)?.[1]);
      const t = this.#pending.get(n);
      if (t === undefined) return;
      this.#pending.delete(n);
      this.#rtts.push(now() - t);
    };
  }

  start(): this {
    this.#timer = setInterval(() => {
      const n = ++this.#sent;
      this.#pending.set(n, now());
      this.c.send({ type: 'ping', id: `p${n}` });
    }, this.intervalMs);
    return this;
  }

  stop(): { sent: number; answered: number; p50: number | null; max: number | null; unanswered: number; longestWaitMs: number | null } {
    clearInterval(this.#timer);
    const waits = [...this.#pending.values()].map((t) => now() - t);
    return {
      sent: this.#sent, answered: this.#rtts.length, p50: med(this.#rtts), max: max(this.#rtts),
      unanswered: this.#pending.size, longestWaitMs: max([...this.#rtts, ...waits]),
    };
  }

  /** Rows: p50, max, answered / sent. */
  report(a: Attack, what = ''): void {
    const p = this.stop();
    a.row(`ping p50 ms${what} (one every ${this.intervalMs} ms)`, p.p50 === null ? null : r1(p.p50));
    a.row(`ping max ms${what}`, p.max === null ? null : r1(p.max));
    a.row(`pings answered / sent${what}`, `${p.answered} / ${p.sent}`);
    if (p.unanswered > 0) a.row(`ping longest wait ms${what} (unanswered included)`, r1(p.longestWaitMs ?? 0));
  }
}

/** A client of another user (in no conversation of the attack) whose pings are timed, from 127.0.0.4. */
async function pinger(node: Node, attack: Attack, u?: User): Promise<Client> {
  const c = await Client.connect(node, (u ?? await register(node, 'pinger')).token, PINGER);
  attack.defer(() => c.ws.terminate());
  return c;
}

// ---- sampling the node ----------------------------------------------------------------------

interface Sample { t: number; rss: number; fds?: number; bufferedMax?: number; connections?: number }

/** Reads the node's RSS (and open fds) every 100 ms and its /metrics every 500 ms, from start() on; t in seconds since then. */
class Sampler {
  readonly samples: Sample[] = [];
  #t0 = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #metricsLoop: Promise<void> | undefined;
  #last: { bufferedMax?: number; connections?: number } = {};
  metricsAnswered = 0;

  constructor(private readonly node: Node, private readonly attack: Attack, private readonly o: { fds?: boolean; onTick?: (t: number) => void } = {}) {}

  start(): this {
    this.#t0 = now();
    const tick = () => {
      const t = (now() - this.#t0) / 1000;
      let rss = NaN;
      try { rss = rssMiB(this.node.pid); } catch { /* exited */ }
      const s: Sample = { t, rss, ...this.#last };
      if (this.o.fds) { try { s.fds = readdirSync(`/proc/${this.node.pid}/fd`).length; } catch { /* exited */ } }
      this.#last = {};
      this.samples.push(s);
      this.o.onTick?.(t);
    };
    tick();
    this.#timer = setInterval(tick, 100);
    this.#metricsLoop = (async () => {
      while (!this.#stopped) {
        const m = await this.attack.metrics(this.node);
        if (m) {
          this.metricsAnswered++;
          this.#last = { bufferedMax: m.get('confab_outbound_buffered_bytes_max'), connections: m.get('confab_connections') };
        }
        await sleep(500);
      }
    })();
    return this;
  }

  get elapsed(): number {
    return (now() - this.#t0) / 1000;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#metricsLoop;
  }

  peak(k: 'rss' | 'fds' | 'bufferedMax' | 'connections'): number | null {
    return max(this.samples.map((s) => s[k]).filter((v): v is number => v !== undefined && Number.isFinite(v)));
  }

  /** The last reading of `k` at or before t seconds. */
  at(k: 'rss' | 'bufferedMax', t: number): number | null {
    let v: number | null = null;
    for (const s of this.samples) {
      if (s.t > t) break;
      const x = s[k];
      if (x !== undefined && Number.isFinite(x)) v = x;
    }
    return v;
  }
}

const cpuPct = (pid: number, cpu0: number, t0: number) => r1(((cpuSeconds(pid) - cpu0) / ((now() - t0) / 1000)) * 100);

/** Waits until `value()` has not changed for `quietMs` (checked every 100 ms), at most `maxMs`; the time waited. */
async function settle(value: () => number, quietMs: number, maxMs: number): Promise<number> {
  const t0 = now();
  let last = value();
  let since = now();
  while (now() - t0 < maxMs) {
    await sleep(100);
    const v = value();
    if (v !== last) { last = v; since = now(); } else if (now() - since >= quietMs) break;
  }
  return now() - t0;
}

// ---- finding 1: answers nobody reads ---------------------------------------------------------

interface HistorySetup { conv: ConversationId; attacker: User; messages: number; pinger: Client }

/** A group of 9 and at least 400 messages of 16 KB in it (8 writers over REST, 55 each), and a pinging client. */
async function historySetup(a: Attack, node: Node): Promise<HistorySetup> {
  const users = await registerMany(node, 9, 'writer');
  const [attacker, ...writers] = users as [User, ...User[]];
  const conv = await createGroup(node, attacker, writers, 'history');
  a.log('writing 440 messages of 16 KB');
  const deadline = now() + 90_000;
  await Promise.all(writers.map(async (w, wi) => {
    for (let i = 0; i < 55 && now() < deadline; i++) {
      await patiently(() => api(node, w, 'POST', `/v1/conversations/${conv}/messages`, { clientId: `fill-${wi}-${i}`, text: TEXT_16K }), Math.max(0, deadline - now()));
    }
  }));
  const c = await setup<{ lastSeq: number }>(node, attacker, 'GET', `/v1/conversations/${conv}`);
  a.row('messages of 16 KB in the conversation', c.lastSeq);
  return { conv, attacker, messages: c.lastSeq, pinger: await pinger(node, a) };
}

/** The attacker: a raw WebSocket from 127.0.0.2, welcomed, then paused (it reads nothing more). */
async function rawAttacker(a: Attack, node: Node, token: string): Promise<RawWs> {
  const u = await rawUpgrade({ port: node.port, localAddress: ATTACKER });
  if (!u.ws) throw new Error(`the attacker's upgrade was answered ${u.statusLine}`);
  const ws = u.ws;
  a.defer(() => ws.destroy());
  ws.text({ type: 'hello', v: 1, token });
  if (!(await ws.waitFor((_f, type) => type === 'welcome', 15_000))) throw new Error(`the attacker got no welcome: ${counts(ws.frames)}, close ${ws.closeFrame?.code ?? '-'}`);
  ws.pause();
  return ws;
}

const HISTORY_FRAMES = 120;

/** The kernel's view of the attacker's connection: its socket's state and the bytes queued on both sides. */
class Watch {
  state = 'ESTABLISHED';
  /** When (s) the attacker's socket stopped being ESTABLISHED: the node sent FIN (CLOSE_WAIT) or reset it (gone). */
  changedAt: number | null = null;
  kernelPeak = 0;

  constructor(private readonly client: { address: string; port: number }, private readonly nodePort: number) {}

  tick(t: number): void {
    const p = tcpPair(this.client, { address: '127.0.0.1', port: this.nodePort });
    const state = describe(p.client);
    this.kernelPeak = Math.max(this.kernelPeak, (p.client?.rxQueue ?? 0) + (p.node?.txQueue ?? 0));
    if (state !== this.state) {
      this.state = state;
      this.changedAt ??= t;
    }
  }
}

const describe = (e: TcpEntry | undefined) => (!e ? 'gone (reset by the node)' : e.state === 'CLOSE_WAIT' ? 'CLOSE_WAIT (the node sent FIN)' : e.state);

/** Reads what the paused attacker was sent (at most `ms`, or until it closes, all `want` answers are in, or 3 s pass without data); rows on what it found. */
async function readBack(a: Attack, ws: RawWs, want: { type: string; n: number }, ms = 15_000): Promise<void> {
  const before = ws.reader.bytes;
  ws.resume();
  const t0 = now();
  let lastBytes = ws.reader.bytes;
  let lastChange = now();
  while (ws.open && now() - t0 < ms && (ws.frames[want.type] ?? 0) < want.n) {
    await sleep(100);
    if (ws.reader.bytes !== lastBytes) { lastBytes = ws.reader.bytes; lastChange = now(); } else if (now() - lastChange > 3000) break;
  }
  a.row('read back: MiB', mib(ws.reader.bytes - before));
  a.row('frames read in all (hello on), by type', counts(ws.frames));
  a.row('read back: close frame code', ws.closeFrame ? ws.closeFrame.code : 'none');
  a.row('read back: the socket', ws.error ? `error ${ws.error}` : ws.endedAt !== undefined ? 'ended by the node (FIN)' : ws.open ? 'still open' : 'closed');
}

async function historyUnread(a: Attack): Promise<void> {
  const node = await a.node();
  const h = await historySetup(a, node);
  const ws = await rawAttacker(a, node, h.attacker.token);
  const watch = new Watch({ address: ws.localAddress, port: ws.localPort }, node.port);
  const sampler = new Sampler(node, a, { onTick: (t) => watch.tick(t) });
  await sleep(1000);
  sampler.start();
  const rss0 = sampler.samples[0]!.rss;
  const ping = new Pinger(h.pinger, 100).start();
  const cpu0 = cpuSeconds(node.pid);
  const t0 = now();
  for (let i = 0; i < HISTORY_FRAMES; i++) ws.text({ type: 'history', id: `h${i}`, conversationId: h.conv, limit: 200 });
  a.row('history frames sent (limit 200, never read)', HISTORY_FRAMES);
  await sleep(20_000);
  const cpu = cpuPct(node.pid, cpu0, t0);
  ping.report(a);
  await sampler.stop();
  a.row('node rss before MiB', r1(rss0));
  a.row('node rss peak MiB (20 s)', r1(sampler.peak('rss') ?? NaN));
  a.row('node rss at 20 s MiB', r1(sampler.at('rss', 20) ?? NaN));
  const b = sampler.peak('bufferedMax');
  a.row('confab_outbound_buffered_bytes_max peak MiB', b === null ? 'metrics unavailable' : mib(b));
  a.row('kernel bytes queued on the connection, peak MiB', mib(watch.kernelPeak));
  a.row('node cpu % (20 s)', cpu);
  a.row('attacker socket at 20 s', watch.state);
  a.row('attacker socket left ESTABLISHED after s', watch.changedAt === null ? 'never' : r1(watch.changedAt));
  await readBack(a, ws, { type: 'history.result', n: HISTORY_FRAMES });
  ws.destroy();
  await sleep(3000);
  a.row('node rss 3 s after the attacker is gone MiB', r1(rssMiB(node.pid)));
}

async function pongHold(a: Attack): Promise<void> {
  const node = await a.node();
  const h = await historySetup(a, node);
  const ws = await rawAttacker(a, node, h.attacker.token);
  const watch = new Watch({ address: ws.localAddress, port: ws.localPort }, node.port);
  const sampler = new Sampler(node, a, { onTick: (t) => watch.tick(t) });
  await sleep(1000);
  sampler.start();
  const rss0 = sampler.samples[0]!.rss;
  for (let i = 0; i < HISTORY_FRAMES; i++) ws.text({ type: 'history', id: `h${i}`, conversationId: h.conv, limit: 200 });
  a.row('history frames sent (limit 200, never read)', HISTORY_FRAMES);
  let pongs = 0;
  let failed = 0;
  for (let t = 0; t < 60; t += 2) {
    if (ws.send(OP.pong, 'x')) pongs++; else failed++;
    await sleep(2000);
  }
  await sampler.stop();
  a.row('unsolicited pongs written (one every 2 s, 60 s)', pongs);
  if (failed > 0) a.row('pongs not written (socket gone)', failed);
  a.row('node rss before MiB', r1(rss0));
  for (const t of [10, 30, 60]) {
    a.row(`node rss at ${t} s MiB`, r1(sampler.at('rss', t) ?? NaN));
    const b = sampler.at('bufferedMax', t);
    a.row(`confab_outbound_buffered_bytes_max at ${t} s MiB`, b === null ? 'metrics unavailable' : mib(b));
  }
  a.row('node rss peak MiB', r1(sampler.peak('rss') ?? NaN));
  a.row('kernel bytes queued on the connection, peak MiB', mib(watch.kernelPeak));
  a.row('attacker socket at 60 s', watch.state);
  a.row('node dropped the attacker after s', watch.changedAt === null ? 'never (60 s)' : r1(watch.changedAt));
  await readBack(a, ws, { type: 'history.result', n: HISTORY_FRAMES });
  h.pinger.close();
}

async function restPipeline(a: Attack): Promise<void> {
  const node = await a.node();
  const h = await historySetup(a, node);
  const socket = connect({ host: '127.0.0.1', port: node.port, localAddress: ATTACKER });
  a.defer(() => socket.destroy());
  const reader = new HttpResponseReader();
  let ended = false;
  let error: string | undefined;
  socket.on('data', (d: Buffer) => reader.push(d));
  socket.on('end', () => { ended = true; });
  socket.on('error', (err: NodeJS.ErrnoException) => { error ??= err.code ?? err.message; });
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  socket.pause();
  const watch = new Watch({ address: socket.localAddress ?? ATTACKER, port: socket.localPort ?? 0 }, node.port);
  const sampler = new Sampler(node, a, { onTick: (t) => watch.tick(t) });
  await sleep(500);
  sampler.start();
  const rss0 = sampler.samples[0]!.rss;
  const ping = new Pinger(h.pinger, 100).start();
  const req = `GET /v1/conversations/${h.conv}/messages?limit=200 HTTP/1.1\r\nHost: 127.0.0.1:${node.port}\r\nAuthorization: Bearer ${h.attacker.token}\r\n\r\n`;
  socket.write(req.repeat(HISTORY_FRAMES));
  a.row('pipelined GET .../messages?limit=200 written (never read)', HISTORY_FRAMES);
  await sleep(20_000);
  ping.report(a);
  await sampler.stop();
  a.row('node rss before MiB', r1(rss0));
  a.row('node rss peak MiB (20 s)', r1(sampler.peak('rss') ?? NaN));
  a.row('kernel bytes queued on the connection, peak MiB', mib(watch.kernelPeak));
  a.row('attacker socket at 20 s', watch.state);
  socket.resume();
  const t0 = now();
  let last = reader.bytes;
  let lastChange = now();
  while (!socket.destroyed && !ended && reader.statuses.length < HISTORY_FRAMES && now() - t0 < 15_000) {
    await sleep(100);
    if (reader.bytes !== last) { last = reader.bytes; lastChange = now(); } else if (now() - lastChange > 3000) break;
  }
  const statuses: Record<string, number> = {};
  for (const s of reader.statuses) tally(statuses, s);
  a.row('read back: responses', reader.statuses.length);
  a.row('read back: statuses', counts(statuses));
  a.row('read back: MiB', mib(reader.bytes));
  a.row('read back: the connection', error ? `error ${error}` : ended ? 'ended by the node (FIN)' : 'still open');
  socket.destroy();
  await sleep(3000);
  a.row('node rss 3 s after the attacker is gone MiB', r1(rssMiB(node.pid)));
}

// ---- finding 2: typing and renames multiplied ------------------------------------------------

async function typingAlternate(a: Attack): Promise<void> {
  const node = await a.node();
  const users = await registerMany(node, 21, 'typist');
  const [typistUser, ...others] = users as [User, ...User[]];
  const conv = await createGroup(node, typistUser, others, 'typing');
  const [typist, ...readers] = await connectAll(node, users, a) as [Client, ...Client[]];
  let delivered = 0;
  for (const r of readers) r.onText = (type) => { if (type === 'typing') delivered++; };
  const typistErrors: Record<string, number> = {};
  typist.onText = (type, text) => { if (type === 'error') tally(typistErrors, /"code":"([a-z_]+)"/.exec(text)?.[1] ?? '?'); };
  const N = 2000;

  const paused = readers.slice(0, 10);
  const PAUSE_MS = 3000;

  /** `bursts` bursts of N frames, `gapMs` apart; with `pause`, 10 members read nothing for the first 3 s. */
  const run = async (label: string, bursts: number, pause: boolean, gapMs = 0) => {
    delivered = 0;
    for (const k of Object.keys(typistErrors)) delete typistErrors[k];
    const slow0 = (await a.metrics(node))?.get('confab_slow_consumers_total') ?? null;
    const cpu0 = cpuSeconds(node.pid);
    const t0 = now();
    if (pause) for (const r of paused) r.ws.pause();
    for (let b = 0; b < bursts; b++) {
      if (b > 0) await sleep(gapMs);
      for (let i = 0; i < N; i++) typist.send({ type: 'typing', conversationId: conv, typing: i % 2 === 0 });
    }
    if (pause) {
      await sleep(Math.max(0, t0 + PAUSE_MS - now()));
      for (const r of paused) if (r.ws.readyState === WebSocket.OPEN) r.ws.resume();
    }
    await settle(() => delivered, 2000, 30_000);
    const sent = N * bursts;
    a.row(`${label}: typing frames sent (alternating true/false, as fast as the socket takes them)`, sent);
    a.row(`${label}: typing frames delivered to the 20 others`, delivered);
    a.row(`${label}: deliveries per frame sent`, r2(delivered / sent));
    a.row(`${label}: errors answered to the typist`, counts(typistErrors));
    a.row(`${label}: node cpu s`, r2(cpuSeconds(node.pid) - cpu0));
    a.row(`${label}: s until deliveries stopped`, r1((now() - t0 - 2000) / 1000));
    if (!pause) return;
    const closes: Record<string, number> = {};
    for (const r of paused) if (r.closeCode !== undefined) tally(closes, r.closeCode);
    a.row(`${label}: paused members closed with 4104`, closes['4104'] ?? 0);
    a.row(`${label}: paused members closed, by code`, counts(closes));
    const othersClosed: Record<string, number> = {};
    for (const r of [typist, ...readers.slice(10)]) if (r.closeCode !== undefined) tally(othersClosed, r.closeCode);
    a.row(`${label}: other members closed, by code`, counts(othersClosed));
    const slow1 = (await a.metrics(node))?.get('confab_slow_consumers_total') ?? null;
    if (slow0 !== null && slow1 !== null) a.row(`${label}: confab_slow_consumers_total delta`, slow1 - slow0);
  };

  a.log('run 1: every member reads');
  await run('run 1 (all read)', 1, false);
  a.log('run 2: 10 members pause reading for 3 s');
  await run('run 2 (10 paused 3 s)', 1, true);
  // The same, the typist going on through the pause: 4 bursts of 2,000, 750 ms apart (over 1 MiB
  // of typing frames for each paused member; 2,000 alone are about 350 KB).
  if (readers.every((r) => r.open)) {
    a.log('run 3: 10 members pause reading for 3 s, the typist goes on meanwhile');
    await run('run 3 (10 paused 3 s, 4 bursts of 2,000 in 2.25 s)', 4, true, 750);
  } else {
    a.row('run 3', 'skipped: members were closed in run 2');
  }
}

async function renameFlood(a: Attack): Promise<void> {
  const node = await a.node();
  a.log('registering 200 members');
  const users = await registerMany(node, 200, 'member');
  const [owner, ...members] = users as [User, ...User[]];
  const conv = await createGroup(node, owner, members, 'renames');
  a.log('connecting 200 members');
  const clients = await connectAll(node, users, a);
  let frames = 0;
  for (const c of clients) c.onText = (type) => { if (type === 'conversation') frames++; };
  await sleep(1000);
  frames = 0;
  const m0 = await a.metrics(node);
  const cpu0 = cpuSeconds(node.pid);
  const statuses: Record<string, number> = {};
  const t0 = now();
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  a.defer(() => agent.destroy());
  let done = 0;
  for (let i = 0; i < 200 && now() - t0 < 120_000; i++, done++) {
    const r = await api(node, owner, 'PATCH', `/v1/conversations/${conv}`, { name: `renamed ${i}` }, { from: ATTACKER, agent });
    tally(statuses, outcome(r));
  }
  const renameMs = now() - t0;
  const waited = await settle(() => frames, 2000, 60_000);
  const m1 = await a.metrics(node);
  a.row('renames attempted (one at a time, REST, from 127.0.0.2)', done);
  a.row('renames answered, by status', counts(statuses));
  a.row('renames: s', r2(renameMs / 1000));
  a.row('`conversation` frames received by the 200 members', frames);
  a.row('s until those frames stopped (after the last rename)', r1((waited - 2000) / 1000));
  a.row('node cpu s (renames and their frames)', r2(cpuSeconds(node.pid) - cpu0));
  if (m0 && m1) a.row('conversation views computed (store viewForUser calls)', m1.get('confab_store_calls_total', 'method="viewForUser"') - m0.get('confab_store_calls_total', 'method="viewForUser"'));
  const closed: Record<string, number> = {};
  for (const c of clients) if (c.closeCode !== undefined) tally(closed, c.closeCode);
  a.row('members closed, by code', counts(closed));
}

// ---- finding 3: before authentication --------------------------------------------------------

async function unauthFlood(a: Attack): Promise<void> {
  const node = await a.node();
  const real = await register(node, 'realuser');
  const m0 = await a.metrics(node);
  const sampler = new Sampler(node, a, { fds: true });
  await sleep(500);
  sampler.start();
  const rss0 = sampler.samples[0]!.rss;
  const fds0 = sampler.samples[0]!.fds ?? null;
  const worker: ChildProcess = forkWorker(WORKER, a.pinCore);
  a.defer(() => stopWorker(worker));
  const plan = { port: node.port, localAddress: ATTACKER, seconds: 10, maxTotal: 50_000, maxOpen: 3000, concurrency: 64 };
  const flooded = nextMessage<FromHostileWorker>(worker, 60_000);
  const cpu0 = cpuSeconds(node.pid);
  const wcpu0 = cpuSeconds(worker.pid!);
  const t0 = now();
  worker.send({ type: 'flood', ...plan } satisfies ToHostileWorker);
  // The real user: 20 connection attempts with hello from 127.0.0.3 while the flood runs.
  await sleep(500);
  const outcomes: Promise<string>[] = [];
  for (let i = 0; i < 20; i++) {
    outcomes.push(Client.connect(node, real.token, INNOCENT, 8000).then((c) => { c.close(); return 'welcome'; }, (err: unknown) => (err as Error).message));
    await sleep(450);
  }
  const real20 = await Promise.all(outcomes);
  const r = (await flooded) as FloodResult & { type: string };
  const nodeCpu = cpuPct(node.pid, cpu0, t0);
  const workerCpu = cpuPct(worker.pid!, wcpu0, t0);
  await sleep(500);
  await sampler.stop();
  const m1 = await a.metrics(node);
  a.row('upgrades attempted (no token, from 127.0.0.2, 10 s, at most 3,000 kept open)', r.attempted);
  a.row('upgrades per second', Math.round(r.attempted / (r.ms / 1000)));
  a.row('upgraded (101)', r.upgraded);
  a.row('other answers, by status', counts(r.statuses));
  a.row('connection errors, by code', counts(r.errors));
  a.row('close frames the attacker got, by code', counts(r.closeCodes));
  a.row('attacker sockets open at most', r.peakOpen);
  a.row('node cpu % during the flood (of one core)', nodeCpu);
  a.row('generator cpu % during the flood (of one core)', workerCpu);
  const tallyReal: Record<string, number> = {};
  for (const o of real20) tally(tallyReal, o);
  a.row('real user (127.0.0.3): attempts welcomed of 20', tallyReal.welcome ?? 0);
  a.row('real user: outcomes', counts(tallyReal));
  a.row('node rss before MiB', r1(rss0));
  a.row('node rss peak MiB', r1(sampler.peak('rss') ?? NaN));
  a.row('node open fds before', fds0);
  a.row('node open fds peak (sockets held, pre-auth included)', sampler.peak('fds'));
  const conns = sampler.peak('connections');
  a.row('confab_connections peak (WebSockets open, pre-auth included)', conns === null ? 'metrics unavailable' : conns);
  if (m0 && m1) {
    const closed = (m: MetricsView) => m.byLabel('confab_connections_closed_total', 'code');
    const c0 = closed(m0);
    const c1 = closed(m1);
    const delta: Record<string, number> = {};
    for (const [k, v] of Object.entries(c1)) if (v - (c0[k] ?? 0) > 0) delta[k] = v - (c0[k] ?? 0);
    a.row('confab_connections_closed_total delta, by code', counts(delta));
  }
}

/** A raw connection that never answers a close: when the close frame came and when the node's socket went. */
async function graceCase(node: Node, hello: ((ws: RawWs) => void) | undefined, waitMs: number) {
  const u = await rawUpgrade({ port: node.port, localAddress: ATTACKER });
  if (!u.ws) return { code: `upgrade ${u.status}`, closeAfter: null, goneAfter: null, how: 'refused' };
  const ws = u.ws;
  const t0 = now();
  hello?.(ws);
  const until = t0 + waitMs;
  while (ws.open && ws.endedAt === undefined && now() < until) await sleep(50);
  const gone = ws.endedAt ?? ws.closedAt;
  const res = {
    code: ws.closeFrame ? String(ws.closeFrame.code) : 'none',
    closeAfter: ws.closeFrame ? r2((ws.closeFrame.at - t0) / 1000) : null,
    goneAfter: gone === undefined ? null : r2((gone - t0) / 1000),
    how: ws.error ? `error ${ws.error}` : ws.endedAt !== undefined ? 'FIN from the node' : ws.open ? `still open at ${waitMs / 1000} s` : 'closed',
  };
  ws.destroy();
  return res;
}

async function closeGrace(a: Attack): Promise<void> {
  const node = await a.node(['--hello-timeout-ms', '2000', '--max-connections-per-user', '1', '--access-token-ttl', '3'],
    { note: 'HELLO_TIMEOUT_MS 2 s for the hello timeout, a cap of 1 connection per user for 4102, tokens of 3 s for 4002' });
  const [expiring, capped] = await Promise.all([register(node, 'expiring'), register(node, 'capped')]);
  const first = await Client.connect(node, capped.token, capped.address);
  a.defer(() => first.ws.terminate());
  const WAIT = 45_000;
  const hello = (token: string) => (ws: RawWs) => { ws.text({ type: 'hello', v: 1, token }); };
  const cases: [string, Promise<Awaited<ReturnType<typeof graceCase>>>][] = [
    ['no hello', graceCase(node, undefined, WAIT)],
    ['bad token', graceCase(node, hello('not-a-token'), WAIT)],
    ['over the per-user cap', graceCase(node, hello(capped.token), WAIT)],
    ['expired token', sleep(4000).then(() => graceCase(node, hello(expiring.token), WAIT))],
  ];
  for (const [label, p] of cases) {
    const r = await p;
    a.row(`${label}: close code`, r.code);
    a.row(`${label}: close frame after s`, r.closeAfter);
    a.row(`${label}: the node's socket gone after s (close never answered)`, r.goneAfter === null ? `not within ${WAIT / 1000} s` : r.goneAfter);
    a.row(`${label}: how it ended`, r.how);
  }
}

// ---- finding 4: writes without a cost --------------------------------------------------------

async function readFlood(a: Attack): Promise<void> {
  const node = await a.node();
  const [owner, reader] = await registerMany(node, 2, 'reader') as [User, User];
  const conv = await createGroup(node, owner, [reader], 'reads');
  for (let i = 0; i < 10; i++) await setup(node, owner, 'POST', `/v1/conversations/${conv}/messages`, { clientId: `m${i}`, text: `message ${i}` });
  await setup(node, reader, 'POST', `/v1/conversations/${conv}/read`, { seq: 10 });
  const c = await Client.connect(node, reader.token, ATTACKER);
  a.defer(() => c.ws.terminate());
  const pc = await pinger(node, a);
  const answers: Record<string, number> = {};
  let answered = 0;
  c.onText = (type, text) => {
    if (!/"id":"r\d+"/.test(text)) return;
    answered++;
    tally(answers, type === 'error' ? /"code":"([a-z_]+)"/.exec(text)?.[1] ?? 'error' : type);
  };
  await sleep(500);
  const m0 = await a.metrics(node);
  const ping = new Pinger(pc, 20).start();
  await sleep(200);
  const N = 2000;
  const cpu0 = cpuSeconds(node.pid);
  const t0 = now();
  for (let i = 0; i < N; i++) c.send({ type: 'read', id: `r${i}`, conversationId: conv, seq: 5 });
  while (answered < N && c.open && now() - t0 < 30_000) await sleep(20);
  const ms = now() - t0;
  const cpu = r2(cpuSeconds(node.pid) - cpu0);
  await sleep(200);
  ping.report(a, ' during the flood');
  const m1 = await a.metrics(node);
  a.row('read frames sent (seq 5, cursor at 10, from 127.0.0.2)', N);
  a.row('answers, by type or error code', counts(answers));
  a.row('unanswered', N - answered);
  a.row('s until the last answer', r2(ms / 1000));
  a.row('node cpu s', cpu);
  if (!c.open) a.row('flooding connection closed with', c.closeCode ?? '?');
  const key = 'method="advanceReadCursor"';
  a.row('confab_store_calls_total{method="advanceReadCursor"} delta', m0 && m1 ? m1.get('confab_store_calls_total', key) - m0.get('confab_store_calls_total', key) : 'metrics unavailable');
}

async function login(node: Node, u: User, from: string): Promise<{ ms: number; status: number }> {
  const a = await http(node.port, '/v1/auth/login', { method: 'POST', body: { username: u.username, password: PASSWORD }, localAddress: from });
  return { ms: a.ms, status: a.status };
}

async function registerTaken(a: Attack): Promise<void> {
  const node = await a.node();
  const [taken, innocent] = await Promise.all([register(node, 'taken'), register(node, 'innocent')]);
  const idle: number[] = [];
  for (let i = 0; i < 5; i++) idle.push((await login(node, innocent, INNOCENT)).ms);
  const statuses: Record<string, number> = {};
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  a.defer(() => agent.destroy());
  const N = 581;
  let attempts = 0;
  let running = true;
  const during: number[] = [];
  const innocentStatuses: Record<string, number> = {};
  const innocentLoop = (async () => {
    while (running) {
      const r = await login(node, innocent, INNOCENT);
      if (running) { during.push(r.ms); tally(innocentStatuses, r.status); }
    }
  })();
  const cpu0 = cpuSeconds(node.pid);
  const t0 = now();
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (attempts < N && now() - t0 < 5000) {
      attempts++;
      const r = await http(node.port, '/v1/auth/register', { method: 'POST', body: { username: taken.username, password: 'attacker-password-1' }, localAddress: ATTACKER, agent });
      tally(statuses, outcome(r));
    }
  }));
  const secs = (now() - t0) / 1000;
  const cpu = cpuSeconds(node.pid) - cpu0;
  running = false;
  await innocentLoop;
  a.row(`registrations of a taken name (at most ${N} in 5 s, 16 at a time, from 127.0.0.2)`, attempts);
  a.row('s until all were answered', r2(secs));
  a.row('answers, by status', counts(statuses));
  a.row('node cpu % meanwhile (of one core)', r1((cpu / secs) * 100));
  a.row('node cpu s meanwhile', r2(cpu));
  const mi = med(idle);
  const md = med(during);
  a.row('innocent login (127.0.0.3) idle, median ms of 5', mi === null ? null : r1(mi));
  a.row(`innocent login during, median ms of ${during.length}`, md === null ? null : r1(md));
  a.row('innocent login during, statuses', counts(innocentStatuses));
  if (mi !== null && md !== null) a.row('innocent login during / idle', r2(md / mi));
}

async function registerNew(a: Attack): Promise<void> {
  const node = await a.node();
  const statuses: Record<string, number> = {};
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  a.defer(() => agent.destroy());
  const N = 200;
  const t0 = now();
  await pool(N, 8, async (i) => {
    if (now() - t0 > 100_000) return tally(statuses, 'not sent (100 s)');
    const r = await http(node.port, '/v1/auth/register', { method: 'POST', body: { username: `fresh${i}`, password: PASSWORD }, localAddress: ATTACKER, agent });
    tally(statuses, outcome(r));
  });
  a.row(`registrations of new names (8 at a time, from 127.0.0.2)`, N);
  a.row('accepted (201)', statuses['201'] ?? 0);
  a.row('answers, by status', counts(statuses));
  a.row('s', r2((now() - t0) / 1000));
}

async function groupFlood(a: Attack): Promise<void> {
  const node = await a.node();
  const [attacker, victim] = await registerMany(node, 2, 'groups') as [User, User];
  const statuses: Record<string, number> = {};
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });
  a.defer(() => agent.destroy());
  const N = 1000;
  const t0 = now();
  await pool(N, 16, async (i) => {
    if (now() - t0 > 120_000) return tally(statuses, 'not sent (120 s)');
    const r = await api(node, attacker, 'POST', '/v1/conversations', { name: `flood ${i}`, members: [victim.username] }, { from: ATTACKER, agent });
    tally(statuses, outcome(r));
  });
  const secs = (now() - t0) / 1000;
  a.row('groups asked for, each with the victim (16 at a time, from 127.0.0.2)', N);
  a.row('created (201)', statuses['201'] ?? 0);
  a.row('answers, by status', counts(statuses));
  a.row('s', r2(secs));
  const list = await api(node, victim, 'GET', '/v1/conversations');
  a.row("victim's conversation list: status", outcome(list));
  a.row("victim's conversation list: conversations in the answer", list.status === 200 ? conversationsIn(list.text) : null);
}

/** Conversations in a list answer (`{"conversations": [...]}`), whatever else it holds. */
function conversationsIn(text: string): number | null {
  try {
    const body = JSON.parse(text) as { conversations?: unknown };
    return Array.isArray(body.conversations) ? body.conversations.length : null;
  } catch {
    return null;
  }
}

async function list4000(a: Attack): Promise<void> {
  const node = await a.node([], { note: 'its 4,000 groups written into the store while it was stopped' });
  const [owner, victim] = await registerMany(node, 2, 'lister') as [User, User];
  const pingUser = await register(node, 'pinger');
  a.log('stopping the node to write 4,000 groups into its store');
  await node.proc.halt();
  const store = new SqliteStore({ path: join(node.proc.dataDir, 'confab.db'), checkpoints: 'inline' });
  try {
    const N = 4000;
    const at = Date.now() - N * 1000;
    const ids: ConversationId[] = [];
    for (let i = 0; i < N; i++) {
      const c = await store.createGroup({ id: newConversationId(), name: `group ${i}`, ownerId: owner.id, memberIds: [owner.id, victim.id], createdAt: at + i * 1000 });
      ids.push(c.id);
    }
    for (let i = 0; i < N; i += 500) {
      await store.append(ids.slice(i, i + 500).map((conversationId, k) => ({
        conversationId, kind: 'message' as const, messageId: newMessageId(), senderId: owner.id, clientId: `list-${i + k}`, text: `hello ${i + k}`, createdAt: at + (i + k) * 1000,
      })));
    }
  } finally {
    await store.close();
  }
  await node.proc.resume();
  const pinged = await pinger(node, a, pingUser);
  a.row('conversations of the user (each a group of 2 with one unread message)', 4000);
  await sleep(500);
  const ping = new Pinger(pinged, 20).start();
  await sleep(200);
  const times: number[] = [];
  const statuses: Record<string, number> = {};
  let bytes = 0;
  let listed: number | null = null;
  const cpu0 = cpuSeconds(node.pid);
  const t0 = now();
  for (let i = 0; i < 20; i++) {
    const r = await api(node, victim, 'GET', '/v1/conversations');
    times.push(r.ms);
    tally(statuses, outcome(r));
    bytes = Buffer.byteLength(r.text);
    if (r.status === 200) listed = conversationsIn(r.text);
  }
  const cpu = cpuPct(node.pid, cpu0, t0);
  await sleep(200);
  a.row('GET /v1/conversations (no parameters), calls', 20);
  a.row('answers, by status', counts(statuses));
  a.row('ms per call, median', r1(med(times) ?? NaN));
  a.row('ms per call, max', r1(max(times) ?? NaN));
  a.row('answer KiB', r1(bytes / 1024));
  a.row('conversations in the answer', listed);
  a.row('node cpu % meanwhile', cpu);
  ping.report(a, ' meanwhile');
}

// ---- finding 5: data files -------------------------------------------------------------------

const modeOf = (path: string) => {
  try {
    return `0${(statSync(path).mode & 0o777).toString(8).padStart(3, '0')}`;
  } catch {
    return 'absent';
  }
};

async function dataFiles(a: Attack): Promise<void> {
  const parent = mkdtempSync(join(tmpdir(), 'confab-bench-hostile-'));
  a.defer(() => rmSync(parent, { recursive: true, force: true }));
  const dir = join(parent, 'data');
  const node = await a.node([], { umask: 0o022, dataDir: dir, note: 'umask 022; DATA_DIR does not exist before, the node makes it' });
  const files: [string, string][] = [['DATA_DIR', dir], ['confab.db', join(dir, 'confab.db')], ['confab.db-wal', join(dir, 'confab.db-wal')],
    ['confab.db-shm', join(dir, 'confab.db-shm')], ['jwt-secret', join(dir, 'jwt-secret')]];
  for (const [name, path] of files) a.row(`${name} mode after start`, modeOf(path));
  const [owner, member] = await registerMany(node, 2, 'files') as [User, User];
  const conv = await createGroup(node, owner, [member], 'files');
  for (let i = 0; i < 5; i++) await setup(node, owner, 'POST', `/v1/conversations/${conv}/messages`, { clientId: `f${i}`, text: `file ${i}` });
  await sleep(500);
  for (const [name, path] of files) a.row(`${name} mode after writes`, modeOf(path));
}

// ---- finding 6: a removed member's resend ----------------------------------------------------

async function removedResend(a: Attack): Promise<void> {
  const node = await a.node();
  const [owner, member] = await registerMany(node, 2, 'resend') as [User, User];
  const conv = await createGroup(node, owner, [member], 'resend');
  const c = await Client.connect(node, member.token, member.address);
  a.defer(() => c.ws.terminate());
  const wsSend = (id: string, clientId: string) => new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve('no answer in 5 s'), 5000);
    c.onText = (type, text) => {
      if (!text.includes(`"id":"${id}"`)) return;
      clearTimeout(timer);
      if (type === 'ack') resolve(`ack, duplicate ${/"duplicate":true/.test(text)}, returned the message: ${/"text":"ws before removal"/.test(text) ? 'yes' : 'no'}`);
      else resolve(`${type} ${/"code":"([a-z_]+)"/.exec(text)?.[1] ?? ''}`.trim());
    };
    c.send({ type: 'send', id, conversationId: conv, clientId, text: 'ws before removal' });
  });
  const sendRest = () => api(node, member, 'POST', `/v1/conversations/${conv}/messages`, { clientId: 'rest-x', text: 'rest before removal' });
  a.row('REST send before removal: status', outcome(await sendRest()));
  a.row('WS send before removal: answer', await wsSend('w1', 'ws-x'));
  const removed = await api(node, owner, 'DELETE', `/v1/conversations/${conv}/members/${member.id}`);
  a.row('owner removes the member: status', outcome(removed));
  await sleep(300);
  const again = await sendRest();
  a.row('REST resend of the same client id after removal: status', outcome(again));
  let returned = 'no';
  try {
    const body = JSON.parse(again.text) as { message?: { text?: string }; duplicate?: boolean };
    if (body.message) returned = `yes (duplicate ${String(body.duplicate)}, text ${JSON.stringify(body.message.text)})`;
  } catch { /* not JSON */ }
  a.row('REST resend after removal: returned the message', returned);
  a.row('WS resend of the same client id after removal: answer', c.open ? await wsSend('w2', 'ws-x') : `connection closed (${c.closeCode ?? '?'})`);
}

// ---- finding 7: a foreign Host ---------------------------------------------------------------

async function foreignHost(a: Attack): Promise<void> {
  const node = await a.node();
  const u = await register(node, 'hostuser');
  const evil = { host: 'evil.example', origin: 'http://evil.example' };
  const loginAnswer = await http(node.port, '/v1/auth/login', { method: 'POST', headers: evil, body: { username: u.username, password: PASSWORD }, localAddress: ATTACKER });
  a.row('POST /v1/auth/login, Host and Origin evil.example: status', outcome(loginAnswer));
  a.row('POST /v1/auth/login, Host and Origin evil.example: answered with a session', /"accessToken"/.test(loginAnswer.text) ? 'yes' : 'no');
  a.row('GET /metrics, Host and Origin evil.example: status', outcome(await http(node.port, '/metrics', { headers: evil, localAddress: ATTACKER })));
  a.row('GET /metrics, Host evil.example, no Origin: status', outcome(await http(node.port, '/metrics', { headers: { host: evil.host }, localAddress: ATTACKER })));
  const up = await rawUpgrade({ port: node.port, localAddress: ATTACKER, host: evil.host, origin: evil.origin });
  up.ws?.destroy();
  a.row('WebSocket upgrade at /v1/ws, Host and Origin evil.example: status', up.status);
  const plain = await http(node.port, '/metrics', { localAddress: ATTACKER });
  a.row('GET /metrics without credentials: status', outcome(plain));
  a.row('GET /metrics without credentials: answered with metrics', plain.status === 200 && /^# HELP /m.test(plain.text) ? 'yes' : 'no');
}

// ---- the scenario ---------------------------------------------------------------------------

/** Columns padded to their widest cell, left-aligned; the head is the first line. */
function leftTable(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const fmt = (row: string[]) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}

const RUN: Record<AttackName, (a: Attack) => Promise<void>> = {
  'history-unread': historyUnread, 'pong-hold': pongHold, 'rest-pipeline': restPipeline,
  'typing-alternate': typingAlternate, 'rename-flood': renameFlood,
  'unauth-flood': unauthFlood, 'close-grace': closeGrace,
  'read-flood': readFlood, 'register-taken': registerTaken, 'register-new': registerNew, 'group-flood': groupFlood, 'list-4000': list4000,
  'data-files': dataFiles, 'removed-resend': removedResend, 'foreign-host': foreignHost,
};

export const hostile: Scenario = {
  name: 'hostile',
  usage: USAGE,
  options: OPTIONS,

  budgetSeconds(o) {
    return 60 + settings(o).only.reduce((n, name) => n + ATTACKS[name].seconds, 0);
  },

  async run(o, ctx) {
    const s = settings(o);
    const rows: Row[] = [];
    let current: Attack | undefined;
    ctx.onCleanup(() => current?.cleanup());
    for (const name of s.only) {
      const a = new Attack(name, s, ctx);
      current = a;
      ctx.log(`attack ${name} (finding ${ATTACKS[name].finding})`);
      const t0 = now();
      try {
        await RUN[name](a);
      } catch (err) {
        a.row('error', (err as Error).message.slice(0, 300));
        ctx.log(`${name} failed: ${(err as Error).stack ?? String(err)}`);
      } finally {
        await a.cleanup();
      }
      a.row('attack took s', r1((now() - t0) / 1000));
      rows.push(...a.rows);
    }
    current = undefined;
    const tree = s.cli ?? 'this tree';
    return {
      systems: [{ name: 'confab', cli: s.cli ?? null, rows }],
      params: { only: s.only, cli: s.cli ?? null, metricsToken: s.metricsToken !== undefined, nodeEnv: Object.keys(s.nodeEnv) },
      lines: [
        `confab (${tree}): one fresh node per attack on 127.0.0.1 (the node's pid on CPU 0 when pinned); attacker 127.0.0.2, innocent user 127.0.0.3, pinging client 127.0.0.4`,
        ...leftTable(['finding', 'attack', 'measure', 'value'], rows.map((r) => [String(r.finding), r.attack, r.measure, r.value === null ? '-' : String(r.value)])),
      ],
    };
  },
};
