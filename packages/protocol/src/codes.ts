// Every client-visible error code and WebSocket close code, in one registry.
// Codes are never reused or renamed; docs/protocol.md is generated from this file and a
// test fails when the two disagree.

export interface ErrorCodeInfo {
  /** HTTP status used when the error answers a REST request. */
  readonly status: number;
  /** True when the same request may succeed later without change (back off, then retry). */
  readonly retryable: boolean;
  readonly description: string;
}

export const ERROR_CODES = {
  bad_json: { status: 400, retryable: false, description: 'The frame or request body is not valid JSON.' },
  invalid_utf8: { status: 400, retryable: false, description: 'A text frame is not valid UTF-8.' },
  binary_not_supported: { status: 400, retryable: false, description: 'Binary WebSocket frames are not part of protocol v1; send JSON text frames.' },
  frame_too_large: { status: 413, retryable: false, description: 'The frame or request body is larger than the configured limit (`limits.maxFrameBytes`).' },
  bad_request: { status: 400, retryable: false, description: 'A field is missing, has the wrong type or is out of range; `details` lists the problems.' },
  unknown_type: { status: 400, retryable: false, description: 'The frame `type` is not one the server knows.' },
  unsupported_version: { status: 400, retryable: false, description: 'The protocol version in `hello.v` is not supported by this server.' },
  not_authenticated: { status: 401, retryable: false, description: 'No credentials: send `hello` first (WebSocket) or an `Authorization: Bearer` header (REST).' },
  already_authenticated: { status: 400, retryable: false, description: 'A second `hello` on a connection that is already authenticated.' },
  invalid_token: { status: 401, retryable: false, description: 'The access token is malformed, forged, signed with another algorithm than HS256, for another issuer or audience, not valid yet (`iat`/`nbf` beyond the clock skew), or for a device that was logged out.' },
  token_expired: { status: 401, retryable: false, description: 'The access token has expired: refresh it, then retry.' },
  invalid_credentials: { status: 401, retryable: false, description: 'Unknown username or wrong password.' },
  invalid_refresh_token: { status: 401, retryable: false, description: 'The refresh token is unknown, expired, revoked, or was already used (reuse revokes the device session).' },
  username_taken: { status: 409, retryable: false, description: 'Another account already has this username.' },
  weak_password: { status: 400, retryable: false, description: 'The password does not meet the policy: at least 8 characters, at most 256 bytes in UTF-8, and not the username; `message` says which.' },
  host_not_allowed: { status: 421, retryable: false, description: 'The request (REST, WebSocket upgrade or `/metrics`) names a `Host` this node does not answer to: not an IP address, not `localhost`, not a host of `ALLOWED_ORIGINS` or `ALLOWED_HOSTS`. Keeps DNS-rebinding pages out.' },
  origin_not_allowed: { status: 403, retryable: false, description: 'The request or WebSocket upgrade comes from a browser origin that is not the server\'s own nor in its `ALLOWED_ORIGINS`.' },
  forbidden: { status: 403, retryable: false, description: 'You are not allowed to do this: not a member of the conversation, or not an owner/admin.' },
  user_not_found: { status: 404, retryable: false, description: 'No user with this username or id.' },
  conversation_not_found: { status: 404, retryable: false, description: 'No conversation with this id that you can see.' },
  message_not_found: { status: 404, retryable: false, description: 'No message with this id in this conversation.' },
  message_deleted: { status: 409, retryable: false, description: 'The message was deleted; it can no longer be edited.' },
  message_too_large: { status: 413, retryable: false, description: 'The message text is longer than `limits.maxMessageBytes` (UTF-8 bytes).' },
  client_id_reused: { status: 409, retryable: false, description: 'This client id was already used for a different operation in this conversation.' },
  conversation_full: { status: 409, retryable: false, description: 'The group already has the maximum number of members (`limits.maxGroupMembers`).' },
  invalid_member: { status: 400, retryable: false, description: 'The membership change is not possible (e.g. removing the owner, adding yourself to a direct conversation).' },
  seq_out_of_range: { status: 400, retryable: false, description: 'The seq is beyond the last seq of the conversation.' },
  rate_limited: { status: 429, retryable: true, description: 'Too many requests: the frame or route is over one of its budgets (docs: "Rate limits"), or the connection has not read what was sent to it. Nothing of it was done. Wait `retryAfterMs`, then resend (with the same client id).' },
  headers_too_large: { status: 431, retryable: false, description: 'The request line or headers are larger than the HTTP server accepts (16 KiB in all): send long lists in the body, or fewer of them.' },
  route_not_found: { status: 404, retryable: false, description: 'No REST route for this method and path.' },
  unavailable: { status: 503, retryable: true, description: 'The store is unreachable or the node is shutting down; nothing was committed. Retry with the same client id.' },
  internal: { status: 500, retryable: true, description: 'An unexpected server error; nothing was committed. Retry with the same client id.' },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;
export const ERROR_CODE_NAMES = Object.keys(ERROR_CODES) as ErrorCode[];

export interface CloseCodeInfo {
  readonly code: number;
  /** `reconnect`: reconnect with backoff; `refresh`: get a new access token first; `stop`: do not reconnect. */
  readonly action: 'reconnect' | 'refresh' | 'stop';
  readonly description: string;
}

/**
 * WebSocket close codes. Ranges: 4000-4099 need the client to change something first
 * (credentials, version); 4100-4199 mean "reconnect with backoff". 1xxx are RFC 6455 codes.
 */
export const CLOSE_CODES = {
  normal: { code: 1000, action: 'stop', description: 'Normal closure requested by the client.' },
  transport_limit: { code: 1009, action: 'reconnect', description: 'A frame exceeded the hard transport limit (4 x `limits.maxFrameBytes`); the connection cannot be trusted to stay in sync.' },
  auth_failed: { code: 4001, action: 'stop', description: 'The `hello` token was invalid or its device was logged out. Log in again.' },
  token_expired: { code: 4002, action: 'refresh', description: 'The `hello` token had expired. Refresh it, then reconnect.' },
  unsupported_version: { code: 4003, action: 'stop', description: 'The client speaks a protocol version this server does not.' },
  protocol_violation: { code: 4004, action: 'stop', description: 'Too many bad frames in a row (`limits.maxBadFrames`); the client is broken.' },
  hello_timeout: { code: 4100, action: 'reconnect', description: 'No `hello` within `limits.helloTimeoutMs` of the upgrade.' },
  going_away: { code: 4101, action: 'reconnect', description: 'The node is shutting down (drain: it stopped taking writes and finished the commits in flight first); reconnect (to another node) with backoff and resume from your cursors.' },
  too_many_connections: { code: 4102, action: 'reconnect', description: 'This user already holds `MAX_CONNECTIONS_PER_USER` connections on this node (sent after an `error` frame `rate_limited`). Close one, or reconnect with backoff.' },
  try_again_later: { code: 4103, action: 'reconnect', description: 'The node is admitting new sessions at its limit (`NEW_SESSIONS_PER_SECOND`); sent once the `hello` token checked out, so unauthenticated connections never use up the allowance. Reconnect with backoff.' },
  slow_consumer: { code: 4104, action: 'reconnect', description: 'The client did not read its frames fast enough: more than the node\'s outbound bound (`MAX_OUTBOUND_BYTES`) of frames was waiting in the node for it, or it was more than the bound behind and answered no WebSocket ping for 2 s. Every frame counts, answers and catch-up pages included. The node sends pings to learn how far a busy connection has read (every WebSocket stack answers them) and writes at most half the bound past the last answer. Reconnect and resume from your cursors; nothing is lost.' },
} as const satisfies Record<string, CloseCodeInfo>;

export type CloseCodeName = keyof typeof CLOSE_CODES;
