// The WebSocket adapter: binds `ws` to ClientSession. Size limits, UTF-8 and binary checks
// happen here so a bad frame becomes an error frame, not a dropped connection.
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import * as wsModule from 'ws';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { AppError } from '../errors.js';
import type { OriginPolicy } from '../http/origins.js';
import { CLOSE_CODES } from '@confab/protocol';
import { TokenBucket } from '../core/rate-limit.js';
import { ClientSession, type GatewayContext, type SharedFrame } from './session.js';

export const WS_PATH = '/v1/ws';

/** Close codes counted by value in metrics (RFC 6455's and ours); any other counts as `other`. */
const KNOWN_CLOSE_CODES = new Set<number>([1000, 1001, 1005, 1006, 1009, 1011, ...Object.values(CLOSE_CODES).map((c) => c.code)]);

/** The error a slow consumer's socket is destroyed with (see WsGateway#cutSlow). */
const SLOW_CONSUMER = Object.assign(new Error('slow consumer: outbound bound passed'), { code: 'CONFAB_SLOW_CONSUMER' });

/**
 * What the gateway knows of how far a connection has read (see WsGateway#out): counted in bytes
 * of the live frames pushed to it. Catch-up pages and answers are paced by the writes themselves
 * and are not counted.
 */
interface ReadProgress {
  /** Bytes of live frames written to the connection so far (into the node's or the kernel's buffers). */
  pushed: number;
  /** `pushed` as of the last probe the client answered: it has read all of that. */
  read: number;
  /** `pushed` when the outstanding probe (a ping carrying this number) was sent; -1: none outstanding. */
  probe: number;
  /** When the outstanding probe was sent (ms). */
  probeSentAt: number;
  /** Frames held in the node while the client is more than half the bound behind, oldest first. */
  held: Held[];
  /** Bytes of the live frames in `held`. */
  heldBytes: number;
}

/** A frame waiting in the node for its connection to read: a live one, or an answer to be written with a callback. */
type Held = { text: string; wire: Uint8Array; done?: undefined } | { text: string; wire?: undefined; done: () => void };

/**
 * How long a probe may go unanswered before its connection counts as behind (see WsGateway#out).
 * A client that reads answers within its round trip, even while a burst larger than the bound is
 * on its way to it; one that has read nothing for this long while more than the bound was sent
 * to it has stopped.
 */
const PROBE_GRACE_MS = 2000;

/** Most bytes held back in one socket by corking (see WsGateway#write). */
const CORK_BYTES = 16 * 1024;

/** ws's frame builder (`WebSocket.Sender.frame`), the call `ws.send` makes for every frame. */
const Sender = (wsModule as unknown as { Sender: { frame(data: Buffer, o: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[] } }).Sender;

/** The bytes `ws.send(text)` writes for a text frame from a server (unmasked, uncompressed). */
function wireOf(text: string): Buffer {
  return Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }));
}

/**
 * A frame on its way to a connection: its text, and its wire bytes once built. A SharedFrame is
 * one, so a live entry is framed once for all of its connections, and handing it on allocates
 * nothing per connection (this runs for every delivery).
 */
interface Outgoing { readonly text: string; wire: Uint8Array | undefined }

const wire = (frame: Outgoing): Uint8Array => (frame.wire ??= wireOf(frame.text));

/** The TCP socket under a ws connection (ws keeps it in a private field; absent once detached). */
function socketOf(ws: WebSocket): Socket | undefined {
  return (ws as unknown as { _socket?: Socket })._socket;
}

/**
 * The TCP socket, when ws has nothing of its own queued: compression is off, so ws's sender only
 * queues while it reads a Blob, which we never send. Writing the pre-built bytes there is what
 * `ws.send` does after framing.
 */
function rawSocketOf(ws: WebSocket): Socket | undefined {
  return (ws as unknown as { _sender?: { _state?: number } })._sender?._state === 0 ? socketOf(ws) : undefined;
}

export class WsGateway {
  readonly #wss: WebSocketServer;
  readonly #sessions = new Map<WebSocket, ClientSession>();
  readonly #progress = new Map<WebSocket, ReadProgress>();
  readonly #heartbeats = new Map<WebSocket, NodeJS.Timeout>();
  #closing = false;

