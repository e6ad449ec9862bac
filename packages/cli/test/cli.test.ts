// The real `confab` binary (node packages/cli/bin/confab.js, built by `npx tsc -b`) against a
// node started in this process. Saved sessions go to a temporary CONFAB_CONFIG_DIR.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { http, register, startNode, tempDir, uname, type TestNode } from '../../server/test/helpers.js';

const BIN = fileURLToPath(new URL('../bin/confab.js', import.meta.url));
const RUN_TIMEOUT_MS = 20_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Result { code: number | null; stdout: string; stderr: string }

const children = new Set<ChildProcess>();
const dirs: string[] = [];

/** A running `confab` process: its stdout line by line, and its end. */
interface Running {
  child: ChildProcess;
  /** The next stdout line (bounded wait). */
  nextLine(what: string): Promise<string>;
  done: Promise<Result>;
}

function start(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; configDir?: string } = {}): Running {
  const env: NodeJS.ProcessEnv = { ...process.env, CONFAB_CONFIG_DIR: opts.configDir ?? configDir, ...opts.env };
  delete env.CONFAB_SERVER;
  if (opts.env?.CONFAB_SERVER !== undefined) env.CONFAB_SERVER = opts.env.CONFAB_SERVER;
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const lines: string[] = [];
  const waiting: ((line: string | undefined) => void)[] = [];
  let ended = false;
  const rl = createInterface({ input: child.stdout });
  rl.on('line', (line) => {
    stdout += line + '\n';
    const w = waiting.shift();
    if (w) w(line);
    else lines.push(line);
  });
  rl.on('close', () => {
    ended = true;
    for (const w of waiting.splice(0)) w(undefined);
  });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const done = new Promise<Result>((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
  if (opts.input !== undefined) child.stdin.end(opts.input);
  else child.stdin.end();
  return {
    child,
    done,
    nextLine(what) {
      const l = lines.shift();
      if (l !== undefined) return Promise.resolve(l);
      if (ended) return Promise.reject(new Error(`stdout ended before ${what}; stderr: ${stderr}`));
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${what} within ${RUN_TIMEOUT_MS} ms; stderr: ${stderr}`)), RUN_TIMEOUT_MS);
        waiting.push((line) => {
          clearTimeout(t);
          if (line === undefined) reject(new Error(`stdout ended before ${what}; stderr: ${stderr}`));
          else resolve(line);
        });
      });
    },
  };
}

/** Runs `confab ...args` to the end. */
function run(args: string[], opts: Parameters<typeof start>[1] = {}): Promise<Result> {
  return start(args, opts).done;
}

/** Runs a command that must succeed; returns its stdout as parsed JSON lines. */
async function json(args: string[], opts: Parameters<typeof start>[1] = {}): Promise<any[]> {
  const r = await run([...args, '--json'], opts);
  assert.equal(r.code, 0, `confab ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as unknown);
}

let node: TestNode;
let configDir: string;
let server: string;
const PASSWORD = 'correct horse battery';
const users = { alice: uname('alice'), bob: uname('bob'), carol: uname('carol') };
const ids: Record<keyof typeof users, string> = { alice: '', bob: '', carol: '' };
let groupId = '';
let directId = '';
const asBob = () => ['--user', users.bob, '--password', PASSWORD];

before(async () => {
  node = await startNode();
  server = node.url;
  configDir = tempDir('confab-cli-config-');
  dirs.push(configDir);
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await node?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('confab against a running node', () => {
  test('register and login save the session (mode 0600) for the server', async () => {
    for (const who of ['alice', 'bob', 'carol'] as const) {
      const [r] = await json(['register', users[who], '--password', PASSWORD, '--server', server]);
      assert.equal(r.username, users[who]);
      assert.match(r.userId, UUID);
      assert.match(r.deviceId, UUID);
      assert.equal(r.server, server);
      ids[who] = r.userId;
    }
    const file = join(configDir, 'credentials.json');
    assert.equal(JSON.parse(readFileSync(file, 'utf8'))[server].session.user.username, users.carol, 'the last register is the saved session');
    const [l] = await json(['login', users.alice, '--password', PASSWORD, '--server', server]);
    assert.equal(l.userId, ids.alice);
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(saved[server].session.user.username, users.alice);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    // Human output, and CONFAB_SERVER instead of --server.
    const c = await run(['conversations'], { env: { CONFAB_SERVER: server } });
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, '');
    // A wrong password fails clearly and keeps the saved session.
    const bad = await run(['login', users.alice, '--password', 'wrong password', '--server', server]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid_credentials/);
    assert.equal(JSON.parse(readFileSync(file, 'utf8'))[server].session.user.username, users.alice);
  });

  test('group create --members bob,carol prints {"conversationId"}', async () => {
    const [g] = await json(['group', 'create', '--name', 'CLI team', '--members', `${users.bob},${users.carol}`, '--server', server]);
    assert.match(g.conversationId, UUID);
    assert.equal(g.memberCount, 3);
    groupId = g.conversationId;
    const saved = JSON.parse(readFileSync(join(configDir, 'credentials.json'), 'utf8'));
    const m = await http(server, 'GET', `/v1/conversations/${groupId}/members`, undefined, saved[server].session.accessToken);
    assert.deepEqual(m.body.members.map((x: { username: string }) => x.username).sort(), [users.alice, users.bob, users.carol].sort());
  });

  test('send --to bob prints the ack: conversationId, seq, messageId, sender, text, clientId', async () => {
    const [a] = await json(['send', '--to', users.bob, '--server', server, 'hello']);
    assert.match(a.conversationId, UUID);
    assert.equal(a.seq, 1);
    assert.match(a.messageId, UUID);
    assert.equal(a.sender, ids.alice);
    assert.equal(a.senderUsername, users.alice);
    assert.equal(a.text, 'hello');
    assert.equal(typeof a.clientId, 'string');
    assert.ok(a.clientId.length > 0);
    assert.equal(a.duplicate, false);
    directId = a.conversationId;
    // Several words are one text; human output is "#seq user: text".
    const h = await run(['send', '--to', users.bob, '--server', server, 'how', 'are', 'you?']);
    assert.equal(h.code, 0, h.stderr);
    assert.equal(h.stdout, `#2 ${users.alice}: how are you?\n`);
  });

  test('send --client-id X twice returns the same seq and messageId, duplicate the 2nd time', async () => {
    const [first] = await json(['send', '--conversation', groupId, '--client-id', 'cli-once', '--server', server, 'hi']);
    const [second] = await json(['send', '--conversation', groupId, '--client-id', 'cli-once', '--server', server, 'hi']);
    assert.equal(first.seq, 1);
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.seq, first.seq);
    assert.equal(second.messageId, first.messageId);
    assert.equal(second.clientId, 'cli-once');
  });

  test('send --stdin sends one message per line, in order: 300 ack lines with increasing seq', async () => {
    const texts = Array.from({ length: 300 }, (_, i) => `line ${i} ${i % 7 === 0 ? 'é€😀' : ''}`.trim());
    const input = texts.slice(0, 150).join('\n') + '\n\n' + texts.slice(150).join('\r\n') + '\n'; // an empty line is skipped; CRLF works
    const acks = await json(['send', '--conversation', groupId, '--stdin', '--server', server], { input });
    assert.equal(acks.length, 300);
    assert.deepEqual(acks.map((a) => a.text), texts);
    assert.deepEqual(acks.map((a) => a.seq), texts.map((_, i) => i + 2));
    assert.equal(new Set(acks.map((a) => a.clientId)).size, 300, 'each line has its own client id');
  });

  test('history --json prints the whole log oldest first, across several pages', async () => {
    const log = await json(['history', '--conversation', groupId, '--server', server]);
    assert.equal(log.length, 301, 'more than one page of 200');
    assert.deepEqual(log.map((m) => m.seq), log.map((_, i) => i + 1));
    assert.equal(log[0].text, 'hi');
    assert.equal(log[300].text, 'line 299');
    const direct = await json(['history', '--to', users.bob, '--server', server]);
    assert.deepEqual(direct.map((m) => m.text), ['hello', 'how are you?']);
  });

  test('history --after 10 --limit 5 prints seq 11..15', async () => {
    const page = await json(['history', '--conversation', groupId, '--after', '10', '--limit', '5', '--server', server]);
    assert.deepEqual(page.map((m) => m.seq), [11, 12, 13, 14, 15]);
    const human = await run(['history', '--conversation', groupId, '--after', '10', '--limit', '2', '--server', server]);
    assert.equal(human.code, 0, human.stderr);
    assert.equal(human.stdout, `#11 ${users.alice}: line 9\n#12 ${users.alice}: line 10\n`);
    const end = await json(['history', '--conversation', groupId, '--after', '301', '--server', server]);
    assert.deepEqual(end, []);
  });

  test('tail --after 0 --count N prints the backlog in order, then exits', async () => {
    const lines = await json(['tail', '--conversation', groupId, '--after', '0', '--count', '301', '--server', server]);
    assert.equal(lines.length, 301);
    assert.deepEqual(lines.map((m) => m.seq), lines.map((_, i) => i + 1));
  });

  test('tail --count waits for a live message sent meanwhile by another user (--user/--password)', async () => {
    const tail = start(['tail', '--conversation', groupId, '--after', '300', '--count', '2', '--json', '--server', server]);
    // The backlog line shows the tail is connected and caught up; then bob sends.
    const backlog = JSON.parse(await tail.nextLine('the backlog line'));
    assert.equal(backlog.seq, 301);
    const [sent] = await json(['send', '--conversation', groupId, ...asBob(), '--server', server, 'live from bob']);
    assert.equal(sent.sender, ids.bob, '--user bob acts as bob, not the saved alice');
    assert.equal(sent.seq, 302);
    const live = JSON.parse(await tail.nextLine('the live line'));
    assert.equal(live.seq, 302);
    assert.equal(live.text, 'live from bob');
    assert.equal(live.senderUsername, users.bob);
    const r = await tail.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split('\n').length, 2);
    // The saved session is still alice's.
    const [mine] = await json(['send', '--conversation', groupId, '--server', server, 'me again']);
    assert.equal(mine.sender, ids.alice);
  });

  test('--user bob sees bob\'s conversations', async () => {
    const list = await json(['conversations', ...asBob(), '--server', server]);
    assert.deepEqual(list.map((c) => c.id).sort(), [groupId, directId].sort());
    const group = list.find((c) => c.id === groupId);
    assert.equal(group.lastSeq, 303);
  });
});

describe('confab receipts, read state and presence', () => {
  const RECEIPT_KEYS = ['conversationId', 'delivered', 'read', 'type'];
  let dave = '';
  let daveBob = '';

  before(async () => {
    // dave shares a conversation with bob only, not with alice (the saved session).
    dave = uname('dave');
    const s = await register(server, dave, PASSWORD);
    const d = await http(server, 'POST', '/v1/conversations/direct', { username: users.bob }, s.accessToken);
    assert.equal(d.status, 200, JSON.stringify(d.body));
    daveBob = d.body.id;
  });

  test('receipts prints the aggregates then one line per member; read --seq moves the cursor and prints the unread count', async () => {
    const [agg, ...members] = await json(['receipts', '--to', users.bob, '--server', server]);
    // alice sent seq 1 and 2 (sending moves the sender's cursors); bob has no device yet.
    assert.deepEqual(agg, { conversationId: directId, delivered: 0, read: 0 });
    const byName = (who: keyof typeof users) => members.find((m) => m.username === users[who]);
    assert.equal(members.length, 2);
    assert.deepEqual(byName('alice'), { userId: ids.alice, username: users.alice, delivered: 2, read: 2 });
    assert.deepEqual(byName('bob'), { userId: ids.bob, username: users.bob, delivered: 0, read: 0 });

    assert.deepEqual(await json(['read', '--to', users.alice, '--seq', '1', ...asBob(), '--server', server]), [{ conversationId: directId, seq: 1, unread: 1 }]);
    assert.deepEqual(await json(['read', '--conversation', directId, '--seq', '0', ...asBob(), '--server', server]), [{ conversationId: directId, seq: 1, unread: 1 }],
      'a lower seq is ignored: the cursor never moves back');
    const [after, ...again] = await json(['receipts', '--conversation', directId, '--server', server]);
    assert.deepEqual(after, { conversationId: directId, delivered: 1, read: 1 }, 'reading implies delivered');
    assert.deepEqual(again.find((m) => m.username === users.bob), { userId: ids.bob, username: users.bob, delivered: 1, read: 1 });

    const human = await run(['read', '--to', users.alice, '--seq', '1', ...asBob(), '--server', server]);
    assert.equal(human.code, 0, human.stderr);
    assert.equal(human.stdout, 'read up to #1, 1 unread\n');
    const h = await run(['receipts', '--to', users.bob, '--server', server]);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^everyone: delivered up to #1, read up to #1\n/);
    assert.match(h.stdout, new RegExp(`^${users.bob}: delivered up to #1, read up to #1$`, 'm'));
  });

  test('read beyond the last seq, read or receipts of a conversation you are not in: documented errors, exit 1', async () => {
    const beyond = await run(['read', '--to', users.alice, '--seq', '99', ...asBob(), '--server', server]);
    assert.equal(beyond.code, 1);
    assert.match(beyond.stderr, /^confab: seq_out_of_range: .+/m);
    assert.equal(beyond.stdout, '');
    for (const args of [['read', '--conversation', daveBob, '--seq', '0'], ['receipts', '--conversation', daveBob]]) {
      const r = await run([...args, '--server', server]);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^confab: forbidden: .+/m);
      assert.equal(r.stdout, '');
    }
    const [still] = await json(['receipts', '--conversation', directId, '--server', server]);
    assert.deepEqual(still, { conversationId: directId, delivered: 1, read: 1 }, 'nothing stored');
  });

  test('tail --json adds receipts lines (delivered, then read) that do not count toward --count', async () => {
    const tail = start(['tail', '--to', users.bob, '--after', '1', '--count', '2', '--json', '--server', server]);
    const receipts: any[] = [];
    const messages: any[] = [];
    /** Reads alice's tail until a receipts line satisfies `ok` (or the last one already did). */
    const until = async (what: string, ok: (r: any) => boolean) => {
      if (receipts.length > 0 && ok(receipts.at(-1))) return;
      for (;;) {
        const l = JSON.parse(await tail.nextLine(what));
        if (l.type !== 'receipts') { messages.push(l); continue; }
        receipts.push(l);
        if (ok(l)) return;
      }
    };
    const backlog = JSON.parse(await tail.nextLine('the backlog line'));
    assert.equal(backlog.seq, 2, 'message lines stay Message objects');
    assert.equal(backlog.text, 'how are you?');
    messages.push(backlog);

    // bob's first device receives both entries: they are delivered (its receipt goes out as tail exits).
    const bobTail = await json(['tail', '--to', users.alice, '--after', '0', '--count', '2', ...asBob(), '--server', server]);
    assert.deepEqual(bobTail.map((m) => m.seq), [1, 2], 'receipts of other conversations never show up in a tail');
    await until('delivered 2', (r) => r.delivered === 2);
    assert.equal(receipts.at(-1).read, 1, 'delivered to bob, not read yet');
    await json(['read', '--to', users.alice, '--seq', '2', ...asBob(), '--server', server]);
    await until('read 2', (r) => r.read === 2);

    await json(['send', '--to', users.alice, ...asBob(), '--server', server, 'seen it']);
    const r = await tail.done;
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((x) => JSON.parse(x));
    const receiptLines = lines.filter((l) => l.type === 'receipts');
    assert.deepEqual(lines.filter((l) => l.type !== 'receipts').map((m) => m.seq), [2, 3], '--count 2 counted the two messages only');
    assert.ok(receiptLines.length >= 2);
    for (const l of receiptLines) {
      assert.deepEqual(Object.keys(l).sort(), RECEIPT_KEYS);
      assert.equal(l.conversationId, directId);
    }
    const delivered = receiptLines.map((l) => l.delivered);
    const read = receiptLines.map((l) => l.read);
    assert.deepEqual(delivered, [...delivered].sort((a, b) => a - b), 'the aggregate only moves forward');
    assert.deepEqual(read, [...read].sort((a, b) => a - b));
    assert.ok(receiptLines.some((l) => l.delivered === 2 && l.read === 1), 'sent -> delivered (✓✓) before read');
  });

  test('presence --json: online while a device is connected, offline with last seen after a clean close; last seen can be hidden', async () => {
    // bob's device: a tail that stays connected (no --count) until SIGINT.
    const bobTail = start(['tail', '--to', users.alice, '--after', '0', '--json', ...asBob(), '--server', server]);
    assert.equal(JSON.parse(await bobTail.nextLine('bob\'s first backlog line')).seq, 1, 'the device is connected');
    assert.deepEqual(await json(['presence', users.bob, '--server', server]), [{ userId: ids.bob, username: users.bob, status: 'online', lastSeen: null }]);
    const closedAt = Date.now();
    bobTail.child.kill('SIGINT');
    assert.equal((await bobTail.done).code, 0);
    let p: any;
    for (let i = 0; i < 50; i++) {
      [p] = await json(['presence', users.bob, '--server', server]);
      if (p.status === 'offline') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(p.status, 'offline', 'offline once the only device closed');
    assert.equal(typeof p.lastSeen, 'number');
    assert.ok(p.lastSeen >= closedAt - 2_000 && p.lastSeen <= Date.now(), `last seen ${p.lastSeen} is about when the tail closed (${closedAt})`);
    const human = await run(['presence', users.bob, '--server', server]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^${users.bob}: offline, last seen \\d{4}-\\d\\d-\\d\\dT`));

    assert.deepEqual(await json(['settings', '--hide-last-seen', 'true', ...asBob(), '--server', server]), [{ userId: ids.bob, username: users.bob, hideLastSeen: true }]);
    assert.deepEqual(await json(['presence', users.bob, '--server', server]), [{ userId: ids.bob, username: users.bob, status: 'offline', lastSeen: null }]);
    assert.deepEqual(await json(['settings', ...asBob(), '--server', server]), [{ userId: ids.bob, username: users.bob, hideLastSeen: true }]);
    const shown = await run(['settings', '--hide-last-seen', 'false', ...asBob(), '--server', server]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout, `${users.bob}: last seen visible\n`);
    const [visible] = await json(['presence', users.bob, '--server', server]);
    assert.equal(visible.lastSeen, p.lastSeen);
  });

  test('presence of a user you share no conversation with: forbidden on stderr, exit 1; the others are still printed', async () => {
    const r = await run(['presence', users.bob, dave, '--json', '--server', server]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^confab: forbidden: .*${dave}`, 'm'));
    const lines = r.stdout.trim().split('\n').map((x) => JSON.parse(x));
    assert.deepEqual(lines.map((l) => l.username), [users.bob]);
    const only = await run(['presence', dave, '--server', server]);
    assert.equal(only.code, 1);
    assert.equal(only.stdout, '', 'nothing about dave is printed');
    assert.match(only.stderr, /forbidden/);
    const unknown = await run(['presence', 'nobody-at-all', '--server', server]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^confab: user_not_found: .+/m);
  });
});

describe('confab errors', () => {
  test('an unknown command exits 2 with a message on stderr', async () => {
    const r = await run(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    assert.equal(r.stdout, '');
    const none = await run([]);
    assert.equal(none.code, 2);
    assert.match(none.stdout, /Usage: confab/);
  });

  test('usage errors exit 2: bad options, missing target, non-numeric --after', async () => {
    const runs: Promise<{ args: string[]; r: Result }>[] = [];
    for (const args of [
      ['send', '--server', server, 'no target'],
      ['send', '--to', users.bob, '--conversation', groupId, '--server', server, 'both'],
      ['send', '--to', users.bob, '--server', server],
      ['history', '--conversation', groupId, '--after', 'ten', '--server', server],
      ['history', '--conversation', groupId, '--bogus', '--server', server],
      ['send', '--to', users.bob, '--user', users.bob, '--server', server, 'no password'],
      ['read', '--to', users.bob, '--server', server],
      ['read', '--to', users.bob, '--seq', '-1', '--server', server],
      ['presence', '--server', server],
      ['settings', '--hide-last-seen', 'maybe', '--server', server],
      ['receipts', '--server', server],
    ]) runs.push(run(args).then((r) => ({ args, r })));
    for (const { args, r } of await Promise.all(runs)) {
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^confab: .+/m);
    }
  });

  test('sending to an unknown user exits non-zero with user_not_found on stderr', async () => {
    const r = await run(['send', '--to', 'nobody-at-all', '--server', server, 'hello?']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^confab: user_not_found: .+/m);
    assert.equal(r.stdout, '');
    const g = await run(['group', 'create', '--name', 'ghosts', '--members', `${users.bob},nobody-at-all`, '--server', server]);
    assert.notEqual(g.code, 0);
    assert.match(g.stderr, /user_not_found/);
  });

  test('history of a conversation you are not in exits non-zero with forbidden', async () => {
    const [bc] = await json(['send', '--to', users.carol, ...asBob(), '--server', server, 'private']);
    const r = await run(['history', '--conversation', bc.conversationId, '--server', server]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^confab: forbidden: .+/m);
    assert.equal(r.stdout, '', 'nothing of the conversation is printed');
    const t = await run(['send', '--conversation', bc.conversationId, '--server', server, 'let me in']);
    assert.notEqual(t.code, 0);
    assert.match(t.stderr, /forbidden/);
  });

  test('without a saved session, commands say how to log in', async () => {
    const empty = tempDir('confab-cli-empty-');
    dirs.push(empty);
    const r = await run(['history', '--conversation', groupId, '--server', server], { configDir: empty });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not logged in/);
  });

  test('serve --port abc exits 2 with a clear message', async () => {
    const r = await run(['serve', '--port', 'abc']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--port must be a non-negative integer, got "abc"/);
    const u = await run(['serve', '--no-such-option', '1']);
    assert.equal(u.code, 2);
    assert.match(u.stderr, /unknown option --no-such-option/);
  });
});

