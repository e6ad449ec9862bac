// A scriptable stand-in for the Confab WebSocket endpoint: tests read what the client sends
// and write the frames a server would, on a real socket on port 0.
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { DEFAULT_LIMITS } from '@confab/protocol';
import type { Limits, Message } from '@confab/protocol';

/** A queue whose `next()` waits for the next pushed item. */
class Inbox<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((item: T) => void)[] = [];

  push(item: T): void {
    const w = this.waiters.shift();
    if (w) w(item);
    else this.items.push(item);
  }

  next(): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

/** A frame sent by the client (loosely typed: tests check the fields). */
export type Received = Record<string, unknown> & { type: string };

export const USER = '01a2026d-759c-72cf-bcf4-95578b9fbd3a';
export const DEVICE = '01a2026d-75df-77b0-b9f4-af28accc21e4';
export const C1 = '01a2026d-7606-705c-bed7-fb9a4afb2861';
export const C2 = '01a2026d-7606-705c-bed7-fb9a4afb2862';

/** Limits high enough that client-side pacing never delays a test. */
export const FAST_LIMITS: Limits = { ...DEFAULT_LIMITS, sendsPerSecond: 100_000, sendBurst: 100_000, userSendsPerSecond: 100_000, userSendBurst: 100_000 };

/** A log entry of `conversationId` at `seq`. */
export function msg(conversationId: string, seq: number, extra: Partial<Message> = {}): Message {
  const hex = seq.toString(16).padStart(12, '0');
  return {
    conversationId, seq, messageId: `01a2026d-7614-776b-a2cc-${hex}`, kind: 'message', sender: USER, senderUsername: 'alice',
    clientId: `c-${seq}`, text: `m${seq}`, createdAt: 1_700_000_000_000 + seq, ...extra,
  };
}

/** One client connection as the server sees it. */
export class FakeConnection {
  private readonly inbox = new Inbox<Received>();
  /** Resolves when the socket closed. */
  readonly closed: Promise<void>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary || !(data instanceof Buffer)) throw new Error('the client sent a binary frame');
      this.inbox.push(JSON.parse(data.toString('utf8')) as Received);
    });
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
  }

  /** The next frame from the client. */
  next(): Promise<Received> {
    return this.inbox.next();
  }

  /** The next frame of `type`, skipping others (e.g. heartbeat pings). */
  async nextOf(type: string): Promise<Received> {
    for (;;) {
      const f = await this.next();
      if (f.type === type) return f;
    }
  }

  /** Sends a server frame. */
  send(frame: object): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** Sends `welcome`. */
  welcome(limits: Limits = FAST_LIMITS): void {
    this.send({ type: 'welcome', v: 1, userId: USER, username: 'alice', deviceId: DEVICE, nodeId: 'fake', limits });
  }

  /** Reads `hello` and answers `welcome`; returns the hello. */
  async accept(limits: Limits = FAST_LIMITS): Promise<Received> {
    const hello = await this.nextOf('hello');
    this.welcome(limits);
    return hello;
  }

  /** Acks a send/edit/delete frame with the given entry. */
  ack(frame: Received, message: Message, duplicate = false): void {
    this.send({ type: 'ack', id: frame.id, message: { ...message, clientId: frame.clientId }, duplicate });
  }

  /** Closes with a code and reason. */
  close(code: number, reason = ''): void {
    this.ws.close(code, reason);
  }
}

/** A WebSocket server on 127.0.0.1, port 0, path /v1/ws. */
export class FakeServer {
  private readonly conns = new Inbox<FakeConnection>();
  private readonly all: FakeConnection[] = [];

  private constructor(private readonly wss: WebSocketServer, readonly url: string) {
    wss.on('connection', (ws) => {
      const c = new FakeConnection(ws);
      this.all.push(c);
      this.conns.push(c);
    });
  }

  /** Starts a server; `url` is its http base URL. */
  static async start(): Promise<FakeServer> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/v1/ws' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    const addr = wss.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected address');
    return new FakeServer(wss, `http://127.0.0.1:${addr.port}`);
  }

  /** The next connection accepted. */
  connection(): Promise<FakeConnection> {
    return this.conns.next();
  }

  /** How many connections were accepted so far. */
  get connections(): number {
    return this.all.length;
  }

  /** Terminates every connection and stops listening. */
  async stop(): Promise<void> {
    for (const c of this.all) c.ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
