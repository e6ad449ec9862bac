// Scenario "presence": what presence costs a node and its watchers. U users, each one device,
// each sharing a group with W others and watching them (`presence.watch`). Two measurements:
//
// - The reconnect wave: the node restarts (SIGTERM: connections are closed with 4101 going_away
//   and the in-memory presence is lost; then it starts again on the same data directory and
//   port), and every client comes back after a random delay in [0, --wave-ms] counted from the
//   moment the node answers again, sends `hello` and its `presence.watch` again. Counted, from the
//   SIGTERM until --tail-ms after the last watch answer: every `presence` frame the clients got
//   (watch answers vs change frames, and the user entries they held).
// - Flapping: a few users (each in a different group) close and reopen their connection several
//   times within a second; counted: the change frames their watchers got.
//
// Both run with --presence-interval-ms and, with --compare (the default), again with 0 (no
// batching: every change is sent at once) on the same users and groups, after a node restart.
import type { ParseArgsConfig } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Session } from '@confab/protocol';
import { now } from '../latency.js';
import type { Context, Opts, Scenario } from '../main.js';
import { cpuSeconds, rssMiB, startConfab, type ConfabProcess, type Exit } from '../node.js';
import { formatTable } from '../report.js';
import { createGroup, pool, registerUsers } from '../rest.js';
import { forkWorker, nextMessage, stopWorker } from '../workers.js';
import type { ConnectResult, FromPresenceWorker, PresenceClientSpec, PresenceCounts, ToPresenceWorker } from '../presence-worker.js';

