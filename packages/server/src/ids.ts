// Server-made ids: UUIDv7, so they are unique across nodes and sort by creation time.
import { v7 } from 'uuid';
import { asConversationId, asDeviceId, asMessageId, asUserId, type ConversationId, type DeviceId, type MessageId, type UserId } from '@confab/protocol';

export const newUserId = (): UserId => asUserId(v7());
export const newDeviceId = (): DeviceId => asDeviceId(v7());
export const newConversationId = (): ConversationId => asConversationId(v7());
export const newMessageId = (): MessageId => asMessageId(v7());
