// Configuration, declared once: each option's env name, flag, default and description feed
// the parser below and the README's configuration table (generated, checked by a test).
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DEFAULT_LIMITS, type Limits } from '@confab/protocol';
import { originPolicy } from './http/origins.js';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  nodeId: string;
  jwtSecret: string | undefined;
  accessTokenTtlSec: number;
  refreshTokenTtlSec: number;
  /** Failed logins per username, per address, and the window they refill over. */
  loginFailuresPerAccount: number;
  loginFailuresPerIp: number;
  loginFailureWindowSec: number;
  /** Proxies whose X-Forwarded-For names the client address (unset: the peer address is the client). */
  trustProxy: string | undefined;
  /** Most authenticated connections of one user on this node (0: no cap). */
  maxConnectionsPerUser: number;
  /** New WebSocket sessions admitted per second on this node (0: no cap); a second's worth may come at once. */
  newSessionsPerSecond: number;
  /** Origins allowed to open WebSockets and call the REST API from a browser (comma-separated; `*`: all). */
  allowedOrigins: string | undefined;
  /** Host names the node answers to (comma-separated; `*`: any); IP addresses, localhost names and the ALLOWED_ORIGINS hosts always. */
  allowedHosts: string | undefined;
  /** Port of a separate listener for /metrics (unset: /metrics on the main port). */
  metricsPort: number | undefined;
  /** Bearer token /metrics requires (unset: none). */
  metricsToken: string | undefined;
  /** Password hashes (register, login) per client address per minute (0: no limit). */
  passwordChecksPerAddress: number;
  /** Password hashes per second on this node (0: no limit). */
  passwordChecksPerSecond: number;
  /** Accounts registered per client address per hour (0: no limit). */
  registrationsPerAddress: number;
  /** Other unauthenticated requests (refresh) per client address per second (0: no limit). */
  addressRequestsPerSecond: number;
  /** New WebSocket connections per client address per second (0: no limit). */
  newSessionsPerAddress: number;
  /** WebSocket connections not yet authenticated, per client address (0: no cap). */
  maxPendingPerAddress: number;
  /** WebSocket connections not yet authenticated on this node (0: no cap). */
  maxPendingConnections: number;
  /** HTTP requests read but not yet answered on one connection (pipelining); 0: no cap. */
  maxPipelinedRequests: number;
  /** How far in the future an access token's `iat`/`nbf` may be (clock skew between nodes). */
  jwtClockSkewSec: number;
  logLevel: string;
  /** Where the data lives: `sqlite` (embedded, one node) or `postgres` (shared by a cluster). */
  store: 'sqlite' | 'postgres';
  databaseUrl: string;
  databasePoolSize: number;
  /** Live fan-out between nodes; `redis` also keeps the session registry in Redis. */
  bus: 'memory' | 'redis';
  redisUrl: string;
  redisKeyPrefix: string;
  /** `BUS=redis`: a node whose heartbeat lapsed this long is dead (its sessions and presence expire). */
  nodeTtlMs: number;
  /** `BUS=redis`: how long an entry that arrives ahead of an earlier one waits for it. */
  reorderWaitMs: number;
  /** Most bytes waiting to be written to one connection before it is cut off (`slow_consumer`). */
  maxOutboundBytes: number;
  /** SIGTERM/SIGINT: the drain must be over within this long, or the process exits anyway. */
  shutdownTimeoutMs: number;
  /** Directory of the web client served at `/`; '' serves none. */
  webRoot: string;
  limits: Limits;
}

type Kind = 'int' | 'string' | 'number';
interface OptionSpec<K extends string> {
  readonly key: K;
  readonly env: string;
  readonly flag: string;
  readonly kind: Kind;
  readonly default: string | number | undefined;
  readonly description: string;
}

const top = <K extends keyof Omit<Config, 'limits'>>(o: OptionSpec<K>) => o;
const lim = <K extends keyof Limits>(o: OptionSpec<K>) => o;

