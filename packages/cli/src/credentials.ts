// Sessions saved by `confab login` / `register`, per server URL, in the user's config
// directory (CONFAB_CONFIG_DIR, else $XDG_CONFIG_HOME/confab or ~/.config/confab), mode 0600.
import { mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
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
