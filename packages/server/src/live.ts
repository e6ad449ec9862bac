// Picks the live-traffic adapters (bus and session registry) from the config: in-process for
// one node, Redis for a cluster. Kept out of app.ts so the wiring there stays one line.
import type { Logger } from 'pino';
import { MemoryBus } from './adapters/memory/memory-bus.js';
import { MemoryPresenceDirectory } from './adapters/memory/memory-presence.js';
import { MemorySessions } from './adapters/memory/memory-sessions.js';
import { RedisBus } from './adapters/redis/redis-bus.js';
import { RedisPresenceDirectory } from './adapters/redis/redis-presence.js';
import { RedisSessions } from './adapters/redis/redis-sessions.js';
import type { Config } from './config.js';
import type { Bus } from './ports/bus.js';
import type { PresenceDirectory } from './ports/presence.js';
import type { SessionRegistry } from './ports/sessions.js';

export interface LiveAdapters {
  bus: Bus;
  sessions: SessionRegistry;
  presence: PresenceDirectory;
}

/**
 * `BUS=memory`: MemoryBus, MemorySessions and MemoryPresenceDirectory. `BUS=redis`: RedisBus,
 * RedisSessions (liveness TTL `NODE_TTL_MS`) and RedisPresenceDirectory on
 * `REDIS_URL` under `REDIS_KEY_PREFIX`; rejects (and leaves nothing open) if Redis cannot be
 * reached at start. Adapters given in `given` are used as they are.
 */
export async function liveAdapters(config: Config, log: Logger, given: Partial<LiveAdapters> = {}): Promise<LiveAdapters> {
  if (config.bus === 'memory') {
    return { bus: given.bus ?? new MemoryBus(), sessions: given.sessions ?? new MemorySessions(), presence: given.presence ?? new MemoryPresenceDirectory() };
  }
  const opts = { url: config.redisUrl, keyPrefix: config.redisKeyPrefix, log, nodeId: config.nodeId, ttlMs: config.nodeTtlMs };
  const bus = given.bus ?? await RedisBus.connect(opts);
  let sessions: SessionRegistry | undefined;
  try {
    sessions = given.sessions ?? await RedisSessions.connect(opts);
    const presence = given.presence ?? await RedisPresenceDirectory.connect(opts);
    return { bus, sessions, presence };
  } catch (err) {
    if (sessions && !given.sessions) await sessions.close();
    if (!given.bus) await bus.close();
    throw err;
  }
}
