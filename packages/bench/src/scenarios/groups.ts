// Scenario "groups": how many messages per second one node commits and delivers when users chat
// in groups. N users in groups of G (each user in exactly one group, one device each, every
// device connected); a fraction of them send to their group at a stepped total rate.
import type { ParseArgsConfig } from 'node:util';
import { now } from '../latency.js';
import type { Opts, Scenario } from '../main.js';
import { startConfab } from '../node.js';
import { summarize, table, type StepResult } from '../report.js';
import { createGroup, pool, registerUsers } from '../rest.js';
import { WorkerPool, type ConnSpec } from '../workers.js';

const OPTIONS = {
  connections: { type: 'string', default: '200' },
  'group-size': { type: 'string', default: '10' },
  workers: { type: 'string', default: '1' },
  senders: { type: 'string', default: '1' },
  rates: { type: 'string', default: '500,1000,2000,4000' },
  'step-seconds': { type: 'string', default: '5' },
  'warmup-seconds': { type: 'string', default: '1' },
  'drain-seconds': { type: 'string', default: '2' },
  'text-bytes': { type: 'string', default: '64' },
  'setup-concurrency': { type: 'string', default: '8' },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `groups: N users in groups of G, all connected; senders send to their group at stepped rates.
  --connections N         users = connections (default 200)
  --group-size G          members per group (default 10; the last group may be smaller)
  --workers W             load-generator processes (default 1)
  --senders F             fraction of connections that send, 0..1 (default 1)
  --rates a,b,c           total offered msg/s per step (default 500,1000,2000,4000)
  --step-seconds S        measured seconds per step (default 5), after --warmup-seconds (1)
  --drain-seconds D       wait after each step before counting losses (default 2)
  --text-bytes B          padding in each message text (default 64)
  --setup-concurrency C   registrations in flight during setup (default 8)`;

function num(o: Opts, key: keyof typeof OPTIONS, min: number, max: number): number {
  const v = Number(o[key]);
  if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${key} must be a number from ${min} to ${max}, got "${String(o[key])}"`);
  return v;
}

function settings(o: Opts) {
  const rates = String(o.rates).split(',').map((r) => Number(r.trim()));
  if (rates.length === 0 || rates.length > 20 || rates.some((r) => !Number.isFinite(r) || r <= 0 || r > 1e6)) throw new Error('--rates must be 1 to 20 positive numbers, comma-separated');
  return {
    connections: Math.floor(num(o, 'connections', 2, 20_000)),
    groupSize: Math.floor(num(o, 'group-size', 2, 1000)),
    workers: Math.floor(num(o, 'workers', 1, 16)),
    senders: num(o, 'senders', 0.001, 1),
    rates,
    stepSeconds: num(o, 'step-seconds', 1, 600),
    warmupSeconds: num(o, 'warmup-seconds', 0, 60),
    drainSeconds: num(o, 'drain-seconds', 0, 60),
    textBytes: Math.floor(num(o, 'text-bytes', 0, 10_000)),
    setupConcurrency: Math.floor(num(o, 'setup-concurrency', 1, 64)),
  };
}

export const groups: Scenario = {
  name: 'groups',
  usage: USAGE,
  options: OPTIONS,

  budgetSeconds(o) {
    const s = settings(o);
    const setup = 60 + s.connections * 0.2; // argon2 ≈ 50 ms each on the node's one core, with margin
    return setup + 90 + s.rates.length * (s.warmupSeconds + s.stepSeconds + s.drainSeconds + 10);
  },

  async run(o, ctx) {
    const s = settings(o);
    const node = await startConfab(['--sends-per-second', '100000', '--send-burst', '100000', '--user-sends-per-second', '100000', '--user-send-burst', '100000', '--log-level', 'warn'], ctx.pin ? 0 : undefined);
    ctx.onCleanup(() => node.stop());
    ctx.log(`node ${node.url} (pid ${node.pid}); registering ${s.connections} users, ${s.setupConcurrency} at a time`);

    const setupStart = now();
    const users = await registerUsers(node.url, s.connections, s.setupConcurrency);
    const members = Array.from({ length: Math.ceil(users.length / s.groupSize) }, (_, g) => users.slice(g * s.groupSize, (g + 1) * s.groupSize));
    const convs = await pool(members.length, s.setupConcurrency, (g) => createGroup(node.url, `bench group ${g}`, members[g]!));
    const setupSeconds = (now() - setupStart) / 1000;

    // One device per user; senders spread evenly; connections dealt round-robin to the workers.
    const shares: ConnSpec[][] = Array.from({ length: s.workers }, () => []);
    let k = 0;
    members.forEach((group, g) => {
      for (const u of group) {
        const sender = Math.floor((k + 1) * s.senders) > Math.floor(k * s.senders);
        shares[k % s.workers]!.push({ token: u.accessToken, conversationId: convs[g]!.id, groupSize: group.length, sender });
        k++;
      }
    });
    ctx.log(`setup ${setupSeconds.toFixed(1)} s (${users.length} users, ${convs.length} groups); connecting ${s.workers} worker(s)`);
    const connectStart = now();
    const workers = await WorkerPool.start(node.url, shares, s.textBytes, ctx.pin ? 1 : undefined);
    ctx.onCleanup(() => workers.stop());
    const connectSeconds = (now() - connectStart) / 1000;
    ctx.log(`${users.length} connections in ${connectSeconds.toFixed(1)} s`);

    const timing = { warmMs: s.warmupSeconds * 1000, measureMs: s.stepSeconds * 1000, drainMs: s.drainSeconds * 1000 };
    const steps: StepResult[] = [];
    for (const [i, rate] of s.rates.entries()) {
      ctx.log(`step ${i + 1}/${s.rates.length}: ${rate} msg/s offered`);
      const r = await workers.step(i, rate, timing, node.pid);
      steps.push(r);
      ctx.log(`  committed ${r.committedPerSec.toFixed(0)}/s, delivered ${r.deliveriesPerSec.toFixed(0)}/s, p99 ${r.p99Ms ?? '-'} ms, lost ${r.lost}, server cpu ${r.serverCpuPct.toFixed(0)}%`);
    }
    const senders = shares.flat().filter((c) => c.sender).length;
    const systems = [summarize('confab', steps)];
    return {
      systems,
      lines: systems.map(table),
      params: { ...s, users: users.length, groups: convs.length, senderConnections: senders, setupSeconds: Math.round(setupSeconds * 10) / 10, connectSeconds: Math.round(connectSeconds * 10) / 10 },
    };
  },
};
