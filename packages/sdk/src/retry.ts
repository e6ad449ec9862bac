// How long to wait before resending a request the server answered with a retryable error.
import type { ConfabError } from './errors.js';

/**
 * The server's `retryAfterMs` when it gave one; otherwise exponential backoff with "equal
 * jitter" (never close to zero, so a persistent `internal` error cannot become a hot loop).
 */
export function retryDelay(error: ConfabError, failures: number, random: () => number): number {
  if (error.retryAfterMs !== undefined) return Math.max(0, error.retryAfterMs);
  const cap = Math.min(15_000, 250 * 2 ** Math.min(Math.max(0, failures - 1), 16));
  return cap / 2 + (random() * cap) / 2;
}
