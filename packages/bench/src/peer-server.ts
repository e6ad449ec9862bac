// The peers the benchmark compares Confab with: what someone would build instead, each as a
// small server in its own process (`node peer-server.js <kind> <port>`), driven by the same
// generator with the same workload. They speak Confab's frames (raw-ws) or the same frames as
// Socket.IO events, so nothing in the generator differs but the framing:
//   hello {token: <conversation id>}  -> welcome      (joins the group; no accounts, no auth)
//   send {id, conversationId, text}   -> message {message: {conversationId, seq, text}} to every
//                                        member (the sender included), then ack {id, message} to
//                                        the sender
// Kinds:
//   raw-ws            ws, one ws.send per member: the transport, nothing else (no persistence)
//   raw-ws-preframed  ws, the frame built once with ws's Sender and the same bytes written to
//                     every member's socket: the ceiling of Node's transport
//   socketio          Socket.IO 4, a room per group (no persistence)
//   socketio-redis    the same with @socket.io/redis-adapter (what scales Socket.IO to several nodes)
//   socketio-pg       Socket.IO that INSERTs each message into PostgreSQL before broadcasting (the
//                     naive durable do-it-yourself)
import { createServer } from 'node:http';
import { userInfo } from 'node:os';
import type { Socket } from 'node:net';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Server as IoServer } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { PEER_KINDS, type PeerKind } from './peers.js';


interface SendFrame { id: string; conversationId: string; text: string }
const seqs = new Map<string, number>();
const nextSeq = (g: string) => { const n = (seqs.get(g) ?? 0) + 1; seqs.set(g, n); return n; };
const messageOf = (f: SendFrame, seq: number) => ({ conversationId: f.conversationId, seq, text: f.text });

function rawWs(port: number, preframed: boolean): void {
  const groups = new Map<string, Set<WebSocket>>();
  const wss = new WebSocketServer({ port, host: '127.0.0.1', perMessageDeflate: false, skipUTF8Validation: true });
  // ws's frame builder (`WebSocket.Sender.frame`): the same call ws makes for every send.
  const Sender = (wsModule as unknown as { Sender: { frame(data: Buffer, o: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }): Buffer[] } }).Sender;
  wss.on('connection', (ws) => {
    let group: Set<WebSocket> | undefined;
    ws.on('message', (data: RawData) => {
      const f = JSON.parse((data as Buffer).toString('utf8')) as { type: string; token?: string } & SendFrame;
      if (f.type === 'hello') {
        let g = groups.get(f.token!);
        if (!g) groups.set(f.token!, (g = new Set()));
        g.add(ws);
        group = g;
        ws.send('{"type":"welcome"}');
        return;
      }
      if (f.type !== 'send' || !group) return;
      const message = messageOf(f, nextSeq(f.conversationId));
      const text = JSON.stringify({ type: 'message', message });
      if (preframed) {
        // Header and payload once, as one buffer; every member's socket gets the same bytes.
        const bytes = Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }));
        for (const m of group) if (m.readyState === WebSocket.OPEN) (m as unknown as { _socket: Socket })._socket.write(bytes);
      } else {
        for (const m of group) if (m.readyState === WebSocket.OPEN) m.send(text);
      }
      ws.send(JSON.stringify({ type: 'ack', id: f.id, message }));
    });
    ws.on('close', () => group?.delete(ws));
    ws.on('error', () => undefined);
  });
  wss.on('listening', () => process.stdout.write('listening\n'));
}

async function socketIo(port: number, kind: 'socketio' | 'socketio-redis' | 'socketio-pg'): Promise<void> {
  const http = createServer();
  const io = new IoServer(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  if (kind === 'socketio-redis') {
    const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    const pub = new Redis(url);
    const sub = pub.duplicate();
    io.adapter(createAdapter(pub, sub, { key: `confab-bench-peer-${process.pid}` }));
  }
  let db: pg.Pool | undefined;
  if (kind === 'socketio-pg') {
    const url = new URL(process.env.PEER_DATABASE_URL ?? 'postgres://127.0.0.1:5432/postgres');
    if (!url.username) url.username = process.env.PGUSER ?? userInfo().username; // as psql does
    db = new pg.Pool({ connectionString: url.toString(), max: 10 });
    await db.query('CREATE TABLE IF NOT EXISTS messages (id bigserial PRIMARY KEY, conversation_id text NOT NULL, text text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())');
  }
  io.on('connection', (socket) => {
    socket.on('hello', (f: { token: string }) => {
      void socket.join(f.token);
      socket.emit('welcome', { type: 'welcome' });
    });
    socket.on('send', (f: SendFrame) => {
      const broadcast = () => {
        const message = messageOf(f, nextSeq(f.conversationId));
        io.to(f.conversationId).emit('message', { type: 'message', message });
        socket.emit('ack', { type: 'ack', id: f.id, message });
      };
      if (!db) return broadcast();
      db.query('INSERT INTO messages (conversation_id, text) VALUES ($1, $2)', [f.conversationId, f.text]).then(broadcast, (err: Error) => {
        socket.emit('error', { type: 'error', code: 'db', message: err.message });
      });
    });
  });
  http.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
}

const [kind, port] = [process.argv[2] as PeerKind, Number(process.argv[3])];
if (!PEER_KINDS.includes(kind) || !(port > 0)) {
  process.stderr.write(`usage: peer-server.js <${PEER_KINDS.join('|')}> <port>\n`);
  process.exit(2);
}
if (kind === 'raw-ws' || kind === 'raw-ws-preframed') rawWs(port, kind === 'raw-ws-preframed');
else await socketIo(port, kind);
