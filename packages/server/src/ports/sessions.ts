// The sessions port: which users have devices connected to which node.
// Adapters: MemorySessions (one process), RedisSessions (Redis, a cluster).
//
// Contract (checked for every adapter by test/sessions-contract.ts):
// - Registrations are counted per (user, node) by connection id: a user stays listed for a node
//   until every connection registered there has unregistered. Registering a connection twice
//   counts once; unregistering an unknown one does nothing.
// - `nodesFor` lists each user under every node where it has a connection, each user once per
//   node, in the order given; users with no connection appear nowhere.
// - Eventually consistent across nodes: another node's register/unregister shows once its
//   promise has resolved. A distributed adapter also drops a node whose heartbeat lapsed (its
//   liveness TTL), so a crashed node's users stop being listed by themselves. A node always
//   sees its own registrations, even while the shared backend is unreachable.
// - A distributed adapter speaks for one node: register/unregister for another node id reject.
// - `liveNodes` lists every node with at least one registered connection (and may list live
//   nodes without any); a distributed adapter lists its own node first and drops dead ones.
import type { DeviceId, UserId } from '@confab/protocol';

export interface SessionRegistry {
  register(userId: UserId, deviceId: DeviceId, connectionId: string, nodeId: string): Promise<void>;
  unregister(userId: UserId, connectionId: string, nodeId: string): Promise<void>;
  /** For each node with at least one of these users connected: which of them. */
  nodesFor(userIds: readonly UserId[]): Promise<Map<string, UserId[]>>;
  /** The nodes to tell about something every node may care about (e.g. a presence change). */
  liveNodes(): Promise<string[]>;
  close(): Promise<void>;
}
