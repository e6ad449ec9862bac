// Issue "cluster mode", faults: PostgreSQL restarted under load. A node on a private PostgreSQL
// server (initdb'd by the test) takes sends; the server is stopped like a crash (`immediate`:
// connections cut, no checkpoint) and started again (crash recovery). While it is down, sends
// fail with the retryable `unavailable` error (REST and WebSocket) and /readyz says 503; once it
// is back the node serves again without a restart, and nothing that was acked is lost.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, type ErrorCode, type Message } from '@confab/protocol';
import { device, seqs } from './clients.js';
import { http, register, startNode, uname } from './helpers.js';
import { PrivatePostgres } from './pg-private.js';
import { sleep, until } from './redis-env.js';
import { rawSocket } from './ws-raw.js';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const why = PrivatePostgres.unavailable();

test('PostgreSQL crashed and restarted under load: retryable errors while down, nothing acked lost, service resumes', {
  skip: why !== undefined && process.env.CI !== 'true' ? `${why}; install PostgreSQL's server package to run it` : false,
}, async (t) => {
  if (why) assert.fail(`${why} (required when CI=true)`);
  // Clean-up in reverse order of creation: clients, node, server.
  const cleanup: (() => unknown)[] = [];
  t.after(async () => { for (const fn of cleanup.reverse()) await fn(); });
  const after = (fn: () => unknown) => cleanup.push(fn);
  const server = await PrivatePostgres.create();
  after(() => server.destroy());
  const node = await startNode({ env: { STORE: 'postgres', DATABASE_URL: server.url, SENDS_PER_SECOND: '1000', SEND_BURST: '1000' } });
  after(() => node.close());
  const url = node.url;
  const [alice, bob, carol] = await Promise.all([register(url, uname('pa')), register(url, uname('pb')), register(url, uname('pc'))]);
  const [a, b] = await Promise.all([device(url, alice), device(url, bob)]);
  after(() => Promise.all([a.client.close(), b.client.close()]));
  const group = await a.api.createGroup('restart', [bob.user.username, carol.user.username]);
  const raw = await rawSocket(url);
  after(() => raw.ws.close());
  await raw.hello(carol.accessToken);

  // Alice sends without pause through the SDK (its outbox resends what failed, same client id).
  const acked: Message[] = [];
  let sending = true;
  const loop = (async () => {
    for (let i = 0; sending; i++) acked.push(await a.client.send(group.id, `m${i}`));
  })();
  await until(() => acked.length >= 30, 20_000, '30 acked sends before the crash');

  await server.stop('immediate');
  const ackedBefore = acked.length;
  t.diagnostic(`PostgreSQL stopped (immediate) after ${ackedBefore} acked sends`);

  // While it is down: the retryable error on every path, and readiness off.
  const rest = await http(url, 'POST', `/v1/conversations/${group.id}/messages`, { clientId: 'rest-during', text: 'x' }, bob.accessToken);
  assert.equal(rest.status, 503);
  assert.equal((rest.body as { error: { code: ErrorCode } }).error.code, 'unavailable');
  assert.equal(ERROR_CODES.unavailable.retryable, true, 'documented as retryable');
  raw.send({ type: 'send', id: 'ws-during', conversationId: group.id, clientId: 'ws-during', text: 'x' });
  const err = await raw.next((f) => f.type === 'error' && f.id === 'ws-during');
  assert.ok(err.type === 'error' && err.code === 'unavailable', JSON.stringify(err));
  assert.equal((await http(url, 'GET', '/readyz')).status, 503);
  assert.equal((await http(url, 'GET', '/healthz')).status, 200, 'the process itself stays up');
  await sleep(500);
  assert.ok(acked.length <= ackedBefore + 1, 'no send is acked while the database is down'); // one may have committed just before the stop
  const duringDown = acked.length;

  await server.start();
  await until(async () => (await http(url, 'GET', '/readyz')).status === 200, 20_000, '/readyz back to 200');
  // The same client ids, resent: each lands once.
  const restAgain = await http(url, 'POST', `/v1/conversations/${group.id}/messages`, { clientId: 'rest-during', text: 'x' }, bob.accessToken);
  assert.equal(restAgain.status, 201, JSON.stringify(restAgain.body));
  raw.send({ type: 'send', id: 'ws-again', conversationId: group.id, clientId: 'ws-during', text: 'x' });
  const ack = await raw.next((f) => f.type === 'ack' && f.id === 'ws-again', 20_000);
  assert.ok(ack.type === 'ack' && ack.duplicate === false);
  await until(() => acked.length >= duringDown + 30, 30_000, '30 more acked sends after the restart');
  sending = false;
  await loop;

  // Nothing acked is lost: every acked entry is in the log at its seq, and the log has no gap.
  const total = acked.length + 2;
  const history: Message[] = [];
  for (let after = 0; ;) {
    const page = await http(url, 'GET', `/v1/conversations/${group.id}/messages?after=${after}&limit=100`, undefined, bob.accessToken);
    const ms = (page.body as { messages: Message[] }).messages;
    history.push(...ms);
    if (ms.length === 0) break;
    after = ms[ms.length - 1]!.seq;
  }
  assert.deepEqual(seqs(history), range(1, total), 'seq 1..N, no gap, no duplicate');
  const bySeq = new Map(history.map((m) => [m.seq, m]));
  for (const m of acked) assert.equal(bySeq.get(m.seq)?.messageId, m.messageId, `acked seq ${m.seq} is in the log`);
  assert.deepEqual(acked.map((m) => m.text), acked.map((_, i) => `m${i}`), 'the SDK kept its order across the outage');
  assert.equal(history.filter((m) => m.clientId === 'rest-during').length, 1);
  assert.equal(history.filter((m) => m.clientId === 'ws-during').length, 1);

  // Live delivery resumed: Bob's device holds the whole log, in order.
  await until(() => b.of(group.id).length >= total, 20_000, 'Bob to hold every entry');
  assert.deepEqual(seqs(b.of(group.id)), range(1, total));
});
