// The embedded store with its writes on a thread of their own. better-sqlite3 is synchronous:
// on the event loop, every group commit held every connection while SQLite wrote the WAL and
// fsynced it, and now and then a commit that crossed the automatic checkpoint copied the WAL
// into the database file and fsynced that too (50-250 ms under load: the latency tail). Here a
// worker thread owns the connection that writes (commits, fsyncs, checkpoints), and the event
// loop keeps a connection of its own for reads: WAL lets it read while the writer commits, and
// it sees each write as soon as the write's promise settles. Writes keep their order (one
// thread, one queue), so the store behaves exactly as the single-connection one does.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { StoreUnavailableError } from '../../errors.js';
import type { Store } from '../../ports/store.js';
import { SqliteStore } from './sqlite-store.js';

/** The store methods that write, and `ping` (readiness means: the writer answers). */
const WRITER_METHODS = [
  'createUser', 'createDevice', 'revokeDevice', 'rotateRefreshToken', 'createDirect', 'createGroup', 'rename',
  'addMembers', 'removeMember', 'setRole', 'advanceReadCursor', 'advanceDeliveredCursor', 'setLastSeen',
  'setHideLastSeen', 'append', 'ping',
] as const satisfies readonly (keyof Store)[];
type WriterMethod = (typeof WRITER_METHODS)[number];

const ROLE = 'confab-sqlite-writer';

interface Call { id: number; method: WriterMethod; args: unknown[] }
type Reply = { id: number; value: unknown } | { id: number; error: { unavailable: boolean; message: string; code?: string } };

/**
 * Opens the database at `path` (migrating it), starts its writer thread, and returns a store
 * whose writes go to that thread and whose reads run here.
 */
export function sqliteWithWriterThread(path: string): Store {
  const local = new SqliteStore({ path });
  const writer = new WriterThread(path);
  const writes = new Set<string>(WRITER_METHODS);
  const close = async (): Promise<void> => {
    await writer.close();
    await local.close();
  };
  return new Proxy(local, {
    get(target, prop, receiver) {
      if (prop === 'close') return close;
      if (typeof prop === 'string' && writes.has(prop)) return (...args: unknown[]) => writer.call(prop as WriterMethod, args);
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

class WriterThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  #next = 0;
  /** Set once the thread is gone: every later call fails as the store being unavailable. */
  #gone: string | undefined;
  readonly #exited: Promise<void>;

  constructor(path: string) {
    // The same file runs the thread: from dist as .js; from source (the tests, under tsx) the
    // thread registers tsx first, since loader hooks do not carry over into worker threads.
    const self = import.meta.url;
    const data = { workerData: { role: ROLE, path } };
    this.#worker = self.endsWith('.ts')
      ? new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => tsx.register()).then(() => import(${JSON.stringify(self)}))`, { eval: true, ...data })
      : new Worker(new URL(self), data);
    // Keeps the process alive only while a call waits for its answer (see call()).
    this.#worker.unref();
    this.#worker.on('message', (r: Reply) => {
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if (this.#pending.size === 0) this.#worker.unref();
      if ('value' in r) p.resolve(r.value);
      else p.reject(r.error.unavailable ? new StoreUnavailableError(r.error.message) : Object.assign(new Error(r.error.message), r.error.code ? { code: r.error.code } : {}));
    });
    this.#exited = new Promise((resolve) => {
      this.#worker.once('error', (err) => this.#fail(`SQLite writer thread failed: ${err.message}`));
      this.#worker.once('exit', (code) => {
        this.#fail(`SQLite writer thread exited (${code})`);
        resolve();
      });
    });
  }

  call(method: WriterMethod, args: unknown[]): Promise<unknown> {
    if (this.#gone) return Promise.reject(new StoreUnavailableError(this.#gone));
    return new Promise((resolve, reject) => {
      const id = this.#next++;
      if (this.#pending.size === 0) this.#worker.ref();
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, method, args } satisfies Call);
    });
  }

  /** Lets the writes already sent finish, then closes the writer's connection (which checkpoints). */
  async close(): Promise<void> {
    if (!this.#gone) {
      this.#worker.ref();
      this.#worker.postMessage('close');
    }
    await this.#exited;
  }

  #fail(reason: string): void {
    this.#gone ??= reason;
    for (const p of this.#pending.values()) p.reject(new StoreUnavailableError(reason));
    this.#pending.clear();
  }
}

/** The thread: one SqliteStore, calls served one after another in arrival order. */
function serve(path: string): void {
  const port = parentPort!;
  const store = new SqliteStore({ path });
  let chain: Promise<void> = Promise.resolve();
  port.on('message', (m: Call | 'close') => {
    chain = chain.then(async () => {
      if (m === 'close') {
        await store.close();
        port.close();
        return;
      }
      try {
        const call = (store[m.method] as (this: SqliteStore, ...a: unknown[]) => Promise<unknown>).bind(store);
        port.postMessage({ id: m.id, value: await call(...m.args) } satisfies Reply);
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        const code = (err as { code?: unknown }).code;
        port.postMessage({ id: m.id, error: { unavailable: err instanceof StoreUnavailableError, message: e.message, ...(typeof code === 'string' ? { code } : {}) } } satisfies Reply);
      }
    });
  });
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === ROLE) serve((workerData as { path: string }).path);
