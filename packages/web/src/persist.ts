// What survives a reload, in the browser's storage.
//
// Every tab is its own device: it signs in (or up) on its own and keeps its session, under its
// device id, in localStorage (the refresh token keeps it signed in across reloads), while
// sessionStorage (one per tab, kept across reloads) remembers which device the tab is. A new tab
// resumes the device signed in last, unless another open tab holds it (a Web Lock per device):
// then it shows the sign-in screen. So two windows of one browser can be two users, and no two
// tabs ever share a refresh token (refresh tokens are single use; sharing one would log out).
//
// The sends not yet acknowledged are kept per device too and sent again after a reload with the
// same client ids, so the server's deduplication keeps each one message. History, cursors and
// receipts are not kept: they are fetched again, which is cheap and never stale.
import type { Session } from '@confab/sdk';

const SESSION = 'confab.session.';
const OUTBOX = 'confab.outbox.';
const LAST_DEVICE = 'confab.lastDevice';
const TAB_DEVICE = 'confab.device';
const LOCK = 'confab.device.';

/** A send queued in the outbox. */
export interface QueuedSend {
  clientId: string;
  conversationId: string;
  text: string;
  createdAt: number;
}

function read(store: Storage, key: string): unknown {
  try {
    const raw = store.getItem(key);
    return raw === null ? undefined : JSON.parse(raw);
  } catch {
    return undefined;
  }
}

function write(store: Storage, key: string, value: unknown): void {
  try {
    if (value === undefined) store.removeItem(key);
    else store.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled (private mode): the app still works, it just forgets on reload.
  }
}

/** The device this tab was signed in as (kept across reloads of the tab). */
export function tabDevice(): string | undefined {
  const d = read(sessionStorage, TAB_DEVICE);
  return typeof d === 'string' ? d : undefined;
}

/** The device signed in last in this browser: what a new tab resumes. */
export function lastDevice(): string | undefined {
  const d = read(localStorage, LAST_DEVICE);
  return typeof d === 'string' ? d : undefined;
}

/** A saved session, its `expiresIn` counted from now. */
export function loadSession(deviceId: string): Session | undefined {
  const saved = read(localStorage, SESSION + deviceId) as { session?: Partial<Session>; savedAt?: number } | undefined;
  const s = saved?.session;
  if (!s || typeof s.refreshToken !== 'string' || typeof s.accessToken !== 'string' || !s.user || typeof s.expiresIn !== 'number') return undefined;
  const elapsed = Math.max(0, Math.floor((Date.now() - (saved.savedAt ?? 0)) / 1000));
  return { ...(s as Session), expiresIn: Math.max(0, s.expiresIn - elapsed) };
}

/** Saves a session (after sign-in or a refresh) as this tab's device and the last one signed in. */
export function saveSession(session: Session): void {
  write(localStorage, SESSION + session.deviceId, { session, savedAt: Date.now() });
  write(localStorage, LAST_DEVICE, session.deviceId);
  write(sessionStorage, TAB_DEVICE, session.deviceId);
}

/** Forgets a device: its session, its outbox, and this tab's claim on it. */
export function forgetSession(deviceId: string): void {
  write(localStorage, SESSION + deviceId, undefined);
  write(localStorage, OUTBOX + deviceId, undefined);
  if (lastDevice() === deviceId) write(localStorage, LAST_DEVICE, undefined);
  if (tabDevice() === deviceId) write(sessionStorage, TAB_DEVICE, undefined);
}

let release: (() => void) | undefined;

/**
 * Makes this tab the only one using `deviceId`, for as long as it stays signed in. False when
 * another tab holds it (after waiting up to `waitMs`: on a reload, the old page may still be
 * letting go). Browsers without Web Locks (plain http on a non-local address) always get true.
 */
export function claimDevice(deviceId: string, waitMs: number): Promise<boolean> {
  releaseDevice();
  const locks = (navigator as Partial<Navigator>).locks;
  if (!locks) return Promise.resolve(true);
  return new Promise((resolve) => {
    const options: LockOptions = waitMs > 0 ? { signal: AbortSignal.timeout(waitMs) } : { ifAvailable: true };
    locks.request(LOCK + deviceId, options, (lock) => {
      if (!lock) { resolve(false); return undefined; }
      resolve(true);
      return new Promise<void>((r) => { release = r; });
    }).catch(() => resolve(false));
  });
}

/** Lets go of the device this tab held. */
export function releaseDevice(): void {
  release?.();
  release = undefined;
}

export function loadOutbox(deviceId: string): QueuedSend[] {
  const list = read(localStorage, OUTBOX + deviceId);
  if (!Array.isArray(list)) return [];
  return list.filter((q): q is QueuedSend => {
    const x = q as Partial<QueuedSend>;
    return typeof x.clientId === 'string' && typeof x.conversationId === 'string' && typeof x.text === 'string' && typeof x.createdAt === 'number';
  });
}

export function saveOutbox(deviceId: string, queued: QueuedSend[]): void {
  write(localStorage, OUTBOX + deviceId, queued.length > 0 ? queued.map(({ clientId, conversationId, text, createdAt }) => ({ clientId, conversationId, text, createdAt })) : undefined);
}
