// In-process session registry: user -> node -> connection ids.
import type { DeviceId, UserId } from '@confab/protocol';
import type { SessionRegistry } from '../../ports/sessions.js';

export class MemorySessions implements SessionRegistry {
  readonly #byUser = new Map<UserId, Map<string, Set<string>>>();

  register(userId: UserId, _deviceId: DeviceId, connectionId: string, nodeId: string): Promise<void> {
    let nodes = this.#byUser.get(userId);
    if (!nodes) this.#byUser.set(userId, (nodes = new Map<string, Set<string>>()));
    let conns = nodes.get(nodeId);
    if (!conns) nodes.set(nodeId, (conns = new Set()));
    conns.add(connectionId);
    return Promise.resolve();
  }

  unregister(userId: UserId, connectionId: string, nodeId: string): Promise<void> {
    const nodes = this.#byUser.get(userId);
    const conns = nodes?.get(nodeId);
    if (conns) {
      conns.delete(connectionId);
      if (conns.size === 0) nodes!.delete(nodeId);
      if (nodes!.size === 0) this.#byUser.delete(userId);
    }
    return Promise.resolve();
  }

  nodesFor(userIds: readonly UserId[]): Promise<Map<string, UserId[]>> {
    const out = new Map<string, UserId[]>();
    for (const u of userIds) {
      const nodes = this.#byUser.get(u);
      if (!nodes) continue;
      for (const n of nodes.keys()) {
        let list = out.get(n);
        if (!list) out.set(n, (list = []));
        list.push(u);
      }
    }
    return Promise.resolve(out);
  }

  liveNodes(): Promise<string[]> {
    const nodes = new Set<string>();
    for (const byNode of this.#byUser.values()) for (const n of byNode.keys()) nodes.add(n);
    return Promise.resolve([...nodes].sort());
  }

  close(): Promise<void> {
    this.#byUser.clear();
    return Promise.resolve();
  }
}
