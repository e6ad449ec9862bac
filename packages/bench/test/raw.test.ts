// The hostile scenario's hand-made parsers: WebSocket frames and pipelined HTTP responses, fed in
// pieces of every size (a frame or a head split anywhere must parse the same).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameReader, HttpResponseReader, closeCode, frameType, type RawFrame } from '../src/raw.js';

/** A server frame (unmasked) with this opcode and payload. */
function serverFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff]) : Buffer.alloc(10);
  if (len >= 65536) { head[0] = 0x80 | opcode; head[1] = 127; head.writeBigUInt64BE(BigInt(len), 2); }
  return Buffer.concat([head, payload]);
}

/** Feeds `bytes` in pieces of `size` bytes. */
function feed(push: (b: Buffer) => void, bytes: Buffer, size: number): void {
  for (let i = 0; i < bytes.length; i += size) push(bytes.subarray(i, i + size));
}

test('FrameReader: types, lengths of 7, 16 and 64 bits and close codes, however the bytes are split', () => {
  const big = Buffer.from(`{"type":"history.result","id":"h1","messages":[${'"x",'.repeat(40_000)}"x"]}`);
  const close = Buffer.alloc(2);
  close.writeUInt16BE(4104);
  const stream = Buffer.concat([
    serverFrame(1, Buffer.from('{"type":"welcome","v":1}')),
    serverFrame(1, Buffer.from(`{"type":"pong","pad":"${'p'.repeat(300)}"}`)),
    serverFrame(1, big),
    serverFrame(9, Buffer.alloc(0)),
    serverFrame(8, close),
  ]);
  for (const size of [1, 2, 3, 7, 100, 4096, stream.length]) {
    const frames: RawFrame[] = [];
    const r = new FrameReader((f) => frames.push(f));
    feed((b) => r.push(b), stream, size);
    assert.deepEqual(frames.map(frameType), ['welcome', 'pong', 'history.result', 'opcode-9', 'close'], `pieces of ${size}`);
    assert.equal(frames[2]!.length, big.length);
    assert.equal(closeCode(frames[4]!), 4104);
    assert.equal(r.bytes, stream.length);
  }
});

test('HttpResponseReader: pipelined responses with Content-Length, chunked and empty bodies', () => {
  const body = 'y'.repeat(70_000);
  const stream = Buffer.from([
    `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
    'HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\n\r\n{}',
    'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n',
    'HTTP/1.1 204 No Content\r\n\r\n',
    'HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n',
  ].join(''));
  for (const size of [1, 5, 64, 1000, stream.length]) {
    const r = new HttpResponseReader();
    feed((b) => r.push(b), stream, size);
    assert.deepEqual(r.statuses, [200, 429, 200, 204, 503], `pieces of ${size}`);
  }
});
