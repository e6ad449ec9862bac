// Every scenario of the load generator, run small and quick (seconds, a few connections) as
// `npm run bench` runs it: `node packages/bench/dist/main.js <scenario> ... --json` from the
// repository root, one after the other (the bench pins the node to CPU 0 and the generators to
// CPU 1). Each must exit 0 and print, as its last line, the JSON object its docs describe: the
// scenario's name, a non-empty `systems` with a name and the scenario's numeric fields each, and
// the machine. Types and presence only: no performance threshold, so that the suite cannot rot
// without CI noticing, whatever the machine's load.
//
// PostgreSQL (PGHOST, PGPORT; createdb/dropdb) and Redis (REDIS_URL; redis-cli) are used by the
// peers and by --topology postgres/cluster3: those runs are skipped with the reason when the
// service is unreachable, and fail instead when CI=true (CI must run them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { probe, REDIS_URL } from '../../server/test/redis-env.js';
import { PEER_KINDS } from '../src/peers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = join('packages', 'bench', 'dist', 'main.js');
const CI = process.env.CI === 'true';

// ---- services -------------------------------------------------------------------------------

const PG_HOST = process.env.PGHOST ?? '127.0.0.1';
const PG_PORT = process.env.PGPORT ?? '5432';

/** The command-line tools the bench runs, missing from PATH. */
const missingTools = (tools: string[]) => tools.filter((t) => spawnSync(t, ['--version'], { stdio: 'ignore', timeout: 5000 }).status !== 0);

/** Why the bench could not use PostgreSQL (connect within 3 s, createdb and dropdb), or undefined. */
async function postgresProblem(): Promise<string | undefined> {
  const where = `${PG_HOST}:${PG_PORT}`;
  const tools = missingTools(['createdb', 'dropdb']);
  if (tools.length > 0) return `${tools.join(' and ')} not found (PostgreSQL's client tools)`;
  const c = new pg.Client({ host: PG_HOST, port: Number(PG_PORT), database: 'postgres', user: process.env.PGUSER ?? userInfo().username, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return undefined;
  } catch (err) {
    return `PostgreSQL unreachable at ${where} (${(err as Error).message || (err as { code?: string }).code || String(err)})`;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Why the bench could not use Redis (PING answered within 2 s, redis-cli), or undefined. */
async function redisProblem(): Promise<string | undefined> {
  if (missingTools(['redis-cli']).length > 0) return 'redis-cli not found';
  const why = await probe(REDIS_URL);
  return why === undefined ? undefined : `Redis unreachable at ${REDIS_URL} (${why})`;
}

const problems = { postgres: await postgresProblem(), redis: await redisProblem() };
type Service = keyof typeof problems;

/**
 * Options of a test that needs `services`: skipped with the reason when one is unreachable,
 * except when CI=true, where the test runs and `requireServices` fails it.
 */
function needs(services: Service[]): { skip: string | false } {
  const why = services.map((s) => problems[s]).filter(Boolean).join('; ');
  return { skip: why && !CI ? `${why}; start it (or set PGHOST/PGPORT, REDIS_URL) to run this` : false };
}
function requireServices(services: Service[]): void {
  const why = services.map((s) => problems[s]).filter(Boolean).join('; ');
  if (why) assert.fail(`${why}: required when CI=true`);
}

// ---- running the bench ----------------------------------------------------------------------

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderrTail: string; ms: number; timedOut: boolean }

/**
 * Runs `node packages/bench/dist/main.js <args> --json` from the repository root. The bench gets
 * a hard --timeout of its own 10 s before ours, so it stops what it started itself; should it
 * still run at ours, it gets SIGTERM (which also makes it clean up), then SIGKILL 10 s later.
 */
function bench(args: string[], timeoutSeconds: number): Promise<Run> {
  const t0 = Date.now();
  const child = spawn(process.execPath, [MAIN, ...args, '--json', '--timeout', String(timeoutSeconds - 10)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-6000); });
  return new Promise<Run>((resolve) => {
    let timedOut = false;
    let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const timers: NodeJS.Timeout[] = [];
    const finish = () => {
      for (const t of timers) clearTimeout(t);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ code: exited?.code ?? null, signal: exited?.signal ?? null, stdout, stderrTail: stderr.slice(-3000), ms: Date.now() - t0, timedOut });
    };
    const kill = (signal: NodeJS.Signals) => {
      if (exited || child.pid === undefined) return;
      try { process.kill(child.pid, signal); } catch { /* exited meanwhile */ }
    };
    timers.push(setTimeout(() => {
      timedOut = true;
      stderr += `\n[test] no exit after ${timeoutSeconds} s: SIGTERM to pid ${child.pid}`;
      kill('SIGTERM');
      timers.push(setTimeout(() => { stderr += `\n[test] SIGKILL to pid ${child.pid}`; kill('SIGKILL'); }, 10_000));
    }, timeoutSeconds * 1000));
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      // Its generators inherit its stdout and stderr: do not wait for them past a short grace.
      timers.push(setTimeout(finish, 5000));
    });
    child.once('close', finish);
    child.once('error', (err) => { stderr += `\n[test] spawn failed: ${err.message}`; exited ??= { code: null, signal: null }; finish(); });
  });
}

