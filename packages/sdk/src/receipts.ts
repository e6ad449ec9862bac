// Delivery receipts going out, receipts and unread counts coming in. Outgoing `received`
// frames are coalesced: one timer for the whole client, at most one frame per conversation per
// `receiptDelayMs` (trailing edge), always carrying the cursor (never a seq beyond it).
import type { ClientFrameOf, Conversation } from '@confab/protocol';
import { clearTimer, setTimer } from './platform.js';
import type { TimerHandle } from './platform.js';
import type { ReadState, Receipts } from './types.js';

/** What the receipt sender needs from the client. */
export interface ReceiptHost {
  /** Sends a frame on the open connection; false when there is none. */
  transmit(frame: ClientFrameOf<'received'>): boolean;
  /** The cursor (last seq held) of a conversation, undefined when it is not tracked. */
  cursor(conversationId: string): number | undefined;
}

/** Coalesces delivery receipts: many delivered entries become few `received` frames. */
export class ReceiptSender {
  /** Conversations with entries delivered since their last receipt. */
  private readonly dirty = new Set<string>();
  /** Highest seq acknowledged per conversation (the server keeps the max; lower is useless). */
  private readonly sent = new Map<string, number>();
  private timer: TimerHandle | undefined;
  private running = false;

  /**
   * @param host the connection and the cursors
   * @param delayMs how long to hold receipts to coalesce a burst
   */
  constructor(private readonly host: ReceiptHost, private readonly delayMs: number) {}

  /** Entries of `conversationId` were delivered to the application: acknowledge them soon. */
  delivered(conversationId: string): void {
    this.dirty.add(conversationId);
    this.schedule();
  }

  /** The connection is ready: receipts that waited for it go out after the usual delay. */
  connected(): void {
    this.running = true;
    this.schedule();
  }

  /** The connection is gone: hold receipts until the next one. */
  disconnected(): void {
    this.running = false;
    clearTimer(this.timer);
    this.timer = undefined;
  }

  /** Sends every pending receipt now (e.g. before closing). */
  flush(): void {
    clearTimer(this.timer);
    this.timer = undefined;
    if (!this.running) return;
    for (const id of [...this.dirty]) {
      const seq = this.host.cursor(id);
      const last = this.sent.get(id) ?? 0;
      if (seq === undefined || seq <= last) { this.dirty.delete(id); continue; }
      if (!this.host.transmit({ type: 'received', conversationId: id, seq })) return;
      this.sent.set(id, seq);
      this.dirty.delete(id);
    }
  }

  /**
   * Acknowledges `seq` of a conversation now, outside the coalescing (capped at the cursor when
   * the conversation is tracked). False when nothing was sent (not connected, or already acknowledged).
   */
  send(conversationId: string, seq: number): boolean {
    const cursor = this.host.cursor(conversationId);
    const upTo = cursor === undefined ? seq : Math.min(seq, cursor);
    if (!this.running || upTo <= (this.sent.get(conversationId) ?? 0)) return false;
    if (!this.host.transmit({ type: 'received', conversationId, seq: upTo })) return false;
    this.sent.set(conversationId, upTo);
    return true;
  }

  /** Forgets a conversation (the user left it). */
  forget(conversationId: string): void {
    this.dirty.delete(conversationId);
    this.sent.delete(conversationId);
  }

  private schedule(): void {
    if (!this.running || this.timer !== undefined || this.dirty.size === 0) return;
    this.timer = setTimer(() => {
      this.timer = undefined;
      this.flush();
    }, this.delayMs);
  }
}

/** The latest receipts and read state (unread count) per conversation, as pushed by the server. */
export class ReceiptBook {
  private readonly receipts = new Map<string, Receipts>();
  private readonly reads = new Map<string, ReadState>();

  /** Records a `receipts` frame; returns the event payload. */
  setReceipts(conversationId: string, delivered: number, read: number): Receipts {
    const r = { conversationId, delivered, read };
    this.receipts.set(conversationId, r);
    return r;
  }

  /** Records a `read.state` frame; returns the event payload. */
  setReadState(conversationId: string, seq: number, unread: number): ReadState {
    const r = { conversationId, seq, unread };
    this.reads.set(conversationId, r);
    return r;
  }

  /** Seeds the read state from a conversation as the server described it (e.g. a `conversation` frame). */
  conversation(c: Conversation): void {
    this.reads.set(c.id, { conversationId: c.id, seq: c.readSeq, unread: c.unread });
  }

  /** The latest receipts of a conversation, if any arrived. */
  receiptsOf(conversationId: string): Receipts | undefined {
    return this.receipts.get(conversationId);
  }

  /** The latest read state of a conversation, if known. */
  readStateOf(conversationId: string): ReadState | undefined {
    return this.reads.get(conversationId);
  }

  /** Forgets a conversation (the user left it). */
  forget(conversationId: string): void {
    this.receipts.delete(conversationId);
    this.reads.delete(conversationId);
  }
}
