// A presence load-generator process (forked by scenarios/presence.ts). Each of its clients is one
// user's only device: `hello`, then `presence.watch` with the user's group peers, then it listens.
// Frames other than `presence` and `error` are skipped unread; `presence` frames are parsed and
// checked against the protocol schema, and each client keeps the view a real client would build
// (the answer to its watch, then the changes in order), so a wrong final state shows up.
// The coordinator decides when to count, restart the node, reconnect and flap.
import { WebSocket, type RawData } from 'ws';
import { PresenceFrame, type ClientFrameOf } from '@confab/protocol';
import { now } from './latency.js';
import { pool } from './rest.js';

export interface PresenceClientSpec { userId: string; token: string; watch: string[] }

/** Outcome of connecting a set of clients (each: hello, welcome, presence.watch, its answer). */
export interface ConnectResult {
  connected: number; failed: number; retries: number; lastAnswerAt: number; failures: Record<string, number>; alreadyOpen: number;
  /** Per connected client: ms from its (scheduled) start to its watch answer, retries included. */
  latencies: number[];
  /** Per connected client, of its last attempt: ms to the socket's open (TCP + upgrade), then to `welcome`, then to the watch answer. */
  phases: { open: number[]; welcome: number[]; answer: number[] };
}

/** What the clients of one worker saw between `count` and `report`. */
export interface PresenceCounts {
  /** Watch answers (presence frames with an `id`) and the entries they held. */
  answers: number; answerEntries: number;
  /** Change frames (no `id`) and their entries; all of them, those on the pre-count connections included. */
  changes: number; changeEntries: number;
  /** Change frames and entries that came on connections opened before the count (e.g. while the node shut down). */
  oldConnChanges: number; oldConnEntries: number;
  /** Bytes of all presence frames. */
  bytes: number;
  /** Change frames on a connection before the answer to its watch. */
  changesBeforeAnswer: number;
  /** Change entries that told the client what it already had (same status and lastSeen). */
  redundantEntries: number;
  /** (client, watched user) pairs the client does not show as online at the end, and how many of those clients had a change before their answer. */
  staleViews: number; staleClientsWithEarlyChange: number; staleSamples: string[];
  /** Clients without an answered connection at the end. */
  notOpen: number;
  /** Shortest time between two change frames on one connection (ms), and how many gaps were shorter than the interval allows. */
  minGapMs: number | null; gapsBelowInterval: number; gapSamples: string[];
  /** Of those, the gaps shorter than this process's longest event-loop stall can explain (interval - stall - 100 ms). */
  gapsUnexplained: number;
  /** Longest stall of this process's event loop while counting (a late frame may be our lag, not the node's). */
  maxStallMs: number;
  /** Frames that break the documented contract, by kind, with a few samples. */
  violations: Record<string, number>; violationSamples: string[];
  /** Close codes and error frames seen; when the first and last close came, and the last frame on a pre-count connection (0: none). */
  closes: Record<string, number>; errors: Record<string, number>; firstCloseAt: number; lastCloseAt: number; lastOldFrameAt: number;
  /** Change frames and entries per client, in the order of the init list. */
  perClientChanges: number[]; perClientEntries: number[];
  /** Change frames per 250 ms since the count started. */
  timeline: number[];
}

export type ToPresenceWorker =
  | { type: 'init'; url: string; clients: PresenceClientSpec[]; intervalMs: number }
  /** Connect every client that is not connected (bounded concurrency); answers `ready`. */
  | { type: 'connect'; intervalMs: number }
  /** Reset the counters and count from now on; answers `ok`. */
  | { type: 'count' }
  /** Answers `counts` at `until` with what came before it. */
  | { type: 'report'; until: number }
  /** Reconnect every client at startAt + random() × waveMs (retrying with full jitter); answers `ready`. */
  | { type: 'reconnect'; startAt: number; waveMs: number; deadline: number }
  /** These clients close (1000) and reconnect `cycles` times, one cycle every spanMs / cycles; answers `ready`. */
  | { type: 'flap'; clients: number[]; cycles: number; spanMs: number; startAt: number; deadline: number }
  /** Close every client (1000); answers `ok`. */
  | { type: 'disconnect' }
  | { type: 'stop' };

