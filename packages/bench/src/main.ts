// `npm run bench -- <scenario> [options]`: picks the scenario, decides on CPU pinning, enforces a
// hard timeout, always stops what it started (node, workers, temp dir) and prints the results: a
// table on stdout, and with --json one JSON object as the last line. Progress goes to stderr.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { writeFileSync } from 'node:fs';
import { chartSvg, type ChartSeries } from './chart.js';
import { canPin } from './node.js';
import { machine } from './report.js';
import { channel, groups } from './scenarios/groups.js';
import { presence } from './scenarios/presence.js';
import { hostile } from './scenarios/hostile.js';
import { idle } from './scenarios/idle.js';
import { soak } from './scenarios/soak.js';
import { storm } from './scenarios/storm.js';
import { store } from './scenarios/store.js';
import { sync } from './scenarios/sync.js';

export type Opts = Record<string, string | boolean | undefined>;

/** The integer option `--key` in [min, max]; `fallback` when it was not given (if there is one). */
export function intOption(o: Opts, key: string, min: number, max: number, fallback?: number): number {
  if (o[key] === undefined && fallback !== undefined) return fallback;
  const v = Number(o[key]);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`--${key} must be an integer from ${min} to ${max}, got "${String(o[key])}"`);
  return v;
}

export interface Context {
  /** Pin the node to CPU 0 and the generators to CPU 1. */
  pin: boolean;
  /** Extra Node flags of every Confab node process (e.g. --cpu-prof). */
  nodeFlags: string[];
  log(message: string): void;
  /** Registers a clean-up step; they run in reverse order at the end, on timeout and on Ctrl-C. */
  onCleanup(fn: () => unknown): void;
}

export interface Scenario {
  name: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** The hard timeout for these options, seconds (unless --timeout is given). */
  budgetSeconds(o: Opts): number;
  run(o: Opts, ctx: Context): Promise<ScenarioResult>;
}

export interface ScenarioResult {
  /** One entry per system measured (the JSON line's `systems`). */
  systems: object[];
  params: Record<string, unknown>;
  /** The human-readable tables. */
  lines: string[];
  /** More top-level fields of the JSON line (e.g. a comparison of the systems). */
  extra?: Record<string, unknown>;
}

const SCENARIOS: Record<string, Scenario> = { groups, channel, presence, sync, idle, storm, soak, store, hostile };

const COMMON = {
  json: { type: 'boolean', default: false },
  'no-pin': { type: 'boolean', default: false },
  timeout: { type: 'string' },
  'cpu-prof': { type: 'string' },
  'node-flags': { type: 'string' },
  chart: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `Usage: npm run bench -- <scenario> [options]

Common options:
  --json          also print one JSON object as the last line
  --no-pin        do not pin the node (CPU 0) and the generators (CPU 1) with taskset
  --timeout S     hard limit on the whole run, seconds (default: from the scenario's options)
  --chart F.svg   draw p99 latency against offered load for every system (stepped scenarios)
  --cpu-prof DIR  write a V8 CPU profile of every Confab node into DIR when it stops
                  (open the .cpuprofile files in Chrome DevTools or speedscope)
  --node-flags F  more Node flags for every Confab node, separated by spaces
                  (e.g. --node-flags=--max-semi-space-size=64); not for the generators

Scenarios:
${Object.values(SCENARIOS).map((s) => s.usage).join('\n\n')}`;

const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

/** Writes the chart of the systems that have stepped results; says what it did. */
function writeChart(file: string, scenario: string, systems: object[]): string {
  const series: ChartSeries[] = [];
  for (const s of systems as { name?: string; steps?: { offered: number; p99Ms: number | null }[] }[]) {
    if (s.name && Array.isArray(s.steps)) series.push({ name: s.name, points: s.steps.map((p) => ({ offered: p.offered, p99Ms: p.p99Ms })) });
  }
  if (series.length === 0) return `chart: not written, scenario ${scenario} has no stepped load`;
  writeFileSync(file, chartSvg(`${scenario}: p99 delivery latency against offered load`, series));
  return `chart: ${file}`;
}
let aborted: number | undefined; // the exit code once a timeout or signal has started the clean-up

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const scenario = name === undefined ? undefined : SCENARIOS[name];
  if (!scenario) {
    process.stdout.write(USAGE + '\n');
    return name === undefined || name === '--help' || name === '-h' ? 0 : 2;
  }
  let o: Opts;
  let budget: number;
  try {
    o = parseArgs({ args: rest, options: { ...COMMON, ...scenario.options }, strict: true, allowPositionals: false }).values;
    budget = o.timeout === undefined ? scenario.budgetSeconds(o) : Number(o.timeout);
    if (!(budget > 0)) throw new Error('--timeout must be a positive number of seconds');
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }

  const pin = !o['no-pin'] && canPin();
  const pinning = pin ? 'node on CPU 0, generators on CPU 1 (taskset)' : o['no-pin'] ? 'none (--no-pin)' : 'none (taskset or a second CPU is missing)';
  const cleanups: (() => unknown)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try { await fn(); } catch (err) { log(`clean-up failed: ${(err as Error).message}`); }
    }
  })());
  const abort = (why: string, code: number) => {
    aborted = code;
    log(why);
    void cleanup().finally(() => process.exit(code));
  };
  const timer = setTimeout(() => abort(`hard timeout after ${budget} s: stopping`, 124), budget * 1000);
  process.once('SIGINT', () => abort('interrupted', 130));
  process.once('SIGTERM', () => abort('terminated', 143));

  const started = Date.now();
  log(`${scenario.name}: pinning ${pinning}; hard timeout ${Math.round(budget)} s`);
  try {
    const nodeFlags = typeof o['cpu-prof'] === 'string' ? ['--cpu-prof', `--cpu-prof-dir=${o['cpu-prof']}`] : [];
    if (typeof o['node-flags'] === 'string') nodeFlags.push(...o['node-flags'].split(' ').filter((f) => f !== ''));
    const result = await scenario.run(o, { pin, nodeFlags, log, onCleanup: (fn) => cleanups.push(fn) });
    await cleanup();
    const info = machine(pin, pinning);
    const lines = [
      `scenario ${scenario.name}: ${JSON.stringify(result.params)}`,
      `machine: ${info.cpus as number} x ${info.model as string}, node ${process.version}, pinning: ${pinning}`,
      ...result.lines,
      `run took ${((Date.now() - started) / 1000).toFixed(1)} s`,
    ];
    if (typeof o.chart === 'string') lines.push(writeChart(o.chart, scenario.name, result.systems));
    process.stdout.write(lines.join('\n') + '\n');
    if (o.json) process.stdout.write(JSON.stringify({ scenario: scenario.name, params: result.params, systems: result.systems, ...result.extra, machine: info }) + '\n');
    return 0;
  } catch (err) {
    if (aborted === undefined) log(`failed: ${(err as Error).stack ?? String(err)}`);
    await cleanup();
    return 1;
  } finally {
    clearTimeout(timer);
  }
}

main(process.argv.slice(2)).then((code) => process.exit(aborted ?? code), (err: unknown) => {
  log(String(err));
  process.exit(aborted ?? 1);
});
