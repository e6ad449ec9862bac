// Requests answered by a frame with the same id (read, sync, history, ping). They are
// idempotent, so they wait through reconnects and are resent on the next connection; only
// their overall timeout, a non-retryable error or `close()` ends them with a rejection.
import type { ClientFrame, ServerFrame } from '@confab/protocol';
import { ConfabError } from './errors.js';
import { clearTimer, setTimer } from './platform.js';
import type { TimerHandle } from './platform.js';
import { retryDelay } from './retry.js';

/** What pending requests need from the connection. */
export interface RequestsHost {
  /** Sends a frame on the open connection; false when there is none. */
  transmit(frame: ClientFrame): boolean;
  /** A request id unique within the client. */
  newRequestId(): string;
  /** Random source for retry jitter. */
  random(): number;
}

interface Pending {
  readonly build: (id: string) => ClientFrame;
  readonly accept: (frame: ServerFrame) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: ConfabError) => void;
  readonly timeout: TimerHandle;
  id: string | undefined;
  retry: TimerHandle | undefined;
  failures: number;
}

/** The set of requests waiting for their answer frame. */
export class Requests {
  private readonly all = new Set<Pending>();
  private readonly byId = new Map<string, Pending>();
  private running = false;

  /**
   * @param host the connection
   * @param timeoutMs how long a request may wait for its answer, reconnects included
   */
  constructor(private readonly host: RequestsHost, private readonly timeoutMs: number) {}

  /**
   * Sends `build(id)` now or once connected; resolves with `accept(answer)`. `accept` throws
   * (a {@link ConfabError}) when the answer is not the kind of frame the request expects.
   */
  request<T>(build: (id: string) => ClientFrame, accept: (frame: ServerFrame) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const p: Pending = {
        build,
        accept,
        resolve: resolve as (value: unknown) => void,
        reject,
        id: undefined,
        retry: undefined,
        failures: 0,
        timeout: setTimer(() => this.settle(p, new ConfabError('timeout', `no answer within ${this.timeoutMs} ms`)), this.timeoutMs),
      };
      this.all.add(p);
      this.transmit(p);
    });
  }

  /** The connection is ready: send whatever waits. */
  start(): void {
    this.running = true;
    for (const p of this.all) if (p.id === undefined && p.retry === undefined) this.transmit(p);
  }

  /** The connection is gone: answers to what was sent will never come; resend later. */
  stop(): void {
    this.running = false;
    for (const p of this.byId.values()) p.id = undefined;
    this.byId.clear();
  }

  /** Delivers an answer frame; false when `id` is not one of ours. */
  answer(id: string, frame: ServerFrame): boolean {
    const p = this.byId.get(id);
    if (!p) return false;
    try {
      const value = p.accept(frame);
      this.settle(p, undefined, value);
    } catch (err) {
      this.settle(p, err instanceof ConfabError ? err : new ConfabError('bad_response', String(err)));
    }
    return true;
  }

  /** Delivers an `error` answer; retryable ones are resent after the delay. False when not ours. */
  error(id: string, error: ConfabError): boolean {
    const p = this.byId.get(id);
    if (!p) return false;
    if (!error.retryable) {
      this.settle(p, error);
      return true;
    }
    this.byId.delete(id);
    p.id = undefined;
    p.failures++;
    p.retry = setTimer(() => {
      p.retry = undefined;
      this.transmit(p);
    }, retryDelay(error, p.failures, () => this.host.random()));
    return true;
  }

  /** Rejects everything (the client is closed). */
  failAll(error: ConfabError): void {
    for (const p of [...this.all]) this.settle(p, error);
    this.running = false;
  }

  private transmit(p: Pending): void {
    if (!this.running || !this.all.has(p)) return;
    const id = this.host.newRequestId();
    if (!this.host.transmit(p.build(id))) return;
    p.id = id;
    this.byId.set(id, p);
  }

  private settle(p: Pending, error: ConfabError | undefined, value?: unknown): void {
    if (!this.all.delete(p)) return;
    if (p.id !== undefined) this.byId.delete(p.id);
    clearTimer(p.timeout);
    clearTimer(p.retry);
    if (error) p.reject(error);
    else p.resolve(value);
  }
}
