// Group commit: appends that arrive while a commit is running (or in the same event-loop
// turn) are committed together in the next transaction, in arrival order. Each caller's
// promise settles only after its entry is durable.
import type { AppendRequest, AppendResult, Store } from '../ports/store.js';

interface Pending {
  request: AppendRequest;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

export class Writer {
  #queue: Pending[] = [];
  #running = false;

  constructor(
    private readonly store: Store,
    private readonly onCommitted: (results: AppendResult[]) => void,
    private readonly maxBatch = 256,
    /** Told the size and duration (seconds) of every commit that succeeded. */
    private readonly observe?: (entries: number, seconds: number) => void,
  ) {}

  append(request: AppendRequest): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      if (!this.#running) {
        this.#running = true;
        setImmediate(() => void this.#drain());
      }
    });
  }

  /** Pending entries not yet committed (for metrics and drain). */
  get depth(): number {
    return this.#queue.length;
  }

  /** Resolves once nothing is queued or being committed. */
  async idle(): Promise<void> {
    while (this.#running || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 2));
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.maxBatch);
      try {
        const started = performance.now();
        const results = await this.store.append(batch.map((p) => p.request));
        this.observe?.(batch.length, (performance.now() - started) / 1000);
        this.onCommitted(results);
        batch.forEach((p, i) => p.resolve(results[i]!));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.#running = false;
  }
}
