// Connection limits: at most MAX_CONNECTIONS_PER_USER connections per user on a node (one more is
// refused after hello with 4102), and admission control on new WebSocket sessions
// (NEW_SESSIONS_PER_SECOND; the excess is closed with 4103 right after the upgrade). Both close
// codes make the SDK reconnect with backoff rather than stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { ConfabClient, type StateChange } from '@confab/sdk';
import { register, startNode, uname } from './helpers.js';
import { rawSocket, type RawSocket } from './ws-raw.js';

test('MAX_CONNECTIONS_PER_USER: one connection over the cap is refused with 4102; a freed slot can be used again', async () => {
  const node = await startNode({ config: { maxConnectionsPerUser: 2 } });
  const open: RawSocket[] = [];
  try {
    const [a, b] = await Promise.all([register(node.url, uname('cap')), register(node.url, uname('cap'))]);
    for (let i = 0; i < 2; i++) {
      const s = await rawSocket(node.url);
      open.push(s);
      await s.hello(a.accessToken);
    }
    const third = await rawSocket(node.url);
    third.send({ type: 'hello', v: 1, token: a.accessToken });
    const err = await third.next((f) => f.type === 'error');
    assert.equal(err.type === 'error' && err.code, 'rate_limited');
    assert.equal((await third.closed).code, 4102);
    assert.ok(!third.frames.some((f) => f.type === 'welcome'));
    // Another user is not affected.
    const other = await rawSocket(node.url);
    open.push(other);
    await other.hello(b.accessToken);
    // Close one of a's: a new one fits again.
    open[0]!.ws.close();
    await open[0]!.closed;
    let again: RawSocket | undefined;
    for (let i = 0; i < 50 && !again; i++) {
      const s = await rawSocket(node.url);
      s.send({ type: 'hello', v: 1, token: a.accessToken });
      const first = await s.next((f) => f.type === 'welcome' || f.type === 'error');
      if (first.type === 'welcome') again = s;
      else await new Promise((r) => setTimeout(r, 20)); // the close is still being processed
    }
    assert.ok(again, 'a slot freed by a close is usable');
    open.push(again);
  } finally {
    for (const s of open) s.ws.terminate();
    await node.close();
  }
});

test('MAX_CONNECTIONS_PER_USER holds for concurrent hellos', async () => {
  const node = await startNode({ config: { maxConnectionsPerUser: 2 } });
  const sockets: RawSocket[] = [];
  try {
    const a = await register(node.url, uname('cc'));
    for (let i = 0; i < 6; i++) sockets.push(await rawSocket(node.url));
    for (const s of sockets) s.send({ type: 'hello', v: 1, token: a.accessToken });
    const outcomes = await Promise.all(sockets.map((s) => s.next((f) => f.type === 'welcome' || f.type === 'error').then((f) => f.type)));
    assert.equal(outcomes.filter((t) => t === 'welcome').length, 2, outcomes.join(' '));
    const refused = sockets.filter((_, i) => outcomes[i] === 'error');
    for (const s of refused) assert.equal((await s.closed).code, 4102);
  } finally {
    for (const s of sockets) s.ws.terminate();
    await node.close();
  }
});

/** Opens a socket; resolves with the close code if the node closes it first, or 'open' once hello is answered. */
async function admitted(url: string, token: string): Promise<number | 'open'> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`);
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('close', (code) => resolve(code));
    ws.once('open', () => ws.send(JSON.stringify({ type: 'hello', v: 1, token })));
    ws.once('message', () => { resolve('open'); ws.terminate(); });
  });
}

test('NEW_SESSIONS_PER_SECOND: the excess of a burst is closed with 4103; later connections are admitted again', async () => {
  const node = await startNode({ config: { newSessionsPerSecond: 3 } });
  try {
    const a = await register(node.url, uname('adm'));
    const burst = await Promise.all(Array.from({ length: 8 }, () => admitted(node.url, a.accessToken)));
    assert.equal(burst.filter((r) => r === 'open').length, 3, burst.join(' '));
    assert.ok(burst.filter((r) => r !== 'open').every((r) => r === 4103), burst.join(' '));
    // The bucket refills at 3 per second: a later attempt gets in (bounded retries, no timing assertion).
    let later: number | 'open' = 4103;
    for (let i = 0; i < 40 && later !== 'open'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      later = await admitted(node.url, a.accessToken);
    }
    assert.equal(later, 'open');
  } finally {
    await node.close();
  }
});

test('the SDK reconnects with backoff after 4102 and gets in once a slot is free', async () => {
  const node = await startNode({ config: { maxConnectionsPerUser: 1 } });
  const a = await register(node.url, uname('sdk'));
  const first = new ConfabClient({ url: node.url, WebSocket, token: a.accessToken, reconnect: { minDelayMs: 20, maxDelayMs: 100 } });
  const second = new ConfabClient({ url: node.url, WebSocket, token: a.accessToken, reconnect: { minDelayMs: 20, maxDelayMs: 100 } });
  try {
    await first.connect();
    const states: StateChange[] = [];
    second.on('state', (s) => states.push(s));
    const connected = second.connect();
    for (let i = 0; i < 500 && !states.some((s) => s.state === 'reconnecting' && s.code === 4102); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(states.some((s) => s.state === 'reconnecting' && s.code === 4102), JSON.stringify(states));
    assert.notEqual(second.state, 'closed', 'refused for now, not for good');
    await first.close();
    await connected;
    assert.equal(second.state, 'open');
  } finally {
    await Promise.all([first.close(), second.close()]);
    await node.close();
  }
});
