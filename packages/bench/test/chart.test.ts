// --chart: one line per system, points where there is a p99, names escaped, the 100 ms bound drawn.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chartSvg } from '../src/chart.js';

test('the chart has a line per system, skips steps without a p99 and escapes names', () => {
  const svg = chartSvg('groups <test>', [
    { name: 'confab', points: [{ offered: 500, p99Ms: 12 }, { offered: 1000, p99Ms: 20 }, { offered: 2000, p99Ms: 250 }] },
    { name: 'raw-ws & co', points: [{ offered: 500, p99Ms: 3 }, { offered: 1000, p99Ms: null }, { offered: 2000, p99Ms: 9 }] },
  ]);
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.equal(svg.match(/<polyline /g)?.length, 2);
  assert.equal(svg.match(/<circle /g)?.length, 5, 'the step without a p99 is not drawn');
  assert.match(svg, /groups &lt;test&gt;/);
  assert.match(svg, /raw-ws &amp; co/);
  assert.match(svg, /p99 100 ms: sustained below/);
  assert.ok(!svg.includes('NaN'), 'every coordinate is a number');
});
