// A load-generator process (forked by workers.ts). It holds a share of the connections and speaks
// the protocol with a deliberately lean client: `hello`, then `send` frames at the offered rate,
// and for incoming frames only the type and the text prefix are read, never a full JSON parse.
// Every text is "<send time ms>|<step>|<measured 0/1>|<padding>": the receiver (any worker) gets
// end-to-end latency from it without any change to the server.
import { WebSocket, type RawData } from 'ws';
import type { ClientFrameOf } from '@confab/protocol';
import { Histogram, now } from './latency.js';
import { pool } from './rest.js';
import type { ConnSpec, Dialect, FromWorker, StepPlan, ToWorker } from './workers.js';

const MAX_BUFFERED = 1 << 20; // a connection with 1 MiB unsent skips its turn: memory stays bounded
const MAX_BACKLOG_MS = 1000; // a stalled generator catches up at most this much, then drops the rest

interface Conn { ws: WebSocket; spec: ConnSpec; next: number }

class Stats {
  sent = 0; skipped = 0; acked = 0; expected = 0; delivered = 0; late = 0; maxStallMs = 0;
  acksInWindow = 0; deliveriesInWindow = 0;
  readonly e2e = new Histogram();
  readonly ack = new Histogram();
  readonly errors: Record<string, number> = {};
  readonly winStart: number;
  readonly winEnd: number;
  constructor(readonly plan: StepPlan) {
    this.winStart = plan.startAt + plan.warmMs;
    this.winEnd = this.winStart + plan.measureMs;
  }
  inWindow(t: number): boolean { return t >= this.winStart && t < this.winEnd; }
  error(code: string): void { this.errors[code] = (this.errors[code] ?? 0) + 1; }
}

let conns: Conn[] = [];
let pad = '';
/** `confab`: Confab's frames (the raw-ws peers speak them too); `socketio`: the same frames as Socket.IO events. */
let dialect: Dialect = 'confab';
let baseUrl = '';
let current: Stats | undefined;
const reply = (m: FromWorker) => { process.send?.(m); };

interface Tag { ts: number; step: number; measured: boolean }

/** Reads "<ts>|<step>|<m>|" starting at `from`; undefined if the text is not one of ours. */
function tagAt(s: string, from: number): Tag | undefined {
  const a = s.indexOf('|', from);
  const b = a < 0 ? -1 : s.indexOf('|', a + 1);
  if (b < 0 || b - from > 40) return undefined;
  return { ts: Number(s.slice(from, a)), step: Number(s.slice(a + 1, b)), measured: s[b + 1] === '1' };
}

function tagOfFrame(frame: string): Tag | undefined {
  const at = frame.indexOf('"text":"');
  return at < 0 ? undefined : tagAt(frame, at + 8);
}

function delivered(s: Stats, tag: Tag | undefined, t: number): void {
  if (s.inWindow(t)) s.deliveriesInWindow++;
  if (!tag?.measured) return;
  if (tag.step !== s.plan.step) { s.late++; return; }
  s.delivered++;
  s.e2e.record(t - tag.ts);
}

/** The frame type: Confab's `type`, or the Socket.IO event name (`42["name",...]`). */
function typeOf(frame: string): string {
  if (frame.startsWith('{"type":"')) return frame.slice(9, frame.indexOf('"', 9));
  if (frame.startsWith('42["')) return frame.slice(4, frame.indexOf('"', 4));
  return '';
}

function onFrame(conn: Conn, frame: string): void {
  if (frame === '2') return conn.ws.send('3'); // Engine.IO ping: pong at once, measured or not
  const s = current;
  if (!s) return; // between steps: nothing is measured
  const t = now();
  const type = typeOf(frame);
  switch (type) {
    case 'message':
      return delivered(s, tagOfFrame(frame), t);
    case 'ack': {
      if (s.inWindow(t)) s.acksInWindow++;
      const tag = tagOfFrame(frame);
      if (!tag?.measured || tag.step !== s.plan.step) return;
      s.acked++;
      s.expected += conn.spec.groupSize; // every member's device gets it, the sender's included
      s.ack.record(t - tag.ts);
      return;
    }
    case 'sync.page': // only after a live gap: rare, so a full parse is fine
      for (const m of (JSON.parse(frame) as { messages: { text: string }[] }).messages) delivered(s, tagAt(m.text, 0), t);
      return;
    case 'error':
      return s.error((JSON.parse(frame) as { code: string }).code);
  }
}

function send(c: Conn, s: Stats, measured: boolean): void {
  if (c.ws.readyState !== WebSocket.OPEN || c.ws.bufferedAmount > MAX_BUFFERED) {
    if (measured) s.skipped++;
    return;
  }
  const n = (c.next++).toString(36);
  const text = `${now().toFixed(3)}|${s.plan.step}|${measured ? 1 : 0}|${pad}`;
  const frame: ClientFrameOf<'send'> = { type: 'send', id: n, conversationId: c.spec.conversationId, clientId: `c${n}`, text };
  c.ws.send(dialect === 'socketio' ? `42["send",${JSON.stringify(frame)}]` : JSON.stringify(frame));
  if (measured) s.sent++;
}

