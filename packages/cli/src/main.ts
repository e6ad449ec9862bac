// The `confab` command: run a node, or act as a user against one. Output is human-readable,
// or one JSON object per line with --json. Errors go to stderr with a non-zero exit.
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { WebSocket } from 'ws';
import type { Message, Session, User } from '@confab/protocol';
import { ConfabApi, ConfabClient, ConfabError } from '@confab/sdk';
import type { SendResult } from '@confab/sdk';
import { ConfigError, runNode } from '@confab/server';
import { readFileSync } from 'node:fs';
import { DEFAULT_KNOBS, PRESETS, figuresFromBench, formatPlan, parseAmount, plan, type Knobs, type Load } from './capacity.js';
import { loadSaved, save, withCredentialsLock } from './credentials.js';

const USAGE = `Usage: confab <command> [options]

  serve [--port N] [--data-dir D] [...]        run a node (see README for every option)
  register <user> --password <p>               create an account and save its session
  login <user> --password <p>                  log in and save the session
  logout                                       log this device out, forget the session
  conversations                                list my conversations, most recent first
  group create --name <n> --members a,b,c      create a group -> {"conversationId": ...}
  send (--to <user> | --conversation <id>) [--client-id X] <text>
  send (--to <user> | --conversation <id>) --stdin      one message per input line
  history (--to <user> | --conversation <id>) [--after seq] [--limit n]
  tail (--to <user> | --conversation <id>) [--after seq] [--count n]
                                               stream entries; with --json also receipts lines
                                               {"type":"receipts","conversationId","delivered","read"}
  read (--to <user> | --conversation <id>) --seq n
                                               move my read cursor -> {"conversationId","seq","unread"}
  receipts (--to <user> | --conversation <id>) delivered/read up to which seq: everyone, then each member
  presence <user> [<user>...]                  online / away / offline and last seen, one line per user
  settings [--hide-last-seen true|false]       show or change my settings
  capacity [--preset whatsapp|slack|discord|10m-dau] [--dau 500M] [--msgs-per-user 40]
           [--avg-group 6] [--peak-factor 3] [--online 0.2] [--devices 1.2] [--text-bytes 100]
           [--largest-room N] [--bench results.json] [--headroom 0.7] [--cluster-overhead 2]
           [--node-memory-gib 4] [--max-conns-per-node 100k] [--pg-writes-per-shard 10k]
           [--redis-ops-per-shard 100k] [--replicas 2]
                                               nodes, PostgreSQL, Redis, bandwidth and storage
                                               for a load, from measured per-node figures

Common options:
  --server URL        default $CONFAB_SERVER or http://localhost:8080
  --user U --password P   act as U for this command (otherwise: the saved session)
  --json              one JSON object per line`;

class UsageError extends Error {}

