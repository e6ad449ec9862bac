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
  /** Sustained requests per second per connection, in cost units (rates.ts, `requests`). */
  requestsPerSecond: number;
  /** Burst of requests above the per-connection rate. */
  requestBurst: number;
  /** Sustained requests per second per user, over all devices and REST together. */
  userRequestsPerSecond: number;
  /** Burst above the per-user request rate. */
  userRequestBurst: number;
  /** Sustained changes (conversations created, renamed, members, roles, settings) per minute per user, in cost units (rates.ts, `changes`). */
  userChangesPerMinute: number;
  /** Burst above the per-user change rate. */
  userChangeBurst: number;
  /** Largest page of messages returned by history and sync. */
  maxPageSize: number;
  /** Largest history or sync page in bytes of its entries' JSON; a page holds at least one entry. */
  maxPageBytes: number;
  /** Most members a group may have, owner included. */
  maxGroupMembers: number;
  /** Time a new connection has to send `hello`. */
  helloTimeoutMs: number;
  /** Consecutive bad frames after which the connection is closed (4004). */
  maxBadFrames: number;
  /** Mean interval of server pings (each connection gets its own jittered schedule). */
  heartbeatIntervalMs: number;
  /** A connection that answers none of the node's pings for this long is dropped and its device counts as gone (frames and unsolicited pongs do not count: answering a ping shows the client reads). */
  heartbeatTimeoutMs: number;
  /** A member's typing state is forwarded at most once per this interval per conversation, whatever its value (the latest wins). */
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
  requestsPerSecond: 20,
  requestBurst: 100,
  userRequestsPerSecond: 50,
  userRequestBurst: 250,
  userChangesPerMinute: 60,
  userChangeBurst: 60,
  maxPageSize: 200,
  maxPageBytes: 256 * 1024,
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
