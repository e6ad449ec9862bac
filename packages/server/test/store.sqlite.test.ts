// The store contract against the embedded SQLite adapter (a real file, WAL): one connection,
// and as a node runs it, with its writes on a thread of their own.
import { join } from 'node:path';
import { SqliteStore } from '../src/adapters/sqlite/sqlite-store.js';
import { sqliteWithWriterThread } from '../src/adapters/sqlite/writer-thread.js';
import { tempDir } from './helpers.js';
import { storeContract } from './store-contract.js';

storeContract('sqlite', () => Promise.resolve(new SqliteStore({ path: join(tempDir(), 'confab.db') })));
storeContract('sqlite, writer thread', () => Promise.resolve(sqliteWithWriterThread(join(tempDir(), 'confab.db'))));
