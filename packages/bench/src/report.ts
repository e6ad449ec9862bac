// What a benchmark reports, shared by every scenario: the per-step result, the headline figures
// (the highest load sustained: p99 delivery latency under 100 ms with nothing lost), the table on
// stdout and the machine description of the JSON line.
import { cpus } from 'node:os';

export const SUSTAINED_P99_MS = 100;

export interface StepResult {
  offered: number; // msg/s the generators were asked to send
  sentPerSec: number; // msg/s they did send (measured window)
  committedPerSec: number; // acks received per second (measured window)
  deliveriesPerSec: number; // message frames received per second, all recipients (measured window)
  p50Ms: number | null; // end-to-end: sender's send → recipient's receive, messages sent in the window
  p99Ms: number | null;
  p999Ms: number | null;
  ackP50Ms: number | null; // send → ack
  ackP99Ms: number | null;
  sent: number; // messages sent in the measured window ...
  acked: number; // ... of which acked by the end of the drain
  unacked: number; // ... not acked by then (refused, or still pending)
  expectedDeliveries: number; // acked × members of each message's group
  delivered: number; // deliveries of those messages received by the end of the drain
  lost: number; // expectedDeliveries − delivered
  late: number; // deliveries of an earlier step's messages that arrived during this step
  skipped: number; // sends not made because the connection had 1 MiB unsent
  errors: Record<string, number>; // error frames (and unexpected closes) by code
  serverCpuPct: number; // of one core; the node is single-threaded apart from SQLite/argon2 helpers
  serverRssMiB: number;
  generatorCpuPct: number[]; // per worker process, of one core
  generatorStallMs: number; // longest gap between the generators' 5 ms send ticks (event-loop lag)
  otherCpuPct: number; // everything else on the machine (other processes, hypervisor steal): the noise
  stealPct: number; // of that, the hypervisor's steal alone (all cores together, % of one core)
  generatorBound: boolean; // a worker was over 90 %: the numbers measure the generator too
  sustained: boolean;
}

export interface SystemReport {
  name: string;
  steps: StepResult[];
  maxSustainedMsgsPerSec: number | null;
  maxDeliveriesPerSec: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  lost: number;
}

export function isSustained(s: Pick<StepResult, 'p99Ms' | 'lost' | 'unacked' | 'errors'>): boolean {
  return s.p99Ms !== null && s.p99Ms < SUSTAINED_P99_MS && s.lost === 0 && s.unacked === 0 && Object.keys(s.errors).length === 0;
}

/** Headline: the sustained step with the most commits per second (latencies are that step's). */
export function summarize(name: string, steps: StepResult[]): SystemReport {
  let best: StepResult | undefined;
  for (const s of steps) if (s.sustained && (!best || s.committedPerSec > best.committedPerSec)) best = s;
  const sustained = steps.filter((s) => s.sustained);
  return {
    name, steps,
    maxSustainedMsgsPerSec: best ? best.committedPerSec : null,
    maxDeliveriesPerSec: sustained.length ? Math.max(...sustained.map((s) => s.deliveriesPerSec)) : null,
    p50Ms: best?.p50Ms ?? null,
    p99Ms: best?.p99Ms ?? null,
    lost: steps.reduce((n, s) => n + s.lost, 0),
  };
}

export function machine(pinned: boolean, pinning: string): Record<string, unknown> {
  const list = cpus();
  return { cpus: list.length, model: list[0]?.model ?? 'unknown', node: process.version, pinned, pinning };
}

const ms = (v: number | null) => (v === null ? '-' : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0));
const num = (v: number) => Math.round(v).toString();

/** A fixed-width table: one row per step. */
export function table(r: SystemReport): string {
  const head = ['offered', 'sent/s', 'commit/s', 'deliv/s', 'p50', 'p99', 'p99.9', 'ack p50', 'ack p99', 'lost', 'unacked', 'late', 'errors', 'srv cpu%', 'rss MiB', 'gen cpu%', 'other cpu%', 'note'];
  const rows = r.steps.map((s) => [
    num(s.offered), num(s.sentPerSec), num(s.committedPerSec), num(s.deliveriesPerSec),
    ms(s.p50Ms), ms(s.p99Ms), ms(s.p999Ms), ms(s.ackP50Ms), ms(s.ackP99Ms),
    num(s.lost), num(s.unacked), num(s.late),
    Object.entries(s.errors).map(([k, v]) => `${k}:${v}`).join(',') || '0',
    num(s.serverCpuPct), s.serverRssMiB.toFixed(0), s.generatorCpuPct.map(num).join('/'), num(s.otherCpuPct),
    [
      s.sustained ? 'sustained' : '',
      s.generatorBound ? 'generator-bound' : '',
      s.sentPerSec < 0.95 * s.offered ? 'under-sent' : '',
      s.generatorStallMs > 100 ? `gen-stall:${num(s.generatorStallMs)}ms` : '',
    ].filter(Boolean).join(' '),
  ]);
  const best = r.maxSustainedMsgsPerSec === null
    ? `no step was sustained (p99 < ${SUSTAINED_P99_MS} ms, nothing lost, no error)`
    : `max sustained: ${num(r.maxSustainedMsgsPerSec)} msg/s committed, ${num(r.maxDeliveriesPerSec ?? 0)} deliveries/s, p50 ${ms(r.p50Ms)} ms, p99 ${ms(r.p99Ms)} ms`;
  return [`${r.name}: latencies in ms`, ...formatTable(head, rows), best].join('\n');
}

/** The lower median (of an even count, the lower of the two middle values); NaN when empty. */
export const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)] ?? NaN; };

/** Fixed-width columns, right-aligned but for the last one; the head is the first line. */
export function formatTable(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const fmt = (row: string[]) => row.map((c, i) => (i === row.length - 1 ? c : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}
