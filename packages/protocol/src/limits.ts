// Defaults for the explicit limits the server enforces and announces in `welcome.limits`.

export interface Limits {
  /** Largest accepted WebSocket text frame or REST body, in bytes. */
  maxFrameBytes: number;
  /** Largest message text, in UTF-8 bytes. */
  maxMessageBytes: number;
  /** Sustained sends (send/edit/delete) per second per connection. */
  sendsPerSecond: number;
  /** Burst of sends allowed above the sustained rate. */
  sendBurst: number;
  /** Sustained sends per second per user, over all devices and REST together. */
  userSendsPerSecond: number;
  /** Burst above the per-user rate. */
  userSendBurst: number;
  /** Largest page of messages returned by history and sync. */
  maxPageSize: number;
  /** Most members a group may have, owner included. */
  maxGroupMembers: number;
  /** Time a new connection has to send `hello`. */
  helloTimeoutMs: number;
  /** Consecutive bad frames after which the connection is closed (4004). */
  maxBadFrames: number;
  /** Mean interval of server pings (each connection gets its own jittered schedule). */
  heartbeatIntervalMs: number;
  /** A connection silent (no pong, no frame) for this long is dropped and its device counts as gone. */
  heartbeatTimeoutMs: number;
  /** A sender's typing signals are forwarded at most once per this interval per conversation. */
  typingIntervalMs: number;
  /** A typing indicator expires after this long unless renewed. */
  typingTtlMs: number;
  /** A watcher gets at most one presence frame per this interval (changes are batched). */
  presenceIntervalMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxFrameBytes: 64 * 1024,
  maxMessageBytes: 16 * 1024,
  sendsPerSecond: 30,
  sendBurst: 60,
  userSendsPerSecond: 60,
  userSendBurst: 120,
  maxPageSize: 200,
  maxGroupMembers: 1000,
  helloTimeoutMs: 10_000,
  maxBadFrames: 50,
  heartbeatIntervalMs: 25_000,
  heartbeatTimeoutMs: 60_000,
  typingIntervalMs: 2_000,
  typingTtlMs: 6_000,
  presenceIntervalMs: 1_000,
};

/** The current and only protocol version. */
export const PROTOCOL_VERSION = 1;
