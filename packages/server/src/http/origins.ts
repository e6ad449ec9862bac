// The Origin allow-list shared by the WebSocket upgrade and the REST API (CORS). Browsers send
// `Origin` on cross-site requests and on every WebSocket handshake; other clients usually send
// none. Allowed: no Origin (non-browser clients), the same origin (the Origin's host:port is the
// request's Host), and the origins listed in ALLOWED_ORIGINS (`*`: every origin).
export interface OriginPolicy {
  /** Whether a request with this Origin header (undefined: none) to this Host may proceed. */
  allows(origin: string | undefined, host: string | undefined): boolean;
}

/** Lower-cased `scheme://host[:port]` of an origin, without a default port; undefined if it is not one. */
export function normalizeOrigin(origin: string): string | undefined {
  if (origin === 'null') return undefined;
  try {
    const u = new URL(origin);
    if (u.origin === 'null') return undefined;
    return u.origin.toLowerCase();
  } catch {
    return undefined;
  }
}

/** Parses ALLOWED_ORIGINS: empty, `*`, or a comma-separated list of origins. Throws on an entry that is not an origin. */
export function originPolicy(allowed: string): OriginPolicy {
  const entries = allowed.split(',').map((s) => s.trim()).filter(Boolean);
  const any = entries.includes('*');
  const list = new Set<string>();
  for (const e of entries) {
    if (e === '*') continue;
    const n = normalizeOrigin(e);
    if (!n || e.replace(/\/$/, '').toLowerCase() !== n) throw new Error(`"${e}" is not an origin (scheme://host[:port], no path)`);
    list.add(n);
  }
  return {
    allows(origin, host) {
      if (origin === undefined) return true;
      if (any) return true;
      const n = normalizeOrigin(origin);
      if (!n) return false;
      if (list.has(n)) return true;
      return host !== undefined && new URL(n).host === host.toLowerCase();
    },
  };
}
