// The cursor tracker on its own: dedup, gaps, held entries, sync completion, hello resume.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '@confab/protocol';
import { CursorTracker, MAX_HELD } from '../src/cursors.js';
import { C1, C2, msg } from './fake-server.js';

function setup(connected = true) {
  const delivered: string[] = [];
  const syncs: { conversationId: string; after: number }[] = [];
  const synced: string[] = [];
  const state = { connected };
  const tracker = new CursorTracker({
    deliver: (m: Message) => delivered.push(`${m.conversationId === C1 ? 'c1' : 'c2'}:${m.seq}`),
    requestSync: (conversationId, after) => {
      if (!state.connected) return false;
      syncs.push({ conversationId, after });
      return true;
    },
    synced: (conversationId, seq) => synced.push(`${conversationId === C1 ? 'c1' : 'c2'}:${seq}`),
  });
  return { tracker, delivered, syncs, synced, state };
}

test('an untracked conversation starts at its first live entry', () => {
  const { tracker, delivered, syncs } = setup();
  tracker.live(msg(C1, 7));
  tracker.live(msg(C1, 8));
  assert.deepEqual(delivered, ['c1:7', 'c1:8']);
  assert.equal(tracker.get(C1), 8);
  assert.deepEqual(syncs, []);
});

test('duplicates (seq <= cursor) are dropped', () => {
  const { tracker, delivered } = setup();
  tracker.track(C1, 5, false);
  tracker.live(msg(C1, 4));
  tracker.live(msg(C1, 5));
  tracker.live(msg(C1, 6));
  tracker.live(msg(C1, 6));
  assert.deepEqual(delivered, ['c1:6']);
});

test('a gap holds the entry and syncs from the cursor; the sync fills it in order', () => {
  const { tracker, delivered, syncs, synced } = setup();
  tracker.track(C1, 5, false);
  tracker.live(msg(C1, 8));
  assert.deepEqual(syncs, [{ conversationId: C1, after: 5 }]);
  assert.deepEqual(delivered, []);
  tracker.live(msg(C1, 9)); // held too, no second sync while one is in flight
  assert.equal(syncs.length, 1);
  tracker.page(C1, [msg(C1, 6), msg(C1, 7), msg(C1, 8)]);
  tracker.done(C1, 8, 'gap');
  assert.deepEqual(delivered, ['c1:6', 'c1:7', 'c1:8', 'c1:9']);
  assert.equal(tracker.get(C1), 9);
  assert.deepEqual(synced, ['c1:9']);
});

test('sync.done moves the cursor over seqs the server did not send, and held entries drain', () => {
  const { tracker, delivered } = setup();
  tracker.track(C1, 5, false);
  tracker.live(msg(C1, 9));
  tracker.done(C1, 8, 'gap'); // 6..8 are not ours to see
  assert.deepEqual(delivered, ['c1:9']);
  assert.equal(tracker.get(C1), 9);
});

test('entries that arrive during the sync with a new gap trigger a follow-up sync', () => {
  const { tracker, syncs, delivered } = setup();
  tracker.track(C1, 5, false);
  tracker.live(msg(C1, 7));
  tracker.live(msg(C1, 12)); // arrived after the sync was sent
  tracker.page(C1, [msg(C1, 6), msg(C1, 7)]);
  tracker.done(C1, 7, 'gap');
  assert.deepEqual(delivered, ['c1:6', 'c1:7']);
  assert.deepEqual(syncs, [{ conversationId: C1, after: 5 }, { conversationId: C1, after: 7 }]);
});

test('a sync that does not cover entries already held does not loop: held entries are applied', () => {
  const { tracker, syncs, delivered } = setup();
  tracker.track(C1, 5, false);
  tracker.live(msg(C1, 9));
  tracker.done(C1, 6, 'gap'); // the server claims 6 is the end, yet 9 was live
  assert.deepEqual(delivered, ['c1:9']);
  assert.equal(syncs.length, 1);
});

test('an ack ahead of the cursor is held without a sync; the live frames before it release it', () => {
  const { tracker, syncs, delivered } = setup();
  tracker.track(C1, 5, false);
  tracker.live(msg(C1, 7), true);
  assert.deepEqual(syncs, []);
  tracker.live(msg(C1, 6));
  tracker.live(msg(C1, 7)); // the live copy of the acked entry: a duplicate now
  assert.deepEqual(delivered, ['c1:6', 'c1:7']);
});

