// The real `confab` binary (node packages/cli/bin/confab.js, built by `npx tsc -b`) against a
// node started in this process. Saved sessions go to a temporary CONFAB_CONFIG_DIR.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { http, startNode, tempDir, uname, type TestNode } from '../../server/test/helpers.js';

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
