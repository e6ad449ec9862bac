// Scenario "sync": a device that was offline while N messages arrived comes back. How long from
// opening its connection until it holds all N, in order (the last `sync.done`)? The N messages
// are committed first by another user over a pipelined WebSocket (their commit rate is reported
// too); then the device reconnects with its cursor at 0, several times, and every run checks it
// got seq 1..N exactly once. The reader parses every frame fully, as a real client must.
import type { ParseArgsConfig } from 'node:util';
import { WebSocket, type RawData } from 'ws';
import type { ServerFrame } from '@confab/protocol';
import { now } from '../latency.js';
import { intOption, type Opts, type Scenario } from '../main.js';
import { formatTable, median } from '../report.js';
import { createGroup, registerUsers } from '../rest.js';
import { deploy, SYSTEM_NAMES, TOPOLOGIES, type Topology } from '../topology.js';

const OPTIONS = {
  messages: { type: 'string', default: '10000' },
  runs: { type: 'string', default: '5' },
  'text-bytes': { type: 'string', default: '64' },
  topology: { type: 'string', default: 'sqlite' },
} as const satisfies ParseArgsConfig['options'];

const USAGE = `sync: a device offline for N messages reconnects: time until it has caught up.
  --messages N     messages it missed (default 10000)
  --runs R         reconnects measured, each from cursor 0 (default 5); the median is reported
  --text-bytes B   text of each message (default 64)
  --topology T     sqlite (default), postgres or cluster3 (the sender on node 1, the reader on node 2)`;

const TARGET_MS = 2000;
const NODE_ARGS = ['--sends-per-second', '100000', '--send-burst', '100000', '--user-sends-per-second', '100000', '--user-send-burst', '100000', '--log-level', 'warn'];

const int = (o: Opts, key: keyof typeof OPTIONS, min: number, max: number, fallback?: number) => intOption(o, key, min, max, fallback);

function settings(o: Opts) {
  const topology = String(o.topology) as Topology;
  if (!TOPOLOGIES.includes(topology)) throw new Error(`--topology must be one of ${TOPOLOGIES.join(', ')}, got "${topology}"`);
  return { messages: int(o, 'messages', 1, 1_000_000), runs: int(o, 'runs', 1, 50), textBytes: int(o, 'text-bytes', 1, 16_000), topology };
}

const wsUrl = (url: string) => `${url.replace(/^http/, 'ws')}/v1/ws`;

/** Opens a connection and says hello; resolves once `welcome` came. Frames after it go to `onFrame`. */
function connect(url: string, token: string, cursors: Record<string, number> | undefined, onFrame: (f: ServerFrame, bytes: number) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(url), { perMessageDeflate: false });
    let open = false;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, token, ...(cursors ? { cursors } : {}) })));
    ws.on('message', (data: RawData) => {
      const text = (data as Buffer).toString('utf8');
      const f = JSON.parse(text) as ServerFrame;
      if (!open) {
        if (f.type !== 'welcome') return reject(new Error(`expected welcome, got ${text.slice(0, 200)}`));
        open = true;
        resolve(ws);
        return;
      }
      onFrame(f, text.length);
    });
    ws.on('error', reject);
    ws.on('close', (code) => { if (!open) reject(new Error(`closed with ${code} before welcome`)); });
  });
}

/** Sends `n` messages with up to 512 unacked; resolves with the commit rate (msg/s). */
async function fill(url: string, token: string, conversationId: string, n: number, textBytes: number): Promise<number> {
  const window = 512;
  const text = 'x'.repeat(textBytes);
  let sent = 0;
  let acked = 0;
  let ws: WebSocket | undefined;
  const pump = () => {
    for (; ws && sent < n && sent - acked < window; sent++) ws.send(JSON.stringify({ type: 'send', id: `s${sent}`, conversationId, clientId: `fill-${sent}`, text }));
  };
  const t0 = now();
  await new Promise<void>((resolve, reject) => {
    connect(url, token, undefined, (f) => {
      if (f.type === 'ack') {
        if (++acked === n) resolve();
        else pump();
      } else if (f.type === 'error') {
        reject(new Error(`send refused: ${f.code} ${f.message}`));
      }
    }).then((w) => { ws = w; pump(); }, reject);
  });
  ws?.close();
  return n / ((now() - t0) / 1000);
}

interface Run { caughtUpMs: number; firstPageMs: number; pages: number; bytes: number }