/** Sends at plan.rate from startAt for warm-up + measurement, then reports after the drain. */
function runStep(plan: StepPlan): void {
  const s = (current = new Stats(plan));
  const senders = conns.filter((c) => c.spec.sender && !c.spec.stalled);
  let credit = 0;
  let last = plan.startAt;
  let rr = 0;
  const timer = setInterval(() => {
    const t = now();
    if (t >= s.winEnd || senders.length === 0) return clearInterval(timer);
    if (t < plan.startAt) return;
    s.maxStallMs = Math.max(s.maxStallMs, t - last); // the timer asks for 5 ms: more is event-loop lag
    credit = Math.min(credit + (plan.rate * (t - last)) / 1000, (plan.rate * MAX_BACKLOG_MS) / 1000 + 1);
    last = t;
    const measured = t >= s.winStart;
    while (credit >= 1) {
      credit--;
      send(senders[rr++ % senders.length]!, s, measured);
    }
  }, 5);
  setTimeout(() => {
    if (current === s) current = undefined;
    const { sent, skipped, acked, expected, delivered, late, maxStallMs, acksInWindow, deliveriesInWindow, errors } = s;
    reply({ type: 'result', step: plan.step, sent, skipped, acked, expected, delivered, late, maxStallMs, acksInWindow, deliveriesInWindow, errors, e2e: s.e2e.toJSON(), ack: s.ack.toJSON() });
  }, s.winEnd + plan.drainMs - now());
}

/** Opens one authenticated connection: resolves on `welcome`, rejects on anything else or after 15 s. */
function connect(url: string, spec: ConnSpec): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const path = dialect === 'socketio' ? '/socket.io/?EIO=4&transport=websocket' : '/v1/ws';
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}${path}`, { perMessageDeflate: false });
    const conn: Conn = { ws, spec, next: 0 };
    let open = false;
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no welcome within 15 s')); }, 15_000);
    const hello: ClientFrameOf<'hello'> = { type: 'hello', v: 1, token: spec.token };
    ws.on('open', () => {
      if (dialect === 'confab') ws.send(JSON.stringify(hello));
    });
    ws.on('message', (data: RawData) => {
      const frame = (data as Buffer).toString('utf8');
      if (open) return onFrame(conn, frame);
      if (dialect === 'socketio') {
        // Engine.IO open, then Socket.IO connect to the default namespace, then our hello event.
        if (frame.startsWith('0{')) return ws.send('40');
        if (frame.startsWith('40')) return ws.send(`42["hello",${JSON.stringify(hello)}]`);
        if (frame === '2') return ws.send('3');
      }
      clearTimeout(timer);
      if (typeOf(frame) !== 'welcome') {
        ws.terminate();
        return reject(new Error(`hello refused: ${frame.slice(0, 200)}`));
      }
      open = true;
      // A slow consumer: from here on nothing is read; the node's frames pile up for it.
      if (spec.stalled) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      resolve(conn);
    });
    ws.on('error', (err) => { clearTimeout(timer); reject(err); });
    ws.on('close', () => { if (open && !spec.stalled) current?.error('ws_closed'); });
  });
}

process.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'init':
      pad = 'x'.repeat(m.textBytes);
      dialect = m.dialect ?? 'confab';
      baseUrl = m.url;
      pool(m.conns.length, 32, (i) => connect(m.conns[i]!.url ?? m.url, m.conns[i]!)).then(
        (list) => { conns = list; reply({ type: 'ready', connected: list.length }); },
        (err: unknown) => reply({ type: 'fatal', message: `connect failed: ${(err as Error).message}` }),
      );
      return;
    case 'step':
      return runStep(m);
    case 'churn': {
      // Between steps: a share of the clients drop their connection and come back (a new socket,
      // a new hello), as phones do when they change networks.
      const picked = conns.map((c, i) => ({ c, i })).filter(() => Math.random() < m.fraction);
      for (const { c } of picked) c.ws.terminate();
      pool(picked.length, 32, async (k) => {
        const { c, i } = picked[k]!;
        const fresh = await connect(c.spec.url ?? baseUrl, c.spec);
        fresh.next = c.next; // the same device: its client ids go on, they never repeat (a repeat is a resend)
        conns[i] = fresh;
      }).then(
        () => reply({ type: 'churned', reconnected: picked.length }),
        (err: unknown) => reply({ type: 'fatal', message: `reconnect failed: ${(err as Error).message}` }),
      );
      return;
    }
    case 'stop':
      for (const c of conns) c.ws.terminate();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0)); // the coordinator is gone: so are we
