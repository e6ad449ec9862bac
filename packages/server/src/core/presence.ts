// Presence: online while any device is connected and in use, away when every connected
// device is in the background, offline when none is connected. Only watchers hear about
// changes (users who share a conversation and asked), and each watcher batches them, so a
// reconnect wave costs each watcher a frame per interval, not a frame per user.
//
// Devices are known to the node that holds their connections (in memory). Each node writes its
// aggregate per user to the presence directory and tells the other nodes it changed; a node
// re-reads the directory's cluster-wide answer for the users its connections watch, so watchers
// see a user's devices on every node. With one node, the directory is this process's memory.
import type { PresenceEntry, UserId } from '@confab/protocol';
import type { PresenceDirectory, PresenceStatus } from '../ports/presence.js';
import type { Store } from '../ports/store.js';
import { MemoryPresenceDirectory } from '../adapters/memory/memory-presence.js';

export type DeviceStatus = 'online' | 'away';

/** Users going offline within this window share one last-seen write. */
const LAST_SEEN_BATCH_MS = 200;

/** A connection that watches users; it batches what it is told and sends it when it likes. */
export interface PresenceWatcher {
  presenceChanged(userId: UserId): void;
}

export interface PresenceCluster {
  /** Where each node's aggregate per user is kept. Default: this process's memory. */
  directory?: PresenceDirectory;
  /** Tells the other nodes that this user's presence here (or last-seen privacy) changed. */
  announce?: (userId: UserId, hideLastSeen?: boolean) => void;
  /**
   * Re-reads the state of every watched user this often (a crashed node's users go offline, a
   * lost announcement is made up for). Default: never (one node needs no resync).
   */
  resyncMs?: number;
}

interface UserPresence {
  devices: Map<string, DeviceStatus>;
  /** The cluster-wide state as last read from the directory (kept fresh while watched here). */
  global: PresenceStatus | undefined;
  /** Bumped by every directory read of this user, so an older batch read never overwrites a newer one. */
  version: number;
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
  /** Directory reads in progress, per user: one at a time, re-run if asked again meanwhile. */
  readonly #reads = new Map<UserId, { again: boolean; done: Promise<void> }>();
  readonly #directory: PresenceDirectory;
  readonly #announce: (userId: UserId, hideLastSeen?: boolean) => void;
  #resyncTimer: NodeJS.Timeout | undefined;
  #resyncing = false;

  constructor(
    private readonly store: Store,
    private readonly onError: (err: unknown) => void,
    private readonly now: () => number = Date.now,
    cluster: PresenceCluster = {},
  ) {
    this.#directory = cluster.directory ?? new MemoryPresenceDirectory();
    this.#announce = cluster.announce ?? (() => undefined);
    if (cluster.resyncMs !== undefined) {
      this.#resyncTimer = setInterval(() => void this.#resync(), cluster.resyncMs);
      this.#resyncTimer.unref();
    }
  }

  connect(userId: UserId, connectionId: string): void {
    const u = this.#user(userId);
    const before = statusOf(u);
    u.devices.set(connectionId, 'online');
    this.#localChanged(userId, u, before);
  }

  setStatus(userId: UserId, connectionId: string, status: DeviceStatus): void {
    const u = this.#users.get(userId);
    if (!u?.devices.has(connectionId)) return;
    const before = statusOf(u);
    u.devices.set(connectionId, status);
    this.#localChanged(userId, u, before);
  }

