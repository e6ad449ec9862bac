// The Host check. A DNS-rebinding page (evil.example first resolving to the attacker, then to
// 127.0.0.1) is same-origin with the node in the browser's eyes, so the Origin check lets it
// through; but its requests name `Host: evil.example`. A node answers only requests that name
// one of its own hosts: IP addresses (a page reaching the node by IP has that IP as its origin,
// which rebinding cannot produce), `localhost` and `*.localhost`, the hosts of ALLOWED_ORIGINS,
// and those listed in ALLOWED_HOSTS (`*`: any). Requests without a Host header (HTTP/1.0 health
// checks) pass: browsers always send one.
import { isIP } from 'node:net';
import { normalizeOrigin } from './origins.js';

export interface HostPolicy {
  /** Whether a request naming this Host header (with or without a port) may be served. */
  allows(host: string | undefined): boolean;
}

/** The host name of a Host header value, lower-cased, without port or IPv6 brackets; undefined if malformed. */
export function hostName(header: string): string | undefined {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(1, end) : undefined;
  }
  const colon = h.indexOf(':');
  const name = colon >= 0 ? h.slice(0, colon) : h;
  return name === '' ? undefined : name;
}

export function hostPolicy(allowedHosts: string | undefined, allowedOrigins: string | undefined): HostPolicy {
  const listed = (allowedHosts ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const any = listed.includes('*');
  const names = new Set(listed);
  for (const o of (allowedOrigins ?? '').split(',').map((s) => s.trim()).filter((s) => s && s !== '*')) {
    const n = normalizeOrigin(o);
    if (n) names.add(new URL(n).hostname.replace(/^\[|\]$/g, ''));
  }
  return {
    allows(host) {
      if (host === undefined || any) return true;
      const name = hostName(host);
      if (name === undefined) return false;
      return isIP(name) !== 0 || name === 'localhost' || name.endsWith('.localhost') || names.has(name);
    },
  };
}
