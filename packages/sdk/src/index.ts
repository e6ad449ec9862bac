// @confab/sdk: the TypeScript client of Confab for browsers and Node. `ConfabApi` speaks
// REST, `ConfabClient` the real-time WebSocket protocol; both take their transport
// (fetch, WebSocket) by injection and default to the host's.
export { ConfabApi } from './api.js';
export { ConfabClient } from './client.js';
export { ConfabError, isErrorCode } from './errors.js';
export type { ClientErrorCode, ConfabErrorCode, ConfabErrorInit } from './errors.js';
export { Backoff, fullJitterDelay } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { TokenBucket } from './bucket.js';
export { Emitter } from './emitter.js';
export type { Listener } from './emitter.js';
export { toWebSocketUrl } from './codec.js';
export type * from './types.js';
export type {
  Conversation, ConversationKind, ErrorCode, Limits, Member, Message, MessageKind, Role, Session, User,
} from '@confab/protocol';