/** What goes with every failure message: how the bench ended and the end of its stderr. */
const tail = (r: Run) => `\n--- bench ${r.timedOut ? 'timed out' : `exited ${r.code ?? r.signal}`} after ${(r.ms / 1000).toFixed(1)} s; stderr tail:\n${r.stderrTail.trim() || '(empty)'}\n---`;

type Json = Record<string, any>;

/** Runs a scenario and returns its JSON line, checked for what every scenario prints. */
async function runScenario(scenario: string, args: string[], timeoutSeconds: number): Promise<{ out: Json; run: Run }> {
  assert.ok(existsSync(join(ROOT, MAIN)), `${MAIN} is missing: build first (npm run build, or tsc -b)`);
  const r = await bench([scenario, ...args], timeoutSeconds);
  assert.equal(r.timedOut, false, `bench ${scenario} ${args.join(' ')} did not finish within ${timeoutSeconds} s${tail(r)}`);
  assert.equal(r.code, 0, `bench ${scenario} ${args.join(' ')} failed${tail(r)}`);
  const last = r.stdout.trimEnd().split('\n').at(-1) ?? '';
  let out: Json;
  try {
    out = JSON.parse(last) as Json;
  } catch (err) {
    assert.fail(`the last line of stdout is not JSON (${(err as Error).message}): ${last.slice(0, 300)}${tail(r)}`);
  }
  const ok = (cond: boolean, what: string) => assert.ok(cond, `${scenario}: ${what}${tail(r)}`);
  ok(typeof out === 'object' && out !== null && !Array.isArray(out), 'the last line is a JSON object');
  ok(out.scenario === scenario, `"scenario" is "${scenario}", got ${JSON.stringify(out.scenario)}`);
  ok(isObject(out.params), '"params" is an object');
  ok(isObject(out.machine) && isNum(out.machine.cpus) && typeof out.machine.node === 'string' && typeof out.machine.pinned === 'boolean', `"machine" has cpus, node and pinned: ${JSON.stringify(out.machine)}`);
  ok(Array.isArray(out.systems) && out.systems.length > 0, `"systems" is a non-empty array: ${JSON.stringify(out.systems)?.slice(0, 200)}`);
  for (const [i, s] of (out.systems as unknown[]).entries()) ok(isObject(s) && typeof s.name === 'string' && s.name.length > 0, `systems[${i}] has a string "name"`);
  return { out, run: r };
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * Checks the fields of an object: `num` must be finite numbers, `numOrNull` numbers or null
 * (figures that are null when nothing qualified, e.g. no step sustained on a loaded machine),
 * `bool` booleans, `obj` plain objects, `arr` arrays.
 */
function fields(o: Json, where: string, r: Run, spec: { num?: string[]; numOrNull?: string[]; bool?: string[]; obj?: string[]; arr?: string[] }): void {
  const bad: string[] = [];
  const check = (keys: string[] | undefined, ok: (v: unknown) => boolean, kind: string) => {
    for (const k of keys ?? []) if (!ok(o[k])) bad.push(`${k} should be ${kind}, got ${JSON.stringify(o[k]) ?? 'undefined'}`);
  };
  check(spec.num, isNum, 'a number');
  check(spec.numOrNull, (v) => v === null || isNum(v), 'a number or null');
  check(spec.bool, (v) => typeof v === 'boolean', 'a boolean');
  check(spec.obj, isObject, 'an object');
  check(spec.arr, Array.isArray, 'an array');
  assert.deepEqual(bad, [], `${where}: ${bad.join('; ')}${tail(r)}`);
}

const names = (out: Json) => (out.systems as Json[]).map((s) => s.name as string);

/** groups and channel: every system is a SystemReport with one step per offered rate. */
function checkStepped(out: Json, r: Run, rates: number): void {
  for (const s of out.systems as Json[]) {
    fields(s, `system ${s.name}`, r, { num: ['lost'], numOrNull: ['maxSustainedMsgsPerSec', 'maxDeliveriesPerSec', 'p50Ms', 'p99Ms'], arr: ['steps'] });
    assert.equal(s.steps.length, rates, `system ${s.name}: one step per rate${tail(r)}`);
    for (const [i, step] of (s.steps as Json[]).entries()) {
      fields(step, `system ${s.name} step ${i + 1}`, r, {
        num: ['offered', 'sentPerSec', 'committedPerSec', 'deliveriesPerSec', 'sent', 'acked', 'unacked', 'expectedDeliveries', 'delivered', 'lost', 'late', 'skipped',
          'serverCpuPct', 'serverRssMiB', 'otherCpuPct', 'generatorStallMs'],
        numOrNull: ['p50Ms', 'p99Ms', 'p999Ms', 'ackP50Ms', 'ackP99Ms'],
        bool: ['generatorBound', 'sustained'], obj: ['errors'], arr: ['generatorCpuPct'],
      });
    }
  }
}

// Tiny groups workload: 20 users in 4 groups of 5, one step of 1 s at 50 msg/s.
const TINY = ['--connections', '20', '--group-size', '5', '--rates', '50', '--step-seconds', '1', '--warmup-seconds', '0', '--drain-seconds', '1'];

// ---- the scenarios --------------------------------------------------------------------------

test('groups, tiny, with every peer and --chart: confab and each peer measured, the SVG written', { ...needs(['postgres', 'redis']), timeout: 150_000 }, async () => {
  requireServices(['postgres', 'redis']);
  const dir = mkdtempSync(join(tmpdir(), 'confab-bench-test-'));
  try {
    const svg = join(dir, 'out.svg');
    const { out, run } = await runScenario('groups', [...TINY, '--chart', svg], 120);
    assert.deepEqual(names(out), ['confab', ...PEER_KINDS], `systems: confab, then every peer${tail(run)}`);
    checkStepped(out, run, 1);
    assert.ok(Array.isArray(out.ratios) && out.ratios.length === PEER_KINDS.length, `one ratio per peer: ${JSON.stringify(out.ratios)}${tail(run)}`);
    for (const x of out.ratios as Json[]) fields(x, `ratio confab / ${x.peer}`, run, { numOrNull: ['confabDeliveriesPerSec', 'peerDeliveriesPerSec', 'ratio'] });
    assert.ok(existsSync(svg), `--chart ${svg} was not written${tail(run)}`);
    assert.match(readFileSync(svg, 'utf8'), /^<svg/, 'the chart is an SVG document');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('groups --topology postgres, tiny, no peers', { ...needs(['postgres']), timeout: 90_000 }, async () => {
  requireServices(['postgres']);
  const { out, run } = await runScenario('groups', [...TINY, '--topology', 'postgres', '--peers', 'none'], 60);
  assert.deepEqual(names(out), ['confab-postgres'], `the systems measured${tail(run)}`);
  checkStepped(out, run, 1);
});

test('groups --topology cluster3, tiny, no peers', { ...needs(['postgres', 'redis']), timeout: 90_000 }, async () => {
  requireServices(['postgres', 'redis']);
  const { out, run } = await runScenario('groups', [...TINY, '--topology', 'cluster3', '--peers', 'none'], 60);
  assert.deepEqual(names(out), ['confab-3nodes'], `the systems measured${tail(run)}`);
  checkStepped(out, run, 1);
});

test('groups --stalled 4, tiny: the run without and with slow consumers', { timeout: 90_000 }, async () => {
  const { out, run } = await runScenario('groups', [...TINY, '--stalled', '4'], 60);
  assert.deepEqual(names(out), ['confab', 'confab+stalled'], `the systems measured${tail(run)}`);
  checkStepped(out, run, 1);
  fields(out.systems[1], 'system confab+stalled', run, { num: ['stalledClients', 'slowConsumersCut'] });
  assert.equal(out.systems[1].stalledClients, 4, `stalledClients${tail(run)}`);
});

test('channel, tiny: one group of 20, 2 senders, no peers', { timeout: 90_000 }, async () => {
  const { out, run } = await runScenario('channel', ['--connections', '20', '--group-size', '20', '--senders', '0.1', '--rates', '10', '--step-seconds', '1', '--warmup-seconds', '0', '--drain-seconds', '1',
    '--peers', 'none'], 60);
  assert.deepEqual(names(out), ['confab'], `the systems measured${tail(run)}`);
  checkStepped(out, run, 1);
});

test('idle, tiny: 50 connections of 5 users, no settling', { timeout: 90_000 }, async () => {
  const { out, run } = await runScenario('idle', ['--connections', '50', '--users', '5', '--settle-seconds', '0'], 60);
  assert.deepEqual(names(out), ['confab'], `the systems measured${tail(run)}`);
  fields(out.systems[0], 'system confab', run, {
    num: ['connections', 'failed', 'stillOpenAfterSettle', 'nodes', 'rssBeforeMiB', 'rssAfterMiB', 'rssPerConnKiB', 'heapPerConnKiB', 'connectsPerSec', 'idleCpuPct', 'targetKiB'],
    bool: ['withinTarget'],
  });
});

test('sync, tiny: 200 missed messages, 2 reconnects', { timeout: 90_000 }, async () => {
  const { out, run } = await runScenario('sync', ['--messages', '200', '--runs', '2'], 60);
  assert.deepEqual(names(out), ['confab'], `the systems measured${tail(run)}`);
  const s = out.systems[0] as Json;
  fields(s, 'system confab', run, {
    num: ['messages', 'caughtUpMsMedian', 'firstPageMsMedian', 'messagesPerSec', 'pages', 'bytes', 'fillCommitsPerSec', 'targetMs'],
    bool: ['withinTarget'], arr: ['caughtUpMsAll'],
  });
  assert.ok(s.caughtUpMsAll.length === 2 && s.caughtUpMsAll.every(isNum), `caughtUpMsAll: one number per run, got ${JSON.stringify(s.caughtUpMsAll)}${tail(run)}`);
});

test('storm, tiny: 40 clients of 10 users, node killed and restarted', { timeout: 120_000 }, async () => {
  const { out, run } = await runScenario('storm', ['--clients', '40', '--users', '10', '--group-size', '5', '--before', '2', '--after', '2', '--timeout-seconds', '30'], 90);
  assert.deepEqual(names(out), ['confab'], `the systems measured${tail(run)}`);
  fields(out.systems[0], 'system confab', run, {
    num: ['clients', 'resyncSecondsFromRestart', 'resyncSecondsFromKill', 'restartSeconds', 'lost', 'duplicates', 'gaps', 'reconnects', 'hellos',
      'storeCalls', 'storeCallsPerClient', 'catchUpPages', 'stormCpuSeconds', 'peakRssMiB'],
    obj: ['closes', 'storeCallsByMethod'],
  });
});

test('soak, tiny: 3 steps of 1 s, 10 connections, churn', { timeout: 120_000 }, async () => {
  const { out, run } = await runScenario('soak', ['--minutes', '3', '--step-seconds', '1', '--connections', '10', '--group-size', '5', '--rate', '50', '--churn', '20'], 90);
  assert.deepEqual(names(out), ['confab'], `the systems measured${tail(run)}`);
  const s = out.systems[0] as Json;
  fields(s, 'system confab', run, {
    num: ['minutes', 'rate', 'lost', 'unacked', 'rssFirstMiB', 'rssLastMiB', 'rssRatio', 'generatorCpuFirstPct', 'generatorCpuLastPct', 'reconnected'],
    // null when a step had no p99, when the generators had no CPU reading, or (the fit) with too few minutes
    numOrNull: ['p99FirstMs', 'p99LastMs', 'p99Ratio', 'generatorCpuRatio', 'nodePerGeneratorCpuFirst', 'nodePerGeneratorCpuLast',
      'p99Elasticity', 'p99RatioAtMachineSpeed', 'p99RatioAtMachineSpeedMargin'],
    arr: ['steps'],
  });
  assert.ok(['flat', "flat at the machine's speed", 'not flat'].includes(s.verdict), `verdict: ${s.verdict}${tail(run)}`);
  assert.equal(s.p99RatioAtMachineSpeed, null, `3 steps are too few to fit${tail(run)}`);
  assert.equal(s.steps.length, 3, `one step per "minute"${tail(run)}`);
  for (const [i, st] of (s.steps as Json[]).entries()) fields(st, `steps[${i}]`, run, { num: ['serverCpuPct', 'serverRssMiB', 'stealPct'], arr: ['generatorCpuPct'] });
});

test('store, tiny: 3,000 appends in 3 windows, counter and uuid client ids', { timeout: 120_000 }, async () => {
  for (const ids of ['counter', 'uuid']) {
    const { out, run } = await runScenario('store', ['--messages', '3000', '--every', '1000', '--senders', '20', '--client-ids', ids], 90);
    assert.deepEqual(names(out), ['confab-sqlite'], `the systems measured${tail(run)}`);
    const s = out.systems[0] as Json;
    fields(s, 'system confab-sqlite', run, {
      num: ['messages', 'batch', 'userUsPerMessage', 'sysUsPerMessage', 'dbBytesPerMessage'],
      numOrNull: ['writesPerMessage', 'writeKiBPerMessage'], // null without /proc/self/io
      arr: ['windows'],
    });
    assert.deepEqual(s.windows.map((w: Json) => w.messages), [1000, 2000, 3000], `one window per 1,000 messages${tail(run)}`);
  }
});

test('presence, tiny: 6 users watching 2 each, batched and baseline, wave and flap', { timeout: 120_000 }, async () => {
  const { out, run } = await runScenario('presence', ['--users', '6', '--watch', '2', '--workers', '1', '--presence-interval-ms', '100', '--wave-ms', '200', '--tail-ms', '0', '--settle-ms', '0',
    '--flap-users', '1', '--flap-cycles', '2', '--flap-ms', '200'], 90);
  assert.deepEqual(names(out), ['confab', 'confab'], `systems: the batched run and the baseline${tail(run)}`);
  for (const [i, s] of (out.systems as Json[]).entries()) {
    const where = `systems[${i}]`;
    fields(s, where, run, {
      num: ['presenceIntervalMs', 'requestedPresenceIntervalMs', 'watchAnswers', 'changeFrames', 'entries', 'framesPerWatcher', 'waveMs', 'nodeLogLines'],
      obj: ['connect', 'wave', 'flap'],
    });
    fields(s.wave, `${where}.wave`, run, { num: ['watchAnswers', 'changeFrames', 'entries', 'reconnected', 'reconnectFailed', 'staleViews', 'serverCpuSec', 'serverRssMiB'], obj: ['reconnectLatencyMs', 'violations', 'closes'] });
    fields(s.flap, `${where}.flap`, run, { num: ['users', 'watchers', 'changeFrames', 'entries', 'framesPerWatcher', 'staleViews'], obj: ['violations'] });
  }
  assert.ok(isObject(out.comparison), `"comparison" of the baseline with the batched run${tail(run)}`);
});

test('hostile, three cheap attacks: each runs on its own node and reports its rows', { timeout: 90_000 }, async () => {
  const only = ['data-files', 'removed-resend', 'foreign-host'];
  const { out, run } = await runScenario('hostile', ['--only', only.join(',')], 60);
  assert.deepEqual(names(out), ['confab'], `the systems measured${tail(run)}`);
  const rows = out.systems[0].rows as Json[];
  assert.ok(Array.isArray(rows) && rows.length > 0, `rows: ${JSON.stringify(rows)?.slice(0, 200)}${tail(run)}`);
  for (const [i, r] of rows.entries()) {
    fields(r, `rows[${i}]`, run, { num: ['finding'] });
    assert.ok(typeof r.attack === 'string' && typeof r.measure === 'string' && r.measure.length > 0, `rows[${i}] has an attack and a measure: ${JSON.stringify(r)}${tail(run)}`);
    assert.ok(r.value === null || typeof r.value === 'string' || isNum(r.value), `rows[${i}].value is a number, a string or null: ${JSON.stringify(r)}${tail(run)}`);
  }
  assert.deepEqual([...new Set(rows.map((r) => r.attack))], only, `one block of rows per attack, in order${tail(run)}`);
  const errors = rows.filter((r) => r.measure === 'error');
  assert.deepEqual(errors, [], `no attack failed to run${tail(run)}`);
  for (const a of only) {
    const measured = rows.filter((r) => r.attack === a && r.measure !== 'node' && r.measure !== 'attack took s');
    assert.ok(measured.length >= 3, `${a} reports its figures: ${JSON.stringify(measured)}${tail(run)}`);
  }
});
