// One PASSIVE checkpoint pass, timed: shared by the checkpoint thread and the store's own pass
// (architecture.md, "Checkpoints").
import type Database from 'better-sqlite3';

/** A checkpoint pass that copied pages. */
export interface CheckpointReport {
  /** 'worker': a pass of the checkpoint thread; 'node': the short pass that lets the WAL start over. */
  thread: 'worker' | 'node';
  /** Frames in the WAL when the pass began, and how many of them are now in the database file. */
  walFrames: number;
  copiedFrames: number;
  seconds: number;
}

/**
 * Runs `PRAGMA wal_checkpoint(PASSIVE)`: it takes no lock that a reader or the writer waits for,
 * and waits for none (another connection's pass in progress makes it return `busy`). Throws only
 * on I/O errors.
 */
export function passiveCheckpoint(db: Database.Database, thread: CheckpointReport['thread']): CheckpointReport | 'busy' | 'empty' {
  const started = performance.now();
  const row = (db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[])[0];
  if (!row || row.busy !== 0) return 'busy';
  if (row.log <= 0) return 'empty';
  return { thread, walFrames: row.log, copiedFrames: row.checkpointed, seconds: (performance.now() - started) / 1000 };
}
