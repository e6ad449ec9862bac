// Scenario "idle": how many idle authenticated connections a node holds, what each costs in
// memory, and how fast they connect. Generator processes (pinned to CPU 1, each with its own
// 127.0.0.x source address) open the connections with bounded concurrency, say hello and then
// only answer pings. The node's RSS is read before and after (and its heap through /metrics);
// the difference over the number of connections is the cost of one.
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import type { FromIdleWorker, ToIdleWorker } from '../idle-worker.js';
import { now } from '../latency.js';
import { intOption, type Opts, type Scenario } from '../main.js';
import { cpuSeconds, rssMiB } from '../node.js';
import { formatTable } from '../report.js';
import { registerUsers, scrapeMetrics } from '../rest.js';
import { deploy, SYSTEM_NAMES, TOPOLOGIES, type Topology } from '../topology.js';
import { forkWorker, nextMessage, stopWorker } from '../workers.js';

const OPTIONS = {
  connections: { type: 'string', default: '15000' },
  workers: { type: 'string' },
  users: { type: 'string', default: '100' },
  'connect-concurrency': { type: 'string', default: '100' },
  'settle-seconds': { type: 'string', default: '10' },
  topology: { type: 'string', default: 'sqlite' },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `idle: N idle authenticated connections: memory per connection, connects per second.
  --connections N          connections to open (default 15000), spread over the nodes
  --workers W              generator processes (default: one per 6,000 connections), each with
                           its own source address 127.0.0.(2+i)
  --users U                accounts the connections log in as, round-robin (default 100)
  --connect-concurrency C  connections being opened at once per generator (default 100)
  --settle-seconds S       wait after the last connect before reading memory and idle CPU (default 10)
  --topology T             sqlite (default), postgres or cluster3 (connections round-robin over 3 nodes)`;

const WORKER = fileURLToPath(new URL('../idle-worker.js', import.meta.url));
const PER_WORKER = 6000;
const TARGET_KIB = 12;
// Many connections share each account, and the connect rate is what is measured: no caps.
const NODE_ARGS = ['--log-level', 'warn', '--max-connections-per-user', '0', '--new-sessions-per-second', '0'];

const int = (o: Opts, key: keyof typeof OPTIONS, min: number, max: number, fallback?: number) => intOption(o, key, min, max, fallback);

function settings(o: Opts) {
  const topology = String(o.topology) as Topology;
  if (!TOPOLOGIES.includes(topology)) throw new Error(`--topology must be one of ${TOPOLOGIES.join(', ')}, got "${topology}"`);
  const connections = int(o, 'connections', 1, 200_000);
  return {
    connections,
    workers: int(o, 'workers', 1, 64, Math.ceil(connections / PER_WORKER)),
    users: int(o, 'users', 1, 10_000),
    connectConcurrency: int(o, 'connect-concurrency', 1, 5000),
    settleSeconds: int(o, 'settle-seconds', 0, 600),
    topology,
  };
}

/** The node's heap in use, from its /metrics (NaN if it cannot be read). */
const heapUsedMiB = (url: string): Promise<number> => scrapeMetrics(url).then((m) => m.get('nodejs_heap_size_used_bytes') / 2 ** 20, () => NaN);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export const idle: Scenario = {
  name: 'idle',
  usage: USAGE,
  options: OPTIONS,

  budgetSeconds(o) {
    const s = settings(o);
    return 120 + s.users * 0.2 + s.connections / 200 + s.settleSeconds + 60;
  },

  async run(o, ctx) {
    const s = settings(o);
    const dep = await deploy(s.topology, NODE_ARGS, ctx.pin ? 0 : undefined, ctx.nodeFlags, (m) => ctx.log(m), (fn) => ctx.onCleanup(fn));
    const urls = dep.nodes.map((n) => n.url);
    const pids = () => dep.nodes.map((n) => n.pid);
    ctx.log(`${dep.description}; registering ${s.users} users`);
    const users = await registerUsers(urls[0]!, s.users, 8);
    const tokens = users.map((u) => u.accessToken);
    await sleep(2000);
    const rss0 = sum(pids().map(rssMiB));
    const heap0 = sum(await Promise.all(urls.map(heapUsedMiB)));

    const workers: ChildProcess[] = [];
    ctx.onCleanup(() => { for (const w of workers) stopWorker(w); });
    for (let i = 0; i < s.workers; i++) workers.push(forkWorker(WORKER, ctx.pin ? 1 : undefined));
    ctx.log(`opening ${s.connections} connections from ${s.workers} generator(s), ${s.connectConcurrency} at a time each`);
    const t0 = now();
    const opened = await Promise.all(workers.map((w, i) => {
      const count = Math.floor(s.connections / s.workers) + (i < s.connections % s.workers ? 1 : 0);
      const answer = nextMessage<FromIdleWorker>(w, 30_000 + count * 100);
      w.send({ type: 'open', urls, tokens, count, localAddress: `127.0.0.${2 + i}`, concurrency: s.connectConcurrency } satisfies ToIdleWorker);
      return answer;
    }));
    const connectMs = now() - t0;
    const connected = sum(opened.map((r) => (r.type === 'opened' ? r.connected : 0)));
    const failed = sum(opened.map((r) => (r.type === 'opened' ? r.failed : 0)));
    const firstError = opened.map((r) => (r.type === 'opened' ? r.firstError : undefined)).find(Boolean);
    ctx.log(`${connected} connected, ${failed} failed in ${(connectMs / 1000).toFixed(1)} s${firstError ? ` (first error: ${firstError})` : ''}; settling ${s.settleSeconds} s`);

    const cpu0 = sum(pids().map(cpuSeconds));
    const c0 = now();
    await sleep(s.settleSeconds * 1000);
    const idleCpuPct = ((sum(pids().map(cpuSeconds)) - cpu0) / ((now() - c0) / 1000)) * 100;
    const rss1 = sum(pids().map(rssMiB));
    const heap1 = sum(await Promise.all(urls.map(heapUsedMiB)));
    const counted = await Promise.all(workers.map((w) => {
      const answer = nextMessage<FromIdleWorker>(w, 30_000);
      w.send({ type: 'count' } satisfies ToIdleWorker);
      return answer;
    }));
    const stillOpen = sum(counted.map((r) => (r.type === 'counted' ? r.open : 0)));

    const perConnKiB = connected > 0 ? ((rss1 - rss0) * 1024) / connected : NaN;
    const heapPerConnKiB = connected > 0 ? ((heap1 - heap0) * 1024) / connected : NaN;
    const system = {
      name: SYSTEM_NAMES[s.topology] === 'confab-sqlite' ? 'confab' : SYSTEM_NAMES[s.topology],
      connections: connected,
      failed,
      stillOpenAfterSettle: stillOpen,
      nodes: dep.nodes.length,
      rssBeforeMiB: Math.round(rss0 * 10) / 10,
      rssAfterMiB: Math.round(rss1 * 10) / 10,
      rssPerConnKiB: Math.round(perConnKiB * 100) / 100,
      heapPerConnKiB: Math.round(heapPerConnKiB * 100) / 100,
      connectsPerSec: Math.round(connected / (connectMs / 1000)),
      idleCpuPct: Math.round(idleCpuPct * 10) / 10,
      targetKiB: TARGET_KIB,
      withinTarget: perConnKiB <= TARGET_KIB,
    };
    const head = ['connections', 'failed', 'open after settle', 'rss before MiB', 'rss after MiB', 'rss/conn KiB', 'heap/conn KiB', 'connects/s', 'idle cpu%'];
    const row = [String(connected), String(failed), String(stillOpen), rss0.toFixed(0), rss1.toFixed(0), perConnKiB.toFixed(2), heapPerConnKiB.toFixed(2), String(system.connectsPerSec), idleCpuPct.toFixed(1)];
    return {
      systems: [system],
      params: { ...s },
      lines: [
        `${system.name}: ${dep.description}`,
        ...formatTable(head, [row]),
        `${connected} idle authenticated connections cost ${perConnKiB.toFixed(2)} KiB of RSS each (target <= ${TARGET_KIB} KiB: ${system.withinTarget ? 'met' : 'NOT met'})${dep.nodes.length > 1 ? `, summed over ${dep.nodes.length} nodes` : ''}`,
        ...(firstError ? [`first connect error: ${firstError}`] : []),
      ],
    };
  },
};
