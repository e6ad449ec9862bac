// In-process presence directory for a single node: the global state is this node's state.
import type { UserId } from '@confab/protocol';
import type { PresenceDirectory, PresenceStatus } from '../../ports/presence.js';

export class MemoryPresenceDirectory implements PresenceDirectory {
  readonly #status = new Map<UserId, 'online' | 'away'>();

  setLocal(userId: UserId, status: PresenceStatus): Promise<void> {
    if (status === 'offline') this.#status.delete(userId);
    else this.#status.set(userId, status);
    return Promise.resolve();
  }

  get(userIds: readonly UserId[]): Promise<Map<UserId, PresenceStatus>> {
    return Promise.resolve(new Map(userIds.map((u) => [u, this.#status.get(u) ?? 'offline'])));
  }

  close(): Promise<void> {
    this.#status.clear();
    return Promise.resolve();
  }
}
