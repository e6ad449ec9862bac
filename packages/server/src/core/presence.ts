// Presence: online while any device is connected and in use, away when every connected
// device is in the background, offline when none is connected. Only watchers hear about
// changes (users who share a conversation and asked), and each watcher batches them, so a
// reconnect wave costs each watcher a frame per interval, not a frame per user.
//
// State lives in this process: it describes the devices connected to this node.
import type { PresenceEntry, UserId } from '@confab/protocol';
import type { Store } from '../ports/store.js';

export type DeviceStatus = 'online' | 'away';

/** Users going offline within this window share one last-seen write. */
const LAST_SEEN_BATCH_MS = 200;

/** A connection that watches users; it batches what it is told and sends it when it likes. */
export interface PresenceWatcher {
  presenceChanged(userId: UserId): void;
}

interface UserPresence {
  devices: Map<string, DeviceStatus>;
  /** When the user last went offline (ms); from the store until this node sees it. */
  lastSeen: number | null;
  hideLastSeen: boolean;
  loaded: boolean;
}

export class PresenceService {
  readonly #users = new Map<UserId, UserPresence>();
  readonly #watchers = new Map<UserId, Set<PresenceWatcher>>();
  readonly #watching = new Map<PresenceWatcher, Set<UserId>>();
  #stopping = false;
  /** Users who went offline, waiting for one batched last-seen write. */
  #lastSeenOut = new Set<UserId>();
  #lastSeenTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly onError: (err: unknown) => void,
    private readonly now: () => number = Date.now,
  ) {}

  connect(userId: UserId, connectionId: string): void {
    const u = this.#user(userId);
    const before = statusOf(u);
    u.devices.set(connectionId, 'online');
    if (statusOf(u) !== before) this.#changed(userId);
  }

  setStatus(userId: UserId, connectionId: string, status: DeviceStatus): void {
    const u = this.#users.get(userId);
    if (!u?.devices.has(connectionId)) return;
    const before = statusOf(u);
    u.devices.set(connectionId, status);
    if (statusOf(u) !== before) this.#changed(userId);
  }

  disconnect(userId: UserId, connectionId: string): void {
    const u = this.#users.get(userId);
    if (!u?.devices.delete(connectionId)) return;
    if (u.devices.size > 0) {
      if (statusOf(u) === 'away') this.#changed(userId);
      return;
    }
    u.lastSeen = this.now();
    this.#lastSeenOut.add(userId);
    if (!this.#lastSeenTimer) {
      this.#lastSeenTimer = setTimeout(() => void this.#writeLastSeen(), LAST_SEEN_BATCH_MS);
      this.#lastSeenTimer.unref();
    }
    if (!this.#stopping) this.#changed(userId);
    // Kept in memory until its last seen is written (then forgotten unless watched).
  }

  /**
   * Shutdown: nobody is told about the users this node is about to disconnect (their
   * watchers are being disconnected too, and will ask again wherever they reconnect); their
   * last seen is written in one batch. Call before closing the connections; await `flush()` after.
   */
  stop(): void {
    this.#stopping = true;
    for (const w of [...this.#watching.keys()]) this.unwatch(w);
  }

  /** Writes pending last-seen times now. */
  async flush(): Promise<void> {
    clearTimeout(this.#lastSeenTimer);
    await this.#writeLastSeen();
  }

  async #writeLastSeen(): Promise<void> {
    this.#lastSeenTimer = undefined;
    if (this.#lastSeenOut.size === 0) return;
    const users = [...this.#lastSeenOut];
    this.#lastSeenOut = new Set();
    await this.store.setLastSeen(users, this.now()).catch(this.onError);
    for (const id of users) {
      const u = this.#users.get(id);
      if (u && u.devices.size === 0 && !this.#watchers.has(id) && !this.#lastSeenOut.has(id)) this.#users.delete(id);
    }
  }

  /** The user changed their privacy setting. */
  setHideLastSeen(userId: UserId, hide: boolean): void {
    const u = this.#users.get(userId);
    if (!u) return;
    u.hideLastSeen = hide;
    this.#changed(userId);
  }

  /** Replaces what `watcher` watches; returns the users' current state. Authorization is the caller's. */
  async watch(watcher: PresenceWatcher, userIds: readonly UserId[]): Promise<PresenceEntry[]> {
    this.unwatch(watcher);
    const set = new Set(userIds);
    this.#watching.set(watcher, set);
    for (const id of set) {
      let w = this.#watchers.get(id);
      if (!w) this.#watchers.set(id, (w = new Set()));
      w.add(watcher);
    }
    return Promise.all([...set].map((id) => this.entry(id)));
  }

  unwatch(watcher: PresenceWatcher): void {
    const set = this.#watching.get(watcher);
    if (!set) return;
    this.#watching.delete(watcher);
    for (const id of set) {
      const w = this.#watchers.get(id);
      w?.delete(watcher);
      if (w?.size === 0) {
        this.#watchers.delete(id);
        if (this.#users.get(id)?.devices.size === 0 && !this.#lastSeenOut.has(id)) this.#users.delete(id);
      }
    }
  }

  /** The state of one user as others may see it. */
  async entry(userId: UserId): Promise<PresenceEntry> {
    const u = this.#user(userId);
    if (!u.loaded) {
      const rec = await this.store.userById(userId);
      if (!u.loaded) {
        u.loaded = true;
        u.lastSeen ??= rec?.lastSeenAt ?? null;
        u.hideLastSeen = rec?.hideLastSeen ?? false;
      }
    }
    return this.entryNow(userId);
  }

  /** Like `entry`, from what is in memory (for batched updates of users already loaded). */
  entryNow(userId: UserId): PresenceEntry {
    const u = this.#users.get(userId);
    const status = u ? statusOf(u) : 'offline';
    return { userId, status, lastSeen: status !== 'offline' || !u || u.hideLastSeen ? null : u.lastSeen };
  }

  #user(userId: UserId): UserPresence {
    let u = this.#users.get(userId);
    if (!u) this.#users.set(userId, (u = { devices: new Map(), lastSeen: null, hideLastSeen: false, loaded: false }));
    return u;
  }

  #changed(userId: UserId): void {
    for (const w of this.#watchers.get(userId) ?? []) w.presenceChanged(userId);
  }
}

function statusOf(u: UserPresence): 'online' | 'away' | 'offline' {
  if (u.devices.size === 0) return 'offline';
  for (const s of u.devices.values()) if (s === 'online') return 'online';
  return 'away';
}
