// The connection state machine: open a socket, authenticate with `hello`, watch it with a
// heartbeat, and when it drops decide from the close code whether to reconnect (with
// backoff), refresh the token first, or stop. It knows nothing of messages or cursors.
import { CLOSE_CODES, PROTOCOL_VERSION } from '@confab/protocol';
import type { ClientFrame, CloseCodeInfo, ServerFrame } from '@confab/protocol';
import type { Backoff } from './backoff.js';
import { decodeServerFrame } from './codec.js';
import { ConfabError } from './errors.js';
import { clearTimer, setTimer } from './platform.js';
import type { TimerHandle } from './platform.js';
import type { ConnectionState, StateChange, TokenContext, WebSocketConstructor, WebSocketLike, Welcome } from './types.js';

const CLOSE_ACTIONS = new Map<number, CloseCodeInfo>(Object.values(CLOSE_CODES).map((c) => [c.code, c]));
const OPEN = 1;
const noop = (): void => {};

/** How to connect. */
export interface ConnectionOptions {
  WebSocket: WebSocketConstructor;
  /** The `ws(s)://…/v1/ws` URL. */
  url: string;
  /** The token for `hello`. */
  token: (context: TokenContext) => string | Promise<string>;
  /** False when `token` cannot produce a fresh token (a fixed one): `token_expired` then stops. */
  canRefresh: boolean;
  backoff: Backoff;
  random: () => number;
  now: () => number;
  /** Socket open + `welcome`, at most. */
  handshakeTimeoutMs: number;
  /** Idle time before a heartbeat ping; 0 disables. */
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
}

/** What the connection reports to its owner. */
export interface ConnectionHandler {
  /** The cursors to send in `hello` (called when the socket opens). */
  hello(): Record<string, number>;
  /** The handshake succeeded; the state is `open`. */
  up(welcome: Welcome): void;
  /** A frame after `welcome` (and `error` frames before it). */
  frame(frame: ServerFrame): void;
  /** A server frame that does not match the protocol. */
  invalid(error: ConfabError): void;
  /** The socket is gone (before `reconnecting` or `closed` is entered). */
  down(): void;
  /** Every state change. */
  state(change: StateChange): void;
  /** Closed for good; `error` says why (`closed` for `close()`). */
  finished(error: ConfabError): void;
}

/** One logical connection that survives socket drops until it is closed. */
export class Connection {
  private current: ConnectionState = 'idle';
  /** Bumped whenever a socket is abandoned; handlers of older sockets then do nothing. */
  private gen = 0;
  private ws: WebSocketLike | undefined;
  /** The last id-less error frame of this attempt: explains a close that follows. */
  private lastError: ConfabError | undefined;
  private tokenExpired = false;
  private lastFrameAt = 0;
  private reconnectTimer: TimerHandle | undefined;
  private handshakeTimer: TimerHandle | undefined;
  private heartbeatTimer: TimerHandle | undefined;
  /** The network is down (see `setOnline`): no attempts until it is back. */
  private offline = false;

  /** @param options how to connect; @param handler the owner. */
  constructor(private readonly options: ConnectionOptions, private readonly handler: ConnectionHandler) {}

  /** The current state. */
  get state(): ConnectionState {
    return this.current;
  }

  /** Leaves `idle`: starts the first attempt. */
  start(): void {
    if (this.current !== 'idle') return;
    if (this.offline) this.setState('reconnecting', { reason: 'network offline' });
    else this.attempt();
  }

  /** True while the network is known to be down (see `setOnline`). */
  get isOffline(): boolean {
    return this.offline;
  }

  /**
   * The network went away (false) or came back (true). Offline: the socket is dropped at once
   * (a socket over a dead network may look open for a long time) and no attempt is made until
   * the network is back; the state is `reconnecting` meanwhile. Back online: a new attempt
   * starts at once, without waiting for the backoff.
   */
  setOnline(online: boolean): void {
    if (online === !this.offline) return;
    this.offline = !online;
    if (this.current === 'idle' || this.current === 'closed') return;
    if (online) {
      void closeSocket(this.detach());
      this.options.backoff.reset();
      this.attempt();
      return;
    }
    void closeSocket(this.detach());
    this.setState('reconnecting', { reason: 'network offline' });
  }

  /** Drops the socket (if any) and tries again at once. */
  reconnect(): void {
    if (this.current === 'idle' || this.current === 'closed' || this.offline) return;
    void closeSocket(this.detach());
    this.options.backoff.reset();
    this.setState('reconnecting', { reason: 'reconnect requested', delayMs: 0 });
    this.attempt();
  }

  /** Closes for good; resolves once the socket is closed. */
  close(): Promise<void> {
    if (this.current === 'closed') return Promise.resolve();
    const ws = this.detach();
    this.finish(1000, 'client closed', new ConfabError('closed', 'client closed'));
    return closeSocket(ws);
  }

  /** Sends a frame if the socket is open; false otherwise. */
  send(frame: ClientFrame): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  private attempt(): void {
    const gen = ++this.gen;
    this.lastError = undefined;
    this.setState('connecting');
    const ms = this.options.handshakeTimeoutMs;
    this.handshakeTimer = setTimer(() => this.lost(gen, undefined, `no welcome within ${ms} ms`), ms);
    const expired = this.tokenExpired;
    this.tokenExpired = false;
    void this.open(gen, { expired });
  }

