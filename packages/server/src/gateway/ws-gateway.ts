// The WebSocket adapter: binds `ws` to ClientSession. Size limits, UTF-8 and binary checks
// happen here so a bad frame becomes an error frame, not a dropped connection.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { ClientSession, type GatewayContext } from './session.js';

export const WS_PATH = '/v1/ws';
/** Interval of transport-level pings; a connection that misses two is terminated. */
const PING_INTERVAL_MS = 30_000;

export class WsGateway {
  readonly #wss: WebSocketServer;
  readonly #sessions = new Map<WebSocket, ClientSession>();
  readonly #alive = new WeakSet<WebSocket>();
  readonly #pinger: NodeJS.Timeout;

  constructor(server: Server, private readonly ctx: GatewayContext) {
    this.#wss = new WebSocketServer({
      noServer: true,
      // Frames past 4x the limit are not even buffered: ws closes with 1009.
      maxPayload: ctx.limits.maxFrameBytes * 4,
      // We validate UTF-8 ourselves, to answer with an error frame instead of closing.
      skipUTF8Validation: true,
      perMessageDeflate: false,
    });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== WS_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws));
    });
    // Pings are spread over the interval (jitter per connection is the order of insertion).
    this.#pinger = setInterval(() => this.#pingAll(), PING_INTERVAL_MS);
    this.#pinger.unref();
  }

  get connections(): number {
    return this.#sessions.size;
  }

  #accept(ws: WebSocket): void {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const session = new ClientSession(randomUUID(), {
      send: (text) => new Promise<void>((resolve) => {
        if (ws.readyState !== ws.OPEN) return resolve();
        ws.send(text, () => resolve());
      }),
      close: (code, reason) => ws.close(code, reason),
    }, this.ctx);
    this.#sessions.set(ws, session);
    this.#alive.add(ws);
    ws.on('pong', () => this.#alive.add(ws));
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
    ws.on('close', () => {
      this.#sessions.delete(ws);
      session.onClosed();
    });
    ws.on('error', (err) => this.ctx.log.debug({ err: err.message, conn: session.id }, 'websocket error'));
  }

  #pingAll(): void {
    for (const ws of this.#sessions.keys()) {
      if (!this.#alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.#alive.delete(ws);
      ws.ping();
    }
  }

  /** Closes every connection with `going_away` (clients reconnect elsewhere) and stops. */
  async close(): Promise<void> {
    clearInterval(this.#pinger);
    for (const s of this.#sessions.values()) s.close('going_away');
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}
