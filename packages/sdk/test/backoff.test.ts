// Backoff (full jitter, cap, reset) and the token bucket that paces sends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, fullJitterDelay } from '../src/backoff.js';
import { TokenBucket, clientPacing } from '../src/bucket.js';

test('full jitter: the delay is random() times min(max, min * 2^attempt)', () => {
  assert.equal(fullJitterDelay(0, 250, 15_000, () => 0), 0);
  assert.equal(fullJitterDelay(0, 250, 15_000, () => 0.5), 125);
  assert.equal(fullJitterDelay(3, 250, 15_000, () => 0.5), 1000);
  assert.equal(fullJitterDelay(10, 250, 15_000, () => 0.5), 7500);
  assert.equal(fullJitterDelay(5000, 250, 15_000, () => 0.5), 7500); // no overflow to NaN/Infinity
});

test('backoff caps double per attempt up to maxDelayMs, and reset starts over', () => {
  const b = new Backoff({ minDelayMs: 250, maxDelayMs: 15_000, random: () => 1 });
  const caps = Array.from({ length: 9 }, () => b.next());
  assert.deepEqual(caps, [250, 500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
  assert.equal(b.attempt, 9);
  b.reset();
  assert.equal(b.attempt, 0);
  assert.equal(b.next(), 250);
});

test('backoff delays with a real random source stay within [0, cap) and are spread out', () => {
  const b = new Backoff({ minDelayMs: 100, maxDelayMs: 1000 });
  const delays: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const attempt = b.attempt;
    const d = b.next();
    const cap = Math.min(1000, 100 * 2 ** attempt);
    assert.ok(d >= 0 && d < cap, `delay ${d} outside [0, ${cap})`);
    if (attempt >= 4) delays.push(d);
  }
  // Full jitter, not "cap minus a little": both halves of the range are used.
  assert.ok(delays.some((d) => d < 250) && delays.some((d) => d > 750));
});

test('backoff rejects inverted bounds', () => {
  assert.throws(() => new Backoff({ minDelayMs: 500, maxDelayMs: 100 }), RangeError);
});

test('token bucket: burst, then the sustained rate', () => {
  let now = 0;
  const bucket = new TokenBucket(10, 3, () => now);
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take()], [0, 0, 0]);
  assert.equal(bucket.take(), 100); // one token per 100 ms
  now += 50;
  assert.equal(bucket.take(), 50);
  now += 50;
  assert.equal(bucket.take(), 0);
  now += 10_000;
  assert.deepEqual([bucket.take(), bucket.take(), bucket.take(), bucket.take() > 0], [0, 0, 0, true]); // capped at 3
});

test('token bucket: configure keeps earned tokens within the new capacity', () => {
  let now = 0;
  const bucket = new TokenBucket(10, 10, () => now);
  bucket.configure(1, 2);
  assert.deepEqual([bucket.take(), bucket.take()], [0, 0]);
  assert.equal(bucket.take(), 1000);
  now += 1000;
  assert.equal(bucket.take(), 0);
});

test('client pacing stays under the server limits', () => {
  const { rate, capacity } = clientPacing(30, 60);
  assert.ok(rate < 30 && rate > 20);
  assert.ok(capacity < 60 && capacity >= 30);
  assert.equal(clientPacing(1, 1).capacity, 1);
});
