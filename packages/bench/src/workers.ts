// The coordinator's side of the load generators: forks the worker processes (pinned when asked),
// hands each its connections, runs one step at a time on a shared start time, samples server and
// worker CPU over the measured window, and merges the workers' counts into a StepResult.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Histogram, now, type HistogramJSON } from './latency.js';
import { cpuSeconds, machineCpuSeconds, rssMiB } from './node.js';
import { isSustained, type StepResult } from './report.js';

/** One connection a worker opens: the device's token, the group it sends to, and the node (default: the pool's url). */
export interface ConnSpec {
  token: string; conversationId: string;
  /** Members of the group that read (what each message should reach). */
  groupSize: number;
  sender: boolean; url?: string;
  /** A client that stops reading after `welcome` (a slow consumer): never sends, never counted. */
  stalled?: boolean;
}

export interface StepPlan { step: number; rate: number; startAt: number; warmMs: number; measureMs: number; drainMs: number }

export interface WorkerCounts {
  step: number; sent: number; skipped: number; acked: number; expected: number; delivered: number; late: number; maxStallMs: number;
  acksInWindow: number; deliveriesInWindow: number; errors: Record<string, number>; e2e: HistogramJSON; ack: HistogramJSON;
}

/** What the generator speaks: Confab's frames (Confab and the raw-ws peers), or the same frames as Socket.IO events. */
export type Dialect = 'confab' | 'socketio';
export type ToWorker = { type: 'init'; url: string; conns: ConnSpec[]; textBytes: number; dialect?: Dialect } | ({ type: 'step' } & StepPlan) | { type: 'churn'; fraction: number } | { type: 'stop' };
export type FromWorker = { type: 'ready'; connected: number } | { type: 'churned'; reconnected: number } | { type: 'fatal'; message: string } | ({ type: 'result' } & WorkerCounts);

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));
const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - now())));

/** Forks a worker script (pinned to `core` when given); its stdout/stderr are ours. */
export function forkWorker(script: string, core: number | undefined): ChildProcess {
  const pinned = core === undefined ? {} : { execPath: 'taskset', execArgv: ['-c', String(core), process.execPath] };
  return fork(script, [], { stdio: 'inherit', ...pinned });
}

