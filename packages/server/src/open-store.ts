// Picks the store from the config: SQLite in DATA_DIR for one node, PostgreSQL for a cluster.
// Kept out of app.ts so the wiring there stays one line.
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { PostgresStore } from './adapters/postgres/postgres-store.js';
import { SqliteStore, type SqliteStoreOptions } from './adapters/sqlite/sqlite-store.js';
import type { Config } from './config.js';
import { privateDir, privateFile } from './data-dir.js';
import type { Store } from './ports/store.js';

/**
 * `STORE=sqlite`: `DATA_DIR/confab.db`, the directory 0700 and its files 0600 (data-dir.ts). `STORE=postgres`: a pool of `DATABASE_POOL_SIZE` on
 * `DATABASE_URL`, migrated before it resolves; rejects (StoreUnavailableError) if PostgreSQL
 * cannot be reached at start.
 */
export async function openStore(config: Config, log: Logger, onCheckpoint?: SqliteStoreOptions['onCheckpoint']): Promise<Store> {
  if (config.store === 'sqlite') {
    return new SqliteStore({
      path: privateFile(join(privateDir(resolve(config.dataDir), log), 'confab.db')),
      onCheckpoint,
      onCheckpointError: (err, inline) => {
        if (inline) log.error({ err }, 'the SQLite checkpoint thread failed; checkpoints now run inside commits');
        else log.warn({ err }, 'a SQLite checkpoint pass failed');
      },
    });
  }
  return PostgresStore.open({
    url: config.databaseUrl,
    poolSize: config.databasePoolSize,
    onIdleError: (err) => log.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'idle PostgreSQL connection lost'),
  });
}