const COMMON = {
  server: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

const TARGET = { to: { type: 'string' }, conversation: { type: 'string' } } as const satisfies ParseArgsConfig['options'];

type Opts = Record<string, string | boolean | undefined>;

function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>): { values: Opts; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
    return { values: r.values, positionals: r.positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

const str = (o: Opts, k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : undefined);

function int(o: Opts, k: string): number | undefined {
  const v = str(o, k);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${k} must be a non-negative integer`);
  return Number(v);
}

const serverOf = (o: Opts) => (str(o, 'server') ?? process.env.CONFAB_SERVER ?? 'http://localhost:8080').replace(/\/+$/, '');

function out(o: Opts, json: unknown, human: string): void {
  process.stdout.write((o.json ? JSON.stringify(json) : human) + '\n');
}

const line = (m: Message): string => {
  const body = m.kind === 'message' ? (m.deletedAt ? '(deleted)' : m.text) : m.kind === 'edit' ? `(edited #${m.target?.seq}) ${m.text}` : `(deleted #${m.target?.seq})`;
  return `#${m.seq} ${m.senderUsername}: ${body}`;
};

/** An API client acting as the user: --user/--password, else the saved session (refreshed and re-saved as needed). */
async function authedApi(o: Opts): Promise<ConfabApi> {
  const server = serverOf(o);
  const user = str(o, 'user');
  if (user !== undefined) {
    const password = str(o, 'password');
    if (password === undefined) throw new UsageError('--user needs --password');
    const api = new ConfabApi({ baseUrl: server });
    await api.login(user, password, 'confab-cli');
    return api;
  }
  if (!loadSaved(server)) throw new UsageError(`not logged in to ${server}: run \`confab login <user> --password <p>\` or pass --user/--password`);
  return new ConfabApi({ baseUrl: server, getAccessToken: () => savedToken(server) });
}

/** Margin before expiry at which a saved access token is refreshed. */
const REFRESH_MARGIN_MS = 30_000;

/**
 * The saved session's access token, refreshed under the credentials lock when it is about
 * to expire (or `force`): a refresh token is single use, and a second use logs the device out,
 * so concurrent commands must not both refresh it.
 */
async function savedToken(server: string, force = false): Promise<string> {
  const saved = loadSaved(server);
  if (!saved) throw new UsageError(`not logged in to ${server}`);
  if (!force && saved.expiresAt - REFRESH_MARGIN_MS > Date.now()) return saved.session.accessToken;
  return withCredentialsLock(async () => {
    const now = loadSaved(server);
    if (!now) throw new UsageError(`not logged in to ${server}`);
    // Another command refreshed it while we waited for the lock.
    if (now.session.refreshToken !== saved.session.refreshToken && now.expiresAt - REFRESH_MARGIN_MS > Date.now()) return now.session.accessToken;
    const session = await new ConfabApi({ baseUrl: server }).refresh(now.session.refreshToken);
    save(server, session);
    return session.accessToken;
  });
}

async function conversationOf(api: ConfabApi, o: Opts): Promise<string> {
  const to = str(o, 'to');
  const id = str(o, 'conversation');
  if ((to === undefined) === (id === undefined)) throw new UsageError('give exactly one of --to <user> or --conversation <id>');
  return id ?? (await api.direct(to!)).id;
}

async function account(command: 'register' | 'login', argv: string[]): Promise<number> {
  const { values: o, positionals } = parse(argv, {});
  const username = positionals[0];
  const password = str(o, 'password');
  if (!username || password === undefined || positionals.length > 1) throw new UsageError(`usage: confab ${command} <user> --password <p>`);
  const server = serverOf(o);
  const api = new ConfabApi({ baseUrl: server });
  const session: Session = command === 'register' ? await api.register(username, password, 'confab-cli') : await api.login(username, password, 'confab-cli');
  save(server, session);
  out(o, { userId: session.user.id, username: session.user.username, deviceId: session.deviceId, server }, `${command === 'register' ? 'registered' : 'logged in'} as ${session.user.username} on ${server}`);
  return 0;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Sends over REST, retrying with the same client id (so never twice) while the server says
 * `rate_limited` (after its `retryAfterMs`), and a few times on other retryable errors.
 */
async function sendMessage(api: ConfabApi, conversationId: string, text: string, clientId: string = randomUUID()): Promise<SendResult> {
  for (let failures = 0; ; failures++) {
    try {
      return await api.sendMessage(conversationId, text, clientId);
    } catch (err) {
      if (!(err instanceof ConfabError && err.retryable)) throw err;
      if (err.code === 'rate_limited') await sleep(err.retryAfterMs ?? 1000);
      else if (failures < 5) await sleep(250 * 2 ** failures);
      else throw err;
    }
  }
}

async function send(argv: string[]): Promise<number> {
  const { values: o, positionals } = parse(argv, { ...TARGET, 'client-id': { type: 'string' }, stdin: { type: 'boolean', default: false } });
  const api = await authedApi(o);
  const cid = await conversationOf(api, o);
  const print = (r: { message: Message; duplicate: boolean }) => out(o, { ...r.message, duplicate: r.duplicate }, `${line(r.message)}${r.duplicate ? ' (already sent)' : ''}`);
  if (o.stdin) {
    if (positionals.length > 0 || str(o, 'client-id') !== undefined) throw new UsageError('--stdin takes no text and no --client-id');
    const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const text of rl) {
      if (text.length === 0) continue;
      print(await sendMessage(api, cid, text));
    }
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('usage: confab send (--to <user> | --conversation <id>) <text>');
  const clientId = str(o, 'client-id');
  print(await sendMessage(api, cid, positionals.join(' '), clientId));
  return 0;
}

async function history(argv: string[]): Promise<number> {
  const { values: o } = parse(argv, { ...TARGET, after: { type: 'string' }, limit: { type: 'string' } });
  const api = await authedApi(o);
  const cid = await conversationOf(api, o);
  let after = int(o, 'after') ?? 0;
  let left = int(o, 'limit') ?? Infinity;
  while (left > 0) {
    const page = await api.history(cid, { after, limit: Math.min(left, 200) });
    for (const m of page.messages) out(o, m, line(m));
    left -= page.messages.length;
    const last = page.messages[page.messages.length - 1];
    if (!page.hasMore || !last) break;
    after = last.seq;
  }
  return 0;
}

async function tail(argv: string[]): Promise<number> {
  const { values: o } = parse(argv, { ...TARGET, after: { type: 'string' }, count: { type: 'string' } });
  const api = await authedApi(o);
  const cid = await conversationOf(api, o);
  const count = int(o, 'count');
  if (count === 0) return 0;
  const server = serverOf(o);
  const token = str(o, 'user') !== undefined ? (force: boolean) => api.accessToken(force) : (force: boolean) => savedToken(server, force);
  const client = new ConfabClient({ url: server, WebSocket, getToken: ({ expired }) => token(expired), cursors: { [cid]: int(o, 'after') ?? 0 } });
  let seen = 0;
  return new Promise<number>((resolve, reject) => {
    let stopping = false;
    const stop = (code: number) => {
      stopping = true;
      void client.close().then(() => resolve(code));
    };
    client.on('message', (m) => {
      if (m.conversationId !== cid) return;
      out(o, m, line(m));
      if (count !== undefined && ++seen >= count) stop(0);
    });
    // Receipts lines (JSON only; they do not count toward --count).
    client.on('receipts', (r) => {
      if (o.json && r.conversationId === cid) out(o, { type: 'receipts', conversationId: r.conversationId, delivered: r.delivered, read: r.read }, '');
    });
    client.on('state', (s) => {
      if (s.state === 'closed' && !stopping) reject(new ConfabError('closed', s.reason ?? 'the connection was closed'));
      else if (s.state === 'reconnecting') process.stderr.write(`confab: connection lost (${s.reason ?? s.code ?? 'no reason'}), reconnecting\n`);
    });
    process.once('SIGINT', () => stop(0));
    client.connect().catch(reject);
  });
}

async function read(argv: string[]): Promise<number> {
  const { values: o, positionals } = parse(argv, { ...TARGET, seq: { type: 'string' } });
  const seq = int(o, 'seq');
  if (seq === undefined || positionals.length > 0) throw new UsageError('usage: confab read (--to <user> | --conversation <id>) --seq n');
  const api = await authedApi(o);
  const cid = await conversationOf(api, o);
  const r = await api.markRead(cid, seq);
  out(o, { conversationId: r.conversationId, seq: r.seq, unread: r.unread }, `read up to #${r.seq}, ${r.unread} unread`);
  return 0;
}

async function receipts(argv: string[]): Promise<number> {
  const { values: o, positionals } = parse(argv, TARGET);
  if (positionals.length > 0) throw new UsageError('usage: confab receipts (--to <user> | --conversation <id>)');
  const api = await authedApi(o);
  const r = await api.receipts(await conversationOf(api, o));
  out(o, { conversationId: r.conversationId, delivered: r.delivered, read: r.read }, `everyone: delivered up to #${r.delivered}, read up to #${r.read}`);
  for (const m of r.members) {
    out(o, { userId: m.userId, username: m.username, delivered: m.delivered, read: m.read }, `${m.username}: delivered up to #${m.delivered}, read up to #${m.read}`);
  }
  return 0;
}

async function presence(argv: string[]): Promise<number> {
  const { values: o, positionals } = parse(argv, {});
  if (positionals.length === 0) throw new UsageError('usage: confab presence <user> [<user>...]');
  const api = await authedApi(o);
  const byId = new Map<string, User>();
  for (const u of await Promise.all(positionals.map((name) => api.user(name)))) byId.set(u.id, u);
  const r = await api.presence([...byId.keys()]);
  const states = new Map(r.users.map((p) => [p.userId, p]));
  for (const { id, username } of byId.values()) {
    const p = states.get(id);
    if (!p) continue;
    const seen = p.lastSeen === null ? '' : `, last seen ${new Date(p.lastSeen).toISOString()}`;
    out(o, { userId: p.userId, username, status: p.status, lastSeen: p.lastSeen }, `${username}: ${p.status}${seen}`);
  }
  for (const id of r.denied) {
    process.stderr.write(`confab: forbidden: you share no conversation with ${byId.get(id)?.username ?? id}: their presence is not visible to you\n`);
  }
  return r.denied.length > 0 ? 1 : 0;
}

async function settings(argv: string[]): Promise<number> {
  const { values: o, positionals } = parse(argv, { 'hide-last-seen': { type: 'string' } });
  const hide = str(o, 'hide-last-seen');
  if (positionals.length > 0 || (hide !== undefined && hide !== 'true' && hide !== 'false')) {
    throw new UsageError('usage: confab settings [--hide-last-seen true|false]');
  }
  const api = await authedApi(o);
  const me = hide === undefined ? await api.me() : await api.updateMe({ hideLastSeen: hide === 'true' });
  out(o, { userId: me.id, username: me.username, hideLastSeen: me.hideLastSeen }, `${me.username}: last seen ${me.hideLastSeen ? 'hidden' : 'visible'}`);
  return 0;
}

async function conversations(argv: string[]): Promise<number> {
  const { values: o } = parse(argv, {});
  const api = await authedApi(o);
  const list = await api.conversations();
  for (const c of list.conversations) {
    const title = c.kind === 'direct' ? `@${c.peer?.username ?? '?'}` : c.name ?? '(group)';
    out(o, c, `${c.id}  ${title}  ${c.unread > 0 ? `[${c.unread} unread] ` : ''}${c.lastMessage ? line(c.lastMessage) : ''}`);
  }
  return 0;
}

async function group(argv: string[]): Promise<number> {
  const { values: o, positionals } = parse(argv, { name: { type: 'string' }, members: { type: 'string' } });
  if (positionals[0] !== 'create' || positionals.length > 1) throw new UsageError('usage: confab group create --name <n> --members a,b,c');
  const name = str(o, 'name');
  if (!name) throw new UsageError('--name is required');
  const members = (str(o, 'members') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const api = await authedApi(o);
  const c = await api.createGroup(name, members);
  out(o, { conversationId: c.id, name: c.name, memberCount: c.memberCount }, c.id);
  return 0;
}

async function logout(argv: string[]): Promise<number> {
  const { values: o } = parse(argv, {});
  if (str(o, 'user') !== undefined) throw new UsageError('logout logs out the saved session; it takes no --user');
  const server = serverOf(o);
  if (!loadSaved(server)) throw new UsageError(`not logged in to ${server}`);
  await new ConfabApi({ baseUrl: server, getAccessToken: () => savedToken(server) }).logout();
  save(server, undefined);
  out(o, { server, loggedOut: true }, `logged out of ${server}`);
  return 0;
}

const LOAD_FLAGS: Record<string, keyof Load> = {
  dau: 'dau', 'msgs-per-user': 'msgsPerUser', 'avg-group': 'avgGroup', 'peak-factor': 'peakFactor', online: 'online',
  devices: 'devicesPerUser', 'text-bytes': 'textBytes', 'largest-room': 'largestRoom',
};
const KNOB_FLAGS: Record<string, keyof Knobs> = {
  headroom: 'headroom', 'cluster-overhead': 'clusterOverhead', 'node-memory-gib': 'nodeMemoryGiB', 'max-conns-per-node': 'maxConnsPerNode',
  'pg-writes-per-shard': 'pgWritesPerShard', 'redis-ops-per-shard': 'redisOpsPerShard', replicas: 'replicas', 'row-bytes': 'rowBytes',
  'read-updates-per-delivery': 'readUpdatesPerDelivery',
};

function capacity(argv: string[]): number {
  const flags = Object.fromEntries([...Object.keys(LOAD_FLAGS), ...Object.keys(KNOB_FLAGS), 'preset', 'bench'].map((k) => [k, { type: 'string' }])) as NonNullable<ParseArgsConfig['options']>;
  const { values: o, positionals } = parse(argv, flags);
  if (positionals.length > 0) throw new UsageError(`capacity takes no arguments, got "${positionals[0]}"`);
  const preset = str(o, 'preset');
  if (preset !== undefined && !PRESETS[preset]) throw new UsageError(`unknown preset "${preset}"; presets: ${Object.keys(PRESETS).join(', ')}`);
  const load: Load = { ...(preset ? PRESETS[preset]!.load : PRESETS['10m-dau']!.load) };
  const knobs: Knobs = { ...DEFAULT_KNOBS };
  const amount = (flag: string, min: number, max: number): number => {
    let v: number;
    try { v = parseAmount(str(o, flag)!); } catch (err) { throw new UsageError(`--${flag}: ${(err as Error).message}`); }
    if (!(v >= min && v <= max)) throw new UsageError(`--${flag} must be between ${min} and ${max}`);
    return v;
  };
  const limits: Partial<Record<string, [number, number]>> = { online: [0.0001, 1], headroom: [0.05, 1], 'read-updates-per-delivery': [0, 10], 'peak-factor': [1, 100] };
  for (const [flag, key] of Object.entries(LOAD_FLAGS)) if (str(o, flag) !== undefined) load[key] = amount(flag, ...(limits[flag] ?? [1, 1e13]));
  for (const [flag, key] of Object.entries(KNOB_FLAGS)) if (str(o, flag) !== undefined) knobs[key] = amount(flag, ...(limits[flag] ?? [0.0001, 1e13]));
  if (load.avgGroup < 1) throw new UsageError('--avg-group is at least 1 (the sender)');
  const bench = str(o, 'bench');
  let figures;
  if (bench !== undefined) {
    let text: string;
    try { text = readFileSync(bench, 'utf8'); } catch (err) { throw new UsageError(`--bench ${bench}: ${(err as Error).message}`); }
    figures = figuresFromBench(text);
  }
  const p = plan(load, knobs, figures);
  out(o, { preset: preset ?? null, ...p }, formatPlan(p, preset));
  return 0;
}

/** Runs one command; resolves with the exit code (a `serve` keeps running). */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        await runNode(rest);
        return new Promise<number>(() => undefined);
      case 'register':
      case 'login':
        return await account(command, rest);
      case 'logout': return await logout(rest);
      case 'send': return await send(rest);
      case 'history': return await history(rest);
      case 'tail': return await tail(rest);
      case 'read': return await read(rest);
      case 'receipts': return await receipts(rest);
      case 'presence': return await presence(rest);
      case 'settings': return await settings(rest);
      case 'conversations': return await conversations(rest);
      case 'group': return await group(rest);
      case 'capacity': return capacity(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE + '\n');
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      process.stderr.write(`confab: ${err.message}\n${err instanceof UsageError ? 'Run `confab help` for usage.\n' : ''}`);
      return 2;
    }
    if (err instanceof ConfabError) {
      process.stderr.write(`confab: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
