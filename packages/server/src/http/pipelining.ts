// HTTP/1.1 pipelining, bounded. Node reads and dispatches every request a client writes in one
// go, and keeps each answer in memory until the ones before it have been written: a client that
// pipelines 120 history requests and reads nothing would have the node compute and hold 120
// pages. Per connection, at most `maxPipelined` requests may be read and not yet answered, and
// no request is run while more than `maxBytes` of answers wait for that connection; past either,
// requests are answered 429 `rate_limited` without being run, and the connection is closed
// after the answer. (The socket inactivity timeout closes a connection that never reads.)
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors.js';

interface Conn { inFlight: number; bytes: number }

export function boundPipelining(app: FastifyInstance, o: { maxPipelined: number; maxBytes: number; refused: () => void }): void {
  const conns = new WeakMap<Socket, Conn>();
  const counted = new WeakMap<object, number>();
  const admitted = new WeakSet<object>();
  app.addHook('onRequest', async (req, reply) => {
    const socket = req.raw.socket;
    let c = conns.get(socket);
    if (!c) conns.set(socket, (c = { inFlight: 0, bytes: 0 }));
    const conn = c;
    if ((o.maxPipelined > 0 && conn.inFlight >= o.maxPipelined) || (o.maxBytes > 0 && conn.bytes > o.maxBytes)) {
      o.refused();
      const why = conn.inFlight >= o.maxPipelined
        ? `At most ${o.maxPipelined} requests may wait for their answers on one connection; read the answers first.`
        : `${conn.bytes} bytes of answers are waiting for this connection; read them first.`;
      return reply.code(429).header('connection', 'close').send({ error: new AppError('rate_limited', why, { retryAfterMs: 1000 }).toBody() });
    }
    conn.inFlight++;
    admitted.add(reply.raw);
    reply.raw.once('close', () => {
      conn.inFlight--;
      conn.bytes -= counted.get(reply.raw) ?? 0;
    });
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const n = typeof payload === 'string' ? Buffer.byteLength(payload) : Buffer.isBuffer(payload) ? payload.length : 0;
    const conn = conns.get(req.raw.socket);
    if (conn && n > 0 && admitted.has(reply.raw) && !counted.has(reply.raw)) {
      conn.bytes += n;
      counted.set(reply.raw, n);
    }
    return payload;
  });
}
