// `confab capacity`: turns per-node figures measured by `npm run bench` into a plan for a given
// load — nodes, PostgreSQL and Redis sizing, bandwidth, storage — and prints every assumption it
// used, so a reader can disagree with one and rerun with another.
//
// The CPU model. A Confab node is one Node.js process: one core. Its budget is spent as
//   perMessage x messages/s + perDelivery x deliveries/s  (+ perConnection x idle connections)
// and the bench's sustained limits (p99 < 100 ms, nothing lost) for two group sizes give the two
// costs: the highest sustained step of each is taken as one full core. From the bench machine's
// groups of 10 (6,000 msg/s) and of 100 (1,500 msg/s), 1,000 connections each, that is 111 µs per
// message and 5.56 µs per delivery; the model then says groups of 50 saturate one core at 2,571
// msg/s, and the bench sustained 2,000 msg/s in groups of 50 and fell behind at 3,500.

export interface BenchFigures {
  /** Core-seconds per committed message (write path: parse, validate, commit, fan-out lookup). */
  perMessageSec: number;
  /** Core-seconds per delivery (one frame to one device). */
  perDeliverySec: number;
  /** Cores per idle connection (heartbeats). */
  idleCoresPerConnection: number;
  /** RSS per idle connection, KiB. */
  rssPerConnKiB: number;
  /** Core-seconds per message sent in a catch-up page (a device back from offline). */
  perCatchUpSec: number;
  /** Where the figures came from. */
  source: string;
}

/** The bench machine's figures (docs/architecture.md, "Measured"): groups of 10 and 100, and idle. */
export const MEASURED: BenchFigures = {
  // 6,000 msg/s x 10 deliveries and 1,500 msg/s x 100 deliveries, each at the sustained limit of one core.
  perMessageSec: 111.1e-6,
  perDeliverySec: 5.556e-6,
  // 15,000 idle connections: 3.5 % of a core; 9.6 KiB of RSS each.
  idleCoresPerConnection: 0.035 / 15_000,
  rssPerConnKiB: 9.6,
  // The sync bench: 10,000 missed messages caught up in 113 ms.
  perCatchUpSec: 1 / 88_800,
  source: 'built-in: the bench machine\'s figures in docs/architecture.md (groups of 10 and 100, idle 15,000, sync 10,000)',
};

export interface Load {
  dau: number;
  msgsPerUser: number;
  avgGroup: number;
  peakFactor: number;
  /** Fraction of DAU connected at the peak. */
  online: number;
  devicesPerUser: number;
  textBytes: number;
  /** The largest room (members), for the fan-out of one message. */
  largestRoom: number;
}

export interface Knobs {
  /** Plan nodes to run at this fraction of their sustained limit at the peak. */
  headroom: number;
  /** Cluster path cost over one node's (Redis hop, smaller batches): measured about 2x. */
  clusterOverhead: number;
  nodeMemoryGiB: number;
  maxConnsPerNode: number;
  pgWritesPerShard: number;
  /** Read-cursor updates per delivery (clients mark read in batches). */
  readUpdatesPerDelivery: number;
  /** Stored bytes per message besides its text: row, indexes, cursors. */
  rowBytes: number;
  replicas: number;
  redisOpsPerShard: number;
  /** Bytes of a `message` frame besides its text. */
  frameOverheadBytes: number;
}

export const DEFAULT_KNOBS: Knobs = {
  headroom: 0.7,
  clusterOverhead: 2,
  nodeMemoryGiB: 4,
  maxConnsPerNode: 100_000,
  pgWritesPerShard: 10_000,
  readUpdatesPerDelivery: 0.3,
  rowBytes: 300,
  replicas: 2,
  redisOpsPerShard: 100_000,
  frameOverheadBytes: 270,
};

export const PRESETS: Record<string, { load: Load; about: string }> = {
  whatsapp: {
    about: 'WhatsApp-like: 500M daily users, small chats (1:1 and family groups), 40 messages a day each',
    load: { dau: 500e6, msgsPerUser: 40, avgGroup: 6, peakFactor: 3, online: 0.2, devicesPerUser: 1.2, textBytes: 100, largestRoom: 1024 },
  },
  slack: {
    about: 'Slack-like: 20M daily users in workspaces, channels of ~50 on average and announcement channels of 100k members, busy in working hours',
    load: { dau: 20e6, msgsPerUser: 30, avgGroup: 50, peakFactor: 4, online: 0.6, devicesPerUser: 1.5, textBytes: 150, largestRoom: 100_000 },
  },
  discord: {
    about: 'Discord-like: 30M daily users, community servers with large active channels, evening peaks',
    load: { dau: 30e6, msgsPerUser: 50, avgGroup: 200, peakFactor: 3, online: 0.4, devicesPerUser: 1.3, textBytes: 80, largestRoom: 500_000 },
  },
  '10m-dau': {
    about: '10M daily users, 1M of them connected at the peak, small chats',
    load: { dau: 10e6, msgsPerUser: 40, avgGroup: 6, peakFactor: 3, online: 0.1, devicesPerUser: 1, textBytes: 100, largestRoom: 1000 },
  },
};

