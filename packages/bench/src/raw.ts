// Clients with no library between them and the socket, for the hostile scenario: a WebSocket
// client on a bare TCP socket (the RFC 6455 handshake and framing by hand, so the caller decides
// when, and whether, to read), a counter of pipelined HTTP/1.1 responses, plain HTTP requests
// with any Host header from any local address, and the kernel's view of a TCP connection
// (/proc/net/tcp: its state and the bytes queued in it).
import { connect, type Socket } from 'node:net';
import { request as httpRequest, type Agent, type IncomingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** The payload bytes of a frame kept by FrameReader: enough for a frame's `type` and a close code. */
const HEAD_BYTES = 64;

/** A frame from the server: its opcode, payload length and the first HEAD_BYTES of its payload. */
export interface RawFrame { opcode: number; length: number; head: Buffer }

/** Parses server frames out of a byte stream without keeping their payloads (3 MB pages are skipped, not copied). */
export class FrameReader {
  bytes = 0;
  readonly #hdr = Buffer.alloc(14);
  #hdrHave = 0;
  #frame: { opcode: number; length: number; head: Buffer[]; headLen: number; left: number } | undefined;

  constructor(private readonly onFrame: (f: RawFrame) => void) {}

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const f = this.#frame;
      if (f) {
        const take = Math.min(f.left, chunk.length - off);
        if (f.headLen < HEAD_BYTES) {
          const h = chunk.subarray(off, off + Math.min(take, HEAD_BYTES - f.headLen));
          f.head.push(Buffer.from(h));
          f.headLen += h.length;
        }
        off += take;
        f.left -= take;
        if (f.left === 0) this.#emit();
        continue;
      }
      // A header: 2 bytes, then 0, 2 or 8 of length, then 4 of mask if masked (servers do not mask).
      this.#hdr[this.#hdrHave++] = chunk[off++]!;
      if (this.#hdrHave < 2) continue;
      const len7 = this.#hdr[1]! & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.#hdr[1]! & 0x80 ? 4 : 0);
      if (this.#hdrHave < need) continue;
      const length = len7 === 126 ? this.#hdr.readUInt16BE(2) : len7 === 127 ? Number(this.#hdr.readBigUInt64BE(2)) : len7;
      this.#frame = { opcode: this.#hdr[0]! & 0x0f, length, head: [], headLen: 0, left: length };
      this.#hdrHave = 0;
      if (length === 0) this.#emit();
    }
  }

  #emit(): void {
    const f = this.#frame!;
    this.#frame = undefined;
    this.onFrame({ opcode: f.opcode, length: f.length, head: Buffer.concat(f.head) });
  }
}

/** A client frame (masked, as RFC 6455 requires of clients). */
export function clientFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const len = data.length;
  const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(hdr + 4 + len);
  out[0] = 0x80 | opcode;
  if (len < 126) out[1] = 0x80 | len;
  else if (len < 65536) { out[1] = 0x80 | 126; out.writeUInt16BE(len, 2); } else { out[1] = 0x80 | 127; out.writeBigUInt64BE(BigInt(len), 2); }
  const mask = randomBytes(4);
  mask.copy(out, hdr);
  for (let i = 0; i < len; i++) out[hdr + 4 + i] = data[i]! ^ mask[i & 3]!;
  return out;
}

export const OP = { text: 0x1, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** The `type` of a server text frame, from the start of its JSON (every server frame begins with it). */
export function frameType(f: RawFrame): string {
  if (f.opcode === OP.close) return 'close';
  if (f.opcode !== OP.text) return `opcode-${f.opcode}`;
  return /^\{"type":"([a-z._]+)"/.exec(f.head.toString('latin1'))?.[1] ?? 'text';
}

/** The code of a close frame (1005 when it has none). */
export const closeCode = (f: RawFrame): number => (f.head.length >= 2 ? f.head.readUInt16BE(0) : 1005);

export interface UpgradeOptions {
  port: number;
  /** Local address to connect from (127.0.0.x). */
  localAddress?: string;
  path?: string;
  /** The Host header (default 127.0.0.1:port). */
  host?: string;
  origin?: string;
  /** Headers and status must arrive within this (default 10 s). */
  timeoutMs?: number;
}

/** What the server answered to an upgrade: the status, and on 101 an open RawWs. */
export interface Upgrade { status: number; statusLine: string; ws?: RawWs; ms: number }

/**
 * Opens a TCP connection, sends a WebSocket upgrade and reads the answer's head. On 101 the
 * socket becomes a RawWs (it reads until told to pause); otherwise it is destroyed. Rejects
 * on a connection error or timeout.
 */
export function rawUpgrade(o: UpgradeOptions): Promise<Upgrade> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: o.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no upgrade answer in time')); }, o.timeoutMs ?? 10_000);
    const onError = (err: Error) => { clearTimeout(timer); reject(err); };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.write([
        `GET ${o.path ?? '/v1/ws'} HTTP/1.1`, `Host: ${o.host ?? `127.0.0.1:${o.port}`}`, 'Upgrade: websocket', 'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`, 'Sec-WebSocket-Version: 13', ...(o.origin ? [`Origin: ${o.origin}`] : []), '', '',
      ].join('\r\n'));
    });
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 65536) { socket.destroy(); clearTimeout(timer); reject(new Error('upgrade answer head over 64 KiB')); }
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      const statusLine = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
      const ms = performance.now() - t0;
      if (status !== 101) {
        socket.on('error', () => undefined);
        socket.destroy();
        return resolve({ status, statusLine, ms });
      }
      resolve({ status, statusLine, ms, ws: new RawWs(socket, head.subarray(end + 4)) });
    };
    socket.on('data', onData);
  });
}

