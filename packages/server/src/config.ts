// Configuration, declared once: each option's env name, flag, default and description feed
// the parser below and the README's configuration table (generated, checked by a test).
import { hostname } from 'node:os';
import { DEFAULT_LIMITS, type Limits } from '@confab/protocol';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  nodeId: string;
  jwtSecret: string | undefined;
  accessTokenTtlSec: number;
  refreshTokenTtlSec: number;
  logLevel: string;
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
  top({ key: 'host', env: 'HOST', flag: '--host', kind: 'string', default: '0.0.0.0', description: 'Address to listen on.' }),
  top({ key: 'dataDir', env: 'DATA_DIR', flag: '--data-dir', kind: 'string', default: './data', description: 'Directory of the embedded store (`confab.db`, SQLite WAL) and the generated token secret.' }),
  top({ key: 'nodeId', env: 'NODE_ID', flag: '--node-id', kind: 'string', default: undefined, description: 'Name of this node (logs, `welcome.nodeId`). Default: host name and pid.' }),
  top({ key: 'jwtSecret', env: 'JWT_SECRET', flag: '--jwt-secret', kind: 'string', default: undefined, description: 'HS256 secret for access tokens (32+ bytes). Default: a random secret created once in the data directory.' }),
  top({ key: 'accessTokenTtlSec', env: 'ACCESS_TOKEN_TTL', flag: '--access-token-ttl', kind: 'int', default: 900, description: 'Access token lifetime, seconds.' }),
  top({ key: 'refreshTokenTtlSec', env: 'REFRESH_TOKEN_TTL', flag: '--refresh-token-ttl', kind: 'int', default: 30 * 24 * 3600, description: 'Refresh token lifetime, seconds.' }),
  top({ key: 'logLevel', env: 'LOG_LEVEL', flag: '--log-level', kind: 'string', default: 'info', description: 'pino level: fatal, error, warn, info, debug, trace or silent.' }),
] as const;

export const LIMIT_OPTIONS = [
  lim({ key: 'maxFrameBytes', env: 'MAX_FRAME_BYTES', flag: '--max-frame-bytes', kind: 'int', default: DEFAULT_LIMITS.maxFrameBytes, description: 'Largest WebSocket frame or REST body, bytes. Larger: `frame_too_large`; over 4x: the connection is closed (1009).' }),
  lim({ key: 'maxMessageBytes', env: 'MAX_MESSAGE_BYTES', flag: '--max-message-bytes', kind: 'int', default: DEFAULT_LIMITS.maxMessageBytes, description: 'Largest message text, UTF-8 bytes.' }),
  lim({ key: 'sendsPerSecond', env: 'SENDS_PER_SECOND', flag: '--sends-per-second', kind: 'number', default: DEFAULT_LIMITS.sendsPerSecond, description: 'Sustained sends (send/edit/delete) per second per connection.' }),
  lim({ key: 'sendBurst', env: 'SEND_BURST', flag: '--send-burst', kind: 'number', default: DEFAULT_LIMITS.sendBurst, description: 'Burst above the sustained send rate.' }),
  lim({ key: 'maxPageSize', env: 'MAX_PAGE_SIZE', flag: '--max-page-size', kind: 'int', default: DEFAULT_LIMITS.maxPageSize, description: 'Most messages per history or sync page.' }),
  lim({ key: 'maxGroupMembers', env: 'MAX_GROUP_MEMBERS', flag: '--max-group-members', kind: 'int', default: DEFAULT_LIMITS.maxGroupMembers, description: 'Most members per group.' }),
  lim({ key: 'helloTimeoutMs', env: 'HELLO_TIMEOUT_MS', flag: '--hello-timeout-ms', kind: 'int', default: DEFAULT_LIMITS.helloTimeoutMs, description: 'Time a new WebSocket has to send `hello`.' }),
  lim({ key: 'maxBadFrames', env: 'MAX_BAD_FRAMES', flag: '--max-bad-frames', kind: 'int', default: DEFAULT_LIMITS.maxBadFrames, description: 'Consecutive bad frames before the connection is closed (4004).' }),
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
  if (config.jwtSecret !== undefined && Buffer.byteLength(config.jwtSecret) < 32) throw new ConfigError('JWT_SECRET must be at least 32 bytes');
  if (config.port > 65535) throw new ConfigError('PORT must be at most 65535');
  return config;
}
