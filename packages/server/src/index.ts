// @confab/server: build or run a Confab node.
export { build, type ConfabNode, type Deps } from './app.js';
export { runNode } from './main.js';
export { loadConfig, OPTIONS, LIMIT_OPTIONS, ConfigError, type Config } from './config.js';
export { SqliteStore } from './adapters/sqlite/sqlite-store.js';
export { PostgresStore, type PostgresStoreOptions } from './adapters/postgres/postgres-store.js';
export { MemoryBus } from './adapters/memory/memory-bus.js';
export { MemorySessions } from './adapters/memory/memory-sessions.js';
export { RedisBus, type RedisBusOptions } from './adapters/redis/redis-bus.js';
export { RedisSessions, type RedisSessionsOptions } from './adapters/redis/redis-sessions.js';
export type { Store, UserStore, ConversationStore, MessageStore, AppendRequest, AppendResult } from './ports/store.js';
export type { Bus, Envelope } from './ports/bus.js';
export type { SessionRegistry } from './ports/sessions.js';
export { MIGRATIONS } from './adapters/sqlite/migrations.js';
export { newConversationId, newMessageId, newUserId } from './ids.js';
