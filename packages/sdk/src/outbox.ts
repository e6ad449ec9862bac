// The ordered outbox of sends, edits and deletes. Frames leave in the order they were queued,
// pipelined up to a window, paced by a token bucket. Nothing is lost on a disconnect: every
// unacked operation is resent after the next `welcome`, in order and with the same client id,
// and the server's deduplication turns a resend of a committed one into its original ack.
import { utf8Length } from '@confab/protocol';
import type { ClientFrameOf, Limits, Message } from '@confab/protocol';
import { ConfabError } from './errors.js';
import { clearTimer, setTimer } from './platform.js';
import type { TimerHandle } from './platform.js';
import type { TokenBucket } from './bucket.js';
import { retryDelay } from './retry.js';

/** One queued operation, without its per-transmission request id. */
export type OutboxOp =
  | { type: 'send'; conversationId: string; clientId: string; text: string }
  | { type: 'edit'; conversationId: string; messageId: string; clientId: string; text: string }
  | { type: 'delete'; conversationId: string; messageId: string; clientId: string };

type OutboxFrame = ClientFrameOf<'send'> | ClientFrameOf<'edit'> | ClientFrameOf<'delete'>;

/** What the outbox needs from the connection. */
export interface OutboxHost {
  /** Sends a frame on the open connection; false when there is none. */
  transmit(frame: OutboxFrame): boolean;
  /** A request id unique within the client. */
  newRequestId(): string;
  /** The limits announced in the current `welcome`. */
  limits(): Limits;
  /** Random source for retry jitter. */
  random(): number;
}

interface Entry {
  /** Position in the queue. */
  readonly key: number;
  readonly op: OutboxOp;
  readonly resolve: (message: Message) => void;
  readonly reject: (error: ConfabError) => void;
  /** Set while transmitted on the current connection and not answered. */
  requestId: string | undefined;
  /** Retryable errors so far. */
  failures: number;
}

/** Ordered, windowed, paced queue of operations that must reach the server exactly once. */
export class Outbox {
  /** Insertion-ordered: the order operations were queued in. */
  private readonly queue = new Map<number, Entry>();
  private readonly inflight = new Map<string, Entry>();
  private nextKey = 0;
  private running = false;
  private timer: TimerHandle | undefined;
  private timerAt = 0;

  /**
   * @param host the connection
   * @param bucket pacing shared by every operation
   * @param window most operations in flight at once
   */
  constructor(private readonly host: OutboxHost, private readonly bucket: TokenBucket, private readonly window: number) {}

  /** Operations queued or in flight. */
  get size(): number {
    return this.queue.size;
  }

  /** Queues an operation; resolves with the committed entry, rejects only on a non-retryable error. */
  enqueue(op: OutboxOp): Promise<Message> {
    return new Promise<Message>((resolve, reject) => {
      const key = this.nextKey++;
      this.queue.set(key, { key, op, resolve, reject, requestId: undefined, failures: 0 });
      this.pump();
    });
  }

  /** The connection is ready (after `welcome`): transmit what is queued. */
  start(): void {
    this.running = true;
    this.pump();
  }

  /** The connection is gone: whatever was in flight is unanswered and will be resent. */
  stop(): void {
    this.running = false;
    this.cancelTimer();
    for (const e of this.inflight.values()) e.requestId = undefined;
    this.inflight.clear();
  }

  /** Handles an `ack`; false when `requestId` is not one of ours. */
  ack(requestId: string, message: Message): boolean {
    const e = this.take(requestId);
    if (!e) return false;
    e.resolve(message);
    this.pump();
    return true;
  }

  /** Handles an `error` answering `requestId`; false when it is not one of ours. */
  error(requestId: string, error: ConfabError): boolean {
    const e = this.inflight.get(requestId);
    if (!e) return false;
    this.inflight.delete(requestId);
    e.requestId = undefined;
    if (error.retryable) {
      // Keep its place in the queue and hold everything back, so order is kept and the
      // server gets the pause it asked for.
      e.failures++;
      this.delay(retryDelay(error, e.failures, () => this.host.random()));
      return true;
    }
    this.queue.delete(e.key);
    e.reject(error);
    this.pump();
    return true;
  }

  /** Rejects everything (the client is closed). */
  failAll(error: ConfabError): void {
    this.stop();
    const entries = [...this.queue.values()];
    this.queue.clear();
    for (const e of entries) e.reject(error);
  }

  private pump(): void {
    if (!this.running || this.timer !== undefined) return;
    for (const e of this.queue.values()) {
      if (this.inflight.size >= this.window) return;
      if (e.requestId !== undefined) continue;
      const id = this.host.newRequestId();
      const frame = toFrame(e.op, id);
      const tooBig = checkSize(frame, this.host.limits());
      if (tooBig) {
        this.queue.delete(e.key);
        e.reject(tooBig);
        continue;
      }
      const wait = this.bucket.take();
      if (wait > 0) { this.delay(wait); return; }
      if (!this.host.transmit(frame)) return;
      e.requestId = id;
      this.inflight.set(id, e);
    }
  }

  /** Pauses transmission for `ms` (the longest of overlapping pauses wins). */
  private delay(ms: number): void {
    const at = Date.now() + ms;
    if (this.timer !== undefined && this.timerAt >= at) return;
    this.cancelTimer();
    this.timerAt = at;
    this.timer = setTimer(() => {
      this.timer = undefined;
      this.pump();
    }, ms);
  }

  private cancelTimer(): void {
    clearTimer(this.timer);
    this.timer = undefined;
  }

  private take(requestId: string): Entry | undefined {
    const e = this.inflight.get(requestId);
    if (!e) return undefined;
    this.inflight.delete(requestId);
    this.queue.delete(e.key);
    return e;
  }
}

function toFrame(op: OutboxOp, id: string): OutboxFrame {
  return { ...op, id };
}

function checkSize(frame: OutboxFrame, limits: Limits): ConfabError | undefined {
  if (frame.type !== 'delete' && utf8Length(frame.text) > limits.maxMessageBytes) {
    return new ConfabError('message_too_large', `message is longer than ${limits.maxMessageBytes} UTF-8 bytes`);
  }
  // JSON escaping grows a character to at most 6 bytes; only measure frames that could be too big.
  const bound = (frame.type === 'delete' ? 0 : frame.text.length * 6) + 1024;
  if (bound > limits.maxFrameBytes && utf8Length(JSON.stringify(frame)) > limits.maxFrameBytes) {
    return new ConfabError('frame_too_large', `frame is larger than ${limits.maxFrameBytes} bytes`);
  }
  return undefined;
}
