// Pages of the log bounded in bytes as well as in entries: a page of 200 entries of 16 KiB
// would be over 3 MB, more than a connection's whole outbound budget. A page always holds at
// least one entry, so paging always makes progress.
import type { Message } from '@confab/protocol';

/** Bytes of an entry in a page: its JSON, the comma before it included. */
export function entryBytes(m: Message): number {
  return Buffer.byteLength(JSON.stringify(m)) + 1;
}

/**
 * How many entries of `messages` fit in `maxBytes`, counted from the start (`from: 'start'`,
 * forward paging) or from the end (`'end'`, backward paging, which keeps the entries nearest
 * to where it pages from). At least one when there is one.
 */
export function fitting(messages: readonly Message[], maxBytes: number, from: 'start' | 'end'): number {
  let bytes = 0;
  for (let i = 0; i < messages.length; i++) {
    bytes += entryBytes(messages[from === 'start' ? i : messages.length - 1 - i]!);
    if (bytes > maxBytes && i > 0) return i;
  }
  return messages.length;
}
