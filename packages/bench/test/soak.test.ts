// judgeSoak on made-up minutes: what the soak concludes, with and without the machine changing speed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StepResult } from '../src/report.js';
import { judgeSoak } from '../src/soak-judge.js';

/** A minute of the soak: its p99, the generators' CPU (the machine's speed), the node's CPU and RSS. */
function minute(p99Ms: number, genPct: number, o: { rss?: number; lost?: number; nodePct?: number } = {}): StepResult {
  return {
    offered: 1000, sentPerSec: 1000, committedPerSec: 1000, deliveriesPerSec: 10000,
    p50Ms: 1.5, p99Ms, p999Ms: p99Ms * 2, ackP50Ms: 1.4, ackP99Ms: p99Ms,
    sent: 55000, acked: 55000, unacked: 0, expectedDeliveries: 550000, delivered: 550000 - (o.lost ?? 0), lost: o.lost ?? 0,
    late: 0, skipped: 0, errors: {}, serverCpuPct: o.nodePct ?? genPct * 2.5, serverRssMiB: o.rss ?? 165, generatorCpuPct: [genPct],
    generatorStallMs: 10, otherCpuPct: 1, stealPct: 0.1, generatorBound: false, sustained: true,
  };
}

// The machine's speed minute by minute, wandering as on a shared machine (generators' CPU, %).
const SPEED = [12.5, 12.4, 12.3, 11.6, 13.0, 13.6, 14.7, 15.1, 15.9, 14.5, 14.1, 11.9, 12.3, 13.9, 12.8,
  13.0, 12.9, 14.5, 14.9, 14.3, 13.6, 14.0, 11.8, 13.8, 13.6, 12.8, 11.9, 13.0, 16.3, 14.1];
/** The p99 of a node that does not change: 5.5 ms at 12.4 %, moving as the speed squared, with a little noise. */
const steady = (g: number, i: number) => 5.5 * (g / 12.4) ** 2 * (1 + 0.03 * Math.sin(i * 2.1));

test('a steady node on a steady machine is flat', () => {
  const j = judgeSoak(Array.from({ length: 30 }, (_, i) => minute(steady(12.4, i), 12.4 + 0.1 * Math.cos(i * 1.3))));
  assert.equal(j.verdict, 'flat');
  assert.ok(j.fit && Math.abs(j.fit.ratio - 1) < 0.05, `ratio at one speed: ${j.fit?.ratio}`);
});

test('a steady node on a machine that slowed down: the raw p99 misses 1.1x, at the machine\'s speed it is flat', () => {
  // The last five minutes ran 8 % slower than minutes 2-6.
  const speed = SPEED.map((g, i) => (i >= 25 ? g * 1.08 : g));
  const j = judgeSoak(speed.map((g, i) => minute(steady(g, i), g)));
  assert.ok(j.p99[1] / j.p99[0] > 1.1, `raw p99 ratio ${j.p99[1] / j.p99[0]}`);
  assert.equal(j.verdict, "flat at the machine's speed");
  assert.ok(j.fit && Math.abs(j.fit.elasticity - 2) < 0.3, `elasticity ${j.fit?.elasticity}`);
  assert.ok(j.fit && Math.abs(j.fit.ratio - 1) < 0.05, `ratio at one speed ${j.fit?.ratio}`);
  assert.ok(Math.abs(j.cost[1] / j.cost[0] - 1) < 0.01, 'the node\'s CPU per unit of the generators\' stays put');
});

test('a node whose p99 grows 1 % a minute is not flat, whatever the machine did', () => {
  for (const drift of [SPEED, SPEED.map((g, i) => (i >= 20 ? g * 0.9 : g))]) {
    const j = judgeSoak(drift.map((g, i) => minute(steady(g, i) * 1.01 ** i, g)));
    assert.equal(j.verdict, 'not flat');
    assert.ok(j.fit && j.fit.ratio > 1.2 && j.fit.ratio < 1.3, `ratio at one speed ${j.fit?.ratio} (1.01^24 = 1.27)`);
  }
});

test('RSS growth or a lost message decides alone', () => {
  const grows = judgeSoak(SPEED.map((g, i) => minute(steady(12.4, i), 12.4, { rss: 160 + i * 2 })));
  assert.equal(grows.verdict, 'not flat');
  const lost = judgeSoak(SPEED.map((g, i) => minute(steady(12.4, i), 12.4, { lost: i === 17 ? 1 : 0 })));
  assert.equal(lost.verdict, 'not flat');
  assert.equal(lost.lost, 1);
});

test('too few minutes to fit: the raw ratios decide', () => {
  const j = judgeSoak([minute(6, 12), minute(5.5, 12), minute(5.6, 12.1)]);
  assert.equal(j.fit, null);
  assert.equal(j.verdict, 'flat');
  assert.equal(judgeSoak([minute(6, 12), minute(5.5, 12), minute(7, 12.1)]).verdict, 'not flat');
});
