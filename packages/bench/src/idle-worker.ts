// A generator process of the "idle" scenario (forked by scenarios/idle.ts): opens its share of
// authenticated WebSocket connections from its own source address (127.0.0.x, so the ephemeral
// ports of one address are not the limit), answers the node's pings (ws does that by itself),
// and otherwise stays silent until told to stop.
import { WebSocket, type RawData } from 'ws';
import { now } from './latency.js';
import { pool } from './rest.js';

export interface IdleShare { urls: string[]; tokens: string[]; count: number; localAddress: string; concurrency: number }
export type ToIdleWorker = ({ type: 'open' } & IdleShare) | { type: 'count' } | { type: 'stop' };
export type FromIdleWorker =
  | { type: 'opened'; connected: number; failed: number; ms: number; firstError?: string }
  | { type: 'counted'; open: number; closed: number }
  | { type: 'fatal'; message: string };

const sockets: WebSocket[] = [];
let closed = 0;
const reply = (m: FromIdleWorker) => { process.send?.(m); };

function open(url: string, token: string, localAddress: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`, { perMessageDeflate: false, localAddress });
    let welcomed = false;
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no welcome within 30 s')); }, 30_000);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, token })));
    ws.on('message', (data: RawData) => {
      if (welcomed) return; // idle: nothing else is expected, and nothing is read
      clearTimeout(timer);
      const frame = (data as Buffer).toString('utf8');
      if (!frame.startsWith('{"type":"welcome"')) {
        ws.terminate();
        return reject(new Error(`hello refused: ${frame.slice(0, 200)}`));
      }
      welcomed = true;
      resolve(ws);
    });
    ws.on('error', (err) => { clearTimeout(timer); if (!welcomed) reject(err); });
    ws.on('close', () => { if (welcomed) closed++; });
  });
}

process.on('message', (m: ToIdleWorker) => {
  switch (m.type) {
    case 'open': {
      const t0 = now();
      let failed = 0;
      let firstError: string | undefined;
      pool(m.count, m.concurrency, async (i) => {
        try {
          sockets.push(await open(m.urls[i % m.urls.length]!, m.tokens[i % m.tokens.length]!, m.localAddress));
        } catch (err) {
          failed++;
          firstError ??= (err as Error).message;
        }
      }).then(
        () => reply({ type: 'opened', connected: sockets.length, failed, ms: now() - t0, ...(firstError ? { firstError } : {}) }),
        (err: unknown) => reply({ type: 'fatal', message: (err as Error).message }),
      );
      return;
    }
    case 'count':
      reply({ type: 'counted', open: sockets.filter((s) => s.readyState === WebSocket.OPEN).length, closed });
      return;
    case 'stop':
      for (const s of sockets) s.terminate();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0)); // the coordinator is gone: so are we
