// Test kit for the Redis adapters: where Redis is (REDIS_URL), whether the suites run or skip
// (skip locally when Redis is unreachable; fail when CI=true), a unique key prefix per run
// with cleanup, and a private redis-server that tests may stop and restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { Redis } from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Answers the first PING within 2 s, or says why not. */
export async function probe(url: string): Promise<string | undefined> {
  const r = new Redis(url, { lazyConnect: true, retryStrategy: () => null, connectTimeout: 2000, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  let cause: string | undefined;
  r.on('error', (err: Error) => { cause ??= err.message; });
  try {
    await r.connect();
    await r.ping();
    return undefined;
  } catch (err) {
    return cause ?? (err as Error).message;
  } finally {
    r.disconnect();
  }
}

/**
 * True when Redis answers. Otherwise registers, in place of the suite, a skipped test with the
 * reason (locally) or a failing one (CI=true: the Redis suites are required there), and returns
 * false. Use as `if (await redisAvailable('name')) { ...suites... }`.
 */
export async function redisAvailable(name: string): Promise<boolean> {
  const why = await probe(REDIS_URL);
  if (why === undefined) return true;
  const reason = `Redis unreachable at ${REDIS_URL} (${why})`;
  if (process.env.CI === 'true') test(`${name}: Redis is required when CI=true`, () => { throw new Error(`${reason}; .ci/run should have started it`); });
  else test(name, { skip: `${reason}; set REDIS_URL or start redis-server to run it` }, () => undefined);
  return false;
}

/** A key prefix no other run uses. */
export function testPrefix(tag = 't'): string {
  return `confab-test:${tag}:${process.pid}:${Math.random().toString(36).slice(2, 10)}:`;
}

/** Deletes every key under `prefix`. */
export async function dropPrefix(prefix: string, url = REDIS_URL): Promise<number> {
  const r = new Redis(url, { lazyConnect: true, retryStrategy: () => null });
  r.on('error', () => {});
  await r.connect();
  let n = 0;
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) n += await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    await r.quit();
  }
  return n;
}

/** Resolves when `check` returns true; rejects after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A redis-server of our own on a free port (no persistence), to stop and restart at will. */
export class PrivateRedis {
  #child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Undefined when redis-server is not installed (callers skip, or fail in CI). */
  static async start(): Promise<PrivateRedis | undefined> {
    const r = new PrivateRedis(await freePort());
    return (await r.start()) ? r : undefined;
  }

  async start(): Promise<boolean> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const failed = new Promise<boolean>((resolve) => child.once('error', () => resolve(false)));
    this.#child = child;
    const up = (async () => {
      const end = Date.now() + 5000;
      while (Date.now() < end) {
        if ((await probe(this.url)) === undefined) return true;
        await sleep(20);
      }
      return false;
    })();
    return Promise.race([failed, up]);
  }

  /** SIGKILL: every connection drops, every key is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
}
