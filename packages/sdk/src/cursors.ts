// Per-conversation cursors: the highest seq this client holds. They make delivery exactly-once
// and in order for the application even though the transport is at-least-once: duplicates
// are dropped, frames that run ahead are held, and a gap triggers a `sync` from the cursor.
import type { Message } from '@confab/protocol';

/** Most cursors `hello` may carry (the protocol's limit). */
export const MAX_HELLO_CURSORS = 10_000;
/** Most out-of-order entries held per conversation while its gap is filled. */
export const MAX_HELD = 1024;

/** What the tracker needs from the connection. */
export interface CursorSink {
  /** Hands an entry to the application (in order, once). */
  deliver(message: Message): void;
  /** Asks the server for entries after `after`; returns false when it cannot (not connected). */
  requestSync(conversationId: string, after: number): boolean;
  /** A conversation finished catching up. */
  synced(conversationId: string, seq: number): void;
}

/** How a `sync.done` came to be. */
export type SyncKind = 'hello' | 'gap' | 'request';

interface ConversationCursor {
  seq: number;
  /** The hello catch-up for this conversation has not finished. */
  hello: boolean;
  /** The cursor sent in the last hello. */
  helloFrom: number;
  /** Gap-filling syncs in flight. */
  gapSyncs: number;
  /** Highest held seq when the last gap sync was sent: the sync must cover it. */
  coverTo: number;
  /** Entries ahead of `seq`, waiting for the gap before them to fill. */
  held: Map<number, Message>;
  /** Entries were dropped because `held` was full: a sync is needed even if `held` drains. */
  overflow: boolean;
  /** Tracked while not connected (or not in hello): catch up once connected. */
  catchUp: boolean;
  /**
   * Known (e.g. the user was just added) but nothing delivered yet: `seq` is only a resume
   * point for `hello`, and the first live entry, whatever its seq, starts the cursor.
   */
  provisional: boolean;
}

/** Cursor bookkeeping of one client; pure logic, the connection is behind {@link CursorSink}. */
export class CursorTracker {
  /** Insertion order = least recently active first, so hello keeps the most active ones. */
  private readonly convs = new Map<string, ConversationCursor>();

  /** @param sink delivery and sync requests */
  constructor(private readonly sink: CursorSink) {}

  /** The cursor of a conversation, or undefined when it is not tracked. */
  get(conversationId: string): number | undefined {
    return this.convs.get(conversationId)?.seq;
  }

  /** Every tracked cursor. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, c] of this.convs) out[id] = c.seq;
    return out;
  }

  /** The cursors to put in `hello`: the most recently active ones, at most {@link MAX_HELLO_CURSORS}. */
  helloCursors(): Record<string, number> {
    const ids = [...this.convs.keys()].slice(-MAX_HELLO_CURSORS);
    const out: Record<string, number> = {};
    for (const id of ids) out[id] = this.convs.get(id)!.seq;
    return out;
  }

  /**
   * Starts tracking `conversationId` as holding everything up to `seq` and, with `catchUp`,
   * catches it up (now when `connected`, else after the next handshake). A tracked one moves
   * forward to `seq` if it is behind.
   */
  track(conversationId: string, seq: number, connected: boolean, catchUp = true): void {
    const c = this.convs.get(conversationId);
    if (c && !c.provisional) {
      if (seq > c.seq) {
        c.seq = seq;
        this.drain(conversationId, c);
      }
      return;
    }
    const c2 = newCursor(seq, catchUp && !connected);
    this.convs.set(conversationId, c2);
    if (catchUp && connected) this.gapSync(conversationId, c2);
  }

  /**
   * Remembers a conversation the user just joined, unless it is tracked already. Its live
   * entries may still be on their way and older than `lastSeq`, so nothing is dropped until
   * the first one arrives; `lastSeq` only serves to resume it after a reconnect.
   */
  join(conversationId: string, lastSeq: number): void {
    if (this.convs.has(conversationId)) return;
    const c = newCursor(lastSeq, false);
    c.provisional = true;
    this.convs.set(conversationId, c);
  }

  /** Stops tracking (e.g. the user left the conversation). */
  untrack(conversationId: string): void {
    this.convs.delete(conversationId);
  }

  /** A connection was established with `hello` carrying `helloIds`: those catch up by themselves. */
  connected(helloIds: Iterable<string>): void {
    for (const id of helloIds) {
      const c = this.convs.get(id);
      if (c) { c.hello = true; c.catchUp = false; c.helloFrom = c.seq; }
    }
    for (const [id, c] of this.convs) {
      if (c.catchUp) { c.catchUp = false; this.gapSync(id, c); }
    }
  }

  /** The connection was lost: syncs in flight are gone; held entries will come again. */
  disconnected(): void {
    for (const c of this.convs.values()) {
      c.hello = false;
      c.gapSyncs = 0;
      c.coverTo = 0;
      c.held.clear();
      c.overflow = false;
    }
  }

