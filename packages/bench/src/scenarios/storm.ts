// Scenario "storm": N clients connected to a node, each following its group; the node is killed
// with SIGKILL and started again on the same data and port, and every client comes back at once
// (full-jitter backoff, as the SDK does) while new messages are committed. Measured: the time
// until every client is connected again and holds its conversation up to the last seq, messages
// lost (a client that never gets there) and duplicated, close codes seen (admission control
// answers 4103 to the excess), and what the store was asked during the storm (from /metrics,
// which restart with the node).
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import type { Session } from '@confab/protocol';
import { now } from '../latency.js';
import { intOption, type Opts, type Scenario } from '../main.js';
import { cpuSeconds, rssMiB, startConfab } from '../node.js';
import { formatTable } from '../report.js';
import { createGroup, pool, post, registerUsers, scrapeMetrics } from '../rest.js';
import type { FromStormWorker, StormConn, StormStatus, ToStormWorker } from '../storm-worker.js';
import { forkWorker, nextMessage, stopWorker } from '../workers.js';

const OPTIONS = {
  clients: { type: 'string', default: '10000' },
  users: { type: 'string', default: '500' },
  'group-size': { type: 'string', default: '10' },
  workers: { type: 'string' },
  before: { type: 'string', default: '5' },
  after: { type: 'string', default: '5' },
  'timeout-seconds': { type: 'string', default: '120' },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `storm: N clients, the node killed (SIGKILL) and restarted: time until every client has resynced.
  --clients N          connected clients (default 10000), spread over --users accounts as devices
  --users U            accounts (default 500; 20 devices each at the default N)
  --group-size G       accounts per group (default 10); each client follows its account's group
  --workers W          generator processes (default: one per 2,500 clients)
  --before B           messages per group committed before the kill (default 5)
  --after A            messages per group committed right after the restart, during the storm (default 5)
  --timeout-seconds T  give up on the resync after T seconds (default 120)`;

const WORKER = fileURLToPath(new URL('../storm-worker.js', import.meta.url));
const NODE_ARGS = ['--log-level', 'warn', '--sends-per-second', '100000', '--send-burst', '100000', '--user-sends-per-second', '100000', '--user-send-burst', '100000'];

const int = (o: Opts, key: keyof typeof OPTIONS, min: number, max: number, fallback?: number) => intOption(o, key, min, max, fallback);

function settings(o: Opts) {
  const clients = int(o, 'clients', 1, 100_000);
  const users = int(o, 'users', 1, 20_000);
  return {
    clients, users,
    groupSize: int(o, 'group-size', 1, 1000),
    workers: int(o, 'workers', 1, 64, Math.ceil(clients / 2500)),
    before: int(o, 'before', 1, 10_000),
    after: int(o, 'after', 0, 10_000),
    timeoutSeconds: int(o, 'timeout-seconds', 1, 3600),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export const storm: Scenario = {
  name: 'storm',
  usage: USAGE,
  options: OPTIONS,

  budgetSeconds(o) {
    const s = settings(o);
    return 120 + s.users * 0.2 + s.clients / 100 + s.timeoutSeconds;
  },

  async run(o, ctx) {
    const s = settings(o);
    const node = await startConfab(NODE_ARGS, ctx.pin ? 0 : undefined, { nodeFlags: ctx.nodeFlags });
    ctx.onCleanup(() => node.stop());
    const url = node.url;
    ctx.log(`node ${url} (pid ${node.pid}); registering ${s.users} users`);
    const users: Session[] = await registerUsers(url, s.users, 8);
    const groups = await pool(Math.ceil(s.users / s.groupSize), 8, (g) => createGroup(url, `storm ${g}`, users.slice(g * s.groupSize, (g + 1) * s.groupSize)));
    const groupOfUser = (u: number) => groups[Math.floor(u / s.groupSize)]!;
    const conns: StormConn[] = Array.from({ length: s.clients }, (_, i) => ({ token: users[i % s.users]!.accessToken, conversationId: groupOfUser(i % s.users).id }));

    const workers: ChildProcess[] = [];
    ctx.onCleanup(() => { for (const w of workers) stopWorker(w); });
    for (let i = 0; i < s.workers; i++) workers.push(forkWorker(WORKER, ctx.pin ? 1 : undefined));
    ctx.log(`connecting ${s.clients} clients from ${s.workers} generator(s)`);
    const t0 = now();
    await Promise.all(workers.map((w, i) => {
      const share = conns.filter((_, k) => k % s.workers === i);
      const ready = nextMessage<FromStormWorker>(w, 60_000 + share.length * 50);
      w.send({ type: 'init', url, conns: share, localAddress: `127.0.0.${2 + i}`, concurrency: 100 } satisfies ToStormWorker);
      return ready;
    }));
    const connectSeconds = (now() - t0) / 1000;

    const status = async (targets: Record<string, number>): Promise<StormStatus> => {
      const all = await Promise.all(workers.map((w) => {
        const answer = nextMessage<FromStormWorker>(w, 30_000);
        w.send({ type: 'status', targets } satisfies ToStormWorker);
        return answer;
      })) as StormStatus[];
      const closes: Record<string, number> = {};
      for (const a of all) for (const [c, n] of Object.entries(a.closes)) closes[c] = (closes[c] ?? 0) + n;
      return { type: 'status', open: sum(all.map((a) => a.open)), caughtUp: sum(all.map((a) => a.caughtUp)), duplicates: sum(all.map((a) => a.duplicates)), gaps: sum(all.map((a) => a.gaps)), reconnects: sum(all.map((a) => a.reconnects)), closes };
    };
    const commit = (round: string, n: number) => pool(groups.length, 16, async (g) => {
      for (let i = 0; i < n; i++) await post(url, `/v1/conversations/${groups[g]!.id}/messages`, { clientId: `${round}-${g}-${i}`, text: `${round} ${i}` }, users[g * s.groupSize]!.accessToken);
    });
    const waitFor = async (targets: Record<string, number>, what: string): Promise<{ ms: number; last: StormStatus }> => {
      const start = now();
      let logged = start;
      for (;;) {
        const st = await status(targets);
        if (now() - logged >= 2000) {
          logged = now();
          ctx.log(`  ${((now() - start) / 1000).toFixed(1)} s: ${st.open} open, ${st.caughtUp} caught up, ${st.reconnects} reconnect attempts`);
        }
        if (st.caughtUp === s.clients) return { ms: now() - start, last: st };
        if (now() - start > s.timeoutSeconds * 1000) throw new Error(`${what}: ${st.caughtUp}/${s.clients} caught up, ${st.open} open after ${s.timeoutSeconds} s`);
        await sleep(100);
      }
    };

    await commit('before', s.before);
    const beforeTargets = Object.fromEntries(groups.map((g) => [g.id, s.before]));
    await waitFor(beforeTargets, 'delivery before the kill');
    ctx.log(`${s.clients} clients hold ${s.before} messages per group; killing the node (SIGKILL)`);

    const killedAt = now();
    process.kill(node.pid, 'SIGKILL');
    await node.halt(1000);
    await node.resume();
    const upAt = now();
    const cpu0 = cpuSeconds(node.pid);
    ctx.log(`node back after ${((upAt - killedAt) / 1000).toFixed(1)} s (pid ${node.pid}); committing ${s.after} more per group during the storm`);
    let peakRss = rssMiB(node.pid);
    const rssTimer = setInterval(() => { try { peakRss = Math.max(peakRss, rssMiB(node.pid)); } catch { /* exited */ } }, 200);
    const finalTargets = Object.fromEntries(groups.map((g) => [g.id, s.before + s.after]));
    let resync: { ms: number; last: StormStatus };
    try {
      const [, r] = await Promise.all([commit('after', s.after), waitFor(finalTargets, 'resync after the restart')]);
      resync = r;
    } finally {
      clearInterval(rssTimer);
    }
    const stormCpuSeconds = cpuSeconds(node.pid) - cpu0;
    const m = await scrapeMetrics(url);
    const calls = m.byLabel('confab_store_calls_total', 'method');
    const fromKill = now() - killedAt;
    const storeCalls = sum(Object.values(calls));
    const hellos = m.get('confab_frames_in_total', 'type="hello"');
    const st = resync.last;

    const system = {
      name: 'confab',
      clients: s.clients,
      resyncSecondsFromRestart: Math.round((now() - upAt) / 100) / 10,
      resyncSecondsFromKill: Math.round(fromKill / 100) / 10,
      restartSeconds: Math.round((upAt - killedAt) / 100) / 10,
      lost: s.clients - st.caughtUp,
      duplicates: st.duplicates,
      gaps: st.gaps,
      reconnects: st.reconnects,
      closes: st.closes,
      hellos,
      storeCalls,
      storeCallsPerClient: Math.round((storeCalls / s.clients) * 100) / 100,
      storeCallsByMethod: calls,
      catchUpPages: m.get('confab_catchup_pages_total'),
      stormCpuSeconds: Math.round(stormCpuSeconds * 10) / 10,
      peakRssMiB: Math.round(peakRss),
    };
    const head = ['clients', 'restart s', 'resync s', 'from kill s', 'lost', 'dup', 'gaps', 'reconnects', 'hellos', 'store calls', 'per client', 'node cpu s', 'peak rss MiB'];
    const row = [s.clients, system.restartSeconds, system.resyncSecondsFromRestart, system.resyncSecondsFromKill, system.lost, system.duplicates, system.gaps, system.reconnects, hellos, storeCalls, system.storeCallsPerClient, system.stormCpuSeconds, system.peakRssMiB].map(String);
    const top = Object.entries(calls).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${v}`).join(', ');
    return {
      systems: [system],
      params: { ...s, connectSeconds: Math.round(connectSeconds * 10) / 10 },
      lines: [
        `confab: 1 node (SQLite), ${s.clients} clients as ${s.users} users' devices in groups of ${s.groupSize}; ${s.before} messages per group before the kill, ${s.after} committed during the storm`,
        ...formatTable(head, [row]),
        `close codes seen: ${Object.entries(st.closes).map(([c, n]) => `${c}: ${n}`).join(', ') || 'none'}`,
        `store calls during the storm (since the restart): ${top}`,
      ],
    };
  },
};
