// Scenario "soak": the groups workload at one steady rate for a long time (30 minutes by
// default), in one-minute steps, with churn between the steps (a share of the clients drop their
// connection and come back). What must hold: nothing lost, and the node's RSS and the p99 of the
// last five minutes within 1.1x of the first five after the warm-up minute.
import type { ParseArgsConfig } from 'node:util';
import { intOption, type Scenario } from '../main.js';
import { formatTable, median, type StepResult } from '../report.js';
import { createGroup, pool, registerUsers } from '../rest.js';
import { startConfab } from '../node.js';
import { WorkerPool, type ConnSpec } from '../workers.js';

const OPTIONS = {
  minutes: { type: 'string', default: '30' },
  'step-seconds': { type: 'string', default: '55' },
  rate: { type: 'string', default: '1000' },
  connections: { type: 'string', default: '200' },
  'group-size': { type: 'string', default: '10' },
  churn: { type: 'string', default: '5' },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `soak: steady load for a long time with churn; RSS and p99 must stay flat, nothing lost.
  --minutes M        length, in one-minute steps (default 30; at least 3): minutes 2-6 are
                     compared with the last 5 (with fewer than 11, as many as fit: at least 1)
  --step-seconds S   measured seconds of each step (default 55: with the 1 s warm-up, the 2 s
                     drain and the churn, a step is about a minute; a few for a quick check)
  --rate R           msg/s offered throughout (default 1000)
  --connections N    users = connections (default 200), in groups of --group-size (default 10)
  --churn P          percent of the connections dropped and reopened after each minute (default 5)
The node issues access tokens that outlive the run: the clients reconnect with the token they
registered with and do not refresh it. The generators' CPU is printed per minute and compared like
p99: their work is the same every minute, so a change in it is the machine's, not the node's.`;

const NODE_ARGS = ['--sends-per-second', '100000', '--send-burst', '100000', '--user-sends-per-second', '100000', '--user-send-burst', '100000', '--log-level', 'warn'];
const FLAT = 1.1;
/** The generators' CPU in one step, all worker processes together (% of one core). */
const generatorCpu = (x: StepResult) => x.generatorCpuPct.reduce((a, b) => a + b, 0);

export const soak: Scenario = {
  name: 'soak',
  usage: USAGE,
  options: OPTIONS,

  budgetSeconds(o) {
    return intOption(o, 'minutes', 3, 24 * 60) * (intOption(o, 'step-seconds', 1, 3600) + 20) + 300;
  },

  async run(o, ctx) {
    const s = {
      minutes: intOption(o, 'minutes', 3, 24 * 60),
      stepSeconds: intOption(o, 'step-seconds', 1, 3600),
      rate: intOption(o, 'rate', 1, 100_000),
      connections: intOption(o, 'connections', 2, 20_000),
      groupSize: intOption(o, 'group-size', 2, 1000),
      churn: intOption(o, 'churn', 0, 100),
    };
    // The clients' access tokens must outlive the run: the bench's clients reconnect with the
    // token they registered with (they do not refresh), and all were issued together, so
    // at the default 15 minutes every connection would expire in the same second.
    const tokenTtl = String(s.minutes * (s.stepSeconds + 30) + 600);
    const node = await startConfab([...NODE_ARGS, '--access-token-ttl', tokenTtl], ctx.pin ? 0 : undefined, { nodeFlags: ctx.nodeFlags });
    ctx.onCleanup(() => node.stop());
    ctx.log(`node ${node.url} (pid ${node.pid}); registering ${s.connections} users`);
    const users = await registerUsers(node.url, s.connections, 8);
    const members = Array.from({ length: Math.ceil(users.length / s.groupSize) }, (_, g) => users.slice(g * s.groupSize, (g + 1) * s.groupSize));
    const convs = await pool(members.length, 8, (g) => createGroup(node.url, `soak ${g}`, members[g]!));
    const conns: ConnSpec[] = members.flatMap((group, g) => group.map((u) => ({ token: u.accessToken, conversationId: convs[g]!.id, groupSize: group.length, sender: true })));
    const workers = await WorkerPool.start(node.url, [conns], 64, ctx.pin ? 1 : undefined);
    ctx.onCleanup(() => workers.stop());

    const steps: StepResult[] = [];
    const churned: number[] = [];
    for (let i = 0; i < s.minutes; i++) {
      const r = await workers.step(i, s.rate, { warmMs: 1000, measureMs: s.stepSeconds * 1000, drainMs: 2000 }, node.pid);
      steps.push(r);
      churned.push(s.churn > 0 ? await workers.churn(s.churn / 100) : 0);
      ctx.log(`minute ${i + 1}/${s.minutes}: committed ${r.committedPerSec.toFixed(0)}/s, p99 ${r.p99Ms ?? '-'} ms, lost ${r.lost}, rss ${r.serverRssMiB.toFixed(0)} MiB, ${churned[i]} reconnected`);
    }

    // The first minute warms up; compare minutes 2-6 with the last five (with fewer than 11
    // minutes, as many as fit on both sides without overlapping: at least one).
    const k = Math.min(5, Math.floor((steps.length - 1) / 2));
    const first = steps.slice(1, 1 + k);
    const last = steps.slice(-k);
    const rss = (xs: StepResult[]) => median(xs.map((x) => x.serverRssMiB));
    const p99 = (xs: StepResult[]) => median(xs.map((x) => x.p99Ms ?? Infinity));
    // The generators do the same work every minute: when their CPU per minute moves, the machine
    // ran slower or faster (other tenants, the hypervisor), and the node's figures move with it.
    const gen = (xs: StepResult[]) => median(xs.map(generatorCpu));
    const rssRatio = rss(last) / rss(first);
    const p99Ratio = p99(last) / p99(first);
    const lost = steps.reduce((n, x) => n + x.lost, 0);
    const unacked = steps.reduce((n, x) => n + x.unacked, 0);
    const flat = rssRatio <= FLAT && p99Ratio <= FLAT && lost === 0 && unacked === 0;
    const system = {
      name: 'confab', minutes: s.minutes, rate: s.rate, lost, unacked,
      rssFirstMiB: rss(first), rssLastMiB: rss(last), rssRatio: Math.round(rssRatio * 100) / 100,
      p99FirstMs: p99(first), p99LastMs: p99(last), p99Ratio: Math.round(p99Ratio * 100) / 100,
      generatorCpuFirstPct: gen(first), generatorCpuLastPct: gen(last),
      reconnected: churned.reduce((a, b) => a + b, 0), flat, steps,
    };
    const head = ['minute', 'commit/s', 'deliv/s', 'p50', 'p99', 'lost', 'unacked', 'srv cpu%', 'gen cpu%', 'rss MiB', 'reconnected'];
    const rows = steps.map((x, i) => [String(i + 1), x.committedPerSec.toFixed(0), x.deliveriesPerSec.toFixed(0), String(x.p50Ms ?? '-'), String(x.p99Ms ?? '-'), String(x.lost), String(x.unacked), x.serverCpuPct.toFixed(0), generatorCpu(x).toFixed(1), x.serverRssMiB.toFixed(0), String(churned[i])]);
    return {
      systems: [system],
      params: s,
      lines: [
        `confab: 1 node (SQLite), ${s.connections} connections in groups of ${s.groupSize}, ${s.rate} msg/s for ${s.minutes} ${s.stepSeconds === 55 ? 'minutes' : `steps of ${s.stepSeconds} s (measured)`}, ${s.churn} % of the connections dropped and reopened after each ${s.stepSeconds === 55 ? 'minute' : 'step'}`,
        ...formatTable(head, rows),
        `minutes ${k > 1 ? `2-${1 + k}` : '2'} vs the last ${k} (medians): RSS ${rss(first).toFixed(0)} -> ${rss(last).toFixed(0)} MiB (x${rssRatio.toFixed(2)}), p99 ${p99(first)} -> ${p99(last)} ms (x${p99Ratio.toFixed(2)}); lost ${lost}, unacked ${unacked}`,
        `the generators' CPU, the same work every minute (a machine that slowed down shows here): ${gen(first).toFixed(1)} -> ${gen(last).toFixed(1)} % (x${(gen(last) / gen(first)).toFixed(2)})`,
        `flat (both within x${FLAT}, nothing lost): ${flat ? 'yes' : 'NO'}`,
      ],
    };
  },
};
