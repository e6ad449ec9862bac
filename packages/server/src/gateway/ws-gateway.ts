// The WebSocket adapter: binds `ws` to ClientSession. Host, origin and admission checks happen
// at the upgrade, before anything is allocated for a connection; size limits, UTF-8 and binary
// checks happen here so a bad frame becomes an error frame, not a dropped connection; and every
// byte written to a connection goes through one outbound budget (#out).
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomBytes, randomUUID } from 'node:crypto';
import * as wsModule from 'ws';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { AppError } from '../errors.js';
import type { AddressOf } from '../http/client-address.js';
import type { HostPolicy } from '../http/hosts.js';
import type { OriginPolicy } from '../http/origins.js';
import { CLOSE_CODES } from '@confab/protocol';
import { KeyedBuckets } from '../core/rate-limit.js';
import { ClientSession, type GatewayContext, type SharedFrame } from './session.js';

export const WS_PATH = '/v1/ws';

/** Close codes counted by value in metrics (RFC 6455's and ours); any other counts as `other`. */
const KNOWN_CLOSE_CODES = new Set<number>([1000, 1001, 1005, 1006, 1009, 1011, ...Object.values(CLOSE_CODES).map((c) => c.code)]);

/** The error a slow consumer's socket is destroyed with (see WsGateway#cutSlow). */
const SLOW_CONSUMER = Object.assign(new Error('slow consumer: outbound bound passed'), { code: 'CONFAB_SLOW_CONSUMER' });

/**
 * What the gateway knows of how far a connection has read (see WsGateway#out): counted in bytes
 * of every frame written to it, live frames, answers and catch-up pages alike.
 */
interface ReadProgress {
  /** Bytes of frames written to the connection so far (into the node's or the kernel's buffers). */
  pushed: number;
  /** `pushed` as of the last probe the client answered: it has read all of that. */
  read: number;
  /** `pushed` when the outstanding probe (a ping carrying this number) was sent; -1: none outstanding. */
  probe: number;
  /** When the outstanding probe was sent (ms). */
  probeSentAt: number;
  /** A secret of this connection in every probe, so that a client that does not read cannot answer one. */
  nonce: string;
  /** Frames held in the node while the client is more than half the bound behind, oldest first. */
  held: Held[];
  /** Bytes of the frames in `held`. */
  heldBytes: number;
}

/** A frame waiting in the node for its connection to read, with what to call once it is written (catch-up pacing). */
interface Held { text: string; wire: Uint8Array; done: (() => void) | undefined }

/** How long a connection closed by the node may take to answer the close frame before its socket is destroyed. */
const CLOSE_GRACE_MS = 2000;

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

/** What the gateway needs besides the sessions' context. */
export interface GatewayOptions {
  origins?: OriginPolicy | undefined;
  hosts?: HostPolicy | undefined;
  /** The client address of an upgrade request (TRUST_PROXY aware). */
  addressOf: AddressOf;
  /** New connections per client address per second, two seconds' worth at once (0: no limit). */
  newSessionsPerAddress: number;
  /** Connections not yet past `hello`, per client address and on the node (0: no cap). */
  maxPendingPerAddress: number;
  maxPendingConnections: number;
  /** Back-pressure: the outbound budget of one connection (MAX_OUTBOUND_BYTES). */
  maxOutboundBytes: number;
}

/** An HTTP answer written to a socket instead of an upgrade: the protocol's error body, then the socket ends. */
function refuseUpgrade(socket: Duplex, status: string, error: AppError, headers: string[] = []): void {
  const body = JSON.stringify({ error: error.toBody() });
  socket.once('finish', () => socket.destroy());
  socket.end([`HTTP/1.1 ${status}`, 'Content-Type: application/json; charset=utf-8', `Content-Length: ${Buffer.byteLength(body)}`, ...headers, 'Connection: close', '', body].join('\r\n'));
}

export class WsGateway {
  readonly #wss: WebSocketServer;
  readonly #sessions = new Map<WebSocket, ClientSession>();
  readonly #progress = new Map<WebSocket, ReadProgress>();
  readonly #heartbeats = new Map<WebSocket, NodeJS.Timeout>();
  #closing = false;

  /** New connections per client address (admission before authentication). */
  readonly #perAddress: KeyedBuckets<string>;
  /** Connections not yet past `hello`, by client address, and in all. */
  readonly #pending = new Map<string, number>();
  #pendingTotal = 0;
  /** Back-pressure: the outbound budget of one connection. */
  private readonly maxOutboundBytes: number;
  /** Sockets corked in this turn of the event loop (see #write), with the bytes corked in each. */
  readonly #corked = new Map<Socket, number>();
  readonly #uncorkAll = (): void => {
    for (const socket of this.#corked.keys()) socket.uncork();
    this.#corked.clear();
  };

