// The bus port: live fan-out between nodes. Adapters: MemoryBus (one process).
//
// Contract: at-most-once, best effort. A lost envelope costs latency, never data: clients
// detect the seq gap and the node fills it from the store. Envelopes published by one
// node to one target arrive in publish order (adapters that cannot promise this must say so).
import type { ConversationId, Message, UserId } from '@confab/protocol';

export type Envelope =
  /** A committed log entry for the listed users' devices on the target node. */
  | { type: 'message'; message: Message; userIds: UserId[] }
  /** Membership or metadata changed for these users. */
  | { type: 'conversation'; change: 'added' | 'updated' | 'removed'; conversationId: ConversationId; userIds: UserId[] }
  /** A user's read cursor moved: tell their devices. */
  | { type: 'read'; conversationId: ConversationId; userId: UserId; seq: number; unread: number };

export interface Bus {
  /** Sends one envelope to one node (one publish per target node, never per device). */
  publish(nodeId: string, envelope: Envelope): Promise<void>;
  /** Receives envelopes addressed to `nodeId`. */
  subscribe(nodeId: string, handler: (envelope: Envelope) => void): Promise<void>;
  close(): Promise<void>;
}
