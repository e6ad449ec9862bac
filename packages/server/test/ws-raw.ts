// A raw protocol client for tests that check frames byte for byte (no SDK in between).
import { WebSocket } from 'ws';
import type { ServerFrame } from '@confab/protocol';

export interface RawSocket {
  /** Sends hello and resolves with welcome. */
  hello(token: string, cursors?: Record<string, number>): Promise<ServerFrame>;
  ws: WebSocket;
  frames: ServerFrame[];
  send(frame: unknown): void;
  /** Resolves with the first frame (from now or already received after `from`) matching `pred`. */
  next<T extends ServerFrame = ServerFrame>(pred: (f: ServerFrame) => boolean, timeoutMs?: number): Promise<T>;
  closed: Promise<{ code: number; reason: string }>;
}

export async function rawSocket(url: string, opts: { autoPong?: boolean } = {}): Promise<RawSocket> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`, { autoPong: opts.autoPong ?? true });
  const frames: ServerFrame[] = [];
  const listeners = new Set<() => void>();
  let cursor = 0;
  ws.on('message', (d: Buffer) => {
    frames.push(JSON.parse(d.toString('utf8')) as ServerFrame);
    for (const l of [...listeners]) l();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const socket: RawSocket = {
    ws, frames, closed,
    send(frame) { ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)); },
    hello(token, cursors) {
      ws.send(JSON.stringify({ type: 'hello', v: 1, token, ...(cursors ? { cursors } : {}) }));
      return socket.next((f) => f.type === 'welcome');
    },
    next<T extends ServerFrame>(pred: (f: ServerFrame) => boolean, timeoutMs = 10_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const check = () => {
          while (cursor < frames.length) {
            const f = frames[cursor++]!;
            if (pred(f)) {
              listeners.delete(check);
              clearTimeout(timer);
              resolve(f as T);
              return;
            }
          }
        };
        const timer = setTimeout(() => { listeners.delete(check); reject(new Error(`no matching frame in ${timeoutMs} ms; last: ${JSON.stringify(frames.slice(-3))}`)); }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
  };
  return socket;
}
