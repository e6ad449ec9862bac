// The generator of the hostile scenario's `unauth-flood`, in a process of its own (forked by
// scenarios/hostile.ts, pinned to the generators' core): WebSocket upgrades without a token from
// one local address, as fast as the node answers them, for a bounded time and count. It never
// sends `hello` and never answers a close; it keeps at most `maxOpen` sockets, resetting the
// oldest to make room (a reset leaves no TIME_WAIT on this side, so the address's ephemeral ports
// last). It counts what the node answered: upgrade statuses, and the close codes it sent.
import { rawUpgrade, type RawWs } from './raw.js';

export interface FloodPlan {
  port: number;
  localAddress: string;
  seconds: number;
  maxTotal: number;
  maxOpen: number;
  /** Upgrades in flight at once. */
  concurrency: number;
}

export interface FloodResult {
  attempted: number;
  upgraded: number;
  /** Answers other than 101, by status. */
  statuses: Record<string, number>;
  /** Connections that failed, by error code. */
  errors: Record<string, number>;
  /** Close frames the node sent on upgraded sockets, by code (`none`: closed or reset by us before one came). */
  closeCodes: Record<string, number>;
  peakOpen: number;
  /** Sockets this side reset to stay under maxOpen. */
  evicted: number;
  ms: number;
}

export type ToHostileWorker = ({ type: 'flood' } & FloodPlan) | { type: 'stop' };
export type FromHostileWorker = ({ type: 'flooded' } & FloodResult) | { type: 'fatal'; message: string };

const open = new Set<RawWs>();
const tally = (m: Record<string, number>, k: string) => { m[k] = (m[k] ?? 0) + 1; };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function flood(p: FloodPlan): Promise<FloodResult> {
  const r: FloodResult = { attempted: 0, upgraded: 0, statuses: {}, errors: {}, closeCodes: {}, peakOpen: 0, evicted: 0, ms: 0 };
  const counted = new WeakSet<RawWs>();
  const count = (ws: RawWs) => {
    if (counted.has(ws)) return;
    counted.add(ws);
    tally(r.closeCodes, ws.closeFrame ? String(ws.closeFrame.code) : 'none');
  };
  const t0 = performance.now();
  const deadline = t0 + p.seconds * 1000;
  const lane = async () => {
    while (performance.now() < deadline && r.attempted < p.maxTotal) {
      r.attempted++;
      try {
        const u = await rawUpgrade({ port: p.port, localAddress: p.localAddress, timeoutMs: 5000 });
        if (!u.ws) {
          tally(r.statuses, String(u.status));
          continue;
        }
        const ws = u.ws;
        r.upgraded++;
        open.add(ws);
        ws.socket.once('close', () => { open.delete(ws); count(ws); });
        r.peakOpen = Math.max(r.peakOpen, open.size);
        while (open.size > p.maxOpen) {
          const oldest = open.values().next().value as RawWs;
          open.delete(oldest);
          count(oldest);
          oldest.destroy(true);
          r.evicted++;
        }
      } catch (err) {
        tally(r.errors, (err as NodeJS.ErrnoException).code ?? (err as Error).message.slice(0, 40));
        await sleep(10); // out of ports or refused: do not spin
      }
    }
  };
  await Promise.all(Array.from({ length: p.concurrency }, lane));
  r.ms = performance.now() - t0;
  for (const ws of open) { count(ws); ws.destroy(true); }
  open.clear();
  return r;
}

process.on('message', (m: ToHostileWorker) => {
  if (m.type === 'stop') {
    for (const ws of open) ws.destroy(true);
    process.exit(0);
  }
  flood(m).then(
    (r) => process.send?.({ type: 'flooded', ...r } satisfies FromHostileWorker),
    (err: unknown) => process.send?.({ type: 'fatal', message: (err as Error).message } satisfies FromHostileWorker),
  );
});
process.on('disconnect', () => process.exit(0)); // the coordinator is gone: so are we
