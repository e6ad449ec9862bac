// A tiny typed event emitter: no dependency on Node's EventEmitter, and a throwing listener
// can never break the client's state machine (its error is rethrown on a fresh stack).
import { setTimer } from './platform.js';

/** A listener of one event. */
export type Listener<T> = (payload: T) => void;

/** Typed `on`/`off`/`once` over an event map `{ name: payload }`. */
export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener);
  }

  /** Resolves with the next payload of `event` (that satisfies `predicate`, when given). */
  once<K extends keyof Events>(event: K, predicate?: (payload: Events[K]) => boolean): Promise<Events[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (payload) => {
        if (predicate && !predicate(payload)) return;
        off();
        resolve(payload);
      });
    });
  }

  /** Calls every listener of `event` in the order they were added. */
  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set || set.size === 0) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(payload);
      } catch (err) {
        setTimer(() => { throw err; }, 0);
      }
    }
  }
}
