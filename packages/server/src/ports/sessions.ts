// The sessions port: which users have devices connected to which node.
// Adapters: MemorySessions (one process).
//
// Contract: eventually consistent; a node that registers a device is listed for that user
// until it unregisters it (or, in distributed adapters, until its heartbeat lapses).
import type { DeviceId, UserId } from '@confab/protocol';

export interface SessionRegistry {
  register(userId: UserId, deviceId: DeviceId, connectionId: string, nodeId: string): Promise<void>;
  unregister(userId: UserId, connectionId: string, nodeId: string): Promise<void>;
  /** For each node with at least one of these users connected: which of them. */
  nodesFor(userIds: readonly UserId[]): Promise<Map<string, UserId[]>>;
  close(): Promise<void>;
}
