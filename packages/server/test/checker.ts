// The fault checker: clients log every entry they were acked and every entry they saw, and after
// the run the checker compares those logs with the store's log (the truth) and counts what went
// wrong. The fault tests assert that every count is zero.
//
// - lost: acked, but not in the log at its seq (or with another id), or missing on a device that
//   should hold it (a member device that was following the conversation from seq 0)
// - duplicated: a device was given the same seq twice, or the log holds a client id twice
// - out of order: a device was given a seq lower than one it already had
// - phantom: a device was given an entry the log does not have (unknown seq, or another id there)
import type { Message } from '@confab/protocol';

export interface CheckReport {
  acked: number;
  logEntries: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  phantom: number;
  /** One line per problem (the first 20), for the assertion message. */
  problems: string[];
}

export class FaultChecker {
  readonly #acked = new Map<string, Message[]>();
  readonly #seen = new Map<string, Message[]>();

  /** `client` was acked `m` (a send it made). */
  acked(client: string, m: Message): void {
    let list = this.#acked.get(client);
    if (!list) this.#acked.set(client, (list = []));
    list.push(m);
  }

  /** `device` was given `m` (a `message` event, in the order received). */
  seen(device: string, m: Message): void {
    let list = this.#seen.get(device);
    if (!list) this.#seen.set(device, (list = []));
    list.push(m);
  }

  /**
   * Compares with `log`, the store's entries of the conversations checked (all of them, every
   * conversation from seq 1). `followers` lists, per conversation, the devices that followed it
   * from seq 0 to the end: they must hold every entry.
   */
  check(log: readonly Message[], followers: ReadonlyMap<string, readonly string[]> = new Map()): CheckReport {
    const problems: string[] = [];
    const note = (p: string) => { if (problems.length < 20) problems.push(p); };
    const key = (m: Pick<Message, 'conversationId' | 'seq'>) => `${m.conversationId}#${m.seq}`;
    const truth = new Map(log.map((m) => [key(m), m]));
    let lost = 0;
    let duplicated = 0;
    let outOfOrder = 0;
    let phantom = 0;

    const clientIds = new Set<string>();
    for (const m of log) {
      const k = `${m.conversationId}/${m.sender}/${m.clientId}`;
      if (clientIds.has(k)) { duplicated++; note(`log holds client id ${m.clientId} twice`); }
      clientIds.add(k);
    }

    let acked = 0;
    for (const [client, list] of this.#acked) {
      for (const m of list) {
        acked++;
        const t = truth.get(key(m));
        if (!t || t.messageId !== m.messageId) { lost++; note(`${client}: acked ${key(m)} (${m.messageId}) is not in the log`); }
      }
    }

    for (const [device, list] of this.#seen) {
      const last = new Map<string, number>();
      const had = new Set<string>();
      for (const m of list) {
        const k = key(m);
        const t = truth.get(k);
        if (!t || t.messageId !== m.messageId) { phantom++; note(`${device}: given ${k} (${m.messageId}), which the log does not have`); }
        if (had.has(k)) { duplicated++; note(`${device}: given ${k} twice`); }
        const prev = last.get(m.conversationId) ?? 0;
        if (m.seq < prev) { outOfOrder++; note(`${device}: given ${k} after seq ${prev}`); }
        had.add(k);
        last.set(m.conversationId, Math.max(prev, m.seq));
      }
    }

    for (const [conversationId, devices] of followers) {
      const entries = log.filter((m) => m.conversationId === conversationId);
      for (const device of devices) {
        const have = new Set((this.#seen.get(device) ?? []).filter((m) => m.conversationId === conversationId).map((m) => m.seq));
        const missing = entries.filter((m) => !have.has(m.seq));
        if (missing.length > 0) { lost += missing.length; note(`${device}: misses ${missing.length} entries of ${conversationId} (first seq ${missing[0]!.seq})`); }
      }
    }
    return { acked, logEntries: log.length, lost, duplicated, outOfOrder, phantom, problems };
  }
}
