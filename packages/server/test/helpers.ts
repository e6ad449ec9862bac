// Test kit: real nodes on port 0 with a fresh SQLite file each, and small HTTP helpers.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Limits, Session } from '@confab/protocol';
import { build, loadConfig, type ConfabNode, type Config } from '../src/index.js';

export interface TestNode {
  url: string;
  node: ConfabNode;
  dataDir: string;
  close(): Promise<void>;
}

/** Directories made by tempDir in this test process: removed when it exits. */
const tempDirs: string[] = [];

/** A fresh directory under the system's temp dir, removed when the test process exits. */
export function tempDir(prefix = 'confab-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (tempDirs.length === 0) process.once('exit', () => { for (const d of tempDirs) rmSync(d, { recursive: true, force: true }); });
  tempDirs.push(dir);
  return dir;
}

/**
 * The node options of setup that no real client does: the tests register dozens of accounts from
 * one address (127.0.0.1) in seconds, which the per-address and per-node password budgets are
 * there to refuse. Every other limit keeps its default; the tests of these budgets
 * (hostile-*.test.ts) start their nodes with `defaults: true`.
 */
export const SETUP_ARGS = ['--registrations-per-address', '0', '--password-checks-per-address', '0', '--password-checks-per-second', '0'];

/**
 * Starts a node in this process on a free port with a fresh data directory; `config` overrides
 * options (STORE=postgres, say); `defaults` keeps the password budgets too (see SETUP_ARGS).
 */
export async function startNode(opts: { dataDir?: string; limits?: Partial<Limits>; config?: Partial<Omit<Config, 'limits'>>; env?: NodeJS.ProcessEnv; defaults?: boolean } = {}): Promise<TestNode> {
  const dataDir = opts.dataDir ?? tempDir();
  const base = loadConfig(['--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', process.env.TEST_LOG_LEVEL ?? 'silent', ...(opts.defaults ? [] : SETUP_ARGS)], opts.env ?? {});
  const config = { ...base, ...opts.config, limits: { ...base.limits, ...opts.limits } };
  const node = await build(config);
  const url = await node.listen();
  return {
    url, node, dataDir,
    async close() {
      await node.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

const CLI = fileURLToPath(new URL('../../cli/bin/confab.js', import.meta.url));

export interface ChildNode {
  url: string;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
}

/** Starts `confab serve` as a child process (for kill -9 tests); resolves once it listens. */
export function spawnNode(dataDir: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<ChildNode> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir, ...SETUP_ARGS, ...extraArgs], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    let stderr = '';
    // It never says it listens (a log level above info hides the line, say): kill it and fail.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node did not report listening within ${timeoutMs} ms (LOG_LEVEL must be info or lower): ${stderr}`));
    }, timeoutMs);
    void exited.then(() => clearTimeout(timer));
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    lines.on('line', (line) => {
      try {
        const rec = JSON.parse(line) as { msg?: string; url?: string };
        if (rec.msg === 'confab node listening' && rec.url) {
          clearTimeout(timer);
          resolve({ url: rec.url, child, exited });
        }
      } catch { /* not a log line */ }
    });
    void exited.then((code) => reject(new Error(`node exited (${code}) before listening: ${stderr}`)));
  });
}

/** JSON request helper: returns status and parsed body; rejects after `timeoutMs` rather than waiting forever. */
export async function http(url: string, method: string, path: string, body?: unknown, token?: string, timeoutMs = 30_000): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url + path, { method, headers, signal: AbortSignal.timeout(timeoutMs), body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

let counter = 0;
/** A unique, valid username for this test run. */
export function uname(prefix = 'u'): string {
  return `${prefix}${process.pid.toString(36)}${(counter++).toString(36)}`.toLowerCase();
}

export async function register(url: string, username = uname(), password = 'correct horse'): Promise<Session> {
  const r = await http(url, 'POST', '/v1/auth/register', { username, password });
  if (r.status !== 201) throw new Error(`register failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as Session;
}

/** Samples of one metric from the text format, as `labels -> value` (labels without `node`). */
export async function scrape(url: string): Promise<(name: string, labels?: Record<string, string>) => number | undefined> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = (m[2] ?? '').split(',').filter((l) => l && !l.startsWith('node=')).sort().join(',');
    samples.set(`${m[1]}{${labels}}`, Number(m[3]));
  }
  return (name, labels = {}) => samples.get(`${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',')}}`);
}
