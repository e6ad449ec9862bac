// Sessions saved by `confab login` / `register`, per server URL, in the user's config
// directory (CONFAB_CONFIG_DIR, else $XDG_CONFIG_HOME/confab or ~/.config/confab), mode 0600.
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Session } from '@confab/protocol';

export interface Saved {
  session: Session;
  /** When the access token expires (ms since epoch). */
  expiresAt: number;
}

function dir(): string {
  return process.env.CONFAB_CONFIG_DIR ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'confab');
}

const file = () => join(dir(), 'credentials.json');

function readAll(): Record<string, Saved> {
  try {
    return JSON.parse(readFileSync(file(), 'utf8')) as Record<string, Saved>;
  } catch {
    return {};
  }
}

export function loadSaved(server: string): Saved | undefined {
  return readAll()[server];
}

export function save(server: string, session: Session | undefined): void {
  const all = readAll();
  if (session) all[server] = { session, expiresAt: Date.now() + session.expiresIn * 1000 };
  else delete all[server];
  mkdirSync(dir(), { recursive: true, mode: 0o700 });
  const tmp = `${file()}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(all, null, 2), { mode: 0o600 });
  renameSync(tmp, file());
}

const LOCK_STALE_MS = 30_000;

/**
 * Runs `fn` while holding the credentials lock (a directory: mkdir is atomic), so that
 * several `confab` processes never refresh the same single-use refresh token at once.
 */
export async function withCredentialsLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(dir(), { recursive: true, mode: 0o700 });
  const lock = join(dir(), 'refresh.lock');
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) rmSync(lock, { recursive: true, force: true });
      } catch { /* gone meanwhile */ }
      if (Date.now() > deadline) throw new Error(`could not take ${lock} (another confab command is refreshing the session)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
