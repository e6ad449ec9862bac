// The store contract against the embedded SQLite adapter (a real file, WAL).
import { join } from 'node:path';
import { SqliteStore } from '../src/adapters/sqlite/sqlite-store.js';
import { tempDir } from './helpers.js';
import { storeContract } from './store-contract.js';

storeContract('sqlite', () => Promise.resolve(new SqliteStore({ path: join(tempDir(), 'confab.db') })));
