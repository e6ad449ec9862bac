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
  /** Largest page of messages returned by history and sync. */
  maxPageSize: number;
  /** Most members a group may have, owner included. */
  maxGroupMembers: number;
  /** Time a new connection has to send `hello`. */
  helloTimeoutMs: number;
  /** Consecutive bad frames after which the connection is closed (4004). */
  maxBadFrames: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxFrameBytes: 64 * 1024,
  maxMessageBytes: 16 * 1024,
  sendsPerSecond: 30,
  sendBurst: 60,
  maxPageSize: 200,
  maxGroupMembers: 1000,
  helloTimeoutMs: 10_000,
  maxBadFrames: 50,
};

/** The current and only protocol version. */
export const PROTOCOL_VERSION = 1;
