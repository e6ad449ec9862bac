// The presence directory port: each node's aggregate presence of its users, readable by every
// node. Adapters: MemoryPresenceDirectory (one process), RedisPresenceDirectory (a cluster).
//
// Contract (checked for every adapter by test/presence-contract.ts):
// - `setLocal(user, status)` states this node's aggregate for the user (its devices here);
//   'offline' removes this node's entry. The latest call wins.
// - `get(users)` aggregates over live nodes: 'online' if any node says online, 'away' if every
//   node with an entry says away, 'offline' if none has one. Every user asked is in the answer.
// - This node's own entries are exact at once; another node's show once its `setLocal` has
//   resolved. A distributed adapter ignores entries of nodes whose liveness lapsed. While its
//   backend is unreachable `get` rejects (so the caller keeps what it knew instead of seeing
//   everyone on other nodes go offline) and `setLocal` keeps the state in memory, writes it
//   back once the backend is reachable again, and rejects.
// - `close()` removes this node's entries.
import type { UserId } from '@confab/protocol';

export type PresenceStatus = 'online' | 'away' | 'offline';

export interface PresenceDirectory {
  setLocal(userId: UserId, status: PresenceStatus): Promise<void>;
  get(userIds: readonly UserId[]): Promise<Map<UserId, PresenceStatus>>;
  close(): Promise<void>;
}

/** online if any says online, away if all present say away, offline if none. */
export function aggregate(statuses: Iterable<string>): PresenceStatus {
  let away = false;
  for (const s of statuses) {
    if (s === 'online') return 'online';
    if (s === 'away') away = true;
  }
  return away ? 'away' : 'offline';
}
