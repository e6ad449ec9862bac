// Abuse suite, before authentication: nothing expensive is done for a client that has not
// authenticated. A flood of upgrades without a token from one address is refused on that
// address's own allowance and does not keep a client from another address out; a socket that
// fails hello, or that the node closes for any reason, is gone within a short grace even when
// the peer never answers the close frame.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { register, scrape, startNode, uname } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One WebSocket attempt from `localAddress` with `token` (none: never sends hello); its outcome. */
function attempt(url: string, localAddress: string, token: string | undefined, keepMs: number): Promise<{ outcome: 'welcome' | 'refused' | 'closed'; status?: number; code?: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/ws`, { localAddress });
    let done = false;
    const finish = (r: { outcome: 'welcome' | 'refused' | 'closed'; status?: number; code?: number }) => {
      if (done) return;
      done = true;
      resolve(r);
      if (r.outcome === 'welcome' || !token) setTimeout(() => ws.terminate(), r.outcome === 'welcome' ? 0 : keepMs).unref();
    };
    ws.on('unexpected-response', (_req, res) => { finish({ outcome: 'refused', status: res.statusCode ?? 0 }); ws.terminate(); });
    ws.on('error', () => finish({ outcome: 'refused', status: 0 }));
    ws.on('close', (code) => finish({ outcome: 'closed', code }));
    ws.on('open', () => {
      if (token) ws.send(JSON.stringify({ type: 'hello', v: 1, token }));
      else finish({ outcome: 'closed' }); // open, holding a pre-authentication slot until terminated
    });
    ws.on('message', (d: Buffer) => { if ((JSON.parse(d.toString()) as { type: string }).type === 'welcome') finish({ outcome: 'welcome' }); });
  });
}

/** A raw TCP client that completes the WebSocket handshake and then never writes another byte (it never answers a close frame). */
async function silentPeer(url: string): Promise<{ socket: Socket; gone: Promise<number> }> {
  const { port } = new URL(url);
  const socket = connect(Number(port), '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(`GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  const t0 = Date.now();
  socket.on('data', () => undefined); // reads whatever comes (the close frame), answers nothing
  return { socket, gone: new Promise((resolve) => socket.once('close', () => resolve(Date.now() - t0))) };
}

describe('hostile: before authentication', () => {
  test('a flood of upgrades without a token from 127.0.0.2 does not keep a client from 127.0.0.3 out', async (t) => {
    const n = await startNode({ defaults: true });
    try {
      const user = await register(n.url, uname('ad'));
      let stop = false;
      const outcomes = { upgraded: 0, refused: 0 };
      // The flood: up to 64 attempts in parallel for 4 s (at most 20,000), each holding its socket 2 s.
      const flood = (async () => {
        let started = 0;
        const end = Date.now() + 4000;
        await Promise.all(Array.from({ length: 64 }, async () => {
          while (!stop && Date.now() < end && started < 20_000) {
            started++;
            const r = await attempt(n.url, '127.0.0.2', undefined, 2000);
            if (r.outcome === 'refused') outcomes.refused++;
            else outcomes.upgraded++;
          }
        }));
        return started;
      })();
      await sleep(500);
      const mine: string[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await attempt(n.url, '127.0.0.3', user.accessToken, 0);
        mine.push(r.outcome === 'welcome' ? 'welcome' : `${r.outcome}:${r.status ?? r.code}`);
        await sleep(50);
      }
      stop = true;
      const started = await flood;
      const m = await scrape(n.url);
      t.diagnostic(`flood from 127.0.0.2: ${started} attempts, ${outcomes.upgraded} upgraded, ${outcomes.refused} refused (pending per address: ${m('confab_admission_refused_total', { reason: 'pending_address' }) ?? 0}, rate per address: ${m('confab_admission_refused_total', { reason: 'rate_address' }) ?? 0}); the user from 127.0.0.3: ${mine.filter((x) => x === 'welcome').length}/20 in`);
      assert.deepEqual(mine, Array(20).fill('welcome'), 'every attempt of the other address got in');
      assert.ok(outcomes.refused > 0, 'the flood was refused on its own allowance');
      assert.ok(outcomes.upgraded <= 50 + 2 * 50 + 4 * 50, `${outcomes.upgraded} upgrades: at most the per-address allowance`);
    } finally {
      await n.close();
    }
  });

  test('a socket that sends no hello, and never answers the close frame, is gone within the hello timeout and a short grace', async (t) => {
    const HELLO = 1000;
    const n = await startNode({ defaults: true, limits: { helloTimeoutMs: HELLO } });
    try {
      const peer = await silentPeer(n.url);
      const ms = await Promise.race([peer.gone, sleep(HELLO + 10_000).then(() => -1)]);
      t.diagnostic(`closed by the node ${ms} ms after the upgrade (hello timeout ${HELLO} ms)`);
      assert.ok(ms > 0, 'the node closed it');
      assert.ok(ms < HELLO + 2000 + 1500, `gone after ${ms} ms: the hello timeout plus the 2 s close grace (not ws's 30 s)`);
      assert.equal((await scrape(n.url))('confab_connections_pending'), 0);
    } finally {
      await n.close();
    }
  });

  test('a socket closed for a bad token is gone within the grace too, and the node keeps serving', async () => {
    const n = await startNode({ defaults: true });
    try {
      const peer = await silentPeer(n.url);
      // A masked hello frame with a forged token, written by hand (the peer then stays silent).
      const payload = Buffer.from(JSON.stringify({ type: 'hello', v: 1, token: 'x.y.z' }));
      const mask = randomBytes(4);
      const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
      peer.socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
      const ms = await Promise.race([peer.gone, sleep(12_000).then(() => -1)]);
      assert.ok(ms > 0 && ms < 2000 + 1500, `gone after ${ms} ms`);
      const user = await register(n.url, uname('ok'));
      assert.equal((await attempt(n.url, '127.0.0.1', user.accessToken, 0)).outcome, 'welcome');
    } finally {
      await n.close();
    }
  });
});