export const OPTIONS = [
  top({ key: 'port', env: 'PORT', flag: '--port', kind: 'int', default: 8080, description: 'TCP port for REST (`/v1/...`) and WebSocket (`/v1/ws`). 0 picks a free port.' }),
  top({ key: 'host', env: 'HOST', flag: '--host', kind: 'string', default: '127.0.0.1', description: 'Address to listen on. The default serves this machine only; `0.0.0.0` (or `::`) listens on every interface: then name the host names clients use in `ALLOWED_HOSTS`.' }),
  top({ key: 'dataDir', env: 'DATA_DIR', flag: '--data-dir', kind: 'string', default: './data', description: 'Directory of the embedded store (`confab.db`, SQLite WAL) and the generated token secret.' }),
  top({ key: 'nodeId', env: 'NODE_ID', flag: '--node-id', kind: 'string', default: undefined, description: 'Name of this node (logs, `welcome.nodeId`, its bus channel and session entries): letters, digits, `.` `_` `-`, at most 64. **Must be unique in a cluster.** Default: host name and pid.' }),
  top({ key: 'jwtSecret', env: 'JWT_SECRET', flag: '--jwt-secret', kind: 'string', default: undefined, description: 'HS256 secret for access tokens (32+ bytes). Default: a random secret created once in the data directory.' }),
  top({ key: 'accessTokenTtlSec', env: 'ACCESS_TOKEN_TTL', flag: '--access-token-ttl', kind: 'int', default: 900, description: 'Access token lifetime, seconds.' }),
  top({ key: 'refreshTokenTtlSec', env: 'REFRESH_TOKEN_TTL', flag: '--refresh-token-ttl', kind: 'int', default: 30 * 24 * 3600, description: 'Refresh token lifetime, seconds.' }),
  top({ key: 'loginFailuresPerAccount', env: 'LOGIN_FAILURES_PER_ACCOUNT', flag: '--login-failures-per-account', kind: 'int', default: 10, description: 'Failed logins per username (existing or not) per `LOGIN_FAILURE_WINDOW`; then `rate_limited` (429, `retryAfterMs`) without checking the password. A success resets it. Per node, in memory. 0: no limit.' }),
  top({ key: 'loginFailuresPerIp', env: 'LOGIN_FAILURES_PER_IP', flag: '--login-failures-per-ip', kind: 'int', default: 100, description: 'Failed logins per client address per `LOGIN_FAILURE_WINDOW` (see `TRUST_PROXY` behind a load balancer). Per node, in memory. 0: no limit.' }),
  top({ key: 'loginFailureWindowSec', env: 'LOGIN_FAILURE_WINDOW', flag: '--login-failure-window', kind: 'int', default: 900, description: 'Seconds over which the failed-login allowances refill completely.' }),
  top({ key: 'trustProxy', env: 'TRUST_PROXY', flag: '--trust-proxy', kind: 'string', default: undefined, description: 'Addresses or CIDRs of the proxies in front of the node (`127.0.0.1,10.0.0.0/8`): requests and WebSocket upgrades from them are attributed to the client named in `X-Forwarded-For` (every limit kept per client address: login throttling, password and registration budgets, connection admission). Set it behind a load balancer, or all clients share one allowance. Unset: the peer address is the client, and `X-Forwarded-For` is ignored.' }),
  top({ key: 'maxConnectionsPerUser', env: 'MAX_CONNECTIONS_PER_USER', flag: '--max-connections-per-user', kind: 'int', default: 32, description: 'Most WebSocket connections one user may hold on this node (all devices and tabs); one more is refused after `hello` with close 4102 (`too_many_connections`). 0: no cap.' }),
  top({ key: 'newSessionsPerSecond', env: 'NEW_SESSIONS_PER_SECOND', flag: '--new-sessions-per-second', kind: 'number', default: 1000, description: 'Admission control: new WebSocket connections accepted per second on this node (up to a second\'s worth at once); the excess is closed right after the upgrade with 4103 (`try_again_later`), which clients answer by reconnecting with backoff. 0: no cap.' }),
  top({ key: 'allowedOrigins', env: 'ALLOWED_ORIGINS', flag: '--allowed-origins', kind: 'string', default: undefined, description: 'Browser origins (`https://app.example.com`, comma-separated) allowed to open a WebSocket and call the REST API (CORS), besides requests without `Origin` (non-browser clients) and same-origin ones (Origin host = `Host`). `*` allows every origin. Others get 403 `origin_not_allowed`. Default: none listed.' }),
  top({ key: 'allowedHosts', env: 'ALLOWED_HOSTS', flag: '--allowed-hosts', kind: 'string', default: undefined, description: 'Host names (`chat.example.com`, comma-separated; `*`: any) that requests may name in `Host`, besides IP addresses, `localhost` (and `*.localhost`) and the hosts of `ALLOWED_ORIGINS`. Requests naming another host (a DNS-rebinding page, say) get 421 `host_not_allowed` on REST, WebSocket and `/metrics`. Requests without `Host` pass.' }),
  top({ key: 'metricsPort', env: 'METRICS_PORT', flag: '--metrics-port', kind: 'int', default: undefined, description: 'Serve `/metrics` on a listener of its own on this port (same `HOST`), and not on the main port. Default: on the main port, as before.' }),
  top({ key: 'metricsToken', env: 'METRICS_TOKEN', flag: '--metrics-token', kind: 'string', default: undefined, description: '`/metrics` requires `Authorization: Bearer <token>` with this token (16+ bytes); others get 401. Default: no token.' }),
  top({ key: 'passwordChecksPerAddress', env: 'PASSWORD_CHECKS_PER_ADDRESS', flag: '--password-checks-per-address', kind: 'int', default: 30, description: 'Registrations and logins (each hashes a password) per client address per minute (see `TRUST_PROXY`), refilling continuously; more get `rate_limited` (429, `retryAfterMs`) without hashing. Per node, in memory. 0: no limit.' }),
  top({ key: 'passwordChecksPerSecond', env: 'PASSWORD_CHECKS_PER_SECOND', flag: '--password-checks-per-second', kind: 'int', default: 20, description: 'Registrations and logins per second on this node, all addresses together (argon2id takes tens of milliseconds of a core each). 0: no limit.' }),
  top({ key: 'registrationsPerAddress', env: 'REGISTRATIONS_PER_ADDRESS', flag: '--registrations-per-address', kind: 'int', default: 20, description: 'Registration attempts per client address per hour, refilling continuously. 0: no limit.' }),
  top({ key: 'addressRequestsPerSecond', env: 'ADDRESS_REQUESTS_PER_SECOND', flag: '--address-requests-per-second', kind: 'int', default: 10, description: 'Other requests before authentication (token refresh) per client address per second, ten seconds\' worth at once. 0: no limit.' }),
  top({ key: 'newSessionsPerAddress', env: 'NEW_SESSIONS_PER_ADDRESS', flag: '--new-sessions-per-address', kind: 'int', default: 50, description: 'New WebSocket connections per client address per second (two seconds\' worth at once); the excess gets HTTP 429 `rate_limited` instead of the upgrade. 0: no limit.' }),
  top({ key: 'maxPendingPerAddress', env: 'MAX_PENDING_PER_ADDRESS', flag: '--max-pending-per-address', kind: 'int', default: 50, description: 'WebSocket connections from one client address that have not completed `hello` yet; one more gets HTTP 429 `rate_limited` instead of the upgrade. 0: no cap.' }),
  top({ key: 'maxPendingConnections', env: 'MAX_PENDING_CONNECTIONS', flag: '--max-pending-connections', kind: 'int', default: 2000, description: 'WebSocket connections on this node that have not completed `hello` yet, all addresses together; one more gets HTTP 503 `unavailable` (with `Retry-After`) instead of the upgrade. 0: no cap.' }),
  top({ key: 'maxPipelinedRequests', env: 'MAX_PIPELINED_REQUESTS', flag: '--max-pipelined-requests', kind: 'int', default: 8, description: 'HTTP requests read but not yet answered on one keep-alive connection (pipelining); one more, or one while more than `MAX_OUTBOUND_BYTES` of answers wait for that connection, is answered 429 `rate_limited` without being run, and the connection is closed after it. 0: no cap.' }),
  top({ key: 'jwtClockSkewSec', env: 'JWT_CLOCK_SKEW', flag: '--jwt-clock-skew', kind: 'int', default: 30, description: 'Seconds an access token\'s `iat` or `nbf` may lie in the future (clocks of the nodes of a cluster differ a little); `exp` is enforced without tolerance.' }),
  top({ key: 'logLevel', env: 'LOG_LEVEL', flag: '--log-level', kind: 'string', default: 'info', description: 'pino level: fatal, error, warn, info, debug, trace or silent.' }),
  top({ key: 'store', env: 'STORE', flag: '--store', kind: 'string', default: 'sqlite', description: '`sqlite` (embedded, in `DATA_DIR`, one node) or `postgres` (`DATABASE_URL`, shared by every node of a cluster; tables are created on first start).' }),
  top({ key: 'databaseUrl', env: 'DATABASE_URL', flag: '--database-url', kind: 'string', default: 'postgres://127.0.0.1:5432/confab', description: 'PostgreSQL for `STORE=postgres`: `postgres://[user[:password]@]host[:port]/database` (user default: the OS user); `?options=-c%20search_path%3Dname` picks a schema.' }),
  top({ key: 'databasePoolSize', env: 'DATABASE_POOL_SIZE', flag: '--database-pool-size', kind: 'int', default: 10, description: 'Most pooled PostgreSQL connections per node for reads and other work (`STORE=postgres`); appends use one more of their own.' }),
  top({ key: 'bus', env: 'BUS', flag: '--bus', kind: 'string', default: 'memory', description: '`memory` (one node) or `redis`: live fan-out over Redis pub/sub and the session registry in Redis, for a cluster.' }),
  top({ key: 'redisUrl', env: 'REDIS_URL', flag: '--redis-url', kind: 'string', default: 'redis://127.0.0.1:6379', description: 'Redis for `BUS=redis`: `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS).' }),
  top({ key: 'redisKeyPrefix', env: 'REDIS_KEY_PREFIX', flag: '--redis-key-prefix', kind: 'string', default: 'confab:', description: 'Prefix of every Redis key and channel, so several clusters can share one Redis.' }),
  top({ key: 'nodeTtlMs', env: 'NODE_TTL_MS', flag: '--node-ttl-ms', kind: 'int', default: 15_000, description: '`BUS=redis`: liveness TTL of a node, ms. Nodes refresh it every third of it; a node silent this long is dead: its sessions and presence stop counting (its users show offline).' }),
  top({ key: 'maxOutboundBytes', env: 'MAX_OUTBOUND_BYTES', flag: '--max-outbound-bytes', kind: 'int', default: 1024 * 1024, description: 'Back-pressure, one outbound budget per connection that every byte counts against (live frames, answers, catch-up pages, errors, pongs): the most bytes that may wait in the node for one connection, and how far it may be behind what it has shown read (it answers the node\'s probe pings once it has read up to them). At most half of it is written past the last answer; the rest waits in the node until the client reads. Past three quarters of it unread, the connection\'s requests are refused (`rate_limited`); a client that reads slower than its traffic is closed with 4104 `slow_consumer` past it (it reconnects and resumes from its cursors), so a stalled reader holds neither the node\'s memory nor its kernel buffers for long. REST: the answers waiting for one keep-alive connection count against it too (see `MAX_PIPELINED_REQUESTS`).' }),
  top({ key: 'shutdownTimeoutMs', env: 'SHUTDOWN_TIMEOUT_MS', flag: '--shutdown-timeout-ms', kind: 'int', default: 15_000, description: 'On SIGTERM/SIGINT the node drains (readiness off, new connections and writes refused, commits in flight finished, clients closed with 4101 `going_away`); if that takes longer than this, it exits with status 1 anyway.' }),
  top({ key: 'reorderWaitMs', env: 'REORDER_WAIT_MS', flag: '--reorder-wait-ms', kind: 'int', default: 50, description: '`BUS=redis`: an entry that reaches a node ahead of an earlier entry of its conversation (committed on another node, still on its way) is held this long for it; a gap that outlasts it is read from the store by each connection. 0: no wait.' }),
  top({ key: 'webRoot', env: 'WEB_ROOT', flag: '--web-root', kind: 'string', default: undefined, description: 'Directory of the web client served at `/` (static files; `index.html` is never cached, hashed `assets/` are cached for a year). Default: the build of `packages/web` (`packages/web/dist`, made by `npm install`). `none` (or empty) serves no web client.' }),
] as const;