test('acks never start tracking a conversation', () => {
  const { tracker, delivered } = setup();
  tracker.live(msg(C1, 7), true);
  assert.equal(tracker.get(C1), undefined);
  assert.deepEqual(delivered, []);
});

test('hello catch-up: pages, done, synced; live entries during it are held, not synced', () => {
  const { tracker, syncs, delivered, synced } = setup();
  tracker.track(C1, 5, false);
  tracker.connected([C1]);
  tracker.live(msg(C1, 9));
  assert.deepEqual(syncs, []);
  tracker.page(C1, [msg(C1, 6), msg(C1, 7), msg(C1, 8)]);
  tracker.done(C1, 8, 'hello');
  assert.deepEqual(delivered, ['c1:6', 'c1:7', 'c1:8', 'c1:9']);
  assert.deepEqual(synced, ['c1:9']);
});

test('a hello catch-up that never finishes is replaced by a sync', () => {
  const { tracker, syncs } = setup();
  tracker.track(C1, 5, false);
  tracker.connected([C1]);
  tracker.expireHello();
  assert.deepEqual(syncs, [{ conversationId: C1, after: 5 }]);
});

test('tracking while disconnected catches up after the handshake unless hello covered it', () => {
  const { tracker, syncs, state } = setup(false);
  tracker.track(C1, 3, false);
  state.connected = true;
  tracker.track(C2, 4, true); // connected: synced now
  assert.deepEqual(syncs, [{ conversationId: C2, after: 4 }]);
  state.connected = false;
  tracker.disconnected();
  tracker.track(C1, 1, false); // only moves forward
  assert.equal(tracker.get(C1), 3);
  state.connected = true;
  tracker.connected([C2]);
  assert.deepEqual(syncs, [{ conversationId: C2, after: 4 }, { conversationId: C1, after: 3 }]);
});

test('a joined conversation accepts its first live entries whatever their seq', () => {
  const { tracker, delivered } = setup();
  tracker.join(C1, 5); // the added frame saw lastSeq 5, but entries 4 and 5 were still on their way
  assert.deepEqual(tracker.helloCursors(), { [C1]: 5 });
  tracker.live(msg(C1, 4));
  tracker.live(msg(C1, 5));
  tracker.join(C1, 9); // already known: no effect
  tracker.live(msg(C1, 6));
  assert.deepEqual(delivered, ['c1:4', 'c1:5', 'c1:6']);
});

test('hello keeps the most recently active conversations first', () => {
  const { tracker } = setup();
  tracker.track(C1, 1, false);
  tracker.track(C2, 1, false);
  tracker.live(msg(C1, 2));
  assert.deepEqual(Object.keys(tracker.helloCursors()), [C2, C1]);
  assert.deepEqual(tracker.snapshot(), { [C1]: 2, [C2]: 1 });
});

test('a full hold buffer forces a re-sync after the current one', () => {
  const { tracker, syncs, delivered } = setup();
  tracker.track(C1, 0, false);
  for (let s = 2; s <= MAX_HELD + 10; s++) tracker.live(msg(C1, s));
  assert.equal(syncs.length, 1);
  tracker.page(C1, [msg(C1, 1)]);
  tracker.done(C1, 1, 'gap');
  assert.equal(delivered.length, MAX_HELD + 1);
  assert.deepEqual(syncs.at(-1), { conversationId: C1, after: MAX_HELD + 1 });
});

test('disconnect forgets held entries and syncs in flight', () => {
  const { tracker, syncs } = setup();
  tracker.track(C1, 5, false);
  tracker.live(msg(C1, 8));
  tracker.disconnected();
  tracker.connected([]);
  tracker.live(msg(C1, 9));
  assert.deepEqual(syncs, [{ conversationId: C1, after: 5 }, { conversationId: C1, after: 5 }]);
});

test('a failed sync with the conversation gone untracks it', () => {
  const { tracker } = setup();
  tracker.track(C1, 5, false);
  tracker.live(msg(C1, 8));
  tracker.syncFailed(C1, true);
  assert.equal(tracker.get(C1), undefined);
});
