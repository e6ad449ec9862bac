// "Make Redis say what memory says", shared by the Redis adapters that mirror this node's
// state: mark() when the two may differ (a failed write, a reconnect, a lapsed key); run()
// reconciles until nothing was marked meanwhile, one run at a time.
export class Reconciler {
  #dirty = true;
  #running: Promise<void> | undefined;

  constructor(private readonly once: () => Promise<void>, private readonly stopped: () => boolean) {}

  get dirty(): boolean {
    return this.#dirty;
  }

  mark(): void {
    this.#dirty = true;
  }

  run(): Promise<void> {
    this.#running ??= (async () => {
      try {
        while (this.#dirty && !this.stopped()) {
          this.#dirty = false;
          await this.once();
        }
      } catch (err) {
        this.#dirty = true;
        throw err;
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }
}
