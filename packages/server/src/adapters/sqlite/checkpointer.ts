// Starts and stops the checkpoint thread (checkpoint-worker.ts; architecture.md, "Checkpoints").
import { Worker } from 'node:worker_threads';
import type { CheckpointReport } from './checkpoint-pass.js';
import type { CheckpointWorkerData } from './checkpoint-worker.js';

// Built: checkpoint-worker.js next to this file; run from source (tests, tsx): checkpoint-worker.ts.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER = new URL(`./checkpoint-worker.${FROM_SOURCE ? 'ts' : 'js'}`, import.meta.url);

function startWorker(data: CheckpointWorkerData): Worker {
  if (FROM_SOURCE) {
    let tsx: string | undefined;
    try { tsx = import.meta.resolve('tsx/esm/api'); } catch { /* another loader: Node gets the .ts file as it is */ }
    // Node 20 does not carry tsx's loader hooks (--import tsx) into a worker thread: the worker registers them first.
    const boot = tsx && `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(WORKER.href)}); })`;
    if (boot) return new Worker(boot, { eval: true, workerData: data });
  }
  return new Worker(WORKER, { workerData: data });
}

export interface CheckpointerOptions {
  /** The worker's pause after each pass, before it looks at the WAL again. */
  intervalMs: number;
  onReport?: (r: CheckpointReport) => void;
  /** The worker failed or exited on its own: the caller checkpoints inline from now on. */
  onFailure: (err: Error) => void;
}

export class Checkpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  #stopping = false;

  constructor(path: string, opts: CheckpointerOptions) {
    const data: CheckpointWorkerData = { path, intervalMs: opts.intervalMs };
    this.#worker = startWorker(data);
    this.#worker.unref(); // never what keeps a process alive
    let failed = false;
    const fail = (err: Error) => {
      if (failed || this.#stopping) return;
      failed = true;
      opts.onFailure(err);
    };
    this.#worker.on('message', (m: CheckpointReport) => opts.onReport?.(m));
    this.#worker.on('error', fail);
    this.#exited = new Promise((resolve) => this.#worker.once('exit', (code) => {
      fail(new Error(`the checkpoint thread exited (code ${code})`));
      resolve();
    }));
  }

  /** A last checkpoint, then the thread ends (at most `graceMs`, then it is terminated). */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#stopping) return this.#exited;
    this.#stopping = true;
    this.#worker.postMessage({ type: 'stop' });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => resolve('late'), graceMs); });
    if (await Promise.race([this.#exited, late]) === 'late') await this.#worker.terminate();
    clearTimeout(timer);
    await this.#exited;
  }
}