/** The web client's build directory, next to this package in the repository. */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/dist', import.meta.url));

export const LIMIT_OPTIONS = [
  lim({ key: 'maxFrameBytes', env: 'MAX_FRAME_BYTES', flag: '--max-frame-bytes', kind: 'int', default: DEFAULT_LIMITS.maxFrameBytes, description: 'Largest WebSocket frame or REST body, bytes. Larger: `frame_too_large`; over 4x: the connection is closed (1009).' }),
  lim({ key: 'maxMessageBytes', env: 'MAX_MESSAGE_BYTES', flag: '--max-message-bytes', kind: 'int', default: DEFAULT_LIMITS.maxMessageBytes, description: 'Largest message text, UTF-8 bytes.' }),
  lim({ key: 'sendsPerSecond', env: 'SENDS_PER_SECOND', flag: '--sends-per-second', kind: 'number', default: DEFAULT_LIMITS.sendsPerSecond, description: 'Sustained sends (send/edit/delete) per second per connection.' }),
  lim({ key: 'sendBurst', env: 'SEND_BURST', flag: '--send-burst', kind: 'number', default: DEFAULT_LIMITS.sendBurst, description: 'Burst above the sustained send rate.' }),
  lim({ key: 'userSendsPerSecond', env: 'USER_SENDS_PER_SECOND', flag: '--user-sends-per-second', kind: 'number', default: DEFAULT_LIMITS.userSendsPerSecond, description: 'Sustained sends per second per user: all devices and REST together.' }),
  lim({ key: 'userSendBurst', env: 'USER_SEND_BURST', flag: '--user-send-burst', kind: 'number', default: DEFAULT_LIMITS.userSendBurst, description: 'Burst above the per-user send rate.' }),
  lim({ key: 'requestsPerSecond', env: 'REQUESTS_PER_SECOND', flag: '--requests-per-second', kind: 'number', default: DEFAULT_LIMITS.requestsPerSecond, description: 'Sustained requests per second per connection, in cost units: every frame but send/edit/delete/hello has a cost (docs/protocol.md, "Rate limits"); over it: `rate_limited` with `retryAfterMs`.' }),
  lim({ key: 'requestBurst', env: 'REQUEST_BURST', flag: '--request-burst', kind: 'number', default: DEFAULT_LIMITS.requestBurst, description: 'Burst above the per-connection request rate.' }),
  lim({ key: 'userRequestsPerSecond', env: 'USER_REQUESTS_PER_SECOND', flag: '--user-requests-per-second', kind: 'number', default: DEFAULT_LIMITS.userRequestsPerSecond, description: 'Sustained requests per second per user, all devices and REST together, in cost units.' }),
  lim({ key: 'userRequestBurst', env: 'USER_REQUEST_BURST', flag: '--user-request-burst', kind: 'number', default: DEFAULT_LIMITS.userRequestBurst, description: 'Burst above the per-user request rate.' }),
  lim({ key: 'userChangesPerMinute', env: 'USER_CHANGES_PER_MINUTE', flag: '--user-changes-per-minute', kind: 'number', default: DEFAULT_LIMITS.userChangesPerMinute, description: 'Sustained changes per minute per user, in cost units: creating a group (3) or direct conversation (1), renaming, adding or removing members, roles, settings (1 each).' }),
  lim({ key: 'userChangeBurst', env: 'USER_CHANGE_BURST', flag: '--user-change-burst', kind: 'number', default: DEFAULT_LIMITS.userChangeBurst, description: 'Burst above the per-user change rate.' }),
  lim({ key: 'maxPageSize', env: 'MAX_PAGE_SIZE', flag: '--max-page-size', kind: 'int', default: DEFAULT_LIMITS.maxPageSize, description: 'Most messages per history or sync page.' }),
  lim({ key: 'maxPageBytes', env: 'MAX_PAGE_BYTES', flag: '--max-page-bytes', kind: 'int', default: DEFAULT_LIMITS.maxPageBytes, description: 'Most bytes of entries (JSON) per history or sync page; a page holds at least one entry. At most half of `MAX_OUTBOUND_BYTES`.' }),
  lim({ key: 'maxGroupMembers', env: 'MAX_GROUP_MEMBERS', flag: '--max-group-members', kind: 'int', default: DEFAULT_LIMITS.maxGroupMembers, description: 'Most members per group.' }),
  lim({ key: 'helloTimeoutMs', env: 'HELLO_TIMEOUT_MS', flag: '--hello-timeout-ms', kind: 'int', default: DEFAULT_LIMITS.helloTimeoutMs, description: 'Time a new WebSocket has to send `hello`.' }),
  lim({ key: 'maxBadFrames', env: 'MAX_BAD_FRAMES', flag: '--max-bad-frames', kind: 'int', default: DEFAULT_LIMITS.maxBadFrames, description: 'Consecutive bad frames before the connection is closed (4004).' }),
  lim({ key: 'heartbeatIntervalMs', env: 'HEARTBEAT_INTERVAL_MS', flag: '--heartbeat-interval-ms', kind: 'int', default: DEFAULT_LIMITS.heartbeatIntervalMs, description: 'Mean interval of server pings; each connection gets its own jittered schedule (±20%).' }),
  lim({ key: 'heartbeatTimeoutMs', env: 'HEARTBEAT_TIMEOUT_MS', flag: '--heartbeat-timeout-ms', kind: 'int', default: DEFAULT_LIMITS.heartbeatTimeoutMs, description: 'A connection that answers none of the node\'s pings this long is dropped: its device goes offline (cut with 4104 if frames were written to it meanwhile). Frames and unsolicited pongs do not keep it: only answers to the node\'s pings show that it reads.' }),
  lim({ key: 'typingIntervalMs', env: 'TYPING_INTERVAL_MS', flag: '--typing-interval-ms', kind: 'int', default: DEFAULT_LIMITS.typingIntervalMs, description: 'A member\'s typing state is forwarded to the others at most once per this interval per conversation, whatever its value: changes in between replace what goes out at the interval\'s end.' }),
  lim({ key: 'typingTtlMs', env: 'TYPING_TTL_MS', flag: '--typing-ttl-ms', kind: 'int', default: DEFAULT_LIMITS.typingTtlMs, description: 'A typing indicator expires after this long unless renewed.' }),
  lim({ key: 'presenceIntervalMs', env: 'PRESENCE_INTERVAL_MS', flag: '--presence-interval-ms', kind: 'int', default: DEFAULT_LIMITS.presenceIntervalMs, description: 'A watcher gets at most one presence frame per this interval; changes in between are batched.' }),
] as const;

