// Wiring: build(config) assembles a node from its adapters without listening, so tests and
// the CLI start real servers on port 0.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import type { Server } from 'node:http';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { ConversationId, UserId } from '@confab/protocol';
import { ConfigError, type Config } from './config.js';
import { AddressLimits } from './core/address-limits.js';
import { AuthService } from './core/auth.js';
import { LoginThrottle } from './core/login-throttle.js';
import { ConversationService } from './core/conversations.js';
import { Fanout, type Committed } from './core/fanout.js';
import { MessageService } from './core/messages.js';
import { PresenceService } from './core/presence.js';
import { ReceiptService } from './core/receipts.js';
import { TokenBucket } from './core/rate-limit.js';
import { TypingService } from './core/typing.js';
import { UserBudgets } from './core/user-limits.js';
import { privateDir } from './data-dir.js';
import { TokenIssuer } from './core/tokens.js';
import { Writer } from './core/writer.js';
import { LocalHub } from './gateway/hub.js';
import { Metrics, metered } from './metrics.js';
import { liveAdapters } from './live.js';
import { openStore } from './open-store.js';
import { WsGateway } from './gateway/ws-gateway.js';
import { clientAddress } from './http/client-address.js';
import { hostPolicy } from './http/hosts.js';
import { metricsServer } from './http/metrics-server.js';
import { originPolicy } from './http/origins.js';
import { buildHttp } from './http/server.js';
import type { Bus, Envelope } from './ports/bus.js';
import type { PresenceDirectory } from './ports/presence.js';
import type { SessionRegistry } from './ports/sessions.js';
import type { Store } from './ports/store.js';

/** Aggregate receipts of a conversation are pushed at most this often. */
const RECEIPT_INTERVAL_MS = 250;

export interface Deps {
  store?: Store;
  bus?: Bus;
  sessions?: SessionRegistry;
  presence?: PresenceDirectory;
  log?: Logger;
}

export interface ConfabNode {
  readonly config: Config;
  readonly store: Store;
  readonly log: Logger;
  /** Starts listening; resolves with the base URL (http://host:port). */
  listen(): Promise<string>;
  /** The base URL once listening. */
  readonly url: string;
  /** The URL of the /metrics listener (METRICS_PORT) once listening; '' when /metrics is on the main port. */
  readonly metricsUrl: string;
  /** Drains: refuses new connections and writes, finishes pending commits, closes connections with `going_away`, closes the store. */
  close(): Promise<void>;
}

/** Reads the token secret from config, or from the data directory (created on first start). */
function jwtSecret(config: Config, log: Logger): string {
  if (config.jwtSecret) return config.jwtSecret;
  const dir = privateDir(resolve(config.dataDir), log);
  const file = join(dir, 'jwt-secret');
  if (!existsSync(file)) writeFileSync(file, randomBytes(48).toString('base64url'), { mode: 0o600, flag: 'wx' });
  const secret = readFileSync(file, 'utf8').trim();
  if (Buffer.byteLength(secret) < 32) throw new ConfigError(`${file} holds a secret shorter than 32 bytes; delete it to have a new one made`);
  return secret;
}

