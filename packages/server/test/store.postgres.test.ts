// The store contract against the PostgreSQL adapter, on a fresh schema of DATABASE_URL
// (default postgres://127.0.0.1:5432/test). Skipped when PostgreSQL is down; required in CI.
import { postgresSuite } from './pg.js';
import { storeContract } from './store-contract.js';

await postgresSuite('postgres store', (db) => storeContract('postgres', () => db.open()));