describe('confab serve', () => {
  test('serve --port 0 --data-dir <tmp> logs the listening line, answers, and stops on SIGTERM', async () => {
    const dataDir = tempDir('confab-cli-serve-');
    dirs.push(dataDir);
    const s = start(['serve', '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir], { env: { LOG_LEVEL: 'info' } });
    let url: string | undefined;
    for (let i = 0; i < 50 && !url; i++) {
      const rec = JSON.parse(await s.nextLine('the listening line')) as { msg?: string; url?: string; dataDir?: string };
      if (rec.msg === 'confab node listening') {
        url = rec.url;
        assert.equal(rec.dataDir, dataDir);
      }
    }
    assert.ok(url, 'the node logged its URL');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await http(url, 'GET', '/healthz');
    assert.deepEqual(health, { status: 200, body: { status: 'ok' } });
    s.child.kill('SIGTERM');
    const r = await s.done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(statSync(join(dataDir, 'confab.db')).isFile());
  });
});

describe('confab sessions shared by several commands', () => {
  test('commands that refresh the saved session at the same time do not log the device out', async () => {
    // Access tokens live 30 s, exactly the CLI's refresh margin: every command finds the saved one
    // about to expire and refreshes it, yet no token expires while the commands use it.
    const short = await startNode({ config: { accessTokenTtlSec: 30 } });
    const dir = tempDir('confab-cli-race-');
    try {
      const name = uname('race');
      const reg = await run(['register', name, '--password', PASSWORD, '--server', short.url], { configDir: dir });
      assert.equal(reg.code, 0, reg.stderr);
      const results = await Promise.all(Array.from({ length: 6 }, () => run(['conversations', '--server', short.url, '--json'], { configDir: dir })));
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const after = await run(['conversations', '--server', short.url, '--json'], { configDir: dir });
      assert.equal(after.code, 0, `the device is still logged in: ${after.stderr}`);
      const out = await run(['logout', '--server', short.url], { configDir: dir });
      assert.equal(out.code, 0, out.stderr);
      const gone = await run(['conversations', '--server', short.url], { configDir: dir });
      assert.notEqual(gone.code, 0);
    } finally {
      await short.close();
    }
  });
});
