// Which PostgreSQL and driver failures mean "the database cannot be reached right now". The
// store turns them into StoreUnavailableError, which the node answers as `unavailable`
// (retryable: the transaction rolled back, the client resends with the same client id).
// Anything else (a bug, a constraint we did not expect) stays an ordinary error: `internal`.

/** SQLSTATEs that are retryable as a whole, beyond the connection-exception class 08. */
const SQLSTATES = new Set([
  '57P01', // admin_shutdown: the server is shutting down (fast/smart stop)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or in recovery
  '53300', // too_many_connections
  '53100', // disk_full
  '53200', // out_of_memory
  '40001', // serialization_failure: the transaction was rolled back, a retry succeeds
  '40P01', // deadlock_detected: idem (the append lock order makes it unexpected)
]);

/** Socket-level error codes of Node. */
const SOCKET = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN']);

/** Messages node-postgres uses for connection loss, pool timeouts and use after `end()`. */
const DRIVER = /Connection terminated|timeout exceeded when trying to connect|connection timeout|Client has encountered a connection error|not queryable|Cannot use a pool after calling end|Client was closed/i;

/** True when `err` means the database is unreachable or shutting down (not a bug in the query). */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (SQLSTATES.has(code) || SOCKET.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true;
  // Node reports a failed connection to a host with several addresses as an AggregateError.
  if (err instanceof AggregateError && err.errors.some(isUnavailable)) return true;
  return DRIVER.test(err.message);
}

/** A short reason for logs and the error message, never the connection string. */
export function reasonOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
}