  /** Admission control: new sessions per second (absent: no cap). */
  readonly #admission: TokenBucket | undefined;
  /** Back-pressure: most bytes waiting to be written to one connection before it is cut off. */
  private readonly maxOutboundBytes: number;
  /** Sockets corked in this turn of the event loop (see #write), with the bytes corked in each. */
  readonly #corked = new Map<Socket, number>();
  readonly #uncorkAll = (): void => {
    for (const socket of this.#corked.keys()) socket.uncork();
    this.#corked.clear();
  };

  constructor(server: Server, private readonly ctx: GatewayContext, opts: { origins?: OriginPolicy; newSessionsPerSecond?: number; maxOutboundBytes: number }) {
    const { origins, newSessionsPerSecond: rate = 0 } = opts;
    this.maxOutboundBytes = opts.maxOutboundBytes;
    this.#admission = rate > 0 ? new TokenBucket(rate, Math.max(1, rate)) : undefined;
    this.#wss = new WebSocketServer({
      noServer: true,
      // Frames past 4x the limit are not even buffered: ws closes with 1009.
      maxPayload: ctx.limits.maxFrameBytes * 4,
      // We validate UTF-8 ourselves, to answer with an error frame instead of closing.
      skipUTF8Validation: true,
      perMessageDeflate: false,
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Node removes the HTTP server's error listener before 'upgrade': without one, a peer
      // that resets the connection would raise an unhandled 'error' and end the process.
      socket.on('error', () => socket.destroy());
      const path = (req.url ?? '').split('?')[0];
      if (path !== WS_PATH || this.#closing) {
        socket.once('finish', () => socket.destroy());
        socket.end(`HTTP/1.1 ${this.#closing ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      if (origins && !origins.allows(req.headers.origin, req.headers.host)) {
        // A page of another site may not open a socket with its visitor's browser.
        const body = JSON.stringify({ error: new AppError('origin_not_allowed', 'This origin may not open a WebSocket here (ALLOWED_ORIGINS).').toBody() });
        socket.once('finish', () => socket.destroy());
        socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => {
        if (this.#admission && this.#admission.take() > 0) {
          // Over the admission rate: the client learns why from the close code and backs off.
          ws.on('error', () => undefined);
          ws.close(CLOSE_CODES.try_again_later.code, 'try_again_later');
          // A peer that never answers the close does not hold the socket for long.
          setTimeout(() => ws.terminate(), 2000).unref();
          return;
        }
        this.#accept(ws);
      });
    });
  }

  get connections(): number {
    return this.#sessions.size;
  }

  /** Bytes waiting in the node to be written to the connections: all together, and the most for one. */
  outbound(): { total: number; max: number } {
    let total = 0;
    let max = 0;
    for (const [ws, progress] of this.#progress) {
      const b = ws.bufferedAmount + progress.heldBytes;
      total += b;
      if (b > max) max = b;
    }
    return { total, max };
  }

  #accept(ws: WebSocket): void {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const progress: ReadProgress = { pushed: 0, read: 0, probe: -1, probeSentAt: 0, held: [], heldBytes: 0 };
    const session = new ClientSession(randomUUID(), {
      send: (text) => new Promise<void>((resolve) => {
        if (ws.readyState !== ws.OPEN) return resolve();
        // While live frames are held for a client that is behind, answers queue behind them.
        if (progress.held.length > 0) progress.held.push({ text, done: resolve });
        else ws.send(text, () => resolve());
      }),
      push: (text) => this.#out(ws, session, progress, { text, wire: undefined }),
      pushShared: (frame: SharedFrame) => this.#out(ws, session, progress, frame),
      close: (code, reason) => ws.close(code, reason),
    }, this.ctx);
    this.#sessions.set(ws, session);
    this.#progress.set(ws, progress);
    this.ctx.metrics.connectionsOpened.inc();
    let lastHeard = Date.now();
    this.#heartbeat(ws, () => lastHeard);
    ws.on('pong', (data: Buffer) => {
      lastHeard = Date.now();
      // The answer to a probe: the client has read everything written before it. Heartbeat
      // pings carry no number, and a number we did not send proves nothing.
      if (progress.probe >= 0 && data.length > 0 && Number(data.toString('latin1')) === progress.probe) {
        progress.read = progress.probe;
        progress.probe = -1;
        if (progress.held.length > 0) this.#release(ws, progress);
      }
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
      lastHeard = Date.now();
      if (isBinary) return session.onBinary();
      const buf = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (buf.length > this.ctx.limits.maxFrameBytes) return session.onOversize(buf.length);
      let text: string;
      try {
        text = decoder.decode(buf);
      } catch {
        return session.onInvalidUtf8();
      }
      session.onText(text);
    });
    ws.on('close', (code: number) => {
      this.ctx.metrics.connectionsClosed.labels(KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other').inc();
      this.#sessions.delete(ws);
      this.#progress.delete(ws);
      // Answers held for it are dropped; whoever waits for them to be written goes on.
      for (const h of progress.held) h.done?.();
      progress.held = [];
      progress.heldBytes = 0;
      clearTimeout(this.#heartbeats.get(ws));
      this.#heartbeats.delete(ws);
      session.onClosed();
    });
    ws.on('error', (err) => this.ctx.log.debug({ err: err.message, conn: session.id }, 'websocket error'));
  }

  /**
   * Sends one live frame to one connection: the bytes straight to its socket when ws has nothing
   * of its own queued (`bytes` may be shared by many connections), else through ws.
   *
   * Back-pressure: a client that does not read would have the node write its frames without
   * bound, first into the kernel's socket buffers (megabytes per connection, which the node can
   * neither see nor shrink), then into the node's memory. So the node tracks what the client has
   * shown it read: a probe is a ping carrying the count of bytes pushed so far, sent once a
   * quarter of the bound is unproven, and the client's WebSocket stack answers it (RFC 6455) when
   * it has read up to it. The node writes at most half the bound (and one frame) past what was
   * shown read; later frames wait in the node, in order, until the answer comes (#release). A
   * reader answers within its round trip, so it is held up by at most that; a client that stopped
   * reading costs the node no more writes, and the kernel holds at most half the bound for it. A
   * client is cut off when more than `maxOutboundBytes` wait in the node for it, or when it is
   * more than that behind its last answer and the probe after it has been unanswered for
   * PROBE_GRACE_MS. It reconnects and resumes from its cursors.
   */
  #out(ws: WebSocket, session: ClientSession, progress: ReadProgress, frame: Outgoing): void {
    if (ws.readyState !== ws.OPEN) return;
    const raw = rawSocketOf(ws);
    const waiting = this.#waiting(ws, raw);
    if (waiting + progress.heldBytes > this.maxOutboundBytes) return this.#cutSlow(ws, session, 'buffered', progress);
    if (progress.pushed + progress.heldBytes - progress.read > this.maxOutboundBytes && progress.probe >= 0 && Date.now() - progress.probeSentAt > PROBE_GRACE_MS) {
      return this.#cutSlow(ws, session, 'unread', progress);
    }
    if (progress.held.length > 0 || progress.pushed - progress.read > this.maxOutboundBytes / 2) {
      // Behind by more than half the bound: a probe is out (one goes out at a quarter), and its
      // answer releases this frame.
      const b = wire(frame);
      progress.held.push({ text: frame.text, wire: b });
      progress.heldBytes += b.length;
      return;
    }
    this.#pushNow(ws, raw, waiting, progress, frame);
    this.#probe(ws, progress);
  }

  /**
   * Bytes waiting in ws and in the socket's stream for a connection, less those corked in this
   * turn: they are not late, they leave at its end.
   */
  #waiting(ws: WebSocket, raw: Socket | undefined): number {
    return ws.bufferedAmount - ((raw && this.#corked.get(raw)) || 0);
  }

  /** Writes a live frame and counts it as pushed. */
  #pushNow(ws: WebSocket, raw: Socket | undefined, waiting: number, progress: ReadProgress, frame: Outgoing): void {
    if (raw) {
      const b = wire(frame);
      progress.pushed += b.length;
      this.#write(raw, b, waiting);
    } else {
      progress.pushed += Buffer.byteLength(frame.text) + 4;
      ws.send(frame.text);
    }
  }

  /** Sends a probe when a quarter of the bound is unproven and none is out. */
  #probe(ws: WebSocket, progress: ReadProgress): void {
    if (progress.probe < 0 && progress.pushed - progress.read >= this.maxOutboundBytes / 4) {
      progress.probe = progress.pushed;
      progress.probeSentAt = Date.now();
      ws.ping(String(progress.pushed));
    }
  }

  /**
   * The client answered a probe while frames were held for it: writes them, oldest first, until
   * it is half the bound behind again (the next probe's answer releases the rest).
   */
  #release(ws: WebSocket, progress: ReadProgress): void {
    if (ws.readyState !== ws.OPEN) return;
    const { held } = progress;
    let i = 0;
    for (; i < held.length; i++) {
      const h = held[i]!;
      if (h.done) {
        ws.send(h.text, () => h.done());
        continue;
      }
      if (progress.pushed - progress.read > this.maxOutboundBytes / 2) break;
      const raw = rawSocketOf(ws);
      progress.heldBytes -= h.wire.length;
      this.#pushNow(ws, raw, this.#waiting(ws, raw), progress, h);
    }
    held.splice(0, i);
    this.#probe(ws, progress);
  }

  /**
   * Writes a frame's bytes, corking the socket until the current turn of the event loop (its
   * microtasks included) is over: the small frames one turn produces for a connection (a commit's
   * ack and the sender's copy of the entry, a receipt) leave in one system call instead of one
   * each. A socket with bytes already waiting is not corked (the kernel is not taking them
   * anyway), and one with CORK_BYTES corked is written out at once: corking never holds back
   * more than that, and the back-pressure bound keeps its meaning.
   */
  #write(socket: Socket, bytes: Uint8Array, waiting: number): void {
    const corked = this.#corked.get(socket);
    if (corked === undefined) {
      if (waiting > 0 || bytes.length >= CORK_BYTES) {
        socket.write(bytes);
        return;
      }
      if (this.#corked.size === 0) process.nextTick(this.#uncorkAll);
      socket.cork();
      this.#corked.set(socket, bytes.length);
      socket.write(bytes);
      return;
    }
    socket.write(bytes);
    if (corked + bytes.length < CORK_BYTES) {
      this.#corked.set(socket, corked + bytes.length);
    } else {
      this.#corked.delete(socket);
      socket.uncork();
    }
  }

  /**
   * Closes a connection that fell behind past the bound: with that much waiting in the node
   * (`buffered`), or sent and not shown read (`unread`). The close frame queues behind
   * what the client is not reading, so the socket is destroyed right after: its buffers are
   * freed now, not when the client gets round to reading.
   */
  #cutSlow(ws: WebSocket, session: ClientSession, bound: 'buffered' | 'unread', progress: ReadProgress): void {
    this.ctx.log.info({ conn: session.id, user: session.userId, bound, buffered: ws.bufferedAmount + progress.heldBytes, unread: progress.pushed + progress.heldBytes - progress.read }, 'slow consumer cut off');
    this.ctx.metrics.slowConsumers.labels(bound).inc();
    session.close('slow_consumer');
    setImmediate(() => {
      // Destroyed with an error, so the hundreds of frames still queued for it are dropped with
      // that one error: destroyed without one (ws.terminate()), Node builds an error per queued
      // write, and 100 consumers cut off together held the event loop for 200 ms.
      const socket = socketOf(ws);
      if (socket) socket.destroy(SLOW_CONSUMER);
      else ws.terminate();
    });
  }

  /** Stops taking new connections and writes; open connections keep receiving until close(). */
  drain(): void {
    this.#closing = true;
    for (const s of this.#sessions.values()) s.drain();
  }

  /**
   * Pings each connection on its own schedule: the mean interval ±20%, so pings (and the
   * reconnects of clients that time out) do not line up after a restart. A connection not
   * heard from for `heartbeatTimeoutMs` is terminated: its device is gone.
   */
  #heartbeat(ws: WebSocket, lastHeard: () => number): void {
    const { heartbeatIntervalMs: interval, heartbeatTimeoutMs: timeout } = this.ctx.limits;
    const next = () => {
      const t = setTimeout(() => {
        if (ws.readyState !== ws.OPEN) return;
        if (Date.now() - lastHeard() >= timeout) {
          ws.terminate();
          return;
        }
        ws.ping();
        next();
      }, Math.min(interval * (0.8 + Math.random() * 0.4), Math.max(1, timeout - (Date.now() - lastHeard()))));
      t.unref();
      this.#heartbeats.set(ws, t);
    };
    next();
  }

  /**
   * Closes every connection with `going_away` (clients reconnect elsewhere), gives them
   * `graceMs` to finish the closing handshake, then drops whatever is left.
   */
  async close(graceMs = 2000): Promise<void> {
    this.drain();
    for (const t of this.#heartbeats.values()) clearTimeout(t);
    const open = [...this.#sessions.keys()];
    const closed = Promise.all(open.map((ws) => new Promise<void>((resolve) => {
      if (ws.readyState === ws.CLOSED) return resolve();
      ws.once('close', () => resolve());
    })));
    for (const s of this.#sessions.values()) s.close('going_away');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); })]);
    clearTimeout(timer);
    for (const ws of open) if (ws.readyState !== ws.CLOSED) ws.terminate();
    await closed;
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}
