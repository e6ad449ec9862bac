// In-process bus for a single node: delivery is a synchronous call, so order is publish order.
import type { Bus, Envelope } from '../../ports/bus.js';

export class MemoryBus implements Bus {
  readonly #handlers = new Map<string, Set<(e: Envelope) => void>>();

  publish(nodeId: string, envelope: Envelope): Promise<void> {
    const handlers = this.#handlers.get(nodeId);
    if (handlers) for (const h of handlers) h(envelope);
    return Promise.resolve();
  }

  subscribe(nodeId: string, handler: (envelope: Envelope) => void): Promise<void> {
    let set = this.#handlers.get(nodeId);
    if (!set) this.#handlers.set(nodeId, (set = new Set()));
    set.add(handler);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#handlers.clear();
    return Promise.resolve();
  }
}
