// Scenario "soak": the groups workload at one steady rate for a long time (30 minutes by
// default), in one-minute steps, with churn between the steps (a share of the clients drop their
// connection and come back). What must hold: nothing lost, and the node's RSS and the p99 of the
// last five minutes within 1.1x of the first five after the warm-up minute, also once the
// machine's own changes of speed are taken out (judgeSoak).
import type { ParseArgsConfig } from 'node:util';
import { intOption, type Scenario } from '../main.js';
import { formatTable, type StepResult } from '../report.js';
import { generatorCpu, judgeSoak, r2 } from '../soak-judge.js';
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
registered with and do not refresh it. The generators' CPU is printed per minute (and the
hypervisor's steal, all cores together, in % of one core): their work is the same every minute,
so it is the machine's speed. The p99 moves with it, more than in proportion; the soak fits that
over the run and also prints the p99 ratio at one machine speed. Verdict: flat (both ratios
within 1.1x), flat at the machine's speed (only the second), or NOT flat; RSS, lost and unacked
decide alone.`;

const NODE_ARGS = ['--sends-per-second', '100000', '--send-burst', '100000', '--user-sends-per-second', '100000', '--user-send-burst', '100000', '--log-level', 'warn'];

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

    const j = judgeSoak(steps);
    const system = {
      name: 'confab', minutes: s.minutes, rate: s.rate, lost: j.lost, unacked: j.unacked,
      rssFirstMiB: j.rss[0], rssLastMiB: j.rss[1], rssRatio: r2(j.rss[1] / j.rss[0]),
      p99FirstMs: j.p99[0], p99LastMs: j.p99[1], p99Ratio: r2(j.p99[1] / j.p99[0]),
      generatorCpuFirstPct: j.gen[0], generatorCpuLastPct: j.gen[1], generatorCpuRatio: r2(j.gen[1] / j.gen[0]),
      nodePerGeneratorCpuFirst: r2(j.cost[0]), nodePerGeneratorCpuLast: r2(j.cost[1]),
      p99Elasticity: j.fit && r2(j.fit.elasticity), p99RatioAtMachineSpeed: j.fit && r2(j.fit.ratio), p99RatioAtMachineSpeedMargin: j.fit && r2(j.fit.margin),
      reconnected: churned.reduce((a, b) => a + b, 0), verdict: j.verdict, steps,
    };
    const head = ['minute', 'commit/s', 'deliv/s', 'p50', 'p99', 'lost', 'unacked', 'srv cpu%', 'gen cpu%', 'steal%', 'rss MiB', 'reconnected'];
    const rows = steps.map((x, i) => [String(i + 1), x.committedPerSec.toFixed(0), x.deliveriesPerSec.toFixed(0), String(x.p50Ms ?? '-'), String(x.p99Ms ?? '-'), String(x.lost), String(x.unacked), x.serverCpuPct.toFixed(0), generatorCpu(x).toFixed(1), x.stealPct.toFixed(1), x.serverRssMiB.toFixed(0), String(churned[i])]);
    return {
      systems: [system],
      params: s,
      lines: [
        `confab: 1 node (SQLite), ${s.connections} connections in groups of ${s.groupSize}, ${s.rate} msg/s for ${s.minutes} ${s.stepSeconds === 55 ? 'minutes' : `steps of ${s.stepSeconds} s (measured)`}, ${s.churn} % of the connections dropped and reopened after each ${s.stepSeconds === 55 ? 'minute' : 'step'}`,
        ...formatTable(head, rows),
        ...j.lines,
      ],
    };
  },
};
