// Turning WebSocket payloads into typed server frames, and base URLs into socket URLs.
// Frames are validated against the protocol schemas: a malformed frame becomes an error
// event instead of corrupting cursors; a frame type this SDK does not know is skipped, so a
// newer server can add frames without breaking older clients.
import { ServerFrame, issuesOf } from '@confab/protocol';
import { ConfabError } from './errors.js';

const KNOWN_TYPES = new Set<string>(ServerFrame.options.map((o) => o.shape.type.value));

/** Result of decoding one payload. */
export type Decoded =
  | { kind: 'frame'; frame: ServerFrame }
  | { kind: 'invalid'; error: ConfabError }
  | { kind: 'skip' };

/** Parses and validates one WebSocket payload from the server. */
export function decodeServerFrame(data: unknown): Decoded {
  if (typeof data !== 'string') {
    return { kind: 'invalid', error: new ConfabError('bad_response', 'binary frame from server (protocol v1 is JSON text)') };
  }
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { kind: 'invalid', error: new ConfabError('bad_response', 'server frame is not valid JSON') };
  }
  const type = typeof json === 'object' && json !== null ? (json as { type?: unknown }).type : undefined;
  if (typeof type !== 'string') return { kind: 'invalid', error: new ConfabError('bad_response', 'server frame has no type') };
  if (!KNOWN_TYPES.has(type)) return { kind: 'skip' };
  const parsed = ServerFrame.safeParse(json);
  if (!parsed.success) {
    return { kind: 'invalid', error: new ConfabError('bad_response', `malformed ${type} frame from server`, { details: issuesOf(parsed.error) }) };
  }
  return { kind: 'frame', frame: parsed.data };
}

/**
 * The WebSocket URL of a server: `http(s)://host[:port][/prefix]` becomes
 * `ws(s)://host[:port][/prefix]/v1/ws`; a `ws(s)://` URL is kept (with `/v1/ws` added if missing).
 */
export function toWebSocketUrl(url: string): string {
  let u = url.trim().replace(/\/+$/, '');
  if (/^https?:\/\//i.test(u)) u = u.replace(/^http/i, 'ws');
  else if (!/^wss?:\/\//i.test(u)) throw new TypeError(`expected an http(s) or ws(s) URL, got ${JSON.stringify(url)}`);
  return u.endsWith('/v1/ws') ? u : `${u}/v1/ws`;
}
