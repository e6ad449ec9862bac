// The one error type the core throws for client-visible failures; gateways render it as an
// error frame or an HTTP error body with the registry's status.
import { ERROR_CODES, type ErrorCode } from '@confab/protocol';

export interface ErrorExtra {
  retryAfterMs?: number;
  details?: { path: string; message: string }[];
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly extra: ErrorExtra;
  constructor(code: ErrorCode, message?: string, extra: ErrorExtra = {}) {
    super(message ?? ERROR_CODES[code].description);
    this.code = code;
    this.extra = extra;
  }
  get status(): number {
    return ERROR_CODES[this.code].status;
  }
  toBody(): { code: ErrorCode; message: string } & ErrorExtra {
    return { code: this.code, message: this.message, ...this.extra };
  }
}

/** Maps anything thrown to an AppError; unknown failures become `internal` (nothing leaks). */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof StoreUnavailableError) return new AppError('unavailable', 'The store is unavailable; nothing was committed. Retry with the same client id.');
  return new AppError('internal', 'Internal error; nothing was committed. Retry with the same client id.');
}

/** Thrown by store adapters when the database cannot be reached (retryable). */
export class StoreUnavailableError extends Error {}