export interface Plan {
  load: Load;
  knobs: Knobs;
  figures: BenchFigures;
  messagesPerDay: number;
  peakMessagesPerSec: number;
  peakDeliveriesPerSec: number;
  peakConnections: number;
  peakCatchUpPerSec: number;
  nodeCores: { messages: number; deliveries: number; catchUp: number; idle: number; total: number };
  connsPerNode: number;
  nodes: number;
  nodesBoundBy: 'cpu' | 'connections';
  largestRoom: { onlineDevices: number; coreSeconds: number; secondsAcrossNodes: number };
  postgres: { rowWritesPerSec: number; shards: number; storagePerDayGB: number; storagePerYearTB: number };
  redis: { publishesPerSec: number; sessionMemoryGB: number; shards: number };
  bandwidth: { egressGbps: number; ingressGbps: number; egressTBPerDay: number };
}

export function plan(load: Load, knobs: Knobs = DEFAULT_KNOBS, figures: BenchFigures = MEASURED): Plan {
  const messagesPerDay = load.dau * load.msgsPerUser;
  const peakMessagesPerSec = (messagesPerDay / 86_400) * load.peakFactor;
  // Every member's online devices get each message live (the sender's other devices too).
  const peakDeliveriesPerSec = peakMessagesPerSec * load.avgGroup * load.online * load.devicesPerUser;
  const peakConnections = load.dau * load.online * load.devicesPerUser;
  // The devices that were offline get the same entries later, in catch-up pages (counted at the peak rate, to be safe).
  const peakCatchUpPerSec = peakMessagesPerSec * load.avgGroup * (1 - load.online) * load.devicesPerUser;
  const messages = peakMessagesPerSec * figures.perMessageSec * knobs.clusterOverhead;
  const deliveries = peakDeliveriesPerSec * figures.perDeliverySec * knobs.clusterOverhead;
  const catchUp = peakCatchUpPerSec * figures.perCatchUpSec * knobs.clusterOverhead;
  const idle = peakConnections * figures.idleCoresPerConnection;
  const total = messages + deliveries + catchUp + idle;
  const connsPerNode = Math.min(knobs.maxConnsPerNode, Math.floor((knobs.nodeMemoryGiB * 2 ** 20 * 0.7) / figures.rssPerConnKiB));
  const byCpu = Math.ceil(total / knobs.headroom);
  const byConns = Math.ceil(peakConnections / connsPerNode);
  const nodes = Math.max(1, byCpu, byConns);
  const onlineDevices = Math.round(load.largestRoom * load.online * load.devicesPerUser);
  const roomCoreSeconds = (figures.perMessageSec + onlineDevices * figures.perDeliverySec) * knobs.clusterOverhead;
  // A room's members are spread over the nodes; each node writes to its own share.
  const roomSeconds = figures.perMessageSec * knobs.clusterOverhead + (onlineDevices / Math.min(nodes, Math.max(1, onlineDevices))) * figures.perDeliverySec * knobs.clusterOverhead;

  const rowWritesPerSec = peakMessagesPerSec * (1 + (load.avgGroup - 1) * knobs.readUpdatesPerDelivery);
  const storedBytesPerDay = messagesPerDay * (load.textBytes + knobs.rowBytes) * knobs.replicas;
  // One publish per node that holds recipients of the message: at most the nodes, at most the room's devices.
  const nodesPerMessage = Math.min(nodes, Math.max(1, load.avgGroup * load.online * load.devicesPerUser));
  const publishesPerSec = peakMessagesPerSec * nodesPerMessage;
  const sessionMemoryGB = (peakConnections * 150) / 1e9; // a device entry in a user's set and the node's index
  const frameBytes = load.textBytes + knobs.frameOverheadBytes;
  return {
    load, knobs, figures,
    messagesPerDay, peakMessagesPerSec, peakDeliveriesPerSec, peakConnections, peakCatchUpPerSec,
    nodeCores: { messages, deliveries, catchUp, idle, total },
    connsPerNode, nodes, nodesBoundBy: byConns > byCpu ? 'connections' : 'cpu',
    largestRoom: { onlineDevices, coreSeconds: roomCoreSeconds, secondsAcrossNodes: roomSeconds },
    postgres: {
      rowWritesPerSec,
      shards: Math.max(1, Math.ceil(rowWritesPerSec / knobs.pgWritesPerShard)),
      storagePerDayGB: storedBytesPerDay / 1e9,
      storagePerYearTB: (storedBytesPerDay * 365) / 1e12,
    },
    redis: {
      publishesPerSec,
      sessionMemoryGB,
      shards: Math.max(1, Math.ceil(publishesPerSec / knobs.redisOpsPerShard)),
    },
    bandwidth: {
      egressGbps: (peakDeliveriesPerSec * frameBytes * 8) / 1e9,
      // The send frame in, and its ack out to the sender.
      ingressGbps: (peakMessagesPerSec * (load.textBytes + 120) * 8) / 1e9,
      egressTBPerDay: ((peakDeliveriesPerSec / load.peakFactor) * 86_400 * frameBytes) / 1e12,
    },
  };
}