  /** Gives up waiting for hello catch-ups that never finished and asks with `sync` instead. */
  expireHello(): void {
    for (const [id, c] of this.convs) {
      if (!c.hello) continue;
      c.hello = false;
      if (c.gapSyncs === 0) this.gapSync(id, c);
    }
  }

  /**
   * A live entry (a `message` frame, or `ack` when `fromAck`). Acks never start tracking and
   * never trigger a sync by themselves: the matching live frames may simply not be here yet.
   */
  live(message: Message, fromAck = false): void {
    const id = message.conversationId;
    const c = this.convs.get(id);
    if (!c || c.provisional) {
      if (fromAck) return;
      this.convs.delete(id);
      this.convs.set(id, newCursor(message.seq, false));
      this.sink.deliver(message);
      return;
    }
    if (message.seq <= c.seq) return;
    if (message.seq === c.seq + 1) {
      this.apply(id, c, message);
      this.drain(id, c);
      return;
    }
    this.hold(c, message);
    if (fromAck || c.hello || c.gapSyncs > 0) return;
    this.gapSync(id, c);
  }

  /** A `sync.page`: the server's catch-up is authoritative, so seqs it skips are not ours to see. */
  page(conversationId: string, messages: readonly Message[]): void {
    const c = this.convs.get(conversationId);
    if (!c) return;
    c.provisional = false;
    for (const m of messages) if (m.seq > c.seq) this.apply(conversationId, c, m);
    this.drain(conversationId, c);
  }

  /** A `sync.done`: everything up to `seq` was sent; the conversation is live from there. */
  done(conversationId: string, seq: number, kind: SyncKind): void {
    const c = this.convs.get(conversationId);
    if (!c) return;
    c.provisional = false;
    if (kind === 'hello') c.hello = false;
    if (kind === 'gap') c.gapSyncs = Math.max(0, c.gapSyncs - 1);
    // A hello catch-up that ends below the cursor it was given, with nothing delivered since:
    // the cursor was past the end of the log (e.g. a restored store); continue from the server's.
    if (seq > c.seq || (kind === 'hello' && c.seq === c.helloFrom)) c.seq = seq;
    this.drain(conversationId, c);
    if (kind === 'gap' && c.gapSyncs === 0 && c.held.size > 0 && c.seq < c.coverTo) {
      // The server says it sent everything, yet entries it already delivered live lie beyond
      // its answer. Do not loop on syncs: trust the live entries and skip the hole.
      for (const m of sortedHeld(c)) this.apply(conversationId, c, m);
      c.held.clear();
    }
    this.settle(conversationId, c);
  }

  /** A gap sync failed (error or timeout); `gone` = the conversation is no longer ours. */
  syncFailed(conversationId: string, gone: boolean): void {
    const c = this.convs.get(conversationId);
    if (!c) return;
    if (gone) { this.untrack(conversationId); return; }
    c.gapSyncs = Math.max(0, c.gapSyncs - 1);
  }

  private settle(id: string, c: ConversationCursor): void {
    if (c.hello || c.gapSyncs > 0) return;
    if (c.held.size > 0 || c.overflow) { this.gapSync(id, c); return; }
    this.sink.synced(id, c.seq);
  }

  private gapSync(id: string, c: ConversationCursor): void {
    let max = c.seq;
    for (const s of c.held.keys()) if (s > max) max = s;
    c.overflow = false;
    if (!this.sink.requestSync(id, c.seq)) { c.catchUp = true; return; }
    c.gapSyncs++;
    c.coverTo = max;
  }

  private hold(c: ConversationCursor, m: Message): void {
    if (c.held.size >= MAX_HELD && !c.held.has(m.seq)) { c.overflow = true; return; }
    c.held.set(m.seq, m);
  }

  private apply(id: string, c: ConversationCursor, m: Message): void {
    c.seq = m.seq;
    // Re-insert so Map order stays "least recently active first".
    this.convs.delete(id);
    this.convs.set(id, c);
    this.sink.deliver(m);
  }

  private drain(id: string, c: ConversationCursor): void {
    if (c.held.size === 0) return;
    for (let m = c.held.get(c.seq + 1); m; m = c.held.get(c.seq + 1)) {
      c.held.delete(m.seq);
      this.apply(id, c, m);
    }
    for (const s of c.held.keys()) if (s <= c.seq) c.held.delete(s);
  }
}

function newCursor(seq: number, catchUp: boolean): ConversationCursor {
  return { seq, hello: false, helloFrom: seq, gapSyncs: 0, coverTo: 0, held: new Map(), overflow: false, catchUp, provisional: false };
}

function sortedHeld(c: ConversationCursor): Message[] {
  return [...c.held.values()].sort((a, b) => a.seq - b.seq);
}
