// The data directory holds every message and password hash (confab.db and its -wal and -shm)
// and the token secret: it is the node's alone, whatever the umask. The directory is 0700 and
// every file in it 0600; one found looser (made by an earlier version, or by hand) is tightened
// at start, with a warning. SQLite creates its -wal and -shm files with the database file's mode,
// so the database file is created 0600 before SQLite opens it.
import { chmodSync, closeSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/** Creates `dir` (0700) or tightens it and the files in it; returns it. */
export function privateDir(dir: string, log: Pick<Logger, 'warn'>): string {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  const mode = statSync(dir).mode & 0o777;
  if (mode & 0o077) {
    log.warn({ dir, mode: mode.toString(8) }, 'the data directory was readable by other users: made it 0700');
    chmodSync(dir, DIR_MODE);
  }
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    if (st.isFile() && st.mode & 0o077) {
      log.warn({ file: path, mode: (st.mode & 0o777).toString(8) }, 'a data file was readable by other users: made it 0600');
      chmodSync(path, FILE_MODE);
    }
  }
  return dir;
}

/** Creates `path` empty with mode 0600 unless it exists (an empty file is an empty SQLite database). */
export function privateFile(path: string): string {
  closeSync(openSync(path, 'a', FILE_MODE));
  return path;
}