interface BenchLine { scenario?: string; params?: { groupSize?: number }; systems?: { steps?: { committedPerSec: number; deliveriesPerSec: number; sustained: boolean }[]; rssPerConnKiB?: number; connections?: number; idleCpuPct?: number; nodes?: number }[] }

/**
 * Figures from `npm run bench -- <scenario> --json` output (one JSON object per line; other
 * lines are ignored). Each `groups`/`channel` run gives its highest sustained step (messages/s,
 * deliveries/s) as one core's worth; with two or more group sizes, CPU per message and per
 * delivery are solved from those (least squares). `idle` gives memory and idle CPU per
 * connection. What the files do not give stays at the built-in value, and `source` says which.
 */
export function figuresFromBench(text: string, base: BenchFigures = MEASURED): BenchFigures {
  const steps: { m: number; d: number }[] = [];
  const sizes = new Set<number>();
  let idle: { rss: number; cpuPerConn: number } | undefined;
  for (const line of text.split('\n')) {
    let j: BenchLine;
    try { j = JSON.parse(line) as BenchLine; } catch { continue; }
    if (!j || typeof j !== 'object' || !Array.isArray(j.systems)) continue;
    if (j.scenario === 'groups' || j.scenario === 'channel') {
      let best: { m: number; d: number } | undefined;
      for (const s of j.systems[0]?.steps ?? []) if (s.sustained && s.committedPerSec > (best?.m ?? 0)) best = { m: s.committedPerSec, d: s.deliveriesPerSec };
      if (best && j.params?.groupSize) {
        steps.push(best);
        sizes.add(j.params.groupSize);
      }
    } else if (j.scenario === 'idle') {
      const s = j.systems[0];
      if (s?.rssPerConnKiB && s.connections) idle = { rss: s.rssPerConnKiB, cpuPerConn: (s.idleCpuPct ?? 0) / 100 / s.connections };
    }
  }
  const out = { ...base };
  const used: string[] = [];
  if (sizes.size >= 2 && steps.length >= 2) {
    // Least squares for 1 core = a*m + b*d over the sustained limits.
    let mm = 0; let md = 0; let dd = 0; let mc = 0; let dc = 0;
    for (const s of steps) { mm += s.m * s.m; md += s.m * s.d; dd += s.d * s.d; mc += s.m; dc += s.d; }
    const det = mm * dd - md * md;
    if (det > 0) {
      const a = (mc * dd - dc * md) / det;
      const b = (dc * mm - mc * md) / det;
      if (a > 0 && b > 0) {
        out.perMessageSec = a;
        out.perDeliverySec = b;
        used.push(`CPU per message and per delivery from the sustained limits of group sizes ${[...sizes].join(', ')}`);
      }
    }
  }
  if (idle) {
    out.rssPerConnKiB = idle.rss;
    out.idleCoresPerConnection = idle.cpuPerConn;
    used.push('memory and idle CPU per connection from the idle run');
  }
  out.source = used.length ? `bench file: ${used.join('; ')}; the rest built-in` : `${base.source} (the bench file had nothing usable: give groups runs of two group sizes, and an idle run)`;
  return out;
}

const SUFFIX: Record<string, number> = { k: 1e3, m: 1e6, b: 1e9 };

/** "500M", "1.5k", "20000" → number. */
export function parseAmount(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kmb])?$/i.exec(s.trim());
  if (!m) throw new Error(`"${s}" is not an amount (e.g. 500M, 1.5k, 20000)`);
  return Number(m[1]) * (m[2] ? SUFFIX[m[2].toLowerCase()]! : 1);
}