export type FromPresenceWorker = { type: 'ok' } | ({ type: 'ready' } & ConnectResult) | ({ type: 'counts' } & PresenceCounts) | { type: 'fatal'; message: string };

const CONNECT_CONCURRENCY = 32;
const ANSWER_TIMEOUT_MS = 15_000;
const GAP_TOLERANCE_MS = 100; // client-side timing noise allowed below the interval
const TIMELINE_BUCKET_MS = 250;
const TIMELINE_BUCKETS = 480;
const SAMPLES = 5;

interface Client {
  i: number;
  spec: PresenceClientSpec;
  watched: Set<string>;
  ws: WebSocket | undefined;
  /** Generation of the current connection; connections of generation <= countGen predate the count. */
  gen: number;
  answered: boolean;
  /** What this client believes, per watched user: "status:lastSeen". */
  view: Map<string, string>;
  lastChangeAt: number;
  earlyChange: boolean;
  /** When the last connection attempt began, its socket opened, `welcome` and the watch answer came (ms). */
  times: { begin: number; open: number; welcome: number; answer: number };
}

class Counts implements Omit<PresenceCounts, 'perClientChanges' | 'perClientEntries' | 'staleViews' | 'staleClientsWithEarlyChange' | 'staleSamples' | 'notOpen' | 'gapsUnexplained'> {
  answers = 0; answerEntries = 0; changes = 0; changeEntries = 0; oldConnChanges = 0; oldConnEntries = 0; bytes = 0;
  changesBeforeAnswer = 0; redundantEntries = 0; minGapMs: number | null = null; gapsBelowInterval = 0; gapSamples: string[] = []; gaps: number[] = []; maxStallMs = 0;
  violations: Record<string, number> = {}; violationSamples: string[] = [];
  closes: Record<string, number> = {}; errors: Record<string, number> = {}; firstCloseAt = 0; lastCloseAt = 0; lastOldFrameAt = 0;
  timeline: number[] = [];
  readonly perClientChanges: number[];
  readonly perClientEntries: number[];
  readonly start = now();
  until = Infinity;
  constructor(readonly countGen: number[]) {
    this.perClientChanges = countGen.map(() => 0);
    this.perClientEntries = countGen.map(() => 0);
  }
  violation(kind: string, sample: string): void {
    this.violations[kind] = (this.violations[kind] ?? 0) + 1;
    if (this.violationSamples.length < SAMPLES) this.violationSamples.push(`${kind}: ${sample.slice(0, 300)}`);
  }
}

