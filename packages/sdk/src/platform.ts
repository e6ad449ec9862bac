// Host capabilities (timers, WebSocket, fetch, randomness) looked up on globalThis, so one
// build runs in browsers and Node without DOM or Node type definitions or imports.
import type { FetchLike, NetworkLike, WebSocketConstructor } from './types.js';

/** Opaque handle of a pending timer. */
export type TimerHandle = { readonly __timer: unique symbol };

interface Host {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  WebSocket?: WebSocketConstructor;
  fetch?: FetchLike;
  crypto?: { randomUUID?(): string; getRandomValues?(array: Uint8Array): Uint8Array };
  navigator?: { onLine?: unknown };
  addEventListener?: (type: string, listener: () => void) => void;
  removeEventListener?: (type: string, listener: () => void) => void;
}

const host = globalThis as unknown as Host;

/** Runs `fn` once after `ms` milliseconds. */
export function setTimer(fn: () => void, ms: number): TimerHandle {
  return host.setTimeout(fn, Math.max(0, ms));
}

/** Cancels a timer; a no-op for `undefined` or a timer that already fired. */
export function clearTimer(handle: TimerHandle | undefined): void {
  if (handle !== undefined) host.clearTimeout(handle);
}

/** The host's WebSocket constructor (browsers, Node >= 22), if any. */
export function hostWebSocket(): WebSocketConstructor | undefined {
  return typeof host.WebSocket === 'function' ? host.WebSocket : undefined;
}

/** The browser's network status (`navigator.onLine` and the window's online/offline events); undefined elsewhere. */
export function hostNetwork(): NetworkLike | undefined {
  const add = host.addEventListener;
  const remove = host.removeEventListener;
  if (typeof add !== 'function' || typeof remove !== 'function' || typeof host.navigator?.onLine !== 'boolean') return undefined;
  return {
    online: () => host.navigator?.onLine !== false,
    subscribe(listener) {
      const on = () => listener(true);
      const off = () => listener(false);
      add.call(globalThis, 'online', on);
      add.call(globalThis, 'offline', off);
      return () => {
        remove.call(globalThis, 'online', on);
        remove.call(globalThis, 'offline', off);
      };
    },
  };
}

/** The host's fetch, bound to globalThis (browsers throw "Illegal invocation" otherwise). */
export function hostFetch(): FetchLike | undefined {
  const f = host.fetch;
  return typeof f === 'function' ? f.bind(globalThis) : undefined;
}

/**
 * A random UUIDv4, used as the default client id of sends. `crypto.randomUUID` is missing in
 * insecure browser contexts (plain http), so fall back to `getRandomValues`, then Math.random.
 */
export function randomId(): string {
  const c = host.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