const n = (v: number) => (v >= 100 ? Math.round(v).toLocaleString('en-US') : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const int = (v: number) => Math.round(v).toLocaleString('en-US');

export function formatPlan(p: Plan, preset?: string): string {
  const { load: l, knobs: k, figures: f } = p;
  return [
    `Capacity plan${preset ? ` (preset ${preset}: ${PRESETS[preset]!.about})` : ''}`,
    '',
    'Load (assumptions):',
    `  daily active users          ${int(l.dau)}`,
    `  messages per user per day   ${n(l.msgsPerUser)}`,
    `  average conversation size   ${n(l.avgGroup)} members (sender included)`,
    `  peak / average rate         ${n(l.peakFactor)}`,
    `  online at the peak          ${n(l.online * 100)} % of daily users, ${n(l.devicesPerUser)} devices each`,
    `  average text                ${n(l.textBytes)} bytes`,
    `  largest room                ${int(l.largestRoom)} members`,
    '',
    'Per-node figures (one node = one Node.js process = one core):',
    `  CPU per committed message   ${n(f.perMessageSec * 1e6)} µs`,
    `  CPU per delivery            ${n(f.perDeliverySec * 1e6)} µs`,
    `  CPU per idle connection     ${n(f.idleCoresPerConnection * 1e6)} µs/s`,
    `  RSS per idle connection     ${n(f.rssPerConnKiB)} KiB`,
    `  CPU per catch-up message    ${n(f.perCatchUpSec * 1e6)} µs`,
    `  from                        ${f.source}`,
    `  cluster overhead            x${n(k.clusterOverhead)} (Redis hop, smaller commits; measured about 2x on one core)`,
    `  planned load per node       ${n(k.headroom * 100)} % of its sustained limit at the peak`,
    '',
    'Traffic:',
    `  messages per day            ${n(p.messagesPerDay)}`,
    `  messages per second, peak   ${n(p.peakMessagesPerSec)}`,
    `  deliveries per second, peak ${n(p.peakDeliveriesPerSec)} (to online devices; the others catch up from the store)`,
    `  catch-up msgs per second    ${n(p.peakCatchUpPerSec)} (to the devices that were offline, counted at the peak rate)`,
    `  connections at the peak     ${int(p.peakConnections)}`,
    '',
    'Confab nodes:',
    `  cores for messages          ${n(p.nodeCores.messages)}`,
    `  cores for deliveries        ${n(p.nodeCores.deliveries)}`,
    `  cores for catch-up          ${n(p.nodeCores.catchUp)}`,
    `  cores for idle connections  ${n(p.nodeCores.idle)}`,
    `  connections per node        ${int(p.connsPerNode)} (at most ${int(k.maxConnsPerNode)}; ${n(k.nodeMemoryGiB)} GiB per node, 70 % for connections)`,
    `  NODES                       ${int(p.nodes)} (bound by ${p.nodesBoundBy === 'cpu' ? 'CPU' : 'connections per node'})`,
    `  largest room, one message   ${int(p.largestRoom.onlineDevices)} online devices: ${n(p.largestRoom.coreSeconds * 1000)} ms of CPU, ${n(p.largestRoom.secondsAcrossNodes * 1000)} ms when spread over the nodes`,
    '',
    'PostgreSQL (the messages; partitioned by conversation id):',
    `  row writes per second, peak ${n(p.postgres.rowWritesPerSec)} (messages + ${n(k.readUpdatesPerDelivery)} read-cursor updates per recipient)`,
    `  shards                      ${int(p.postgres.shards)} (at ${int(k.pgWritesPerShard)} row writes/s each: an assumption for a dedicated server, not measured here)`,
    `  storage per day             ${n(p.postgres.storagePerDayGB)} GB (text + ${n(k.rowBytes)} bytes per row, ${n(k.replicas)} copies)`,
    `  storage per year            ${n(p.postgres.storagePerYearTB)} TB`,
    '',
    'Redis (bus and session registry):',
    `  publishes per second, peak  ${n(p.redis.publishesPerSec)} (one per node with recipients)`,
    `  session registry            ${n(p.redis.sessionMemoryGB)} GB (about 150 bytes per connection)`,
    `  shards                      ${int(p.redis.shards)} (at ${int(k.redisOpsPerShard)} operations/s each: an assumption)`,
    '',
    'Bandwidth:',
    `  out to clients, peak        ${n(p.bandwidth.egressGbps)} Gbit/s (${n(l.textBytes + k.frameOverheadBytes)}-byte frames)`,
    `  in from clients, peak       ${n(p.bandwidth.ingressGbps)} Gbit/s`,
    `  out per day                 ${n(p.bandwidth.egressTBPerDay)} TB`,
  ].join('\n');
}
