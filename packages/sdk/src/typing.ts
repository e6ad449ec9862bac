// Typing indicators, both ways. Outgoing: throttled so that an app may call `typing()` on
// every keystroke (one frame per half `typingIntervalMs` at most; `false` always goes out).
// Incoming: who is typing where, each entry expiring after the `expiresInMs` the server gave,
// and ended early by `typing: false` or by a message from that user.
import type { ClientFrameOf, Limits, Message, ServerFrameOf } from '@confab/protocol';
import { clearTimer, setTimer } from './platform.js';
import type { TimerHandle } from './platform.js';
import type { TypingChange, TypingUser } from './types.js';

/** What typing needs from the client. */
export interface TypingHost {
  /** Sends a frame on the open connection; false when there is none. */
  transmit(frame: ClientFrameOf<'typing'>): boolean;
  /** Emits a `typing` event. */
  emit(change: TypingChange): void;
  /** The limits of the current `welcome`. */
  limits(): Limits;
  /** The client's clock. */
  now(): number;
}

interface Typist {
  username: string;
  timer: TimerHandle;
}

/** Typing state of one client. */
export class TypingBook {
  /** conversation -> user -> indicator. */
  private readonly typists = new Map<string, Map<string, Typist>>();
  /** conversation -> when `typing: true` was last sent. */
  private readonly lastSent = new Map<string, number>();

  /** @param host the client */
  constructor(private readonly host: TypingHost) {}

  /**
   * Signals that the user is typing (or stopped) in a conversation. While typing, at most one
   * frame per `typingIntervalMs / 2`; `typing: false` is always sent. True when a frame went out.
   */
  send(conversationId: string, typing: boolean): boolean {
    if (!typing) {
      this.lastSent.delete(conversationId);
      return this.host.transmit({ type: 'typing', conversationId, typing: false });
    }
    const now = this.host.now();
    const last = this.lastSent.get(conversationId);
    if (last !== undefined && now - last < this.host.limits().typingIntervalMs / 2) return false;
    if (!this.host.transmit({ type: 'typing', conversationId, typing: true })) return false;
    this.lastSent.set(conversationId, now);
    return true;
  }

  /** The user sent a message to the conversation: that ends their typing (receivers clear it on the message). */
  sent(conversationId: string): void {
    this.lastSent.delete(conversationId);
  }

  /** A `typing` frame from the server. */
  frame(frame: ServerFrameOf<'typing'>): void {
    const { conversationId, userId, username } = frame;
    if (!frame.typing) { this.stop(conversationId, userId); return; }
    let conv = this.typists.get(conversationId);
    if (!conv) this.typists.set(conversationId, (conv = new Map<string, Typist>()));
    const existing = conv.get(userId);
    clearTimer(existing?.timer);
    conv.set(userId, { username, timer: setTimer(() => this.stop(conversationId, userId), frame.expiresInMs) });
    if (!existing) this.host.emit({ conversationId, userId, username, typing: true });
  }

  /** A log entry was delivered: a new message from a typing user ends their indicator. */
  message(message: Message): void {
    if (message.kind === 'message') this.stop(message.conversationId, message.sender);
  }

  /** Who is typing in a conversation now, in the order they started. */
  users(conversationId: string): TypingUser[] {
    const conv = this.typists.get(conversationId);
    return conv ? [...conv].map(([userId, t]) => ({ userId, username: t.username })) : [];
  }

  /** Forgets a conversation (the user left it) without emitting anything. */
  forget(conversationId: string): void {
    for (const t of this.typists.get(conversationId)?.values() ?? []) clearTimer(t.timer);
    this.typists.delete(conversationId);
    this.lastSent.delete(conversationId);
  }

  /** Drops every indicator and timer (the client is closed). */
  clear(): void {
    for (const id of [...this.typists.keys()]) this.forget(id);
    this.lastSent.clear();
  }

  private stop(conversationId: string, userId: string): void {
    const conv = this.typists.get(conversationId);
    const t = conv?.get(userId);
    if (!conv || !t) return;
    clearTimer(t.timer);
    conv.delete(userId);
    if (conv.size === 0) this.typists.delete(conversationId);
    this.host.emit({ conversationId, userId, username: t.username, typing: false });
  }
}