/** Reconnects with cursor 0 and reads until sync.done at `n`; checks seq 1..n exactly once. */
async function catchUp(url: string, token: string, conversationId: string, n: number): Promise<Run> {
  let next = 1;
  let pages = 0;
  let bytes = 0;
  let firstPageMs = -1;
  let t0 = 0;
  return new Promise<Run>((resolve, reject) => {
    t0 = now();
    let ws: WebSocket | undefined;
    connect(url, token, { [conversationId]: 0 }, (f, size) => {
      bytes += size;
      if (f.type === 'sync.page' && f.conversationId === conversationId) {
        if (firstPageMs < 0) firstPageMs = now() - t0;
        pages++;
        for (const m of f.messages) {
          if (m.seq !== next) return reject(new Error(`expected seq ${next}, got ${m.seq}`));
          next++;
        }
      } else if (f.type === 'sync.done' && f.conversationId === conversationId) {
        const caughtUpMs = now() - t0;
        ws?.close();
        if (next !== n + 1) return reject(new Error(`sync.done at seq ${f.seq} after ${next - 1} of ${n} messages`));
        resolve({ caughtUpMs, firstPageMs, pages, bytes });
      } else if (f.type === 'error') {
        reject(new Error(`error ${f.code}: ${f.message}`));
      }
    }).then((w) => { ws = w; }, reject);
  });
}

export const sync: Scenario = {
  name: 'sync',
  usage: USAGE,
  options: OPTIONS,

  budgetSeconds(o) {
    const s = settings(o);
    return 120 + s.messages / 200 + s.runs * (10 + s.messages / 1000);
  },

  async run(o, ctx) {
    const s = settings(o);
    const dep = await deploy(s.topology, NODE_ARGS, ctx.pin ? 0 : undefined, ctx.nodeFlags, (m) => ctx.log(m), (fn) => ctx.onCleanup(fn));
    const sendVia = dep.nodes[0]!.url;
    const readVia = dep.nodes[Math.min(1, dep.nodes.length - 1)]!.url;
    ctx.log(`${dep.description}; committing ${s.messages} messages while the reader is away`);
    const [sender, reader] = await registerUsers(sendVia, 2, 2);
    const conv = await createGroup(sendVia, 'sync bench', [sender!, reader!]);
    const fillRate = await fill(sendVia, sender!.accessToken, conv.id, s.messages, s.textBytes);
    ctx.log(`committed ${s.messages} messages at ${Math.round(fillRate)} msg/s; reconnecting the reader ${s.runs} times`);
    const runs: Run[] = [];
    for (let i = 0; i < s.runs; i++) runs.push(await catchUp(readVia, reader!.accessToken, conv.id, s.messages));

    const caughtUp = median(runs.map((r) => r.caughtUpMs));
    const system = {
      name: SYSTEM_NAMES[s.topology] === 'confab-sqlite' ? 'confab' : SYSTEM_NAMES[s.topology],
      messages: s.messages,
      caughtUpMsMedian: Math.round(caughtUp),
      caughtUpMsAll: runs.map((r) => Math.round(r.caughtUpMs)),
      firstPageMsMedian: Math.round(median(runs.map((r) => r.firstPageMs))),
      messagesPerSec: Math.round(s.messages / (caughtUp / 1000)),
      pages: runs[0]!.pages,
      bytes: runs[0]!.bytes,
      fillCommitsPerSec: Math.round(fillRate),
      targetMs: TARGET_MS,
      withinTarget: caughtUp < TARGET_MS,
    };
    const head = ['run', 'caught up ms', 'first page ms', 'pages', 'MiB', 'msg/s'];
    const rows = runs.map((r, i) => [String(i + 1), r.caughtUpMs.toFixed(0), r.firstPageMs.toFixed(1), String(r.pages), (r.bytes / 2 ** 20).toFixed(1), Math.round(s.messages / (r.caughtUpMs / 1000)).toString()]);
    return {
      systems: [system],
      params: { ...s },
      lines: [
        `${system.name}: ${dep.description}; the missed messages were committed at ${system.fillCommitsPerSec} msg/s (one sender, 512 in flight)`,
        `${system.name}: a device offline for ${s.messages} messages reconnects with its cursor at 0 (the reader runs in the bench process, not pinned, and parses every frame):`,
        ...formatTable(head, rows),
        `median: caught up in ${system.caughtUpMsMedian} ms (${system.messagesPerSec} msg/s), first page after ${system.firstPageMsMedian} ms; target < ${TARGET_MS} ms: ${system.withinTarget ? 'met' : 'NOT met'}`,
      ],
    };
  },
};
