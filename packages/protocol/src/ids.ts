// Branded id aliases: a UserId can never be passed where a ConversationId is expected.
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A user's id (UUIDv7, time-sortable). */
export type UserId = Brand<string, 'UserId'>;
/** One login of a user: each device gets its own id and refresh-token family. */
export type DeviceId = Brand<string, 'DeviceId'>;
/** A direct (1:1) or group conversation. */
export type ConversationId = Brand<string, 'ConversationId'>;
/** A server-assigned message id (UUIDv7): unique and sortable by creation time. */
export type MessageId = Brand<string, 'MessageId'>;
/** Position of an event in its conversation: 1, 2, 3, ... with no gap. */
export type Seq = number;

export const asUserId = (s: string): UserId => s as UserId;
export const asDeviceId = (s: string): DeviceId => s as DeviceId;
export const asConversationId = (s: string): ConversationId => s as ConversationId;
export const asMessageId = (s: string): MessageId => s as MessageId;
