// Presence: what this device announces (`presence.set`), whom it watches (`presence.watch`)
// and the last known state of each watched user. The server keeps neither across a
// reconnect, so both are re-sent after every `welcome`, and the fresh state is emitted again.
import type { ClientFrame, ClientFrameOf, ServerFrame, ServerFrameOf } from '@confab/protocol';
import { ConfabError } from './errors.js';
import type { DevicePresence, Presence, PresenceResult } from './types.js';

/** What presence needs from the client. */
export interface PresenceHost {
  /** Sends a frame on the open connection; false when there is none. */
  transmit(frame: ClientFrameOf<'presence.set'>): boolean;
  /** A request answered by a frame with the same id (waits through reconnects). */
  request<T>(build: (id: string) => ClientFrame, accept: (frame: ServerFrame) => T): Promise<T>;
  /** Emits a `presence` event. */
  emit(presence: Presence): void;
  /** Reports an error not tied to a caller (a failed re-watch after a reconnect). */
  error(error: ConfabError): void;
}

/** The device's announced presence, the watch list, and the watched users' state. */
export class PresenceBook {
  private status: DevicePresence | undefined;
  private watched = new Set<string>();
  private readonly known = new Map<string, Presence>();
  /** `presence.watch` requests not answered yet (they are resent by the request machinery). */
  private watching = 0;

  /** @param host the client */
  constructor(private readonly host: PresenceHost) {}

  /** Announces this device's presence now (if connected) and after every reconnect. */
  set(status: DevicePresence): void {
    this.status = status;
    this.host.transmit({ type: 'presence.set', status });
  }

  /** Replaces the watch list; resolves with the watched users' current state. */
  watch(userIds: readonly string[]): Promise<PresenceResult> {
    this.watched = new Set(userIds);
    for (const id of [...this.known.keys()]) if (!this.watched.has(id)) this.known.delete(id);
    return this.send([...this.watched]);
  }

  /** After `welcome`: announce the presence and watch again (unless a watch is on its way anyway). */
  connected(): void {
    if (this.status !== undefined) this.host.transmit({ type: 'presence.set', status: this.status });
    if (this.watching > 0 || this.watched.size === 0) return;
    this.send([...this.watched]).catch((err: unknown) => {
      if (err instanceof ConfabError && err.code === 'closed') return;
      this.host.error(err instanceof ConfabError ? err : new ConfabError('bad_response', String(err)));
    });
  }

  /** A `presence` frame (an answer to a watch or a batch of changes): record and emit each entry. */
  frame(frame: ServerFrameOf<'presence'>): void {
    for (const id of frame.denied ?? []) this.known.delete(id);
    const fresh = frame.users.filter((p) => this.watched.has(p.userId));
    for (const p of fresh) this.known.set(p.userId, p);
    for (const p of fresh) this.host.emit(p);
  }

  /** The last known presence of a watched user. */
  of(userId: string): Presence | undefined {
    return this.known.get(userId);
  }

  /** The users being watched. */
  list(): string[] {
    return [...this.watched];
  }

  private send(userIds: string[]): Promise<PresenceResult> {
    this.watching++;
    const done = () => { this.watching--; };
    const p = this.host.request(
      (id) => ({ type: 'presence.watch', id, userIds }),
      (f) => {
        if (f.type !== 'presence') throw new ConfabError('bad_response', `expected presence, got ${f.type}`);
        return { users: f.users, denied: f.denied ?? [] };
      },
    );
    p.then(done, done);
    return p;
  }
}
