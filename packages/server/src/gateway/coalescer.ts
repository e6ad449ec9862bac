// Collects keys and hands them over at most once per interval: the first change goes out
// at once, changes within the interval after it go out together at its end.
export class Coalescer<K> {
  #pending = new Set<K>();
  #last = -Infinity;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly flush: (keys: K[]) => void,
    private readonly now: () => number = Date.now,
  ) {}

  add(key: K): void {
    this.#pending.add(key);
    if (this.#timer) return;
    const wait = this.#last + this.intervalMs - this.now();
    if (wait <= 0) this.#fire();
    else {
      this.#timer = setTimeout(() => { this.#timer = undefined; this.#fire(); }, wait);
      this.#timer.unref();
    }
  }

  /** Forgets a pending key (its change was overtaken by another that went out at once). */
  delete(key: K): void {
    this.#pending.delete(key);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }

  #fire(): void {
    this.#last = this.now();
    const keys = [...this.#pending];
    this.#pending.clear();
    if (keys.length > 0) this.flush(keys);
  }
}