export class ConfigError extends Error {}

function parseValue(kind: Kind, raw: string, name: string): string | number {
  if (kind === 'string') return raw;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || (kind === 'int' && !Number.isInteger(n)) || n < 0) {
    throw new ConfigError(`${name} must be a non-negative ${kind === 'int' ? 'integer' : 'number'}, got "${raw}"`);
  }
  return n;
}

/**
 * Builds a Config from flags (`--port 9000` or `--port=9000`), then env, then defaults.
 * Unknown flags are an error so a typo never silently runs with a default.
 */
export function loadConfig(argv: readonly string[] = [], env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    if (eq > 0) flags.set(arg.slice(0, eq), arg.slice(eq + 1));
    else {
      const v = argv[i + 1];
      if (v === undefined) throw new ConfigError(`${arg} needs a value`);
      flags.set(arg, v);
      i++;
    }
  }
  const known = new Set<string>([...OPTIONS, ...LIMIT_OPTIONS].map((o) => o.flag));
  for (const f of flags.keys()) if (!known.has(f)) throw new ConfigError(`unknown option ${f}`);

  const pick = (o: OptionSpec<string>): string | number | undefined => {
    const raw = flags.get(o.flag) ?? env[o.env];
    return raw !== undefined ? parseValue(o.kind, raw, raw === flags.get(o.flag) ? o.flag : o.env) : o.default;
  };
  const out: Record<string, unknown> = {};
  for (const o of OPTIONS) out[o.key] = pick(o);
  const limits: Record<string, unknown> = {};
  for (const o of LIMIT_OPTIONS) limits[o.key] = pick(o);
  const config = { ...(out as Omit<Config, 'limits'>), limits: limits as unknown as Limits, ...overrides };
  if (overrides.limits) config.limits = { ...(limits as unknown as Limits), ...overrides.limits };
  config.nodeId ??= `${hostname()}-${process.pid}`;
  config.webRoot ??= DEFAULT_WEB_ROOT;
  if (config.webRoot.trim() === '' || config.webRoot === 'none') config.webRoot = '';
  if (config.jwtSecret !== undefined && Buffer.byteLength(config.jwtSecret) < 32) throw new ConfigError('JWT_SECRET must be at least 32 bytes');
  if (config.port > 65535) throw new ConfigError('PORT must be at most 65535');
  for (const o of LIMIT_OPTIONS) if (!(config.limits[o.key] >= 1)) throw new ConfigError(`${o.env} must be at least 1`);
  if (config.store !== 'sqlite' && config.store !== 'postgres') throw new ConfigError(`STORE must be "sqlite" or "postgres", got "${String(config.store)}"`);
  if (!/^postgres(ql)?:\/\/\S+$/.test(config.databaseUrl) || !URL.canParse(config.databaseUrl)) throw new ConfigError('DATABASE_URL must be a postgres:// or postgresql:// URL');
  if (config.databasePoolSize < 1) throw new ConfigError('DATABASE_POOL_SIZE must be at least 1');
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(config.nodeId)) throw new ConfigError(`NODE_ID must be 1-64 letters, digits, ".", "_" or "-", got "${config.nodeId}"`);
  if (config.bus !== 'memory' && config.bus !== 'redis') throw new ConfigError(`BUS must be "memory" or "redis", got "${String(config.bus)}"`);
  if (!/^rediss?:\/\/[^\s]+$/.test(config.redisUrl) || !URL.canParse(config.redisUrl)) throw new ConfigError('REDIS_URL must be a redis:// or rediss:// URL');
  if (!/^[\x21-\x7e]{1,64}$/.test(config.redisKeyPrefix)) throw new ConfigError('REDIS_KEY_PREFIX must be 1-64 printable ASCII characters');
  try {
    originPolicy(config.allowedOrigins ?? '');
  } catch (err) {
    throw new ConfigError(`ALLOWED_ORIGINS: ${(err as Error).message}`);
  }
  if (config.loginFailureWindowSec < 1) throw new ConfigError('LOGIN_FAILURE_WINDOW must be at least 1');
  if (config.trustProxy !== undefined && !/^[0-9A-Fa-f.:/, ]+$/.test(config.trustProxy)) throw new ConfigError('TRUST_PROXY must be a comma-separated list of IP addresses or CIDRs');
  if (config.nodeTtlMs < 300) throw new ConfigError('NODE_TTL_MS must be at least 300');
  if (config.maxOutboundBytes < 64 * 1024) throw new ConfigError('MAX_OUTBOUND_BYTES must be at least 65536');
  if (config.limits.maxPageBytes > config.maxOutboundBytes / 2) throw new ConfigError('MAX_PAGE_BYTES must be at most half of MAX_OUTBOUND_BYTES (a page must fit in a connection\'s outbound budget)');
  if (config.metricsPort !== undefined && (config.metricsPort > 65535 || (config.metricsPort === config.port && config.port !== 0))) throw new ConfigError('METRICS_PORT must be a port other than PORT, at most 65535');
  if (config.metricsToken !== undefined && Buffer.byteLength(config.metricsToken) < 16) throw new ConfigError('METRICS_TOKEN must be at least 16 bytes');
  if (config.allowedHosts !== undefined && !/^\s*(\*|[A-Za-z0-9.-]+(\s*,\s*[A-Za-z0-9.-]+)*)\s*$/.test(config.allowedHosts)) throw new ConfigError('ALLOWED_HOSTS must be `*` or a comma-separated list of host names');
  if (config.shutdownTimeoutMs < 1) throw new ConfigError('SHUTDOWN_TIMEOUT_MS must be at least 1');
  if (!(config.reorderWaitMs >= 0 && config.reorderWaitMs <= 10_000)) throw new ConfigError('REORDER_WAIT_MS must be between 0 and 10000');
  return config;
}
