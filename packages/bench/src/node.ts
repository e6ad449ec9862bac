// The system under test, as the benchmark sees it: a Confab node started as a child process
// (`confab serve`) on a fresh temporary data directory and a free 127.0.0.1 port, optionally pinned
// to one core with taskset, plus the /proc readings (CPU, RSS) every scenario reports.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../cli/bin/confab.js', import.meta.url));
const CLOCK_TICKS_PER_SEC = 100; // USER_HZ: 100 on every Linux this runs on.

/** Whether processes can be pinned: taskset is installed and there are at least 2 cores. */
export function canPin(): boolean {
  return cpus().length >= 2 && spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** Command and arguments that run `node args...`, pinned to `core` when it is given. */
export function nodeCommand(args: string[], core: number | undefined): [string, string[]] {
  return core === undefined ? [process.execPath, args] : ['taskset', ['-c', String(core), process.execPath, ...args]];
}

/** CPU time (user + system, all threads) of a process in seconds, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from #3 (state) on
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC; // #14 utime, #15 stime
}

/**
 * CPU time used on the whole machine (all cores) in seconds, from /proc/stat: `busy` includes
 * the hypervisor's steal (time a virtual core was ready to run and the host ran something else),
 * `steal` is that part alone.
 */
export function machineCpuSeconds(): { busy: number; steal: number } {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).map(Number);
  return {
    busy: ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / CLOCK_TICKS_PER_SEC,
    steal: (steal ?? 0) / CLOCK_TICKS_PER_SEC,
  };
}

/** Resident set size in MiB, from /proc/<pid>/status. */
export function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export interface ConfabProcess {
  url: string;
  /** The current node process (a restart gives a new one). */
  readonly pid: number;
  readonly dataDir: string;
  /** Stops the node (SIGTERM, then SIGKILL after graceMs, default 5 s) and keeps its data directory and port. */
  halt(graceMs?: number): Promise<Exit>;
  /** Starts the node again on the same data directory and port, with `args` (default: the last ones). */
  resume(args?: string[]): Promise<void>;
  /** Stops the node (SIGTERM, then SIGKILL after 5 s) and removes its data directory. */
  stop(): Promise<void>;
  /** The last lines the node printed (both lives), for error messages and warnings. */
  output(): string;
}

/** How a node process ended: its exit code or signal, and whether it had to be killed. */
export interface Exit { code: number | null; signal: NodeJS.Signals | null; killed: boolean; ms: number }

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Life { child: ChildProcess; exited: Promise<Omit<Exit, 'killed' | 'ms'>> }

const isGone = (l: Life) => l.child.exitCode !== null || l.child.signalCode !== null;

/**
 * Limits a load test from one machine must lift: all of its traffic comes from one address
 * (127.0.0.1), which the per-address budgets (registrations, password checks, new connections,
 * connections waiting for hello) exist to throttle, and its setup registers thousands of accounts
 * in seconds. Given as environment variables, which a node of an older version ignores. Every
 * other limit keeps its default.
 */
export const LOAD_TEST_ENV: Record<string, string> = {
  REGISTRATIONS_PER_ADDRESS: '0', PASSWORD_CHECKS_PER_ADDRESS: '0', PASSWORD_CHECKS_PER_SECOND: '0',
  NEW_SESSIONS_PER_ADDRESS: '0', MAX_PENDING_PER_ADDRESS: '0',
};

/** More of a node's start: extra environment (e.g. STORE, BUS), the path polled until it answers 200, Node flags. */
export interface StartOptions {
  env?: Record<string, string>;
  readyPath?: string;
  nodeFlags?: string[];
  /** The `confab` command to start (another checkout's `packages/cli/bin/confab.js`); default: this tree's. */
  cli?: string;
  /** The data directory (it may not exist yet: the node then creates it); default: a fresh temp dir. Removed by stop(). */
  dataDir?: string;
  /** The node's umask, e.g. 0o022 (it is started through `sh -c 'umask ... && exec ...'`); default: inherited. */
  umask?: number;
  /** Every limit at its default, the per-address ones included (LOAD_TEST_ENV is not applied): for measuring attacks. */
  defaults?: boolean;
}

/**
 * Starts `confab serve` with `args` on a fresh data directory; resolves once /healthz (or
 * `readyPath`) answers (at most 20 s). The node can be halted and resumed on the same directory and
 * port (a restart).
 */
export async function startConfab(args: string[], core: number | undefined, opts: StartOptions = {}): Promise<ConfabProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'confab-bench-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let tail = ''; // the last output, for error messages and warnings; the rest is dropped
  const keep = (d: Buffer) => { tail = (tail + d.toString()).slice(-20_000); };
  let lastArgs = args;
  let life: Life | undefined;

  const spawnNode = (): Life => {
    let [cmd, argv] = nodeCommand([...(opts.nodeFlags ?? []), opts.cli ?? CLI, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, ...lastArgs], core);
    if (opts.umask !== undefined) [cmd, argv] = ['sh', ['-c', `umask ${opts.umask.toString(8).padStart(3, '0')} && exec "$@"`, 'sh', cmd, ...argv]];
    const env = { ...process.env, ...(opts.defaults ? {} : LOAD_TEST_ENV), ...opts.env };
    const child: ChildProcess = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<Omit<Exit, 'killed' | 'ms'>>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    return { child, exited };
  };
  const kill = (l: Life, signal: NodeJS.Signals) => {
    try {
      if (!isGone(l) && l.child.pid !== undefined) process.kill(l.child.pid, signal);
    } catch { /* exited meanwhile */ }
  };
  const halt = async (graceMs = 5000): Promise<Exit> => {
    const l = life;
    if (!l) return { code: null, signal: null, killed: false, ms: 0 };
    const t0 = Date.now();
    let killed = false;
    kill(l, 'SIGTERM');
    await Promise.race([l.exited, sleep(graceMs)]);
    if (!isGone(l)) { killed = true; kill(l, 'SIGKILL'); }
    const exit = await Promise.race([l.exited, sleep(2000).then(() => ({ code: null, signal: null }))]);
    if (life === l) life = undefined;
    return { ...exit, killed, ms: Date.now() - t0 };
  };
  const resume = async (next?: string[]): Promise<void> => {
    if (life) throw new Error('the node is still running');
    if (next) lastArgs = next;
    const l = (life = spawnNode());
    for (let i = 0; i < 200 && !isGone(l); i++) {
      const ok = await fetch(`${url}${opts.readyPath ?? '/healthz'}`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
      if (ok) return;
      await sleep(100);
    }
    await halt();
    throw new Error(`the Confab node did not start: ${tail.trim() || '(no output)'}`);
  };
  const stop = async () => {
    await halt(5000);
    rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    await resume();
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    url, dataDir, halt, resume, stop,
    get pid() { return life?.child.pid ?? -1; },
    output: () => tail,
  };
}
