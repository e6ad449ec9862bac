// A raw protocol client for tests that check frames byte for byte (no SDK in between).
import { WebSocket } from 'ws';
import type { ServerFrame } from '@confab/protocol';

export interface RawSocket {
  ws: WebSocket;
  frames: ServerFrame[];
  send(frame: unknown): void;
  /** Resolves with the first frame (from now or already received after `from`) matching `pred`. */
  next<T extends ServerFrame = ServerFrame>(pred: (f: ServerFrame) => boolean, timeoutMs?: number): Promise<T>;
  closed: Promise<{ code: number; reason: string }>;
}

export async function rawSocket(url: string): Promise<RawSocket> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`);
  const frames: ServerFrame[] = [];
  const listeners = new Set<() => void>();
  let cursor = 0;
  ws.on('message', (d: Buffer) => {
    frames.push(JSON.parse(d.toString('utf8')) as ServerFrame);
    for (const l of [...listeners]) l();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  return {
    ws, frames, closed,
    send(frame) { ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)); },
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
}