/**
 * A WebSocket over a bare socket. It reads (and parses) as long as it is not paused; a paused
 * one reads nothing at all, so what the server sends stays in the kernel and then in the server.
 * It never answers a ping or a close: the caller decides what to send.
 */
export class RawWs {
  readonly reader: FrameReader;
  /** Frames read, by type (`close`, `welcome`, `history.result`, ...). */
  readonly frames: Record<string, number> = {};
  /** The close frame, when one was read: its code and when (performance.now()). */
  closeFrame: { code: number; at: number } | undefined;
  /** When the server ended its side (FIN read), when the socket closed, and its error. */
  endedAt: number | undefined;
  closedAt: number | undefined;
  error: string | undefined;
  /** Called for every frame read. */
  onFrame: ((f: RawFrame, type: string) => void) | undefined;
  readonly localPort: number;
  readonly localAddress: string;

  constructor(readonly socket: Socket, rest: Buffer) {
    this.localPort = socket.localPort ?? 0;
    this.localAddress = socket.localAddress ?? '';
    this.reader = new FrameReader((f) => {
      const type = frameType(f);
      this.frames[type] = (this.frames[type] ?? 0) + 1;
      if (f.opcode === OP.close && !this.closeFrame) this.closeFrame = { code: closeCode(f), at: performance.now() };
      this.onFrame?.(f, type);
    });
    socket.on('data', (d: Buffer) => this.reader.push(d));
    socket.on('end', () => { this.endedAt ??= performance.now(); });
    socket.on('close', () => { this.closedAt ??= performance.now(); });
    socket.on('error', (err: NodeJS.ErrnoException) => { this.error ??= err.code ?? err.message; });
    if (rest.length > 0) this.reader.push(rest);
  }

  get open(): boolean {
    return this.closedAt === undefined;
  }

  /** Writes a frame; false when the socket is gone. */
  send(opcode: number, payload?: Buffer | string): boolean {
    if (this.socket.destroyed) return false;
    this.socket.write(clientFrame(opcode, payload));
    return true;
  }

  text(frame: unknown): boolean {
    return this.send(OP.text, JSON.stringify(frame));
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Resolves once a frame satisfies `pred` (true) or the socket closes or `ms` pass (false). */
  waitFor(pred: (f: RawFrame, type: string) => boolean, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const prev = this.onFrame;
      const done = (v: boolean) => { clearTimeout(timer); this.socket.off('close', onClose); this.onFrame = prev; resolve(v); };
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      this.socket.once('close', onClose);
      this.onFrame = (f, type) => { prev?.(f, type); if (pred(f, type)) done(true); };
    });
  }

  /** Destroys the socket (a RST when `reset`, so no TIME_WAIT is left on this side). */
  destroy(reset = false): void {
    if (this.socket.destroyed) return;
    if (reset && typeof this.socket.resetAndDestroy === 'function') this.socket.resetAndDestroy();
    else this.socket.destroy();
  }
}

/**
 * Counts pipelined HTTP/1.1 responses in a byte stream: status codes in order, bodies skipped
 * (Content-Length or chunked).
 */