const OPTIONS = {
  users: { type: 'string', default: '1000' },
  watch: { type: 'string', default: '50' },
  workers: { type: 'string', default: '2' },
  'presence-interval-ms': { type: 'string', default: '1000' },
  'wave-ms': { type: 'string', default: '2000' },
  'tail-ms': { type: 'string', default: '3000' },
  'settle-ms': { type: 'string', default: '2000' },
  compare: { type: 'boolean', default: true },
  'no-compare': { type: 'boolean', default: false },
  'baseline-interval-ms': { type: 'string', default: '0' },
  'flap-users': { type: 'string', default: '10' },
  'flap-cycles': { type: 'string', default: '5' },
  'flap-ms': { type: 'string', default: '1000' },
  'setup-concurrency': { type: 'string', default: '8' },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `presence: U users, each watching the W others of its group; a node restart (reconnect wave) and flapping users.
  --users U                 users, one device each, all connected (default 1000)
  --watch W                 peers each user watches: groups of W+1 (default 50)
  --workers N               client processes (default 2)
  --presence-interval-ms I  the node's presence batching interval (default 1000)
  --wave-ms D               each client reconnects after random() x D once the node is back (default 2000)
  --tail-ms T               keep counting this long after the last watch answer (default 3000; at least 2 I + 1 s)
  --settle-ms S             quiet time before each measurement (default 2000; at least I + 1 s)
  --no-compare              skip the baseline run without batching
  --baseline-interval-ms B  the baseline's interval (default 0: every change at once; a node that
                            refuses 0 gets 1, the smallest it accepts, and the report says so)
  --flap-users F            users that flap, each in a different group where possible (default 10)
  --flap-cycles C           close + reconnect cycles per flapping user (default 5) ...
  --flap-ms M               ... spread over M ms (default 1000)
  --setup-concurrency C     registrations in flight during setup (default 8)`;

const WORKER = fileURLToPath(new URL('../presence-worker.js', import.meta.url));

function num(o: Opts, key: keyof typeof OPTIONS, min: number, max: number): number {
  const v = Number(o[key]);
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${key} must be a number from ${min} to ${max}, got "${String(o[key])}"`);
  return Math.floor(v);
}

function settings(o: Opts) {
  const users = num(o, 'users', 2, 20_000);
  const watch = num(o, 'watch', 1, 999);
  if (watch >= users) throw new Error('--watch must be smaller than --users');
  const intervalMs = num(o, 'presence-interval-ms', 0, 60_000);
  return {
    users, watch, intervalMs,
    workers: num(o, 'workers', 1, 16),
    waveMs: num(o, 'wave-ms', 0, 120_000),
    tailMs: num(o, 'tail-ms', 0, 120_000),
    settleMs: num(o, 'settle-ms', 0, 120_000),
    compare: o.compare !== false && !o['no-compare'],
    baselineIntervalMs: num(o, 'baseline-interval-ms', 0, 60_000),
    flapUsers: num(o, 'flap-users', 0, 1000),
    flapCycles: num(o, 'flap-cycles', 1, 100),
    flapMs: num(o, 'flap-ms', 1, 60_000),
    setupConcurrency: num(o, 'setup-concurrency', 1, 64),
  };
}
type Settings = ReturnType<typeof settings>;

/**
 * Who is in which group and who watches whom. Groups are W+1 consecutive users; the last group
 * is filled up with users from the start (who are then in two groups), so that every user watches
 * exactly W peers: the others of its first group.
 */
export function layout(users: number, watch: number): { groups: number[][]; watchOf: number[][]; watchers: number[] } {
  const size = watch + 1;
  const groups = Array.from({ length: Math.ceil(users / size) }, (_, g) => Array.from({ length: size }, (_, j) => (g * size + j) % users));
  const watchOf = Array.from({ length: users }, (_, i) => groups[Math.floor(i / size)]!.filter((u) => u !== i));
  const watchers = new Array<number>(users).fill(0);
  for (const list of watchOf) for (const u of list) watchers[u]!++;
  return { groups, watchOf, watchers };
}

/** Up to `n` users, from as many different groups as possible, preferring users with exactly W watchers. */
export function pickFlappers(groups: number[][], watchers: number[], watch: number, n: number): number[] {
  const picked: number[] = [];
  const taken = new Set<number>();
  for (let round = 0; picked.length < n && round <= watch; round++) {
    groups.forEach((members, g) => {
      if (picked.length >= n) return;
      const own = members.filter((u) => !taken.has(u) && Math.floor(u / (watch + 1)) === g); // not the users the last group borrows
      const u = own.find((c) => watchers[c] === watch) ?? own[0];
      if (u === undefined) return;
      picked.push(u);
      taken.add(u);
    });
  }
  return picked;
}

interface Worker { child: ChildProcess; clients: number[] }

/** Sends `m` to these workers and waits for each one's answer. */
async function ask<T extends FromPresenceWorker['type']>(workers: Worker[], m: ToPresenceWorker | ((w: Worker) => ToPresenceWorker), expect: T, timeoutMs: number): Promise<Extract<FromPresenceWorker, { type: T }>[]> {
  return Promise.all(workers.map(async (w) => {
    const answer = nextMessage<FromPresenceWorker>(w.child, timeoutMs);
    w.child.send(typeof m === 'function' ? m(w) : m);
    const a = await answer;
    if (a.type !== expect) throw new Error(`worker ${w.child.pid}: expected ${expect}, got ${a.type}`);
    return a as Extract<FromPresenceWorker, { type: T }>;
  }));
}

function mergeConnect(rs: ConnectResult[]): ConnectResult {
  const failures: Record<string, number> = {};
  for (const r of rs) for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + v;
  return {
    connected: rs.reduce((n, r) => n + r.connected, 0), failed: rs.reduce((n, r) => n + r.failed, 0), retries: rs.reduce((n, r) => n + r.retries, 0),
    lastAnswerAt: Math.max(0, ...rs.map((r) => r.lastAnswerAt)), failures, alreadyOpen: rs.reduce((n, r) => n + r.alreadyOpen, 0),
    latencies: rs.flatMap((r) => r.latencies),
    phases: { open: rs.flatMap((r) => r.phases.open), welcome: rs.flatMap((r) => r.phases.welcome), answer: rs.flatMap((r) => r.phases.answer) },
  };
}

type Merged = Omit<PresenceCounts, 'perClientChanges' | 'perClientEntries'> & { perClientChanges: number[]; perClientEntries: number[] };

/** Adds up the workers' counts; per-client arrays are put back in global user order. */
function mergeCounts(workers: Worker[], cs: PresenceCounts[], users: number): Merged {
  const add = (a: Record<string, number>, b: Record<string, number>) => { for (const [k, v] of Object.entries(b)) a[k] = (a[k] ?? 0) + v; return a; };
  const m: Merged = {
    answers: 0, answerEntries: 0, changes: 0, changeEntries: 0, oldConnChanges: 0, oldConnEntries: 0, bytes: 0, changesBeforeAnswer: 0, redundantEntries: 0,
    staleViews: 0, staleClientsWithEarlyChange: 0, staleSamples: [], notOpen: 0, minGapMs: null, gapsBelowInterval: 0, gapsUnexplained: 0, gapSamples: [], maxStallMs: 0, violations: {}, violationSamples: [],
    closes: {}, errors: {}, firstCloseAt: 0, lastCloseAt: 0, lastOldFrameAt: 0, perClientChanges: new Array<number>(users).fill(0), perClientEntries: new Array<number>(users).fill(0), timeline: [],
  };
  cs.forEach((c, wi) => {
    for (const k of ['answers', 'answerEntries', 'changes', 'changeEntries', 'oldConnChanges', 'oldConnEntries', 'bytes', 'changesBeforeAnswer', 'redundantEntries',
      'staleViews', 'staleClientsWithEarlyChange', 'notOpen', 'gapsBelowInterval', 'gapsUnexplained'] as const) m[k] += c[k];
    if (c.minGapMs !== null) m.minGapMs = m.minGapMs === null ? c.minGapMs : Math.min(m.minGapMs, c.minGapMs);
    m.staleSamples.push(...c.staleSamples);
    m.gapSamples.push(...c.gapSamples);
    m.maxStallMs = Math.max(m.maxStallMs, c.maxStallMs);
    if (c.firstCloseAt > 0) m.firstCloseAt = m.firstCloseAt === 0 ? c.firstCloseAt : Math.min(m.firstCloseAt, c.firstCloseAt);
    m.lastCloseAt = Math.max(m.lastCloseAt, c.lastCloseAt);
    m.lastOldFrameAt = Math.max(m.lastOldFrameAt, c.lastOldFrameAt);
    m.violationSamples.push(...c.violationSamples);
    add(m.violations, c.violations);
    add(m.closes, c.closes);
    add(m.errors, c.errors);
    workers[wi]!.clients.forEach((u, i) => { m.perClientChanges[u] = c.perClientChanges[i]!; m.perClientEntries[u] = c.perClientEntries[i]!; });
    c.timeline.forEach((n, b) => { m.timeline[b] = (m.timeline[b] ?? 0) + n; });
  });
  for (let b = 0; b < m.timeline.length; b++) m.timeline[b] ??= 0;
  m.staleSamples.splice(5);
  m.violationSamples.splice(5);
  m.gapSamples.splice(5);
  return m;
}

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;
const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - now())));
function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
/** p50 / p99 of each step of a connection: socket open (TCP + upgrade), then welcome, then the watch answer. */
function phases(c: ConnectResult) {
  const q = (v: number[]) => ({ p50: quantile(v, 0.5), p99: quantile(v, 0.99) });
  return { open: q(c.phases.open), welcome: q(c.phases.welcome), answer: q(c.phases.answer) };
}
const cpuOf = (pid: number) => { try { return cpuSeconds(pid); } catch { return NaN; } };

/** The checks every measurement reports: frames that break the docs, views left wrong. */
function checks(m: Merged) {
  return {
    changesBeforeAnswer: m.changesBeforeAnswer, redundantEntries: m.redundantEntries,
    staleViews: m.staleViews, staleClientsWithEarlyChange: m.staleClientsWithEarlyChange, notOpen: m.notOpen,
    minGapMs: m.minGapMs === null ? null : round(m.minGapMs, 1), gapsBelowInterval: m.gapsBelowInterval, gapsUnexplainedByGeneratorStall: m.gapsUnexplained,
    ...(m.gapSamples.length ? { gapSamples: m.gapSamples } : {}),
    generatorMaxStallMs: round(m.maxStallMs, 1),
    violations: m.violations, closes: m.closes, errors: m.errors,
    ...(m.staleSamples.length ? { staleSamples: m.staleSamples } : {}),
    ...(m.violationSamples.length ? { violationSamples: m.violationSamples } : {}),
  };
}

interface Run { s: Settings; node: ConfabProcess; workers: Worker[]; users: number; watchOf: number[][]; flappers: number[]; ctx: Context }

/** The reconnect wave after a node restart. */
async function wave(r: Run, tailMs: number) {
  const { s, node, workers, users, ctx } = r;
  await ask(workers, { type: 'count' }, 'ok', 10_000);
  const t0 = now();
  const oldPid = node.pid;
  const cpuBefore = cpuOf(oldPid);
  let cpuLast = cpuBefore;
  const sampler = setInterval(() => { const v = cpuOf(oldPid); if (!Number.isNaN(v)) cpuLast = v; }, 10);
  let exit: Exit;
  try { exit = await node.halt(30_000); } finally { clearInterval(sampler); }
  const tDown = now();
  await node.resume();
  const tUp = now();
  const genPids = workers.map((w) => w.child.pid!);
  const cpu0 = cpuOf(node.pid);
  const gen0 = genPids.map(cpuOf);
  const startAt = now() + 20;
  const deadline = startAt + s.waveMs + 60_000;
  ctx.log(`  node stopped in ${Math.round(tDown - t0)} ms (exit ${exit.code ?? exit.signal}${exit.killed ? ', killed' : ''}), back after ${Math.round(tUp - t0)} ms; ${users} clients reconnect within ${s.waveMs} ms`);
  const conn = mergeConnect(await ask(workers, { type: 'reconnect', startAt, waveMs: s.waveMs, deadline }, 'ready', deadline - now() + 30_000));
  const lastAnswerAt = conn.lastAnswerAt || now();
  const cpuReconnect = cpuOf(node.pid) - cpu0;
  const reconnectSecs = (now() - tUp) / 1000;
  const until = Math.max(lastAnswerAt, startAt) + tailMs;
  const counted = ask(workers, { type: 'report', until }, 'counts', until - now() + 30_000);
  counted.catch(() => undefined); // awaited below; a worker ending meanwhile (the run stopped) must not crash the clean-up
  await sleepUntil(until);
  const secs = (now() - tUp) / 1000;
  const serverCpuSec = cpuOf(node.pid) - cpu0;
  const serverRssMiB = rssMiB(node.pid);
  const generatorCpuPct = genPids.map((pid, i) => round(((cpuOf(pid) - gen0[i]!) / secs) * 100, 1));
  const m = mergeCounts(workers, await counted, users);
  const frames = m.answers + m.changes;
  return {
    watchAnswers: m.answers,
    changeFrames: m.changes,
    entries: m.answerEntries + m.changeEntries,
    framesPerWatcher: round(frames / users),
    waveMs: Math.round(lastAnswerAt - t0),
    answerEntries: m.answerEntries,
    changeEntries: m.changeEntries,
    changeFramesPerWatcher: round(m.changes / users),
    maxChangeFramesPerWatcher: Math.max(0, ...m.perClientChanges),
    p50ChangeFramesPerWatcher: quantile(m.perClientChanges, 0.5),
    changeEntriesPerWatcher: round(m.changeEntries / users),
    entriesPerChangeFrame: m.changes ? round(m.changeEntries / m.changes) : 0,
    shutdownChangeFrames: m.oldConnChanges,
    shutdownEntries: m.oldConnEntries,
    bytes: m.bytes,
    stopMs: Math.round(tDown - t0),
    firstCloseMs: m.firstCloseAt ? Math.round(m.firstCloseAt - t0) : null,
    lastCloseMs: m.lastCloseAt ? Math.round(m.lastCloseAt - t0) : null,
    lastShutdownFrameMs: m.lastOldFrameAt ? Math.round(m.lastOldFrameAt - t0) : null,
    downMs: Math.round(tUp - t0),
    reconnectMs: Math.round(lastAnswerAt - startAt),
    countedMs: Math.round(until - t0),
    exit,
    reconnectLatencyMs: { p50: quantile(conn.latencies, 0.5), p99: quantile(conn.latencies, 0.99), max: Math.max(0, ...conn.latencies) },
    reconnectPhasesMs: phases(conn),
    reconnected: conn.connected, reconnectFailed: conn.failed, reconnectRetries: conn.retries, stillOpenAtRestart: conn.alreadyOpen,
    ...(Object.keys(conn.failures).length ? { reconnectFailures: conn.failures } : {}),
    serverCpuSec: round(serverCpuSec), serverCpuPct: round((serverCpuSec / secs) * 100, 1), serverRssMiB: round(serverRssMiB, 1),
    serverCpuPctUntilLastAnswer: round((cpuReconnect / reconnectSecs) * 100, 1),
    shutdownCpuSec: round(cpuLast - cpuBefore),
    generatorCpuPct,
    ...checks(m),
    timeline250ms: m.timeline,
  };
}

/** Flapping users: each closes and reopens its connection C times within M ms. */
async function flap(r: Run, tailMs: number) {
  const { s, node, workers, users, watchOf, flappers } = r;
  const flapSet = new Set(flappers);
  const watchersOfFlappers = new Set<number>();
  watchOf.forEach((list, u) => { if (!flapSet.has(u) && list.some((p) => flapSet.has(p))) watchersOfFlappers.add(u); });
  const byWorker = workers.map((w) => w.clients.flatMap((u, i) => (flapSet.has(u) ? [i] : [])));
  const involved = workers.filter((_, i) => byWorker[i]!.length > 0);
  await ask(workers, { type: 'count' }, 'ok', 10_000);
  const cpu0 = cpuOf(node.pid);
  const t0 = now();
  const startAt = t0 + 20;
  const deadline = startAt + s.flapMs + 60_000;
  const conn = mergeConnect(await ask(involved, (w) => ({ type: 'flap', clients: byWorker[workers.indexOf(w)]!, cycles: s.flapCycles, spanMs: s.flapMs, startAt, deadline }), 'ready', deadline - now() + 30_000));
  const until = Math.max(conn.lastAnswerAt, startAt + s.flapMs) + tailMs;
  const counted = ask(workers, { type: 'report', until }, 'counts', until - now() + 30_000);
  counted.catch(() => undefined); // awaited below; a worker ending meanwhile (the run stopped) must not crash the clean-up
  await sleepUntil(until);
  const serverCpuSec = cpuOf(node.pid) - cpu0;
  const m = mergeCounts(workers, await counted, users);
  let watcherFrames = 0;
  let watcherEntries = 0;
  for (const u of watchersOfFlappers) { watcherFrames += m.perClientChanges[u]!; watcherEntries += m.perClientEntries[u]!; }
  const n = watchersOfFlappers.size || 1;
  return {
    users: flappers.length, cycles: s.flapCycles, spanMs: s.flapMs,
    watchers: watchersOfFlappers.size,
    changeFrames: watcherFrames,
    entries: watcherEntries,
    framesPerWatcher: round(watcherFrames / n),
    maxFramesPerWatcher: Math.max(0, ...[...watchersOfFlappers].map((u) => m.perClientChanges[u]!)),
    entriesPerWatcher: round(watcherEntries / n),
    otherChangeFrames: m.changes - watcherFrames,
    flapperAnswers: m.answers,
    flapMs: Math.round(conn.lastAnswerAt - startAt),
    cycleLatencyMs: { p50: quantile(conn.latencies, 0.5), max: Math.max(0, ...conn.latencies) },
    reconnectFailed: conn.failed,
    serverCpuSec: round(serverCpuSec),
    ...checks(m),
  };
}

type Wave = Awaited<ReturnType<typeof wave>>;
type Flap = Awaited<ReturnType<typeof flap>>;
interface System { name: string; presenceIntervalMs: number; requestedPresenceIntervalMs: number; watchAnswers: number; changeFrames: number; entries: number; framesPerWatcher: number; waveMs: number; nodeLogLines: number; connect: Record<string, unknown>; wave: Wave; flap: Flap | null }

function render(systems: System[], s: Settings): string[] {
  const ratio = (f: (x: System) => number) => {
    if (systems.length < 2) return [];
    const a = f(systems[0]!);
    const b = f(systems[1]!);
    return [a > 0 ? `${(b / a).toFixed(1)}x` : '-'];
  };
  const row = (label: string, f: (x: System) => number | string, withRatio = true): string[] =>
    [label, ...systems.map((x) => String(f(x))), ...(withRatio ? ratio((x) => Number(f(x))) : systems.length > 1 ? [''] : [])];
  const head = ['', ...systems.map((x) => `interval ${x.presenceIntervalMs} ms`), ...(systems.length > 1 ? ['0 / batched'] : [])];
  const list = (o: Record<string, number>) => Object.entries(o).map(([k, v]) => `${k}:${v}`).join(',') || '0';
  const rows = [
    row(`wave: presence frames (answers + changes)`, (x) => x.watchAnswers + x.changeFrames),
    row('  watch answers', (x) => x.watchAnswers),
    row('  change frames', (x) => x.changeFrames),
    row('    of which before the close (shutdown)', (x) => x.wave.shutdownChangeFrames),
    row('  frames per watcher (all / changes)', (x) => `${x.framesPerWatcher} / ${x.wave.changeFramesPerWatcher}`, false),
    row('  change frames on one watcher, p50 / max', (x) => `${x.wave.p50ChangeFramesPerWatcher} / ${x.wave.maxChangeFramesPerWatcher}`, false),
    row('  entries (answers + changes)', (x) => x.entries),
    row('  change entries', (x) => x.wave.changeEntries),
    row('  entries per change frame', (x) => x.wave.entriesPerChangeFrame),
    row('  presence bytes', (x) => x.wave.bytes),
    row('  wave ms (SIGTERM -> last answer)', (x) => x.waveMs),
    row('  SIGTERM -> first / last 4101 close, exit, up ms', (x) => `${x.wave.firstCloseMs ?? '-'} / ${x.wave.lastCloseMs ?? '-'}, ${x.wave.stopMs}${x.wave.exit.killed ? ' (killed)' : ''}, ${x.wave.downMs}`, false),
    row('  server cpu s (up -> end), rss MiB', (x) => `${x.wave.serverCpuSec} (${x.wave.serverCpuPct}%), ${x.wave.serverRssMiB}`, false),
    row('  server cpu % (up -> last answer)', (x) => x.wave.serverCpuPctUntilLastAnswer, false),
    row('  server cpu s during shutdown', (x) => x.wave.shutdownCpuSec),
    row('  generator cpu %', (x) => x.wave.generatorCpuPct.join('/'), false),
    row('  hello -> watch answer ms, p50 / p99 / max', (x) => `${x.wave.reconnectLatencyMs.p50} / ${x.wave.reconnectLatencyMs.p99} / ${x.wave.reconnectLatencyMs.max}`, false),
    row('    socket open / welcome / answer p50 ms', (x) => `${x.wave.reconnectPhasesMs.open.p50} / ${x.wave.reconnectPhasesMs.welcome.p50} / ${x.wave.reconnectPhasesMs.answer.p50}`, false),
    row('  reconnected / failed / retries', (x) => `${x.wave.reconnected} / ${x.wave.reconnectFailed} / ${x.wave.reconnectRetries}`, false),
    row('  close codes', (x) => list(x.wave.closes), false),
    row('  changes before the watch answer', (x) => x.wave.changesBeforeAnswer, false),
    row('  stale views at the end', (x) => x.wave.staleViews, false),
    row('  change gaps < interval - 100 ms (unexplained), min ms', (x) => `${x.wave.gapsBelowInterval} (${x.wave.gapsUnexplainedByGeneratorStall}), ${x.wave.minGapMs ?? '-'}`, false),
    row('  generator event-loop stall, max ms', (x) => x.wave.generatorMaxStallMs, false),
    row('  violations of the docs', (x) => list(x.wave.violations), false),
  ];
  if (systems.every((x) => x.flap)) {
    rows.push(
      row(`flap: ${s.flapUsers} users x ${s.flapCycles} cycles in ${s.flapMs} ms, watchers`, (x) => x.flap!.watchers, false),
      row('  change frames to their watchers', (x) => x.flap!.changeFrames),
      row('  frames per watcher (max)', (x) => `${x.flap!.framesPerWatcher} (${x.flap!.maxFramesPerWatcher})`, false),
      row('  entries to their watchers', (x) => x.flap!.entries),
      row('  server cpu s', (x) => x.flap!.serverCpuSec),
      row('  stale views / violations', (x) => `${x.flap!.staleViews} / ${list(x.flap!.violations)}`, false),
    );
  }
  return [`presence: ${s.users} users, each watching ${s.watch}; reconnect wave of ${s.waveMs} ms`, ...formatTable(head, rows)];
}

export const presence: Scenario = {
  name: 'presence',
  usage: USAGE,
  options: OPTIONS,

  budgetSeconds(o) {
    const s = settings(o);
    const setup = 60 + s.users * 0.2; // argon2 ≈ 50 ms each on the node's one core, with margin
    const tail = (iv: number) => Math.max(s.tailMs, 2 * iv + 1000) / 1000;
    const settle = (iv: number) => Math.max(s.settleMs, iv + 1000) / 1000;
    const one = (iv: number) => 30 + s.users * 0.02 + 2 * settle(iv) + (s.flapMs / 1000 + tail(iv) + 10) + (45 + s.waveMs / 1000 + tail(iv) + 20);
    return setup + one(s.intervalMs) + (s.compare ? one(s.baselineIntervalMs) : 0) + 60;
  },

  async run(o, ctx) {
    const s = settings(o);
    const intervals = s.compare ? [s.intervalMs, s.baselineIntervalMs] : [s.intervalMs];
    const nodeArgs = (iv: number) => ['--presence-interval-ms', String(iv), '--log-level', 'warn', '--access-token-ttl', '7200'];
    const node = await startConfab(nodeArgs(intervals[0]!), ctx.pin ? 0 : undefined, { nodeFlags: ctx.nodeFlags });
    ctx.onCleanup(() => node.stop());
    ctx.log(`node ${node.url} (pid ${node.pid}); registering ${s.users} users, ${s.setupConcurrency} at a time`);

    const setupStart = now();
    const sessions: Session[] = await registerUsers(node.url, s.users, s.setupConcurrency);
    const { groups, watchOf, watchers } = layout(s.users, s.watch);
    await pool(groups.length, s.setupConcurrency, (g) => createGroup(node.url, `presence ${g}`, groups[g]!.map((u) => sessions[u]!)));
    const setupSeconds = (now() - setupStart) / 1000;
    const flappers = pickFlappers(groups, watchers, s.watch, s.flapUsers);
    ctx.log(`setup ${setupSeconds.toFixed(1)} s (${s.users} users, ${groups.length} groups of ${s.watch + 1}); ${s.workers} worker(s)`);

    // Users dealt round-robin to the workers.
    const shares = Array.from({ length: Math.min(s.workers, s.users) }, (_, w) => Array.from({ length: s.users }, (_, u) => u).filter((u) => u % Math.min(s.workers, s.users) === w));
    const workers: Worker[] = shares.map((clients) => ({ child: forkWorker(WORKER, ctx.pin ? 1 : undefined), clients }));
    for (const w of workers) ctx.onCleanup(() => stopWorker(w.child));
    const spec = (u: number): PresenceClientSpec => ({ userId: sessions[u]!.user.id, token: sessions[u]!.accessToken, watch: watchOf[u]!.map((p) => sessions[p]!.user.id) });
    const r: Run = { s, node, workers, users: s.users, watchOf, flappers, ctx };

    const systems: System[] = [];
    let connectSeconds = 0;
    let outputSeen = 0; // lines the node printed that were already reported
    for (const [k, requested] of intervals.entries()) {
      let iv = requested;
      if (k > 0) {
        ctx.log(`restarting the node with --presence-interval-ms ${iv} (clients disconnected first, not counted)`);
        await ask(workers, { type: 'disconnect' }, 'ok', 30_000);
        await node.halt();
        try {
          await node.resume(nodeArgs(iv));
        } catch (err) {
          if (iv !== 0 || !/PRESENCE_INTERVAL_MS must be at least 1/.test((err as Error).message)) throw err;
          iv = 1;
          ctx.log('the node refuses --presence-interval-ms 0 ("PRESENCE_INTERVAL_MS must be at least 1"): the baseline runs with 1 ms, the smallest it accepts');
          await node.resume(nodeArgs(iv));
        }
      }
      const settle = Math.max(s.settleMs, iv + 1000);
      const tail = Math.max(s.tailMs, 2 * iv + 1000);
      const t = now();
      const connectCpu0 = cpuOf(node.pid);
      const ready = mergeConnect(await ask(workers, (w) => (k === 0
        ? { type: 'init', url: node.url, clients: w.clients.map(spec), intervalMs: iv }
        : { type: 'connect', intervalMs: iv }), 'ready', 180_000));
      if (ready.failed > 0) throw new Error(`${ready.failed} clients could not connect: ${JSON.stringify(ready.failures)}`);
      if (k === 0) connectSeconds = (now() - t) / 1000;
      const connect = {
        seconds: round((now() - t) / 1000, 1), serverCpuPct: round(((cpuOf(node.pid) - connectCpu0) / ((now() - t) / 1000)) * 100, 1),
        latencyMs: { p50: quantile(ready.latencies, 0.5), p99: quantile(ready.latencies, 0.99) }, phasesMs: phases(ready), concurrency: 32 * workers.length,
      };
      ctx.log(`interval ${iv} ms: ${ready.connected} clients connected and watching in ${connect.seconds} s (${connect.concurrency} at a time, hello -> answer p50 ${connect.latencyMs.p50} ms, server cpu ${connect.serverCpuPct}%); settling ${settle} ms`);
      await sleepUntil(now() + settle);

      let f: Flap | null = null;
      if (flappers.length > 0) {
        f = await flap(r, tail);
        ctx.log(`  flap: ${f.users} users x ${f.cycles}: ${f.changeFrames} change frames to ${f.watchers} watchers (${f.framesPerWatcher} each), stale views ${f.staleViews}`);
        await sleepUntil(now() + settle);
      }
      const w = await wave(r, tail);
      ctx.log(`  wave: ${w.watchAnswers} answers + ${w.changeFrames} change frames (${w.shutdownChangeFrames} during shutdown), ${w.entries} entries, ${w.framesPerWatcher} frames per watcher, all back in ${w.waveMs} ms; stale views ${w.staleViews}, changes before answer ${w.changesBeforeAnswer}`);
      const printed = node.output().split('\n').filter((l) => l.trim());
      if (printed.length > outputSeen) ctx.log(`  the node (log level warn) printed ${printed.length - outputSeen} line(s); the last: ${printed.slice(-3).join(' | ').slice(0, 600)}`);
      const nodeLines = printed.length - outputSeen;
      outputSeen = printed.length;
      systems.push({ name: 'confab', presenceIntervalMs: iv, requestedPresenceIntervalMs: requested, watchAnswers: w.watchAnswers, changeFrames: w.changeFrames, entries: w.entries, framesPerWatcher: w.framesPerWatcher, waveMs: w.waveMs, nodeLogLines: nodeLines, connect, wave: w, flap: f });
    }

    const [a, b] = systems;
    const comparison = a && b ? {
      baselineOverBatched: {
        waveFrames: a.watchAnswers + a.changeFrames > 0 ? round((b.watchAnswers + b.changeFrames) / (a.watchAnswers + a.changeFrames)) : null,
        waveChangeFrames: a.changeFrames > 0 ? round(b.changeFrames / a.changeFrames) : null,
        waveEntries: a.entries > 0 ? round(b.entries / a.entries) : null,
        flapChangeFrames: a.flap && b.flap && a.flap.changeFrames > 0 ? round(b.flap.changeFrames / a.flap.changeFrames) : null,
      },
    } : undefined;
    return {
      systems,
      lines: render(systems, s),
      params: { ...s, groups: groups.length, flappers: flappers.length, watchRelations: s.users * s.watch, setupSeconds: round(setupSeconds, 1), connectSeconds: round(connectSeconds, 1) },
      ...(comparison ? { extra: { comparison } } : {}),
    };
  },
};