  constructor(server: Server, private readonly ctx: GatewayContext, private readonly opts: GatewayOptions) {
    this.maxOutboundBytes = opts.maxOutboundBytes;
    this.#perAddress = new KeyedBuckets(opts.newSessionsPerAddress, opts.newSessionsPerAddress * 2);
    this.#wss = new WebSocketServer({
      noServer: true,
      // Frames past 4x the limit are not even buffered: ws closes with 1009.
      maxPayload: ctx.limits.maxFrameBytes * 4,
      // We validate UTF-8 ourselves, to answer with an error frame instead of closing.
      skipUTF8Validation: true,
      perMessageDeflate: false,
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
  }

  get connections(): number {
    return this.#sessions.size;
  }

  /** Connections not yet past `hello`. */
  get pending(): number {
    return this.#pendingTotal;
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

  /**
   * Everything that can refuse a connection happens here, before the WebSocket handshake, with a
   * plain HTTP answer: nothing is allocated for a refused client, and a flood from one address
   * is refused on its own allowance without touching anyone else's or the node's.
   */
  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node removes the HTTP server's error listener before 'upgrade': without one, a peer
    // that resets the connection would raise an unhandled 'error' and end the process.
    socket.on('error', () => socket.destroy());
    const path = (req.url ?? '').split('?')[0];
    if (path !== WS_PATH || this.#closing) {
      socket.once('finish', () => socket.destroy());
      socket.end(`HTTP/1.1 ${this.#closing ? '503 Service Unavailable' : '404 Not Found'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    const { hosts, origins } = this.opts;
    if (hosts && !hosts.allows(req.headers.host)) {
      this.ctx.metrics.error('host_not_allowed');
      return refuseUpgrade(socket, '421 Misdirected Request', new AppError('host_not_allowed', 'This node does not answer to that host name (ALLOWED_HOSTS).'));
    }
    if (origins && !origins.allows(req.headers.origin, req.headers.host)) {
      // A page of another site may not open a socket with its visitor's browser.
      this.ctx.metrics.error('origin_not_allowed');
      return refuseUpgrade(socket, '403 Forbidden', new AppError('origin_not_allowed', 'This origin may not open a WebSocket here (ALLOWED_ORIGINS).'));
    }
    const address = this.opts.addressOf(req);
    const { maxPendingConnections: nodeCap, maxPendingPerAddress: addressCap } = this.opts;
    if (nodeCap > 0 && this.#pendingTotal >= nodeCap) {
      this.ctx.metrics.admissionRefused.labels('pending_node').inc();
      return refuseUpgrade(socket, '503 Service Unavailable', new AppError('unavailable', `This node has ${nodeCap} connections waiting for hello; retry later.`, { retryAfterMs: 1000 }), ['Retry-After: 1']);
    }
    if (addressCap > 0 && (this.#pending.get(address) ?? 0) >= addressCap) {
      this.ctx.metrics.admissionRefused.labels('pending_address').inc();
      return refuseUpgrade(socket, '429 Too Many Requests', new AppError('rate_limited', `At most ${addressCap} connections per address may wait for hello at once.`, { retryAfterMs: 1000 }), ['Retry-After: 1']);
    }
    const wait = this.#perAddress.take(address);
    if (wait > 0) {
      this.ctx.metrics.admissionRefused.labels('rate_address').inc();
      return refuseUpgrade(socket, '429 Too Many Requests', new AppError('rate_limited', `At most ${this.opts.newSessionsPerAddress} new connections per second per address; retry in ${wait} ms.`, { retryAfterMs: wait }), [`Retry-After: ${Math.ceil(wait / 1000)}`]);
    }
    // Counted from before the handshake, so a burst of upgrades cannot pass the cap together.
    this.#pendingTotal++;
    this.#pending.set(address, (this.#pending.get(address) ?? 0) + 1);
    let counted = true;
    const helloDone = () => {
      if (!counted) return;
      counted = false;
      this.#pendingTotal--;
      const n = (this.#pending.get(address) ?? 1) - 1;
      if (n > 0) this.#pending.set(address, n);
      else this.#pending.delete(address);
    };
    socket.once('close', helloDone);
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, helloDone));
  }

  #accept(ws: WebSocket, helloDone: () => void): void {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const progress: ReadProgress = { pushed: 0, read: 0, probe: -1, probeSentAt: 0, nonce: randomBytes(6).toString('base64url'), held: [], heldBytes: 0 };
    const session = new ClientSession(randomUUID(), {
      send: (text) => new Promise<void>((resolve) => this.#out(ws, session, progress, { text, wire: undefined }, resolve)),
      push: (text) => this.#out(ws, session, progress, { text, wire: undefined }),
      pushShared: (frame: SharedFrame) => this.#out(ws, session, progress, frame),
      close: (code, reason) => {
        ws.close(code, reason);
        // A peer that never answers the close frame does not hold the socket for ws's 30 s.
        setTimeout(() => { if (ws.readyState !== ws.CLOSED) ws.terminate(); }, CLOSE_GRACE_MS).unref();
      },
      backlog: () => progress.pushed + progress.heldBytes - progress.read,
      helloDone,
    }, this.ctx);
    this.#sessions.set(ws, session);
    this.#progress.set(ws, progress);
    this.ctx.metrics.connectionsOpened.inc();
    this.#heartbeat(ws, session, progress);
    ws.on('pong', (data: Buffer) => {
      // The answer to a probe: the client has read everything written before it. Only the
      // outstanding probe's exact payload counts: unsolicited pongs, and numbers we did not send,
      // prove nothing (a client that does not read cannot know the connection's nonce).
      if (progress.probe >= 0 && data.length > 0 && data.toString('latin1') === probePayload(progress)) {
        progress.read = progress.probe;
        progress.probe = -1;
        if (progress.held.length > 0) this.#release(ws, progress);
        else this.#probe(ws, progress);
      }
    });
    ws.on('message', (data: RawData, isBinary: boolean) => {
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
      helloDone();
      this.ctx.metrics.connectionsClosed.labels(KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other').inc();
      this.#sessions.delete(ws);
      this.#progress.delete(ws);
      // Frames held for it are dropped; whoever waits for them to be written goes on.
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
   * Sends one frame to one connection: live entries, answers, catch-up pages and errors alike
   * (`done`, if given, is called once it is written, or dropped with the connection). The bytes go
   * straight to its socket when ws has nothing of its own queued (a shared frame's bytes are built
   * once for all of its connections), else through ws.
   *
   * Back-pressure, one budget for every byte: a client that does not read would have the node
   * write without bound, first into the kernel's socket buffers (megabytes per connection, which
   * the node can neither see nor shrink), then into the node's memory. So the node tracks what the
   * client has shown it read: a probe is a ping carrying the count of bytes written so far and the
   * connection's nonce, sent once a quarter of the bound is unproven (and at every heartbeat), and
   * the client's WebSocket stack answers it (RFC 6455) when it has read up to it. The node writes
   * at most half the bound (and one frame) past what was shown read; later frames wait in the
   * node, in order, until the answer comes (#release). A reader answers within its round trip, so
   * it is held up by at most that; a client that stopped reading costs the node no more writes,
   * and the kernel holds at most half the bound for it. A client is cut off when more than
   * `maxOutboundBytes` wait in the node for it, when it is more than that behind its last answer
   * and the probe after it has been unanswered for PROBE_GRACE_MS, or when a probe goes unanswered
   * for the heartbeat timeout (#heartbeat). It reconnects and resumes from its cursors.
   */
  #out(ws: WebSocket, session: ClientSession, progress: ReadProgress, frame: Outgoing, done?: () => void): void {
    if (ws.readyState !== ws.OPEN) {
      done?.();
      return;
    }
    const raw = rawSocketOf(ws);
    const waiting = this.#waiting(ws, raw);
    if (waiting + progress.heldBytes > this.maxOutboundBytes) {
      done?.();
      return this.#cutSlow(ws, session, 'buffered', progress);
    }
    if (progress.pushed + progress.heldBytes - progress.read > this.maxOutboundBytes && progress.probe >= 0 && Date.now() - progress.probeSentAt > PROBE_GRACE_MS) {
      done?.();
      return this.#cutSlow(ws, session, 'unread', progress);
    }
    if (progress.held.length > 0 || progress.pushed - progress.read > this.maxOutboundBytes / 2) {
      // Behind by more than half the bound: a probe is out (one goes out at a quarter), and its
      // answer releases this frame.
      const b = wire(frame);
      progress.held.push({ text: frame.text, wire: b, done });
      progress.heldBytes += b.length;
      return;
    }
    this.#pushNow(ws, raw, waiting, progress, frame, done);
    this.#probe(ws, progress);
  }

  /**
   * Bytes waiting in ws and in the socket's stream for a connection, less those corked in this
   * turn: they are not late, they leave at its end.
   */
  #waiting(ws: WebSocket, raw: Socket | undefined): number {
    return ws.bufferedAmount - ((raw && this.#corked.get(raw)) || 0);
  }

  /** Writes a frame and counts it as pushed. */
  #pushNow(ws: WebSocket, raw: Socket | undefined, waiting: number, progress: ReadProgress, frame: Outgoing, done: (() => void) | undefined): void {
    if (raw) {
      const b = wire(frame);
      progress.pushed += b.length;
      this.#write(raw, b, waiting, done);
    } else {
      progress.pushed += Buffer.byteLength(frame.text) + 4;
      ws.send(frame.text, done && (() => done()));
    }
  }

  /** Sends a probe when none is out and a quarter of the bound is unproven (or, with `always`, anything at all: a heartbeat). */
  #probe(ws: WebSocket, progress: ReadProgress, always = false): void {
    if (progress.probe >= 0 || ws.readyState !== ws.OPEN) return;
    if (always || progress.pushed - progress.read >= this.maxOutboundBytes / 4) {
      progress.probe = progress.pushed;
      progress.probeSentAt = Date.now();
      ws.ping(probePayload(progress));
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
      if (progress.pushed - progress.read > this.maxOutboundBytes / 2) break;
      const h = held[i]!;
      const raw = rawSocketOf(ws);
      progress.heldBytes -= h.wire.length;
      this.#pushNow(ws, raw, this.#waiting(ws, raw), progress, h, h.done);
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
  #write(socket: Socket, bytes: Uint8Array, waiting: number, done: (() => void) | undefined): void {
    const cb = done && (() => done());
    const corked = this.#corked.get(socket);
    if (corked === undefined) {
      if (waiting > 0 || bytes.length >= CORK_BYTES) {
        socket.write(bytes, cb);
        return;
      }
      if (this.#corked.size === 0) process.nextTick(this.#uncorkAll);
      socket.cork();
      this.#corked.set(socket, bytes.length);
      socket.write(bytes, cb);
      return;
    }
    socket.write(bytes, cb);
    if (corked + bytes.length < CORK_BYTES) {
      this.#corked.set(socket, corked + bytes.length);
    } else {
      this.#corked.delete(socket);
      socket.uncork();
    }
  }

  /**
   * Closes a connection that fell behind past the bound: with that much waiting in the node
   * (`buffered`), or sent and not shown read (`unread`). The close frame queues behind what the client is
   * not reading, so the socket is destroyed right after: its buffers are freed now, not when the
   * client gets round to reading.
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
   * Probes each connection on its own schedule: the mean interval ±20%, so pings (and the
   * reconnects of clients that time out) do not line up after a restart. Every heartbeat ping is a
   * probe (when none is out): liveness is reading, not sending. A connection whose probe stays
   * unanswered for `heartbeatTimeoutMs` is gone or does not read, however many frames or
   * unsolicited pongs it sends: it is terminated (no close frame: it would not read one), and the
   * node holds nothing for it past that.
   */
  #heartbeat(ws: WebSocket, session: ClientSession, progress: ReadProgress): void {
    const { heartbeatIntervalMs: interval, heartbeatTimeoutMs: timeout } = this.ctx.limits;
    const next = () => {
      const left = progress.probe >= 0 ? Math.max(1, progress.probeSentAt + timeout - Date.now()) : Infinity;
      const t = setTimeout(() => {
        if (ws.readyState !== ws.OPEN) return;
        if (progress.probe >= 0) {
          const outstanding = Date.now() - progress.probeSentAt;
          if (outstanding >= timeout) {
            // Gone, or not reading: dropped without a close frame either way (it could not read
            // one). Counted as a slow consumer when frames written to it were never read.
            if (progress.pushed + progress.heldBytes > progress.read) this.ctx.metrics.slowConsumers.labels('stalled').inc();
            ws.terminate();
            return;
          }
          if (progress.pushed + progress.heldBytes - progress.read > this.maxOutboundBytes && outstanding > PROBE_GRACE_MS) return this.#cutSlow(ws, session, 'unread', progress);
        } else {
          this.#probe(ws, progress, true);
        }
        next();
      }, Math.min(interval * (0.8 + Math.random() * 0.4), left));
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

/** A probe's ping payload: the bytes written when it was sent, and the connection's nonce. */
function probePayload(progress: ReadProgress): string {
  return `${progress.probe}.${progress.nonce}`;
}
