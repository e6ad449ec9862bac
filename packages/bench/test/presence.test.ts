// The presence scenario's layout: every user watches exactly W peers it shares a group with,
// also when the users do not divide into groups of W+1; flappers come from different groups.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layout, pickFlappers } from '../src/scenarios/presence.js';

test('every user watches exactly W peers of a group it is in, itself never', () => {
  for (const [users, watch] of [[1000, 50], [102, 50], [60, 5], [7, 3], [2, 1]] as const) {
    const { groups, watchOf, watchers } = layout(users, watch);
    assert.equal(groups.length, Math.ceil(users / (watch + 1)));
    for (const g of groups) assert.equal(new Set(g).size, watch + 1, 'a group has W+1 distinct members');
    watchOf.forEach((list, u) => {
      assert.equal(new Set(list).size, watch, `user ${u} watches ${watch} distinct peers`);
      assert.ok(!list.includes(u));
      assert.ok(groups.some((g) => g.includes(u) && list.every((p) => g.includes(p))), `user ${u} shares a group with all it watches`);
    });
    assert.equal(watchers.reduce((a, b) => a + b, 0), users * watch);
  }
});

test('flappers come from different groups and have W watchers when possible', () => {
  const { groups, watchers } = layout(1000, 50);
  const f = pickFlappers(groups, watchers, 50, 10);
  assert.equal(f.length, 10);
  assert.equal(new Set(f.map((u) => Math.floor(u / 51))).size, 10);
  for (const u of f) assert.equal(watchers[u], 50);
  const small = layout(60, 5);
  assert.equal(pickFlappers(small.groups, small.watchers, 5, 15).length, 15); // more flappers than groups: several per group
});
