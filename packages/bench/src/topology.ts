// The system under test for the scenarios that compare deployments: one node on SQLite (today's
// default), one node on PostgreSQL, or three nodes on PostgreSQL + Redis (a cluster). PostgreSQL
// gets a fresh database per run (createdb, dropped at the end even on failure); the cluster gets
// its own Redis key prefix (its keys deleted at the end with SCAN + DEL) and one random token
// secret shared by its nodes. Every node is pinned to the same core when pinning is on: the three
// nodes of the cluster share it, so this measures the cost of the cluster path, not scale-out.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { startConfab, type ConfabProcess } from './node.js';

export const TOPOLOGIES = ['sqlite', 'postgres', 'cluster3'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

/** The name of each topology in the JSON line's `systems`. */
export const SYSTEM_NAMES: Record<Topology, string> = { sqlite: 'confab-sqlite', postgres: 'confab-postgres', cluster3: 'confab-3nodes' };

export interface Deployment {
  topology: Topology;
  /** The nodes; connections go round-robin over them, setup goes through the first. */
  nodes: ConfabProcess[];
  /** One line on what runs where, for the output. */
  description: string;
}

const PG_HOST = process.env.PGHOST ?? '127.0.0.1';
const PG_PORT = process.env.PGPORT ?? '5432';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Runs a command (no shell) with a deadline; throws with its output unless it exits 0. */
function run(cmd: string, args: string[], timeoutMs: number): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  return r.stdout;
}

/** Deletes every Redis key under `prefix` (SCAN + DEL, 500 at a time); returns how many. */
function deleteRedisKeys(prefix: string): number {
  const keys = run('redis-cli', ['-u', REDIS_URL, '--scan', '--pattern', `${prefix}*`], 15_000).split('\n').filter(Boolean);
  for (let i = 0; i < keys.length; i += 500) run('redis-cli', ['-u', REDIS_URL, 'del', ...keys.slice(i, i + 500)], 15_000);
  return keys.length;
}

/** A fresh PostgreSQL database for one run (dropped by the clean-up step given to `onCleanup`); its URL. */
export function tempDatabase(tag: string, log: (m: string) => void, onCleanup: (fn: () => unknown) => void): string {
  const db = `confab_bench_${tag}_${process.pid}_${Date.now().toString(36)}`;
  run('createdb', ['-h', PG_HOST, '-p', PG_PORT, db], 15_000);
  onCleanup(() => {
    run('dropdb', ['-h', PG_HOST, '-p', PG_PORT, '--if-exists', '--force', db], 15_000);
    log(`dropped database ${db}`);
  });
  log(`created database ${db}`);
  return `postgres://${PG_HOST}:${PG_PORT}/${db}`;
}

/**
 * Starts `topology` with the node arguments `args` (and Node's `nodeFlags`), every node pinned to `core` when given. Each
 * clean-up step (nodes, Redis keys, database, in that order when run in reverse) goes to
 * `onCleanup` as soon as there is something to clean up.
 */
export async function deploy(topology: Topology, args: string[], core: number | undefined, nodeFlags: string[], log: (m: string) => void, onCleanup: (fn: () => unknown) => void): Promise<Deployment> {
  if (topology === 'sqlite') {
    const node = await startConfab(args, core, { nodeFlags });
    onCleanup(() => node.stop());
    return { topology, nodes: [node], description: `1 node (pid ${node.pid}), SQLite in a temp dir, in-memory bus` };
  }

  const tag = `${process.pid}_${Date.now().toString(36)}`;
  const db = `confab_bench_${tag}`;
  run('createdb', ['-h', PG_HOST, '-p', PG_PORT, db], 15_000);
  onCleanup(() => {
    run('dropdb', ['-h', PG_HOST, '-p', PG_PORT, '--if-exists', '--force', db], 15_000);
    log(`dropped database ${db}`);
  });
  const env: Record<string, string> = { STORE: 'postgres', DATABASE_URL: `postgres://${PG_HOST}:${PG_PORT}/${db}` };
  log(`created database ${db}`);

  if (topology === 'postgres') {
    const node = await startConfab(args, core, { env, readyPath: '/readyz', nodeFlags });
    onCleanup(() => node.stop());
    return { topology, nodes: [node], description: `1 node (pid ${node.pid}), PostgreSQL database ${db}, in-memory bus` };
  }

  const prefix = `confab-bench-${tag}:`;
  run('redis-cli', ['-u', REDIS_URL, 'ping'], 5000);
  onCleanup(() => log(`deleted ${deleteRedisKeys(prefix)} Redis keys under ${prefix}`));
  Object.assign(env, { BUS: 'redis', REDIS_URL, REDIS_KEY_PREFIX: prefix, JWT_SECRET: randomBytes(48).toString('base64') });
  const nodes: ConfabProcess[] = [];
  for (let i = 1; i <= 3; i++) {
    // One at a time: the first creates the tables; each registers its clean-up once it is up.
    const node = await startConfab([...args, '--node-id', `bench-node${i}`], core, { env, readyPath: '/readyz', nodeFlags });
    onCleanup(() => node.stop());
    nodes.push(node);
  }
  return {
    topology, nodes,
    description: `3 nodes (pids ${nodes.map((n) => n.pid).join(', ')}), PostgreSQL database ${db}, Redis bus ${REDIS_URL} prefix ${prefix}`,
  };
}
