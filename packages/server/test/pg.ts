// PostgreSQL for the tests: each test file gets a fresh schema in the database of DATABASE_URL
// (default postgres://127.0.0.1:5432/test), dropped after the file's tests, so concurrent runs
// never see each other's rows. When PostgreSQL does not answer, the file's suite is skipped
// with the reason in `npm test`, and fails instead when CI=true (CI must run it).
import { after, describe, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStore, withDefaultUser, type PostgresStoreOptions } from '../src/adapters/postgres/postgres-store.js';

export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://127.0.0.1:5432/test';

export interface TestDatabase {
  /** DATABASE_URL. */
  readonly url: string;
  /** This file's schema. */
  readonly schema: string;
  /** DATABASE_URL with search_path set to the schema, for nodes built from config. */
  readonly schemaUrl: string;
  /** A store on this schema (small pool), closed by the caller. */
  open(options?: Partial<PostgresStoreOptions>): Promise<PostgresStore>;
  /** Runs one statement on this schema outside any store (for checks). */
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  /** Another fresh schema name (created by the first store opened on it, dropped with the file's). */
  freshSchema(): string;
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

const newSchemaName = () => `confab_t_${process.pid}_${randomBytes(4).toString('hex')}`;

/**
 * Registers `name`'s suite when PostgreSQL answers: `body` gets a fresh schema and registers
 * its tests. Otherwise registers a skipped test (locally) or a failing one (CI=true).
 */
export async function postgresSuite(name: string, body: (db: TestDatabase) => void): Promise<void> {
  const admin = new pg.Client({ connectionString: withDefaultUser(DATABASE_URL), connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (err) {
    await admin.end().catch(() => undefined);
    const reason = `PostgreSQL unreachable at ${redact(DATABASE_URL)} (${(err as Error).message || (err as { code?: string }).code || String(err)})`;
    if (process.env.CI === 'true') {
      test(`${name}: PostgreSQL is required when CI=true`, () => { throw new Error(`${reason}; .ci/run should have started it`); });
    } else {
      test(name, { skip: `${reason}; set DATABASE_URL or start PostgreSQL to run it` }, () => undefined);
    }
    return;
  }
  const schemas = [newSchemaName()];
  await admin.query(`CREATE SCHEMA ${schemas[0]}`);
  after(async () => {
    for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await admin.end();
  });
  const schema = schemas[0]!;
  const url = new URL(DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const db: TestDatabase = {
    url: DATABASE_URL,
    schema,
    schemaUrl: url.toString(),
    open: (options = {}) => PostgresStore.open({ url: DATABASE_URL, schema, poolSize: 4, ...options }),
    async query(text, values) {
      await admin.query(`SET search_path TO ${schema}`);
      return (await admin.query(text, values)).rows;
    },
    freshSchema() {
      const s = newSchemaName();
      schemas.push(s);
      return s;
    },
  };
  describe(name, () => body(db));
}
