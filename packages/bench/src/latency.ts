// Latency recording shared by the workers and the coordinator: a clock every process agrees on,
// and a small log-bucketed histogram (2 % resolution) that travels over IPC as [bucket, count]
// pairs and merges across workers, so percentiles never need the raw samples.

/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes on one machine. */
export const now = (): number => performance.timeOrigin + performance.now();

const MIN_MS = 0.01;
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
const BUCKETS = 1024; // MIN_MS * 1.02^1023 ≈ 6e6 ms: more than any run lasts.

export type HistogramJSON = [bucket: number, count: number][];

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  #total = 0;

  get count(): number {
    return this.#total;
  }

  record(ms: number): void {
    const i = ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / LOG_GROWTH));
    this.#counts[i]!++;
    this.#total++;
  }

  /** The value at quantile q (0..1): the upper bound of its bucket, so at most 2 % high. Undefined when empty. */
  quantile(q: number): number | undefined {
    if (this.#total === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.#total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return MIN_MS * GROWTH ** i;
    }
    return MIN_MS * GROWTH ** (BUCKETS - 1);
  }

  toJSON(): HistogramJSON {
    const out: HistogramJSON = [];
    for (let i = 0; i < BUCKETS; i++) if (this.#counts[i]! > 0) out.push([i, this.#counts[i]!]);
    return out;
  }

  add(pairs: HistogramJSON): this {
    for (const [i, n] of pairs) {
      if (i >= 0 && i < BUCKETS) {
        this.#counts[i]! += n;
        this.#total += n;
      }
    }
    return this;
  }
}
