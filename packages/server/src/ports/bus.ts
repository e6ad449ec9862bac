// The bus port: live fan-out between nodes. Adapters: MemoryBus (one process), RedisBus
// (Redis pub/sub, a cluster).
//
// Contract: at-most-once, best effort. A lost envelope costs latency, never data: clients
// detect the seq gap and the node fills it from the store. Envelopes published by one
// node to one target arrive in publish order (adapters that cannot promise this must say so).
// A node publishing to a node id it subscribed itself receives the envelope exactly once.
// `publish` never rejects because the transport is down: it drops (and the adapter logs), so a
// broken bus can never stall or fail the write path. After `close`, nothing more is delivered.
// The suite in test/bus-contract.ts checks this for every adapter.
import type { ConversationId, DeviceId, Message, UserId } from '@confab/protocol';

/** One committed entry and the users on the target node it is for. */
export interface MessageEntry {
  message: Message;
  userIds: UserId[];
}

export type Envelope =
  /**
   * Committed log entries, in commit order, each for the listed users' devices on the target
   * node: one envelope per target node per committed batch, not one per entry.
   */
  | { type: 'messages'; entries: MessageEntry[] }
  /** One entry: what nodes of earlier versions send; still delivered, so a rolling upgrade keeps their entries live. */
  | ({ type: 'message' } & MessageEntry)
  /** Membership or metadata changed for these users. */
  | { type: 'conversation'; change: 'added' | 'updated' | 'removed'; conversationId: ConversationId; userIds: UserId[] }
  /** A user's read cursor moved: tell their devices. */
  | { type: 'read'; conversationId: ConversationId; userId: UserId; seq: number; unread: number }
  /** The conversation's aggregate receipts moved: tell these members' devices. */
  | { type: 'receipts'; conversationId: ConversationId; delivered: number; read: number; userIds: UserId[] }
  /** A device was logged out or revoked: close its connections. */
  | { type: 'revoke'; userId: UserId; deviceId: DeviceId }
  /**
   * A user's presence on the publishing node changed (or their last-seen privacy did): re-read
   * the presence directory and tell local watchers. Sent to every other live node.
   */
  | { type: 'presence'; userId: UserId; hideLastSeen?: boolean }
  /** A member is typing (ephemeral): tell these members' devices. */
  | { type: 'typing'; conversationId: ConversationId; userId: UserId; username: string; typing: boolean; userIds: UserId[] };

export interface Bus {
  /** Sends one envelope to one node (one publish per target node, never per device). */
  publish(nodeId: string, envelope: Envelope): Promise<void>;
  /** Receives envelopes addressed to `nodeId`. */
  subscribe(nodeId: string, handler: (envelope: Envelope) => void): Promise<void>;
  close(): Promise<void>;
}
