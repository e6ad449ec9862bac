// Who the client is, for the limits kept per address: the peer address, or, behind the proxies
// named in TRUST_PROXY, the client they name in X-Forwarded-For (the same rule fastify applies to
// REST requests, used here for WebSocket upgrades, which never reach fastify).
import type { IncomingMessage } from 'node:http';
import proxyAddr from '@fastify/proxy-addr';

export type AddressOf = (req: IncomingMessage) => string;

export function clientAddress(trustProxy: string | undefined): AddressOf {
  if (!trustProxy) return (req) => req.socket.remoteAddress ?? 'unknown';
  const trust = proxyAddr.compile(trustProxy.split(',').map((s) => s.trim()).filter(Boolean));
  return (req) => proxyAddr(req, trust);
}
