// Wiring: build(config) assembles a node from its adapters without listening, so tests and
// the CLI start real servers on port 0.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { Message } from '@confab/protocol';
import { MemoryBus } from './adapters/memory/memory-bus.js';
import { MemorySessions } from './adapters/memory/memory-sessions.js';
import { SqliteStore } from './adapters/sqlite/sqlite-store.js';
import type { Config } from './config.js';
import { AuthService } from './core/auth.js';
import { ConversationService } from './core/conversations.js';
import { Fanout } from './core/fanout.js';
import { MessageService } from './core/messages.js';
import { TokenIssuer } from './core/tokens.js';
import { Writer } from './core/writer.js';
import { LocalHub } from './gateway/hub.js';
import { WsGateway } from './gateway/ws-gateway.js';
import { buildHttp } from './http/server.js';
import type { Bus } from './ports/bus.js';
import type { SessionRegistry } from './ports/sessions.js';
import type { Store } from './ports/store.js';

export interface Deps {
  store?: Store;
  bus?: Bus;
  sessions?: SessionRegistry;
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
  /** Closes connections with `going_away`, waits for pending commits, closes the store. */
  close(): Promise<void>;
}

/** Reads the token secret from config, or from the data directory (created on first start). */
function jwtSecret(config: Config): string {
  if (config.jwtSecret) return config.jwtSecret;
  const dir = resolve(config.dataDir);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'jwt-secret');
  if (!existsSync(file)) writeFileSync(file, randomBytes(48).toString('base64url'), { mode: 0o600, flag: 'wx' });
  return readFileSync(file, 'utf8').trim();
}

export async function build(config: Config, deps: Deps = {}): Promise<ConfabNode> {
  const log = deps.log ?? pino({ level: config.logLevel, base: { node: config.nodeId } });
  const store = deps.store ?? new SqliteStore({ path: join(resolve(config.dataDir), 'confab.db') });
  const bus = deps.bus ?? new MemoryBus();
  const sessions = deps.sessions ?? new MemorySessions();
  const hub = new LocalHub();
  await bus.subscribe(config.nodeId, (e) => hub.dispatch(e));

  const fanout = new Fanout(store, sessions, bus, (err) => log.error({ err }, 'fan-out failed'));
  const writer = new Writer(store, (results) => {
    const fresh: Message[] = [];
    for (const r of results) if (r.ok && !r.duplicate) fresh.push(r.message);
    fanout.messages(fresh);
  });
  const auth = new AuthService(store, new TokenIssuer(jwtSecret(config), config.accessTokenTtlSec), config.refreshTokenTtlSec);
  const conversations = new ConversationService(store, fanout, config.limits.maxGroupMembers);
  const messages = new MessageService(store, writer, config.limits);

  const ready = () => store.ping().then(() => true, () => false);
  const http = buildHttp({ auth, conversations, messages, ready }, { bodyLimit: config.limits.maxFrameBytes, log });
  const gateway = new WsGateway(http.server, { nodeId: config.nodeId, limits: config.limits, store, auth, conversations, messages, hub, sessions, log });

  let url = '';
  let closed: Promise<void> | undefined;
  return {
    config, store, log,
    get url() { return url; },
    async listen() {
      await http.listen({ port: config.port, host: config.host });
      const addr = http.server.address() as AddressInfo;
      const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
      url = `http://${host}:${addr.port}`;
      log.info({ url, dataDir: resolve(config.dataDir), nodeId: config.nodeId }, 'confab node listening');
      return url;
    },
    close() {
      closed ??= (async () => {
        await gateway.close();
        await http.close();
        while (writer.depth > 0) await new Promise((r) => setTimeout(r, 5));
        await fanout.flushed();
        await bus.close();
        await sessions.close();
        await store.close();
      })();
      return closed;
    },
  };
}
