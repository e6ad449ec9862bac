// A generator process of the "storm" scenario (forked by scenarios/storm.ts). It holds its share
// of clients, each a device following one conversation the way a real client does: it keeps a
// cursor (the highest seq it holds without a gap), says hello with it, and when its connection
// drops it reconnects after a full-jitter exponential backoff (250 ms doubling, capped at 15 s,
// like the SDK). Entries are checked as they come: a seq at or below the cursor is a duplicate,
// one past cursor + 1 a gap (the client asks for a `sync`, as the SDK does).
import { WebSocket, type RawData } from 'ws';
import { pool } from './rest.js';

export interface StormConn { token: string; conversationId: string }
export type ToStormWorker =
  | { type: 'init'; url: string; conns: StormConn[]; localAddress: string; concurrency: number }
  | { type: 'status'; targets: Record<string, number> }
  | { type: 'stop' };
export interface StormStatus {
  type: 'status';
  /** Clients with an open, welcomed connection. */
  open: number;
  /** Clients whose cursor reached their conversation's target. */
  caughtUp: number;
  duplicates: number;
  gaps: number;
  reconnects: number;
  /** Close codes seen, by code. */
  closes: Record<string, number>;
}
export type FromStormWorker = { type: 'ready'; connected: number } | StormStatus | { type: 'fatal'; message: string };

const BASE_MS = 250;
const CAP_MS = 15_000;

class Client {
  ws: WebSocket | undefined;
  open = false;
  cursor = 0;
  attempt = 0;
  stopped = false;
  constructor(readonly url: string, readonly spec: StormConn, readonly localAddress: string) {}

  connect(): Promise<void> {
    return new Promise((resolve) => {
      const ws = new WebSocket(`${this.url.replace(/^http/, 'ws')}/v1/ws`, { perMessageDeflate: false, localAddress: this.localAddress });
      this.ws = ws;
      let settled = false;
      const done = () => { if (!settled) { settled = true; resolve(); } };
      // The cursor goes with every hello, 0 included: "I hold nothing yet, send me everything".
      ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, token: this.spec.token, cursors: { [this.spec.conversationId]: this.cursor } })));
      ws.on('message', (data: RawData) => { this.onFrame((data as Buffer).toString('utf8')); if (this.open) done(); });
      ws.on('error', () => undefined); // 'close' follows
      ws.on('close', (code: number) => {
        stats.closes[code] = (stats.closes[code] ?? 0) + 1;
        const wasOpen = this.open;
        this.open = false;
        done();
        if (this.stopped) return;
        if (wasOpen) this.attempt = 0;
        const delay = Math.random() * Math.min(CAP_MS, BASE_MS * 2 ** this.attempt++);
        setTimeout(() => { stats.reconnects++; void this.connect(); }, delay);
      });
    });
  }

  onFrame(frame: string): void {
    const type = frame.slice(9, frame.indexOf('"', 9));
    if (type === 'welcome') { this.open = true; return; }
    if (type === 'message') {
      const f = JSON.parse(frame) as { message: { conversationId: string; seq: number } };
      if (f.message.conversationId === this.spec.conversationId) this.take(f.message.seq);
    } else if (type === 'sync.page') {
      const f = JSON.parse(frame) as { conversationId: string; messages: { seq: number }[] };
      if (f.conversationId === this.spec.conversationId) for (const m of f.messages) this.take(m.seq);
    }
  }

  take(seq: number): void {
    if (seq <= this.cursor) { stats.duplicates++; return; }
    if (seq > this.cursor + 1) {
      stats.gaps++;
      this.ws?.send(JSON.stringify({ type: 'sync', id: `g${seq}`, conversationId: this.spec.conversationId, after: this.cursor }));
      return;
    }
    this.cursor = seq;
  }
}

const stats = { duplicates: 0, gaps: 0, reconnects: 0, closes: {} as Record<string, number> };
let clients: Client[] = [];
const reply = (m: FromStormWorker) => { process.send?.(m); };

process.on('message', (m: ToStormWorker) => {
  switch (m.type) {
    case 'init':
      clients = m.conns.map((c) => new Client(m.url, c, m.localAddress));
      // Ready once every client is in: one refused at first (admission control) is still retrying.
      pool(clients.length, m.concurrency, (i) => clients[i]!.connect()).then(async () => {
        const end = Date.now() + 120_000;
        while (clients.some((c) => !c.open) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
        reply({ type: 'ready', connected: clients.filter((c) => c.open).length });
      }).then(
        () => undefined,
        (err: unknown) => reply({ type: 'fatal', message: (err as Error).message }),
      );
      return;
    case 'status':
      reply({
        type: 'status',
        open: clients.filter((c) => c.open).length,
        caughtUp: clients.filter((c) => c.open && c.cursor >= (m.targets[c.spec.conversationId] ?? Infinity)).length,
        ...stats,
        closes: { ...stats.closes },
      });
      return;
    case 'stop':
      for (const c of clients) { c.stopped = true; c.ws?.terminate(); }
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0)); // the coordinator is gone: so are we