let url = '';
let intervalMs = 0;
let clients: Client[] = [];
let counts: Counts | undefined;
const reply = (m: FromPresenceWorker) => { process.send?.(m); };
const bump = (o: Record<string, number>, k: string) => { o[k] = (o[k] ?? 0) + 1; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** The counts to add to, if `t` is inside the counted window. */
const counting = (t: number): Counts | undefined => (counts && t < counts.until ? counts : undefined);

function onPresence(c: Client, gen: number, raw: string, t: number, answered: () => void): void {
  const k = counting(t);
  let data: unknown;
  try { data = JSON.parse(raw); } catch { k?.violation('bad_json', raw); return; }
  const parsed = PresenceFrame.safeParse(data);
  if (!parsed.success) { k?.violation('schema', raw); return; }
  const f = parsed.data;
  if (k) k.bytes += Buffer.byteLength(raw);
  for (const e of f.users) {
    if (!c.watched.has(e.userId)) k?.violation('entry_for_unwatched_user', raw);
    if (e.status !== 'offline' && e.lastSeen !== null) k?.violation('last_seen_while_online', raw);
  }
  if (f.id !== undefined) {
    if (f.id !== `w${gen}`) { k?.violation('answer_with_unknown_id', raw); return; }
    if ((f.denied ?? []).length > 0) k?.violation('peer_denied', raw);
    const ids = new Set(f.users.map((e) => e.userId));
    if (ids.size !== f.users.length || ids.size !== c.watched.size) k?.violation('answer_not_one_entry_per_watched_user', raw);
    if (k) { k.answers++; k.answerEntries += f.users.length; }
    c.view = new Map(f.users.map((e) => [e.userId, `${e.status}:${e.lastSeen}`]));
    c.answered = true;
    answered();
    return;
  }
  // A change frame.
  if (f.users.length === 0) k?.violation('empty_change_frame', raw);
  if (!c.answered) {
    c.earlyChange = true;
    if (k) k.changesBeforeAnswer++;
  }
  if (k && intervalMs > 0 && c.lastChangeAt > 0) {
    const gap = t - c.lastChangeAt;
    k.minGapMs = k.minGapMs === null ? gap : Math.min(k.minGapMs, gap);
    if (gap < intervalMs - GAP_TOLERANCE_MS) {
      k.gapsBelowInterval++;
      k.gaps.push(gap);
      if (k.gapSamples.length < SAMPLES) k.gapSamples.push(`${c.spec.userId}: change frames ${gap.toFixed(1)} ms apart, the second at +${(t - k.start).toFixed(0)} ms`);
    }
  }
  c.lastChangeAt = t;
  for (const e of f.users) {
    const key = `${e.status}:${e.lastSeen}`;
    if (k && c.view.get(e.userId) === key) k.redundantEntries++;
    c.view.set(e.userId, key);
  }
  if (!k) return;
  k.changes++;
  k.changeEntries += f.users.length;
  k.perClientChanges[c.i]!++;
  k.perClientEntries[c.i]! += f.users.length;
  if (gen <= k.countGen[c.i]!) { k.oldConnChanges++; k.oldConnEntries += f.users.length; k.lastOldFrameAt = t; }
  const b = Math.min(TIMELINE_BUCKETS - 1, Math.floor((t - k.start) / TIMELINE_BUCKET_MS));
  while (k.timeline.length <= b) k.timeline.push(0);
  k.timeline[b]!++;
}

/** Opens a connection for `c`: hello, welcome, presence.watch; resolves on the watch answer. */
function open(c: Client): Promise<void> {
  return new Promise((resolve, reject) => {
    const gen = ++c.gen;
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`, { perMessageDeflate: false });
    c.ws = ws;
    c.answered = false;
    c.earlyChange = false;
    c.lastChangeAt = 0;
    c.times = { begin: now(), open: 0, welcome: 0, answer: 0 };
    let welcomed = false;
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail(`no watch answer within ${ANSWER_TIMEOUT_MS} ms`), ANSWER_TIMEOUT_MS);
    ws.on('open', () => {
      c.times.open = now();
      const hello: ClientFrameOf<'hello'> = { type: 'hello', v: 1, token: c.spec.token };
      ws.send(JSON.stringify(hello));
    });
    ws.on('message', (data: RawData) => {
      const raw = (data as Buffer).toString('utf8');
      const t = now();
      if (!welcomed) {
        if (!raw.startsWith('{"type":"welcome"')) return fail(`hello refused: ${raw.slice(0, 200)}`);
        welcomed = true;
        c.times.welcome = t;
        const watch: ClientFrameOf<'presence.watch'> = { type: 'presence.watch', id: `w${gen}`, userIds: c.spec.watch };
        ws.send(JSON.stringify(watch));
        return;
      }
      const type = raw.startsWith('{"type":"') ? raw.slice(9, raw.indexOf('"', 9)) : '';
      if (type === 'presence') {
        return onPresence(c, gen, raw, t, () => {
          if (settled) return;
          settled = true;
          c.times.answer = t;
          clearTimeout(timer);
          resolve();
        });
      }
      if (type === 'error') {
        const k = counting(t);
        if (k) bump(k.errors, (JSON.parse(raw) as { code: string }).code);
        if (!settled && raw.includes(`"id":"w${gen}"`)) fail(`watch refused: ${raw.slice(0, 200)}`);
      }
    });
    ws.on('error', (err) => fail(err.message));
    ws.on('close', (code) => {
      if (c.ws === ws) { c.ws = undefined; c.answered = false; }
      if (!settled) return fail(`closed (${code}) before the watch answer`);
      const t = now();
      const k = counting(t);
      if (!k) return;
      bump(k.closes, String(code));
      if (k.firstCloseAt === 0) k.firstCloseAt = t;
      k.lastCloseAt = t;
    });
  });
}

/** Opens with retries (full jitter, base 250 ms, cap 5 s) until `deadline`; returns the retries made. */
async function openRetrying(c: Client, deadline: number, failures: Record<string, number>): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      await open(c);
      return attempt;
    } catch (err) {
      bump(failures, (err as Error).message.replace(/[0-9a-f-]{36}/g, '<id>').slice(0, 120));
      const wait = Math.random() * Math.min(5000, 250 * 2 ** attempt);
      if (now() + wait >= deadline) throw new Error(`gave up after ${attempt + 1} attempts`);
      await sleep(wait);
    }
  }
}

function close(c: Client): Promise<void> {
  const ws = c.ws;
  if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => { ws.terminate(); resolve(); }, 5000);
    ws.once('close', () => { clearTimeout(timer); resolve(); });
    ws.close(1000, 'bench');
  });
}

/** Runs `each` for every listed client and sums up the outcome; `each` sets `started.at` when its last connect began. */
async function connectAll(list: Client[], each: (c: Client, failures: Record<string, number>, started: { at?: number }) => Promise<number>, concurrency: number): Promise<ConnectResult> {
  const r: ConnectResult = { connected: 0, failed: 0, retries: 0, lastAnswerAt: 0, failures: {}, alreadyOpen: clients.filter((c) => c.answered && !list.includes(c)).length, latencies: [], phases: { open: [], welcome: [], answer: [] } };
  await pool(list.length, concurrency, async (i) => {
    const c = list[i]!;
    const started: { at?: number } = {};
    try {
      r.retries += await each(c, r.failures, started);
      r.connected++;
      r.lastAnswerAt = Math.max(r.lastAnswerAt, now());
      if (started.at !== undefined) r.latencies.push(Math.round((now() - started.at) * 10) / 10);
      const t = c.times;
      r.phases.open.push(Math.round((t.open - t.begin) * 10) / 10);
      r.phases.welcome.push(Math.round((t.welcome - t.open) * 10) / 10);
      r.phases.answer.push(Math.round((t.answer - t.welcome) * 10) / 10);
    } catch (err) {
      r.failed++;
      bump(r.failures, (err as Error).message);
    }
  });
  return r;
}

function report(until: number): void {
  const k = counts;
  if (!k) return reply({ type: 'fatal', message: 'report without count' });
  k.until = until;
  setTimeout(() => {
    let staleViews = 0;
    let staleClientsWithEarlyChange = 0;
    let notOpen = 0;
    const staleSamples: string[] = [];
    for (const c of clients) {
      if (!c.answered) { notOpen++; continue; }
      let stale = 0;
      for (const u of c.watched) {
        const v = c.view.get(u) ?? 'missing';
        if (v.startsWith('online:')) continue;
        stale++;
        if (staleSamples.length < SAMPLES) staleSamples.push(`${c.spec.userId} shows ${u} as ${v}${c.earlyChange ? ' (a change came before its watch answer)' : ''}`);
      }
      staleViews += stale;
      if (stale > 0 && c.earlyChange) staleClientsWithEarlyChange++;
    }
    const gapsUnexplained = k.gaps.filter((g) => g < intervalMs - k.maxStallMs - GAP_TOLERANCE_MS).length;
    const { answers, answerEntries, changes, changeEntries, oldConnChanges, oldConnEntries, bytes, changesBeforeAnswer, redundantEntries,
      minGapMs, gapsBelowInterval, gapSamples, maxStallMs, violations, violationSamples, closes, errors, firstCloseAt, lastCloseAt, lastOldFrameAt, perClientChanges, perClientEntries, timeline } = k;
    reply({
      type: 'counts', answers, answerEntries, changes, changeEntries, oldConnChanges, oldConnEntries, bytes, changesBeforeAnswer, redundantEntries,
      staleViews, staleClientsWithEarlyChange, staleSamples, notOpen, minGapMs, gapsBelowInterval, gapSamples, gapsUnexplained, maxStallMs, violations, violationSamples, closes, errors,
      firstCloseAt, lastCloseAt, lastOldFrameAt,
      perClientChanges, perClientEntries, timeline,
    });
  }, until - now());
}

/** Connects every client without a connection (bounded concurrency, retries for up to 2 minutes). */
function connectMissing(interval: number): void {
  intervalMs = interval;
  const deadline = now() + 120_000;
  connectAll(clients.filter((c) => !c.ws), (c, f, started) => { started.at = now(); return openRetrying(c, deadline, f); }, CONNECT_CONCURRENCY).then((r) => reply({ type: 'ready', ...r }), fatal);
}

function fatal(err: unknown): void {
  reply({ type: 'fatal', message: (err as Error).message });
}

process.on('message', (m: ToPresenceWorker) => {
  switch (m.type) {
    case 'init':
      url = m.url;
      clients = m.clients.map((spec, i) => ({
        i, spec, watched: new Set(spec.watch), ws: undefined, gen: 0, answered: false, view: new Map(), lastChangeAt: 0, earlyChange: false,
        times: { begin: 0, open: 0, welcome: 0, answer: 0 },
      }));
      return connectMissing(m.intervalMs);
    case 'connect':
      return connectMissing(m.intervalMs);
    case 'count':
      counts = new Counts(clients.map((c) => c.gen));
      lastTick = now();
      return reply({ type: 'ok' });
    case 'report':
      return report(m.until);
    case 'reconnect': {
      // Every client that lost its connection comes back on its own random delay: the herd.
      const list = clients.filter((c) => !c.answered);
      connectAll(list, async (c, f, started) => {
        const at = m.startAt + Math.random() * m.waveMs;
        await sleep(at - now());
        started.at = at;
        return openRetrying(c, m.deadline, f);
      }, Math.max(1, list.length)).then((r) => reply({ type: 'ready', ...r }), fatal);
      return;
    }
    case 'flap': {
      const list = m.clients.map((i) => clients[i]!);
      connectAll(list, async (c, f, started) => {
        let retries = 0;
        for (let k = 0; k < m.cycles; k++) {
          await sleep(m.startAt + (k * m.spanMs) / m.cycles - now());
          started.at = now();
          await close(c);
          retries += await openRetrying(c, m.deadline, f);
        }
        return retries;
      }, Math.max(1, list.length)).then((r) => reply({ type: 'ready', ...r }), fatal);
      return;
    }
    case 'disconnect':
      Promise.all(clients.map(close)).then(() => reply({ type: 'ok' }), fatal);
      return;
    case 'stop':
      for (const c of clients) c.ws?.terminate();
      process.exit(0);
  }
});
// Event-loop lag: the timer asks for 5 ms, more is time this process could not read frames.
let lastTick = now();
setInterval(() => {
  const t = now();
  if (counts && t < counts.until) counts.maxStallMs = Math.max(counts.maxStallMs, t - lastTick);
  lastTick = t;
}, 5).unref();
process.on('disconnect', () => process.exit(0)); // the coordinator is gone: so are we