  private async open(gen: number, context: TokenContext): Promise<void> {
    let token: string;
    try {
      token = await this.options.token(context);
      if (typeof token !== 'string' || token === '') throw new ConfabError('not_authenticated', 'getToken returned no token');
    } catch (err) {
      if (gen !== this.gen) return;
      if (err instanceof ConfabError && !err.retryable) {
        this.detach();
        this.finish(undefined, err.message, err);
      } else {
        this.lost(gen, undefined, `getToken failed: ${String(err)}`);
      }
      return;
    }
    if (gen !== this.gen) return;
    let ws: WebSocketLike;
    try {
      ws = new this.options.WebSocket(this.options.url);
    } catch (err) {
      this.lost(gen, undefined, `cannot open WebSocket: ${String(err)}`);
      return;
    }
    this.ws = ws;
    ws.onerror = noop; // a close event always follows
    ws.onopen = () => {
      if (gen !== this.gen) return;
      const cursors = this.handler.hello();
      this.send({ type: 'hello', v: PROTOCOL_VERSION, token, ...(Object.keys(cursors).length > 0 ? { cursors } : {}) });
    };
    ws.onmessage = (ev) => { if (gen === this.gen) this.onData(gen, ev.data); };
    ws.onclose = (ev) => this.lost(gen, ev.code, ev.reason);
  }

  private onData(gen: number, data: unknown): void {
    this.lastFrameAt = this.options.now();
    const decoded = decodeServerFrame(data);
    if (decoded.kind === 'skip') return;
    if (decoded.kind === 'invalid') { this.handler.invalid(decoded.error); return; }
    const frame = decoded.frame;
    if (frame.type === 'welcome') {
      if (this.current === 'open') return;
      clearTimer(this.handshakeTimer);
      this.handshakeTimer = undefined;
      this.options.backoff.reset();
      this.lastError = undefined;
      this.setState('open');
      this.heartbeat(gen, this.jittered(this.options.heartbeatIntervalMs));
      const { type: _type, ...welcome } = frame;
      this.handler.up(welcome);
      return;
    }
    if (frame.type === 'error' && frame.id === undefined) this.lastError = ConfabError.fromFrame(frame);
    if (this.current === 'open' || frame.type === 'error') this.handler.frame(frame);
  }

  /** The socket of attempt `gen` ended: reconnect, or stop for good when the close code says so. */
  private lost(gen: number, code: number | undefined, reason: string): void {
    if (gen !== this.gen || this.current === 'closed') return;
    void closeSocket(this.detach());
    const info = code === undefined ? undefined : CLOSE_ACTIONS.get(code);
    const why = reason || this.lastError?.message || info?.description || (code === undefined ? 'connection lost' : `closed with code ${code}`);
    const action = info?.action ?? 'reconnect';
    if (action === 'stop' || (action === 'refresh' && !this.options.canRefresh)) {
      this.finish(code, why, this.lastError ?? new ConfabError('closed', `connection closed (${code ?? 'no code'}): ${why}`));
      return;
    }
    if (action === 'refresh') this.tokenExpired = true;
    if (this.offline) {
      this.setState('reconnecting', { ...(code === undefined ? {} : { code }), reason: 'network offline' });
      return;
    }
    const delayMs = this.options.backoff.next();
    this.setState('reconnecting', { ...(code === undefined ? {} : { code }), reason: why, delayMs });
    this.reconnectTimer = setTimer(() => {
      this.reconnectTimer = undefined;
      this.attempt();
    }, delayMs);
  }

  /** Abandons the current socket (its handlers become no-ops) and its timers. */
  private detach(): WebSocketLike | undefined {
    this.gen++;
    const ws = this.ws;
    this.ws = undefined;
    // No-ops rather than null: the `ws` package throws on an 'error' event without a listener.
    if (ws) { ws.onopen = noop; ws.onmessage = noop; ws.onclose = noop; ws.onerror = noop; }
    for (const t of [this.reconnectTimer, this.handshakeTimer, this.heartbeatTimer]) clearTimer(t);
    this.reconnectTimer = this.handshakeTimer = this.heartbeatTimer = undefined;
    this.handler.down();
    return ws;
  }

  private finish(code: number | undefined, reason: string, error: ConfabError): void {
    this.setState('closed', { ...(code === undefined ? {} : { code }), reason });
    this.handler.finished(error);
  }

  private setState(state: ConnectionState, extra: Omit<StateChange, 'state' | 'previous'> = {}): void {
    const previous = this.current;
    if (previous === state && state !== 'reconnecting') return;
    this.current = state;
    this.handler.state({ state, previous, ...extra });
  }

  /** Pings after `heartbeatIntervalMs` without any frame; no frame within the timeout = dead. */
  private heartbeat(gen: number, delayMs: number): void {
    const { heartbeatIntervalMs: interval, heartbeatTimeoutMs: timeout, now } = this.options;
    if (interval <= 0) return;
    this.heartbeatTimer = setTimer(() => {
      if (gen !== this.gen) return;
      const idle = now() - this.lastFrameAt;
      if (idle < interval) { this.heartbeat(gen, interval - idle); return; }
      const sentAt = now();
      this.send({ type: 'ping' });
      this.heartbeatTimer = setTimer(() => {
        if (gen !== this.gen) return;
        if (this.lastFrameAt >= sentAt) this.heartbeat(gen, this.jittered(interval));
        else this.lost(gen, undefined, `no answer to ping within ${timeout} ms`);
      }, timeout);
    }, delayMs);
  }

  /** 80-100% of `ms`: clients that connected together do not ping together. */
  private jittered(ms: number): number {
    return ms * (0.8 + 0.2 * this.options.random());
  }
}

/** Closes a socket; resolves on its close event (or after 1 s, if the peer never answers). */
function closeSocket(ws: WebSocketLike | undefined): Promise<void> {
  if (!ws || ws.readyState >= 2) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimer(resolve, 1000);
    ws.onclose = () => { clearTimer(timer); resolve(); };
    try {
      ws.close(1000, 'client closed');
    } catch {
      clearTimer(timer);
      resolve();
    }
  });
}