  disconnect(userId: UserId, connectionId: string): void {
    const u = this.#users.get(userId);
    if (!u) return;
    const before = statusOf(u);
    if (!u.devices.delete(connectionId)) return;
    if (u.devices.size === 0) {
      u.lastSeen = this.now();
      this.#queueLastSeen(userId);
    }
    // Shutdown: the directory drops this node's entries when it closes, and nobody is told.
    if (!this.#stopping) this.#localChanged(userId, u, before);
    // Kept in memory until its last seen is written (then forgotten unless watched).
  }

  /** Another node says this user's presence there changed: re-read it if anyone here watches. */
  remoteChanged(userId: UserId, hideLastSeen?: boolean): void {
    const u = this.#users.get(userId);
    if (u && hideLastSeen !== undefined && u.hideLastSeen !== hideLastSeen) {
      u.hideLastSeen = hideLastSeen;
      this.#notify(userId);
    }
    if (this.#watchers.has(userId)) void this.#read(userId);
  }

  /**
   * Shutdown: nobody is told about the users this node is about to disconnect (their
   * watchers are being disconnected too, and will ask again wherever they reconnect); their
   * last seen is written in one batch. Call before closing the connections; await `flush()` after.
   */
  stop(): void {
    this.#stopping = true;
    clearInterval(this.#resyncTimer);
    for (const w of [...this.#watching.keys()]) this.unwatch(w);
  }

  /** Writes pending last-seen times now. */
  async flush(): Promise<void> {
    clearTimeout(this.#lastSeenTimer);
    await this.#writeLastSeen();
  }

  #queueLastSeen(userId: UserId): void {
    this.#lastSeenOut.add(userId);
    if (!this.#lastSeenTimer) {
      this.#lastSeenTimer = setTimeout(() => void this.#writeLastSeen(), LAST_SEEN_BATCH_MS);
      this.#lastSeenTimer.unref();
    }
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
    this.#announce(userId, hide);
    const u = this.#users.get(userId);
    if (!u) return;
    u.hideLastSeen = hide;
    this.#notify(userId);
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
    await this.#read(userId);
    return this.entryNow(userId);
  }

  /** Like `entry`, from what is in memory (for batched updates of users already loaded). */
  entryNow(userId: UserId): PresenceEntry {
    const u = this.#users.get(userId);
    const status = u ? (u.global ?? statusOf(u)) : 'offline';
    return { userId, status, lastSeen: status !== 'offline' || !u || u.hideLastSeen ? null : u.lastSeen };
  }

  #user(userId: UserId): UserPresence {
    let u = this.#users.get(userId);
    if (!u) this.#users.set(userId, (u = { devices: new Map(), global: undefined, version: 0, lastSeen: null, hideLastSeen: false, loaded: false }));
    return u;
  }

  /** This node's devices of the user changed: if their aggregate did, publish it and re-read. */
  #localChanged(userId: UserId, u: UserPresence, before: PresenceStatus): void {
    const after = statusOf(u);
    if (after === before) return;
    // Other nodes are told once the directory has it, so their re-read sees it.
    this.#directory.setLocal(userId, after).then(() => this.#announce(userId), this.onError);
    if (this.#watchers.has(userId)) void this.#read(userId);
  }

  /** Reads the user's cluster-wide state (one read at a time per user; asked again meanwhile, it re-runs). */
  #read(userId: UserId): Promise<void> {
    const running = this.#reads.get(userId);
    if (running) {
      running.again = true;
      return running.done;
    }
    const state = { again: true, done: Promise.resolve() };
    state.done = (async () => {
      try {
        while (state.again) {
          state.again = false;
          const u = this.#user(userId);
          u.version++;
          let status: PresenceStatus;
          try {
            status = (await this.#directory.get([userId])).get(userId) ?? 'offline';
          } catch (err) {
            this.onError(err);
            status = u.global ?? statusOf(u); // keep what was known rather than flap
          }
          this.#apply(userId, u, status, false);
        }
      } finally {
        this.#reads.delete(userId);
      }
    })();
    this.#reads.set(userId, state);
    return state.done;
  }

  /** Every watched user, re-read in batches: catches crashed nodes and lost announcements. */
  async #resync(): Promise<void> {
    if (this.#resyncing || this.#stopping) return;
    this.#resyncing = true;
    try {
      const ids = [...this.#watchers.keys()];
      for (let i = 0; i < ids.length && !this.#stopping; i += 1000) {
        const chunk = ids.slice(i, i + 1000);
        const versions = chunk.map((id) => this.#users.get(id)?.version);
        const found = await this.#directory.get(chunk);
        chunk.forEach((id, k) => {
          const u = this.#users.get(id);
          // A per-user read started since the batch did: its answer is newer.
          if (!u || u.version !== versions[k] || this.#reads.has(id)) return;
          this.#apply(id, u, found.get(id) ?? 'offline', true);
        });
      }
    } catch (err) {
      this.onError(err);
    } finally {
      this.#resyncing = false;
    }
  }

  #apply(userId: UserId, u: UserPresence, status: PresenceStatus, fromResync: boolean): void {
    const before = u.global;
    u.global = status;
    if (before === status) return;
    if (status === 'offline' && before !== undefined && !this.#lastSeenOut.has(userId)) {
      // Gone from another node (this node's own disconnects set it already). When only the
      // resync saw it, the node that held the devices may be dead: record the last seen here.
      u.lastSeen = this.now();
      if (fromResync) this.#queueLastSeen(userId);
    }
    if (before !== undefined) this.#notify(userId);
  }

  #notify(userId: UserId): void {
    for (const w of this.#watchers.get(userId) ?? []) w.presenceChanged(userId);
  }
}

function statusOf(u: UserPresence): PresenceStatus {
  if (u.devices.size === 0) return 'offline';
  for (const s of u.devices.values()) if (s === 'online') return 'online';
  return 'away';
}