export async function build(given: Config, deps: Deps = {}): Promise<ConfabNode> {
  // A page must fit well inside a connection's outbound budget (a quarter of it at most).
  const config: Config = { ...given, limits: { ...given.limits, maxPageBytes: Math.min(given.limits.maxPageBytes, Math.floor(given.maxOutboundBytes / 4)) } };
  const log = deps.log ?? pino({ level: config.logLevel, base: { node: config.nodeId } });
  if (config.bus === 'redis' && !config.jwtSecret) {
    log.warn('BUS=redis without JWT_SECRET: this node signs tokens with its own secret, so tokens from other nodes of the cluster will be refused. Give every node the same JWT_SECRET.');
  }
  const checkpoints: { observe?: (thread: string, seconds: number) => void } = {}; // set once the metrics exist
  const store = deps.store ?? await openStore(config, log, (r) => checkpoints.observe?.(r.thread, r.seconds));
  const { bus, sessions, presence: directory } = await liveAdapters(config, log, deps).catch(async (err: unknown) => {
    if (!deps.store) await store.close();
    throw err;
  });
  // One node commits and delivers in one order; several publish independently and may overtake each other.
  // Read at scrape time; the gateway and writer exist by then.
  const metrics: Metrics = new Metrics({
    connections: (): number => gateway.connections,
    pendingConnections: (): number => gateway.pending,
    outbound: (): { total: number; max: number } => gateway.outbound(),
    writerDepth: (): number => writer.depth,
    busDropped: () => ('dropped' in bus && typeof bus.dropped === 'number' ? bus.dropped : 0),
  }, { node: config.nodeId });
  checkpoints.observe = (thread, seconds) => metrics.checkpointSeconds.labels(thread).observe(seconds);
  const hub = new LocalHub(config.bus === 'redis' ? config.reorderWaitMs : 0, metrics);
  // The services see the store through a counter of its calls (confab_store_calls_total).
  const db = metered(store, metrics.storeCalls);
  // Presence across nodes: after this node's directory write, the other live nodes are told to
  // re-read; with a shared directory, watched users are also re-read every third of the node TTL
  // (a crashed node's users go offline, a lost announcement is made up for).
  const announce = (userId: UserId, hideLastSeen?: boolean) => {
    const envelope: Envelope = hideLastSeen === undefined ? { type: 'presence', userId } : { type: 'presence', userId, hideLastSeen };
    void sessions.liveNodes()
      .then(async (nodes) => { for (const n of nodes) if (n !== config.nodeId) await bus.publish(n, envelope); })
      .catch((err: unknown) => log.warn({ err }, 'presence announcement failed'));
  };
  const presence = new PresenceService(db, (err) => log.warn({ err }, 'presence update failed'), Date.now, {
    directory,
    announce,
    ...(config.bus === 'redis' ? { resyncMs: Math.max(100, Math.floor(config.nodeTtlMs / 3)) } : {}),
  });
  await bus.subscribe(config.nodeId, (e) => {
    metrics.busReceived.labels(e.type).inc();
    if (e.type === 'presence') presence.remoteChanged(e.userId, e.hideLastSeen);
    else hub.dispatch(e);
  });

  const fanout = new Fanout(db, sessions, bus, (err) => log.error({ err }, 'fan-out failed'));
  const receipts = new ReceiptService(db, fanout, RECEIPT_INTERVAL_MS, (err) => log.error({ err }, 'receipts failed'));
  const writer = new Writer(db, (results) => {
    const fresh: Committed[] = [];
    for (const r of results) {
      if (!r.ok) continue;
      if (r.duplicate) metrics.duplicates.inc();
      else {
        fresh.push({ message: r.message, membersVersion: r.membersVersion });
        metrics.committed.labels(r.message.kind).inc();
      }
    }
    fanout.messages(fresh);
    // A sender's cursors moved to its message: the aggregate may have too.
    for (const id of new Set(fresh.filter((c) => c.message.kind === 'message').map((c) => c.message.conversationId))) receipts.touch(id as ConversationId);
  }, undefined, (entries, seconds) => {
    metrics.appendBatch.observe(entries);
    metrics.appendSeconds.observe(seconds);
  });
  const auth = new AuthService(db, new TokenIssuer(jwtSecret(config, log), config.accessTokenTtlSec, config.jwtClockSkewSec), config.refreshTokenTtlSec, (userId, deviceId) => fanout.revoke(userId, deviceId), Date.now, (op) => metrics.passwordWork.labels(op).inc());
  const conversations = new ConversationService(db, fanout, config.limits.maxGroupMembers, receipts);
  const budgets = new UserBudgets(config.limits);
  const messages = new MessageService(db, writer, config.limits, budgets);
  const typing = new TypingService(db, fanout, config.limits.typingIntervalMs, config.limits.typingTtlMs, (err) => log.warn({ err }, 'typing fan-out failed'));

  let closing = false;
  const ready = () => (closing ? Promise.resolve(false) : store.ping().then(() => true, () => false));
  const origins = originPolicy(config.allowedOrigins ?? '');
  const hosts = hostPolicy(config.allowedHosts, config.allowedOrigins);
  const loginThrottle = new LoginThrottle({ perAccount: config.loginFailuresPerAccount, perIp: config.loginFailuresPerIp, windowSec: config.loginFailureWindowSec });
  const addressLimits = new AddressLimits(config);
  const metricsAccess = { onMain: config.metricsPort === undefined, token: config.metricsToken };
  const http = buildHttp({ auth, conversations, messages, receipts, presence, ready, loginThrottle, metrics, budgets, addressLimits, metricsAccess }, {
    bodyLimit: config.limits.maxFrameBytes, log, origins, hosts, trustProxy: config.trustProxy, webRoot: config.webRoot,
    maxPipelinedRequests: config.maxPipelinedRequests, maxOutboundBytes: config.maxOutboundBytes,
  });
  const admission = config.newSessionsPerSecond > 0 ? new TokenBucket(config.newSessionsPerSecond, Math.max(1, config.newSessionsPerSecond)) : undefined;
  const gateway = new WsGateway(http.server, {
    nodeId: config.nodeId, limits: config.limits, store: db, auth, conversations, messages, receipts, presence, typing, budgets, admission,
    maxOutboundBytes: config.maxOutboundBytes, fanout, hub, sessions, log, metrics, maxConnectionsPerUser: config.maxConnectionsPerUser,
  }, {
    origins, hosts, addressOf: clientAddress(config.trustProxy), newSessionsPerAddress: config.newSessionsPerAddress,
    maxPendingPerAddress: config.maxPendingPerAddress, maxPendingConnections: config.maxPendingConnections, maxOutboundBytes: config.maxOutboundBytes,
  });
  const metricsListener: Server | undefined = config.metricsPort === undefined ? undefined : metricsServer(metrics, { hosts, token: config.metricsToken });

  let url = '';
  let metricsUrl = '';
  let closed: Promise<void> | undefined;
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    config, store, log,
    get url() { return url; },
    get metricsUrl() { return metricsUrl; },
    async listen() {
      await http.listen({ port: config.port, host: config.host });
      const addr = http.server.address() as AddressInfo;
      url = `http://${host}:${addr.port}`;
      if (metricsListener) {
        await new Promise<void>((resolve, reject) => {
          metricsListener.once('error', reject);
          metricsListener.listen(config.metricsPort, config.host, () => resolve());
        });
        metricsUrl = `http://${host}:${(metricsListener.address() as AddressInfo).port}`;
      }
      log.info({ url, ...(metricsUrl ? { metricsUrl } : {}), dataDir: resolve(config.dataDir), nodeId: config.nodeId }, 'confab node listening');
      return url;
    },
    close() {
      closed ??= (async () => {
        closing = true; // /readyz says so at once: load balancers stop sending new work
        presence.stop();
        typing.stop();
        // Drain: no new connections or writes; the commits in flight finish and their acks and
        // live frames go out before the connections are closed (4101: reconnect elsewhere).
        gateway.drain();
        await writer.idle();
        await fanout.flushed();
        await Promise.all([gateway.close(), http.close(), metricsListener?.listening ? new Promise<void>((resolve) => metricsListener.close(() => resolve())) : undefined]);
        await writer.idle();
        await presence.flush();
        await receipts.close();
        await fanout.flushed();
        await bus.close();
        hub.stop();
        await directory.close();
        await sessions.close();
        await store.close();
      })();
      return closed;
    },
  };
}
