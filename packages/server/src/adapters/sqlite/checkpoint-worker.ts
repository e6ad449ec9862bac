// The checkpoint thread (architecture.md, "Checkpoints"): its own connection to the database,
// a PASSIVE checkpoint 100 ms after the end of the last one, a report to the node after each pass
// that copied pages. Started and stopped by checkpointer.ts.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { passiveCheckpoint, type CheckpointReport } from './checkpoint-pass.js';

export interface CheckpointWorkerData {
  path: string;
  intervalMs: number;
}

const port = parentPort;
if (!port) throw new Error('checkpoint-worker runs as a worker thread');
const { path, intervalMs } = workerData as CheckpointWorkerData;
const db = new Database(path);
db.pragma('synchronous = FULL');
db.pragma('wal_autocheckpoint = 0');

let last: CheckpointReport | undefined;
function pass(): void {
  const r = passiveCheckpoint(db, 'worker');
  if (typeof r === 'string') return;
  // The same counts as last time: nothing was committed since.
  if (last && r.walFrames === last.walFrames && r.copiedFrames === last.copiedFrames) return;
  last = r;
  port!.postMessage(r);
}

// A pass, then a full interval, then the next: a slow pass never makes the next one follow at once.
let timer: NodeJS.Timeout | undefined;
const schedule = () => { timer = setTimeout(() => { pass(); schedule(); }, intervalMs); };
schedule();
port.on('message', (m: { type: 'stop' }) => {
  if (m.type !== 'stop' || !timer) return;
  clearTimeout(timer);
  timer = undefined;
  pass();
  db.close();
  port.close();
});