export class HttpResponseReader {
  bytes = 0;
  readonly statuses: number[] = [];
  #state: 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailer' = 'head';
  #left = 0;
  /** The head or line being read (heads are a few hundred bytes: read byte by byte; bodies are skipped whole). */
  #line = '';

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      if (this.#state === 'body' || this.#state === 'chunk-data') {
        const take = Math.min(this.#left, chunk.length - off);
        off += take;
        this.#left -= take;
        if (this.#left === 0) this.#state = this.#state === 'body' ? 'head' : 'chunk-end';
        continue;
      }
      const c = String.fromCharCode(chunk[off++]!);
      if (this.#state === 'head') {
        this.#line += c;
        if (c === '\n' && this.#line.endsWith('\r\n\r\n')) {
          this.#parseHead(this.#line);
          this.#line = '';
        } else if (this.#line.length > 65536) {
          throw new Error('response head over 64 KiB');
        }
        continue;
      }
      if (c !== '\n') { this.#line += c; continue; }
      const line = this.#line.replace(/\r$/, '');
      this.#line = '';
      if (this.#state === 'chunk-end') { this.#state = 'chunk-size'; continue; }
      if (this.#state === 'trailer') { if (line === '') this.#state = 'head'; continue; }
      const size = parseInt(line, 16);
      if (!Number.isFinite(size)) throw new Error(`bad chunk size "${line.slice(0, 40)}"`);
      if (size === 0) this.#state = 'trailer';
      else { this.#left = size; this.#state = 'chunk-data'; }
    }
  }

  #parseHead(head: string): void {
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
    this.statuses.push(status);
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) this.#state = 'chunk-size';
    else if (cl && Number(cl[1]) > 0) { this.#left = Number(cl[1]); this.#state = 'body'; } else this.#state = 'head';
  }
}

/** One HTTP answer read whole. */
export interface HttpAnswer { status: number; headers: IncomingHttpHeaders; text: string; ms: number }

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: unknown;
  localAddress?: string;
  agent?: Agent;
  timeoutMs?: number;
}

/** An HTTP request to the node (127.0.0.1:port) from `localAddress`, with any headers (Host included). Rejects only on network errors and timeouts. */
export function http(port: number, path: string, o: HttpOptions = {}): Promise<HttpAnswer> {
  const t0 = performance.now();
  const body = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body));
  const headers: Record<string, string> = { ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}), ...o.headers };
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers,
      ...(o.localAddress ? { localAddress: o.localAddress } : {}), ...(o.agent ? { agent: o.agent } : {}),
      timeout: o.timeoutMs ?? 30_000,
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('utf8'), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${o.method ?? 'GET'} ${path}: no answer within ${o.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The error code of a JSON error body (`{"error":{"code"}}`), if it is one. */
export function errorCode(text: string): string | undefined {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

// ---- the kernel's view: /proc/net/tcp -------------------------------------------------------

const TCP_STATES: Record<number, string> = {
  1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT1', 5: 'FIN_WAIT2', 6: 'TIME_WAIT', 7: 'CLOSE', 8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN', 11: 'CLOSING',
};

/** One IPv4 TCP socket as the kernel lists it: its state and the bytes in its send and receive queues. */
export interface TcpEntry { state: string; txQueue: number; rxQueue: number }

/** `a.b.c.d` from /proc/net/tcp's hex (a 32-bit number in the machine's byte order: little-endian here). */
const ipOf = (hex: string) => [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');

/** Every IPv4 TCP socket, by `local>remote` (`127.0.0.1:8080>127.0.0.2:40000`). */
export function tcpTable(): Map<string, TcpEntry> {
  const out = new Map<string, TcpEntry>();
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'latin1');
  } catch {
    return out;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const [lip, lport] = f[1]!.split(':');
    const [rip, rport] = f[2]!.split(':');
    const [tx, rx] = f[4]!.split(':');
    out.set(`${ipOf(lip!)}:${parseInt(lport!, 16)}>${ipOf(rip!)}:${parseInt(rport!, 16)}`, {
      state: TCP_STATES[parseInt(f[3]!, 16)] ?? f[3]!, txQueue: parseInt(tx!, 16), rxQueue: parseInt(rx!, 16),
    });
  }
  return out;
}

/** Both ends of one loopback connection: the client's socket and the node's. */
export function tcpPair(client: { address: string; port: number }, node: { address: string; port: number }): { client?: TcpEntry; node?: TcpEntry } {
  const t = tcpTable();
  const c = t.get(`${client.address}:${client.port}>${node.address}:${node.port}`);
  const n = t.get(`${node.address}:${node.port}>${client.address}:${client.port}`);
  return { ...(c ? { client: c } : {}), ...(n ? { node: n } : {}) };
}