/** The next message of a worker; rejects on `{type: 'fatal'}`, on exit, or after timeoutMs. */
export function nextMessage<T extends { type: string }>(child: ChildProcess, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = () => { clearTimeout(timer); child.off('message', onMessage); child.off('exit', onExit); };
    const onMessage = (m: T | { type: 'fatal'; message: string }) => {
      done();
      if (m.type === 'fatal') reject(new Error(`worker ${child.pid}: ${(m as { message: string }).message}`));
      else resolve(m as T);
    };
    const onExit = (code: number | null) => { done(); reject(new Error(`worker ${child.pid} exited (${code})`)); };
    const timer = setTimeout(() => { done(); reject(new Error(`worker ${child.pid} did not answer within ${timeoutMs} ms`)); }, timeoutMs);
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** Asks a worker to stop (`{type: 'stop'}`), and kills it (by pid) if it still runs after 3 s. */
export function stopWorker(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (child.connected) child.send({ type: 'stop' });
  setTimeout(() => { if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL'); }, 3000).unref();
}

const next = (child: ChildProcess, timeoutMs: number) => nextMessage<FromWorker>(child, timeoutMs);

export class WorkerPool {
  private constructor(private readonly workers: { child: ChildProcess; senders: number }[]) {}

  /** Forks one worker per connection list (pinned to `core` when given) and waits until all are connected. */
  static async start(url: string, shares: ConnSpec[][], textBytes: number, core: number | undefined, dialect: Dialect = 'confab'): Promise<WorkerPool> {
    const workers = shares.map((conns) => ({ child: forkWorker(WORKER, core), senders: conns.filter((c) => c.sender).length }));
    const pool = new WorkerPool(workers);
    try {
      await Promise.all(workers.map(({ child }, i) => {
        const ready = next(child, 60_000);
        child.send({ type: 'init', url, conns: shares[i]!, textBytes, dialect } satisfies ToWorker);
        return ready;
      }));
    } catch (err) {
      pool.stop();
      throw err;
    }
    return pool;
  }

  /**
   * Runs one step at `rate` msg/s in total (split by each worker's number of senders). With several
   * server pids (a cluster), the server's CPU and RSS are their sums.
   */
  async step(step: number, rate: number, timing: Omit<StepPlan, 'step' | 'rate' | 'startAt'>, serverPid: number | number[]): Promise<StepResult> {
    const { warmMs, measureMs, drainMs } = timing;
    const startAt = now() + 300; // time for the step message to reach every worker
    const totalSenders = this.workers.reduce((n, w) => n + w.senders, 0) || 1;
    const results = this.workers.map(({ child, senders }) => {
      const answer = next(child, warmMs + measureMs + drainMs + 30_000);
      child.send({ type: 'step', step, rate: (rate * senders) / totalSenders, startAt, ...timing } satisfies ToWorker);
      return answer;
    });
    const answers = Promise.all(results);
    answers.catch(() => undefined); // awaited below; a worker dying meanwhile must not crash the run
    const serverPids = Array.isArray(serverPid) ? serverPid : [serverPid];
    const pids = [...serverPids, ...this.workers.map((w) => w.child.pid!)];
    await sleepUntil(startAt + warmMs);
    const t0 = now();
    const cpu0 = pids.map(cpuSeconds);
    const machine0 = machineCpuSeconds();
    await sleepUntil(startAt + warmMs + measureMs);
    const secs = (now() - t0) / 1000;
    const each = pids.map((pid, i) => ((cpuSeconds(pid) - cpu0[i]!) / secs) * 100);
    const machine1 = machineCpuSeconds();
    const other = ((machine1.busy - machine0.busy) / secs) * 100 - each.reduce((a, b) => a + b, 0);
    const steal = ((machine1.steal - machine0.steal) / secs) * 100;
    const cpu = [each.slice(0, serverPids.length).reduce((a, b) => a + b, 0), ...each.slice(serverPids.length)];
    const rss = serverPids.reduce((n, pid) => n + rssMiB(pid), 0);
    const counts = (await answers) as WorkerCounts[];
    return merge(rate, counts, measureMs / 1000, cpu, Math.max(0, other), steal, rss);
  }

  /** Every worker drops and reopens about `fraction` of its connections; resolves with how many. */
  async churn(fraction: number): Promise<number> {
    const answers = await Promise.all(this.workers.map(({ child }) => {
      const answer = next(child, 60_000);
      child.send({ type: 'churn', fraction } satisfies ToWorker);
      return answer;
    }));
    return answers.reduce((n, a) => n + (a.type === 'churned' ? a.reconnected : 0), 0);
  }

  /** Asks every worker to stop, and kills (by pid) any still running after 3 s. */
  stop(): void {
    for (const { child } of this.workers) stopWorker(child);
  }
}

function merge(offered: number, counts: WorkerCounts[], secs: number, cpu: number[], other: number, steal: number, rss: number): StepResult {
  const sum = (k: keyof WorkerCounts) => counts.reduce((n, c) => n + (c[k] as number), 0);
  const e2e = new Histogram();
  const ack = new Histogram();
  const errors: Record<string, number> = {};
  for (const c of counts) {
    e2e.add(c.e2e);
    ack.add(c.ack);
    for (const [code, n] of Object.entries(c.errors)) errors[code] = (errors[code] ?? 0) + n;
  }
  const [serverCpuPct = 0, ...generatorCpuPct] = cpu;
  const round = (v: number | undefined) => (v === undefined ? null : Math.round(v * 100) / 100);
  const r1 = (v: number) => Math.round(v * 10) / 10;
  const partial = {
    offered,
    sentPerSec: r1(sum('sent') / secs),
    committedPerSec: r1(sum('acksInWindow') / secs),
    deliveriesPerSec: r1(sum('deliveriesInWindow') / secs),
    p50Ms: round(e2e.quantile(0.5)), p99Ms: round(e2e.quantile(0.99)), p999Ms: round(e2e.quantile(0.999)),
    ackP50Ms: round(ack.quantile(0.5)), ackP99Ms: round(ack.quantile(0.99)),
    sent: sum('sent'), acked: sum('acked'), unacked: sum('sent') - sum('acked'),
    expectedDeliveries: sum('expected'), delivered: sum('delivered'),
    lost: Math.max(0, sum('expected') - sum('delivered')),
    late: sum('late'), skipped: sum('skipped'), errors,
    serverCpuPct: r1(serverCpuPct), serverRssMiB: r1(rss), generatorCpuPct: generatorCpuPct.map(r1), otherCpuPct: r1(other), stealPct: r1(steal),
    generatorStallMs: r1(Math.max(...counts.map((c) => c.maxStallMs))),
    generatorBound: generatorCpuPct.some((p) => p > 90),
  };
  return { ...partial, sustained: isSustained(partial) };
}
