// One error class for everything the SDK rejects with: server error codes from the protocol
// registry plus a few client-side conditions, each with a stable `code` and `retryable` flag.
import { ERROR_CODES } from '@confab/protocol';
import type { ErrorCode, ErrorFrame, Issue } from '@confab/protocol';

/**
 * Conditions detected by the SDK itself rather than reported by the server:
 * - `timeout`: no answer within `requestTimeoutMs` (retryable);
 * - `closed`: the client was closed, or the server ended the session for good (not retryable);
 * - `network`: the HTTP request or connection failed before an answer (retryable);
 * - `bad_response`: the server sent something that does not match the protocol (not retryable).
 */
export type ClientErrorCode = 'timeout' | 'closed' | 'network' | 'bad_response';

/** Every `ConfabError.code`: a protocol {@link ErrorCode} or a {@link ClientErrorCode}. */
export type ConfabErrorCode = ErrorCode | ClientErrorCode;

const CLIENT_RETRYABLE: Record<ClientErrorCode, boolean> = { timeout: true, closed: false, network: true, bad_response: false };

/** Optional fields of a {@link ConfabError}. */
export interface ConfabErrorInit {
  /** HTTP status, when the error answers a REST request. */
  status?: number;
  /** How long the server asks to wait before retrying (`rate_limited`). */
  retryAfterMs?: number;
  /** Field-level problems of a `bad_request`. */
  details?: Issue[];
  /** Overrides the retryable flag derived from the code. */
  retryable?: boolean;
  /** The underlying error, e.g. a failed fetch. */
  cause?: unknown;
}

/** True when `code` is one of the protocol's error codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

/** An error reported by the server (REST or WebSocket) or detected by the SDK. */
export class ConfabError extends Error {
  override readonly name = 'ConfabError';
  /** Stable machine-readable code; see `docs/protocol.md` for the server codes. */
  readonly code: ConfabErrorCode;
  /** HTTP status, when the error answers a REST request. */
  readonly status?: number;
  /** How long to wait before retrying, when the server said so. */
  readonly retryAfterMs?: number;
  /** Field-level problems of a `bad_request`. */
  readonly details?: Issue[];
  /** True when the same request may succeed later unchanged (after a pause). */
  readonly retryable: boolean;

  /** @param code stable code; @param message human-readable text. */
  constructor(code: ConfabErrorCode, message: string, init: ConfabErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = code;
    if (init.status !== undefined) this.status = init.status;
    if (init.retryAfterMs !== undefined) this.retryAfterMs = init.retryAfterMs;
    if (init.details !== undefined) this.details = init.details;
    this.retryable = init.retryable ?? (isErrorCode(code) ? ERROR_CODES[code].retryable : CLIENT_RETRYABLE[code]);
  }

  /** Builds the error carried by a WebSocket `error` frame. */
  static fromFrame(frame: ErrorFrame): ConfabError {
    const init: ConfabErrorInit = {};
    if (frame.retryAfterMs !== undefined) init.retryAfterMs = frame.retryAfterMs;
    if (frame.details !== undefined) init.details = frame.details;
    if (!isErrorCode(frame.code)) return new ConfabError('bad_response', `unknown error code ${frame.code}: ${frame.message}`, init);
    return new ConfabError(frame.code, frame.message, init);
  }
}
