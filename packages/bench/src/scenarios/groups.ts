// Scenario "groups": how many messages per second one node commits and delivers when users chat
// in groups. N users in groups of G (each user in exactly one group, one device each, every
// device connected); a fraction of them send to their group at a stepped total rate.
import type { ParseArgsConfig } from 'node:util';
import { now } from '../latency.js';
import type { Context, Opts, Scenario } from '../main.js';
import { formatTable, summarize, table, type StepResult, type SystemReport } from '../report.js';
import { createGroup, pool, registerUsers, scrapeMetrics } from '../rest.js';
import { freePort } from '../node.js';
import { PEER_KINDS, startPeer, type PeerKind } from '../peers.js';
import { deploy, SYSTEM_NAMES, TOPOLOGIES, tempDatabase, type Topology } from '../topology.js';
import { WorkerPool, type ConnSpec } from '../workers.js';

const OPTIONS = {
  connections: { type: 'string', default: '1000' },
  'group-size': { type: 'string', default: '10' },
  workers: { type: 'string', default: '1' },
  senders: { type: 'string', default: '1' },
  rates: { type: 'string', default: '500,1000,2000,4000' },
  'step-seconds': { type: 'string', default: '5' },
  'warmup-seconds': { type: 'string', default: '1' },
  'drain-seconds': { type: 'string', default: '2' },
  'text-bytes': { type: 'string', default: '64' },
  'setup-concurrency': { type: 'string', default: '8' },
  topology: { type: 'string', default: 'sqlite' },
  compare: { type: 'boolean', default: false },
  peers: { type: 'string' },
  stalled: { type: 'string', default: '0' },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `groups: N users in groups of G, all connected; senders send to their group at stepped rates.
  --connections N         users = connections (default 1000)
  --group-size G          members per group (default 10; the last group may be smaller)
  --workers W             load-generator processes (default 1)
  --senders F             fraction of connections that send, 0..1 (default 1)
  --rates a,b,c           total offered msg/s per step (default 500,1000,2000,4000)
  --step-seconds S        measured seconds per step (default 5), after --warmup-seconds (1)
  --drain-seconds D       wait after each step before counting losses (default 2)
  --text-bytes B          padding in each message text (default 64)
  --setup-concurrency C   registrations in flight during setup (default 8)
  --topology T            sqlite (default: 1 node, SQLite), postgres (1 node, a fresh PostgreSQL
                          database) or cluster3 (3 nodes, fresh PostgreSQL database, Redis bus;
                          connections round-robin over the nodes; all 3 nodes share CPU 0)
  --compare               run sqlite, postgres and cluster3 one after the other with the same
                          workload and print them side by side (PostgreSQL: PGHOST, PGPORT;
                          Redis: REDIS_URL; needs createdb, dropdb, redis-cli)
  --peers P,Q|all|none    after Confab, the same workload against peers, each alone on the node's
                          core: raw-ws, raw-ws-preframed, socketio, socketio-redis, socketio-pg
                          (see peer-server.ts), and Confab's ratio to each. Default: all of them,
                          except with --compare or --stalled (none unless named)
  --stalled N             slow consumers: run the workload twice, without and then with N more
                          members (spread over the groups) that stop reading after hello; print
                          the readers' p99 side by side and how many the node cut off (4104)`;

function num(o: Opts, key: keyof typeof OPTIONS, min: number, max: number): number {
  const v = Number(o[key]);
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${key} must be a number from ${min} to ${max}, got "${String(o[key])}"`);
  return v;
}

function settings(o: Opts) {
  const topology = String(o.topology) as Topology;
  if (!TOPOLOGIES.includes(topology)) throw new Error(`--topology must be one of ${TOPOLOGIES.join(', ')}, got "${topology}"`);
  if (o.compare && o.topology !== 'sqlite') throw new Error('--compare runs every topology: leave --topology out');
  const rates = String(o.rates).split(',').map((r) => Number(r.trim()));
  if (rates.length === 0 || rates.length > 20 || rates.some((r) => !Number.isFinite(r) || r <= 0 || r > 1e6)) throw new Error('--rates must be 1 to 20 positive numbers, comma-separated');
  return {
    connections: Math.floor(num(o, 'connections', 2, 20_000)),
    groupSize: Math.floor(num(o, 'group-size', 2, 20_000)),
    workers: Math.floor(num(o, 'workers', 1, 16)),
    senders: num(o, 'senders', 0.001, 1),
    rates,
    stepSeconds: num(o, 'step-seconds', 1, 600),
    warmupSeconds: num(o, 'warmup-seconds', 0, 60),
    drainSeconds: num(o, 'drain-seconds', 0, 60),
    textBytes: Math.floor(num(o, 'text-bytes', 0, 10_000)),
    setupConcurrency: Math.floor(num(o, 'setup-concurrency', 1, 64)),
    topologies: o.compare ? [...TOPOLOGIES] : [topology],
    peers: o.peers === undefined && (o.compare || Number(o.stalled) > 0) ? [] : peersOf(o.peers ?? 'all'),
    stalled: Math.floor(num(o, 'stalled', 0, 10_000)),
  };
}

type Settings = ReturnType<typeof settings>;

function peersOf(v: string | boolean | undefined): PeerKind[] {
  if (v === undefined || v === false || v === 'none') return [];
  if (v === 'all' || v === true) return [...PEER_KINDS];
  const list = String(v).split(',').map((x) => x.trim());
  for (const p of list) if (!(PEER_KINDS as readonly string[]).includes(p)) throw new Error(`--peers: unknown peer "${p}"; peers: ${PEER_KINDS.join(', ')}`);
  return list as PeerKind[];
}

/** The same workload against a peer server: no accounts (the token names the group), same steps. */
async function runPeer(kind: PeerKind, s: Settings, ctx: Context): Promise<TopologyRun> {
  const local = scope(ctx);
  try {
    const env: Record<string, string> = {};
    if (kind === 'socketio-pg') env.PEER_DATABASE_URL = tempDatabase('peer', (m) => ctx.log(m), local.onCleanup);
    const peer = await startPeer(kind, await freePort(), ctx.pin ? 0 : undefined, env);
    local.onCleanup(() => peer.stop());
    const groups = Math.ceil(s.connections / s.groupSize);
    const shares: ConnSpec[][] = Array.from({ length: s.workers }, () => []);
    for (let k = 0; k < s.connections; k++) {
      const g = Math.floor(k / s.groupSize);
      const size = Math.min(s.groupSize, s.connections - g * s.groupSize);
      const sender = Math.floor((k + 1) * s.senders) > Math.floor(k * s.senders);
      shares[k % s.workers]!.push({ token: `g${g}`, conversationId: `g${g}`, groupSize: size, sender });
    }
    const connectStart = now();
    const workers = await WorkerPool.start(peer.url, shares, s.textBytes, ctx.pin ? 1 : undefined, kind.startsWith('socketio') ? 'socketio' : 'confab');
    local.onCleanup(() => workers.stop());
    const connectSeconds = (now() - connectStart) / 1000;
    ctx.log(`${kind}: ${s.connections} connections in ${connectSeconds.toFixed(1)} s (pid ${peer.pid})`);
    const timing = { warmMs: s.warmupSeconds * 1000, measureMs: s.stepSeconds * 1000, drainMs: s.drainSeconds * 1000 };
    const steps: StepResult[] = [];
    for (const [i, rate] of s.rates.entries()) {
      ctx.log(`${kind} step ${i + 1}/${s.rates.length}: ${rate} msg/s offered`);
      const r = await workers.step(i, rate, timing, peer.pid);
      steps.push(r);
      ctx.log(`  committed ${r.committedPerSec.toFixed(0)}/s, delivered ${r.deliveriesPerSec.toFixed(0)}/s, p99 ${r.p99Ms ?? '-'} ms, lost ${r.lost}, server cpu ${r.serverCpuPct.toFixed(0)}%`);
    }
    return {
      system: summarize(kind, steps), description: `${kind} peer (pid ${peer.pid}; see peer-server.ts)`, users: s.connections, groups,
      senders: shares.flat().filter((c) => c.sender).length, setupSeconds: 0, connectSeconds: Math.round(connectSeconds * 10) / 10,
    };
  } finally {
    await local.close();
  }
}

const NODE_ARGS = ['--sends-per-second', '100000', '--send-burst', '100000', '--user-sends-per-second', '100000', '--user-send-burst', '100000', '--log-level', 'warn'];

const CLUSTER_NOTE = 'confab-3nodes: the three nodes share one core (CPU 0 with pinning): this measures the cost of the cluster path (Redis hop, PostgreSQL), not scale-out.';
const SERVICES_NOTE = 'PostgreSQL and Redis are not pinned: their CPU shows in "other cpu%"; "srv cpu%" and "rss MiB" of confab-3nodes are the sums over its 3 nodes.';

interface TopologyRun { system: SystemReport; description: string; users: number; groups: number; senders: number; setupSeconds: number; connectSeconds: number }

/**
 * Clean-up steps of one topology: run when it is done (before the next one starts, so that its
 * nodes no longer use the core) and, should the run be aborted first, by the scenario's clean-up.
 */
function scope(ctx: Context) {
  const fns: (() => unknown)[] = [];
  let done: Promise<void> | undefined;
  const close = () => (done ??= (async () => {
    for (const fn of fns.reverse()) {
      try { await fn(); } catch (err) { ctx.log(`clean-up failed: ${(err as Error).message}`); }
    }
  })());
  ctx.onCleanup(close);
  return { onCleanup: (fn: () => unknown) => { fns.push(fn); }, close };
}

async function runTopology(topology: Topology, name: string, s: Settings, ctx: Context, stalled = 0): Promise<TopologyRun> {
  const local = scope(ctx);
  try {
    const nodeArgs = [...NODE_ARGS, '--max-group-members', String(Math.max(1000, s.groupSize))];
    const dep = await deploy(topology, nodeArgs, ctx.pin ? 0 : undefined, ctx.nodeFlags, (m) => ctx.log(m), local.onCleanup);
    const [first] = dep.nodes;
    ctx.log(`${name}: ${dep.description}; registering ${s.connections} users through ${first!.url}, ${s.setupConcurrency} at a time`);

    const setupStart = now();
    const users = await registerUsers(first!.url, s.connections, s.setupConcurrency);
    const members = Array.from({ length: Math.ceil(users.length / s.groupSize) }, (_, g) => users.slice(g * s.groupSize, (g + 1) * s.groupSize));
    // Slow consumers: extra members, dealt round-robin to the groups, that will not read.
    const slow = stalled > 0 ? await registerUsers(first!.url, stalled, s.setupConcurrency) : [];
    const slowOf = (g: number) => slow.filter((_, i) => i % members.length === g);
    const convs = await pool(members.length, s.setupConcurrency, (g) => createGroup(first!.url, `bench group ${g}`, [...members[g]!, ...slowOf(g)]));
    const setupSeconds = (now() - setupStart) / 1000;

    // One device per user; senders spread evenly; connections dealt round-robin to the workers
    // and to the nodes (so a group's members sit on every node of a cluster).
    const shares: ConnSpec[][] = Array.from({ length: s.workers }, () => []);
    let k = 0;
    members.forEach((group, g) => {
      for (const u of group) {
        const sender = Math.floor((k + 1) * s.senders) > Math.floor(k * s.senders);
        const url = dep.nodes[k % dep.nodes.length]!.url;
        shares[k % s.workers]!.push({ token: u.accessToken, conversationId: convs[g]!.id, groupSize: group.length, sender, url });
        k++;
      }
      for (const u of slowOf(g)) shares[k++ % s.workers]!.push({ token: u.accessToken, conversationId: convs[g]!.id, groupSize: group.length, sender: false, stalled: true, url: dep.nodes[k % dep.nodes.length]!.url });
    });
    ctx.log(`setup ${setupSeconds.toFixed(1)} s (${users.length} users, ${convs.length} groups); connecting ${s.workers} worker(s) to ${dep.nodes.length} node(s)`);
    const connectStart = now();
    const workers = await WorkerPool.start(first!.url, shares, s.textBytes, ctx.pin ? 1 : undefined);
    local.onCleanup(() => workers.stop());
    const connectSeconds = (now() - connectStart) / 1000;
    ctx.log(`${users.length} connections in ${connectSeconds.toFixed(1)} s`);

    const timing = { warmMs: s.warmupSeconds * 1000, measureMs: s.stepSeconds * 1000, drainMs: s.drainSeconds * 1000 };
    const pids = dep.nodes.map((n) => n.pid);
    const steps: StepResult[] = [];
    for (const [i, rate] of s.rates.entries()) {
      ctx.log(`${name} step ${i + 1}/${s.rates.length}: ${rate} msg/s offered`);
      const r = await workers.step(i, rate, timing, pids.length === 1 ? pids[0]! : pids);
      steps.push(r);
      ctx.log(`  committed ${r.committedPerSec.toFixed(0)}/s, delivered ${r.deliveriesPerSec.toFixed(0)}/s, p99 ${r.p99Ms ?? '-'} ms, lost ${r.lost}, server cpu ${r.serverCpuPct.toFixed(0)}%`);
    }
    const cut = stalled > 0 ? await slowConsumersCut(dep.nodes.map((n) => n.url)) : undefined;
    return {
      system: { ...summarize(name, steps), ...(stalled > 0 ? { stalledClients: stalled, slowConsumersCut: cut } : {}) },
      description: dep.description + (stalled > 0 ? `; ${stalled} stalled members` : ''), users: users.length, groups: convs.length,
      senders: shares.flat().filter((c) => c.sender).length,
      setupSeconds: Math.round(setupSeconds * 10) / 10, connectSeconds: Math.round(connectSeconds * 10) / 10,
    };
  } finally {
    await local.close();
  }
}

/** confab_slow_consumers_total summed over the nodes. */
async function slowConsumersCut(urls: string[]): Promise<number> {
  let n = 0;
  for (const url of urls) for (const v of Object.values((await scrapeMetrics(url)).byLabel('confab_slow_consumers_total', 'bound'))) n += v;
  return n;
}

/** The readers' p99 and the node's RSS per step, without and with slow consumers. */
function stalledLines(base: TopologyRun, slow: TopologyRun, stalled: number): string[] {
  const head = ['offered', 'p99 without', 'p99 with', 'ratio', 'rss without MiB', 'rss with MiB', 'lost with'];
  const rows = base.system.steps.map((b, i) => {
    const w = slow.system.steps[i];
    const ratio = w?.p99Ms !== null && w?.p99Ms !== undefined && b.p99Ms ? (w.p99Ms / b.p99Ms).toFixed(2) : '-';
    return [String(b.offered), fmtMs(b.p99Ms), fmtMs(w?.p99Ms ?? null), ratio, b.serverRssMiB.toFixed(0), (w?.serverRssMiB ?? 0).toFixed(0), String(w?.lost ?? '-')];
  });
  const cut = (slow.system as { slowConsumersCut?: number }).slowConsumersCut ?? 0;
  return [`slow consumers: ${stalled} members that stop reading, side by side with the same run without them:`, ...formatTable(head, rows), `the node cut off ${cut} of the ${stalled} (close 4104 slow_consumer)`];
}

/** Confab's sustained deliveries/s over each peer's (both measured in this run). */
function ratioLines(confab: TopologyRun[], peers: TopologyRun[]): { line: string; json: object }[] {
  const out: { line: string; json: object }[] = [];
  for (const c of confab) {
    for (const p of peers) {
      const a = c.system.maxDeliveriesPerSec;
      const b = p.system.maxDeliveriesPerSec;
      const ratio = a !== null && b !== null && b > 0 ? Math.round((a / b) * 100) / 100 : null;
      out.push({
        line: `ratio ${c.system.name} / ${p.system.name}, sustained deliveries/s: ${a ?? 'none'} / ${b ?? 'none'} = ${ratio ?? '-'}`,
        json: { system: c.system.name, peer: p.system.name, confabDeliveriesPerSec: a, peerDeliveriesPerSec: b, ratio },
      });
    }
  }
  return out;
}

const fmtMs = (v: number | null) => (v === null ? '-' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));

/** The systems side by side: per offered rate, each one's commits/s and p99 delivery latency. */
function sideBySide(runs: TopologyRun[], rates: number[]): string[] {
  const names = runs.map((r) => r.system.name);
  const head = ['offered', ...names.flatMap((n) => [`${n} commit/s`, 'p99 ms', 'lost']), 'note'];
  const rows = rates.map((rate, i) => [
    String(rate),
    ...runs.flatMap((r) => {
      const st = r.system.steps[i];
      return st ? [String(Math.round(st.committedPerSec)), fmtMs(st.p99Ms), String(st.lost)] : ['-', '-', '-'];
    }),
    runs.map((r) => (r.system.steps[i]?.sustained ? '' : `${r.system.name}:not-sustained`)).filter(Boolean).join(' '),
  ]);
  const best = runs.map((r) => `${r.system.name} ${r.system.maxSustainedMsgsPerSec === null ? 'none' : `${Math.round(r.system.maxSustainedMsgsPerSec)} msg/s (p99 ${fmtMs(r.system.p99Ms)} ms)`}`);
  return ['side by side (same workload, one run; commit/s = acks per second, p99 = send → delivery):', ...formatTable(head, rows), `max sustained: ${best.join(', ')}`];
}

const CHANNEL_OPTIONS = {
  ...OPTIONS,
  connections: { type: 'string', default: '2000' },
  'group-size': { type: 'string', default: '2000' },
  senders: { type: 'string', default: '0.01' },
  rates: { type: 'string', default: '5,10,20,40' },
  'setup-concurrency': { type: 'string', default: '16' },
} as const satisfies ParseArgsConfig['options'];

export const groups: Scenario = {
  name: 'groups',
  usage: USAGE,
  options: OPTIONS,

  budgetSeconds(o) {
    const s = settings(o);
    const setup = 60 + s.connections * 0.2; // argon2 ≈ 50 ms each on the node's one core, with margin
    const steps = s.rates.length * (s.warmupSeconds + s.stepSeconds + s.drainSeconds + 10);
    return (s.topologies.length + (s.stalled > 0 ? 1 : 0)) * (setup + 90 + steps) + s.peers.length * (60 + steps) + s.stalled * 0.2;
  },

  async run(o, ctx) {
    const s = settings(o);
    const compare = s.topologies.length > 1;
    const runs: TopologyRun[] = [];
    for (const topology of s.topologies) {
      // Without --topology and --compare the system keeps today's name.
      const name = !compare && o.topology === 'sqlite' ? 'confab' : SYSTEM_NAMES[topology];
      runs.push(await runTopology(topology, name, s, ctx));
    }
    let stalledRun: TopologyRun | undefined;
    if (s.stalled > 0) {
      stalledRun = await runTopology(s.topologies[0]!, `${runs[0]!.system.name}+stalled`, s, ctx, s.stalled);
      runs.push(stalledRun);
    }
    const confabRuns = runs.length;
    for (const kind of s.peers) runs.push(await runPeer(kind, s, ctx));
    const systems = runs.map((r) => r.system);
    const ratios = s.peers.length === 0 ? [] : ratioLines(runs.slice(0, confabRuns), runs.slice(confabRuns));
    const cluster = s.topologies.includes('cluster3');
    const services = s.topologies.some((t) => t !== 'sqlite');
    const notes = [...(cluster ? [CLUSTER_NOTE] : []), ...(services ? [SERVICES_NOTE] : [])];
    const first = runs[0]!;
    const { topologies: _t, ...common } = s;
    return {
      systems,
      lines: [
        ...runs.map((r) => `${r.system.name}: ${r.description}`),
        ...systems.map(table),
        ...(compare || s.peers.length > 0 ? sideBySide(runs, s.rates) : []),
        ...ratios.map((r) => r.line),
        ...(stalledRun ? stalledLines(runs[0]!, stalledRun, s.stalled) : []),
        ...notes.map((n) => `note: ${n}`),
      ],
      params: {
        ...common, topology: compare ? 'compare' : s.topologies[0], users: first.users, groups: first.groups, senderConnections: first.senders,
        setupSeconds: compare ? Object.fromEntries(runs.map((r) => [r.system.name, r.setupSeconds])) : first.setupSeconds,
        connectSeconds: compare ? Object.fromEntries(runs.map((r) => [r.system.name, r.connectSeconds])) : first.connectSeconds,
      },
      extra: {
        topologies: Object.fromEntries(runs.map((r) => [r.system.name, r.description])),
        ...(ratios.length ? { ratios: ratios.map((r) => r.json) } : {}),
        ...(notes.length ? { notes } : {}),
      },
    };
  },
};

/**
 * Scenario "channel": one group of 2,000 members, all online, a few of them talking. The groups
 * scenario with other defaults: every message is 2,000 deliveries, so this measures the fan-out
 * of a large room rather than the write path.
 */
export const channel: Scenario = {
  ...groups,
  name: 'channel',
  usage: `channel: one group of N members, all connected (the groups scenario with these defaults):
  --connections 2000 --group-size 2000 --senders 0.01 (20 senders) --rates 5,10,20,40 (msg/s;
  x 2,000 deliveries each); every groups option applies, e.g. --workers 2 for more generator CPU`,
  options: CHANNEL_OPTIONS,
};
