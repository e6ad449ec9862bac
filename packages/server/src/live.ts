// Picks the live-traffic adapters (bus and session registry) from the config: in-process for
// one node, Redis for a cluster. Kept out of app.ts so the wiring there stays one line.
import type { Logger } from 'pino';
import { MemoryBus } from './adapters/memory/memory-bus.js';
import { MemorySessions } from './adapters/memory/memory-sessions.js';
import { RedisBus } from './adapters/redis/redis-bus.js';
import { RedisSessions } from './adapters/redis/redis-sessions.js';
import type { Config } from './config.js';
import type { Bus } from './ports/bus.js';
import type { SessionRegistry } from './ports/sessions.js';

export interface LiveAdapters {
  bus: Bus;
  sessions: SessionRegistry;
}

/**
 * `BUS=memory`: MemoryBus and MemorySessions. `BUS=redis`: RedisBus and RedisSessions on
 * `REDIS_URL` under `REDIS_KEY_PREFIX`; rejects (and leaves nothing open) if Redis cannot be
 * reached at start. Adapters given in `given` are used as they are.
 */
export async function liveAdapters(config: Config, log: Logger, given: Partial<LiveAdapters> = {}): Promise<LiveAdapters> {
  if (config.bus === 'memory') return { bus: given.bus ?? new MemoryBus(), sessions: given.sessions ?? new MemorySessions() };
  const opts = { url: config.redisUrl, keyPrefix: config.redisKeyPrefix, log };
  const bus = given.bus ?? await RedisBus.connect(opts);
  try {
    const sessions = given.sessions ?? await RedisSessions.connect({ ...opts, nodeId: config.nodeId });
    return { bus, sessions };
  } catch (err) {
    if (!given.bus) await bus.close();
    throw err;
  }
}
