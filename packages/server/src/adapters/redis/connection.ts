// Opens ioredis connections the way the cluster adapters need them: fail fast instead of
// queueing while Redis is away (the bus is best-effort, sessions are reconciled on
// reconnect), reconnect forever with capped, jittered backoff, and log state changes once
// rather than once per retry.
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_KEY_PREFIX = 'confab:';

export interface RedisConnectionOptions {
  url?: string;
  /** Prefix of every key and channel; tests use a unique one per run. Default `confab:`. */
  keyPrefix?: string;
  log?: Logger;
  /** How long the first connection may take before the adapter gives up. Default 5 s. */
  connectTimeoutMs?: number;
  /** A command without reply after this long is failed (a hung Redis must not stall fan-out). Default 2 s. */
  commandTimeoutMs?: number;
}

/** Reconnect delay: 50 ms doubling to 2 s, with up to 50 % jitter so nodes don't reconnect in step. */
export function retryDelay(times: number): number {
  const base = Math.min(2000, 50 * 2 ** Math.min(times, 6));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

/**
 * Opens a connection and waits until it is ready. Rejects (and gives up) if the first connection
 * fails; after that, ioredis reconnects by itself and commands issued while it is away fail at
 * once (`enableOfflineQueue: false`, `maxRetriesPerRequest: 0`) instead of piling up in memory.
 */
export async function openRedis(role: string, opts: RedisConnectionOptions, extra: RedisOptions = {}): Promise<Redis> {
  const url = opts.url ?? DEFAULT_REDIS_URL;
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: opts.connectTimeoutMs ?? 5000,
    commandTimeout: opts.commandTimeoutMs ?? 2000,
    retryStrategy: retryDelay,
    connectionName: `confab-${role}`,
    ...extra,
  });
  watch(redis, role, opts.log);
  let cause: Error | undefined;
  const firstError = (err: Error) => { cause ??= err; };
  redis.on('error', firstError);
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new Error(`cannot reach Redis at ${redactUrl(url)} (${role}): ${(cause ?? (err as Error)).message}`);
  } finally {
    redis.off('error', firstError);
  }
  return redis;
}

const closing = new WeakSet<Redis>();

/** Logs "lost" once when a ready connection drops and "back" once when it is ready again. */
function watch(redis: Redis, role: string, log: Logger | undefined): void {
  let wasReady = false;
  let down = false;
  // Without an 'error' listener, ioredis would emit unhandled errors on every failed retry.
  redis.on('error', (err: Error) => {
    if (!down) log?.debug({ err, role }, 'redis error');
  });
  redis.on('ready', () => {
    if (down) log?.info({ role }, 'redis connection restored');
    wasReady = true;
    down = false;
  });
  redis.on('close', () => {
    if (wasReady && !down && !closing.has(redis)) {
      down = true;
      log?.warn({ role }, 'redis connection lost; reconnecting');
    }
  });
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}

/** Closes a connection politely (pending replies first), or drops it if Redis is away. */
export async function closeRedis(redis: Redis): Promise<void> {
  if (redis.status === 'end') return;
  closing.add(redis);
  if (redis.status !== 'ready') {
    redis.disconnect();
    return;
  }
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}
