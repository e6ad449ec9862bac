// The benchmark's arithmetic: histogram quantiles (within their 2 % buckets), merging across
// workers, and the "sustained" rule behind the headline figure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram } from '../src/latency.js';
import { isSustained, summarize, type StepResult } from '../src/report.js';

test('quantiles are within 2 % above the true value, and merge across workers', () => {
  const a = new Histogram();
  const b = new Histogram();
  for (let i = 1; i <= 1000; i++) (i % 2 ? a : b).record(i / 10); // 0.1 .. 100 ms
  const all = new Histogram().add(a.toJSON()).add(b.toJSON());
  assert.equal(all.count, 1000);
  for (const [q, exact] of [[0.5, 50], [0.99, 99], [0.999, 99.9]] as const) {
    const v = all.quantile(q)!;
    assert.ok(v >= exact && v <= exact * 1.02, `q${q}: ${v} vs ${exact}`);
  }
  assert.equal(new Histogram().quantile(0.5), undefined);
});

test('sustained means p99 < 100 ms with nothing lost, unacked or refused; the headline is the best such step', () => {
  const ok = { p99Ms: 99, lost: 0, unacked: 0, errors: {} };
  assert.equal(isSustained(ok), true);
  assert.equal(isSustained({ ...ok, p99Ms: 100 }), false);
  assert.equal(isSustained({ ...ok, lost: 1 }), false);
  assert.equal(isSustained({ ...ok, errors: { rate_limited: 1 } }), false);
  const step = (committedPerSec: number, sustained: boolean) => ({ committedPerSec, deliveriesPerSec: committedPerSec * 10, p50Ms: 1, p99Ms: 2, lost: sustained ? 0 : 5, sustained }) as StepResult;
  const r = summarize('confab', [step(500, true), step(1000, true), step(2000, false)]);
  assert.equal(r.maxSustainedMsgsPerSec, 1000);
  assert.equal(r.maxDeliveriesPerSec, 10000);
  assert.equal(r.lost, 5);
});
