// /metrics on a listener of its own (METRICS_PORT), so that the main port, the one a load
// balancer exposes, does not serve it at all. Same checks as the main port: the Host, and the
// bearer token when METRICS_TOKEN is set. Nothing else is served there.
import { createServer, type Server } from 'node:http';
import { AppError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { HostPolicy } from './hosts.js';
import { bearerIs } from './routes.js';

export function metricsServer(metrics: Metrics, o: { hosts?: HostPolicy | undefined; token?: string | undefined }): Server {
  const server = createServer((req, res) => {
    const fail = (status: number, e: AppError) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      res.end(JSON.stringify({ error: e.toBody() }));
    };
    if (o.hosts && !o.hosts.allows(req.headers.host)) return fail(421, new AppError('host_not_allowed', 'This node does not answer to that host name (ALLOWED_HOSTS).'));
    if ((req.url ?? '').split('?')[0] !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) return fail(404, new AppError('route_not_found', 'Only GET /metrics is served on this port.'));
    if (o.token !== undefined && !bearerIs(req.headers.authorization, o.token)) return fail(401, new AppError('not_authenticated', 'Send `Authorization: Bearer <METRICS_TOKEN>`.'));
    metrics.text().then((text) => {
      res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
    }, () => fail(500, new AppError('internal')));
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  return server;
}
