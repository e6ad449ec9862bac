// The HTTP server: fastify with JSON errors in the protocol's shape, body limits and
// headers that keep browsers safe.
import type { Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { AppError, toAppError } from '../errors.js';
import type { HostPolicy } from './hosts.js';
import type { OriginPolicy } from './origins.js';
import { boundPipelining } from './pipelining.js';
import { registerRoutes, type HttpContext } from './routes.js';

const CORS_METHODS = 'GET, POST, PATCH, PUT, DELETE';
const CORS_HEADERS = 'Authorization, Content-Type';

/**
 * The web client's pages: scripts, styles, images and sockets from this origin only; no inline
 * script, no plugins, no framing.
 */
export const WEB_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'", "connect-src 'self' ws: wss:",
  "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

export interface HttpOptions {
  bodyLimit: number;
  log: Logger;
  origins?: OriginPolicy;
  hosts?: HostPolicy;
  trustProxy?: string | undefined;
  webRoot?: string;
  /** Requests read but not answered per connection, and bytes of answers waiting for one (0: no cap). */
  maxPipelinedRequests?: number;
  maxOutboundBytes?: number;
}

export function buildHttp(ctx: HttpContext, opts: HttpOptions): FastifyInstance {
  const logger: FastifyBaseLogger = opts.log;
  const webRoot = opts.webRoot && existsSync(join(opts.webRoot, 'index.html')) ? opts.webRoot : '';
  if (opts.webRoot && !webRoot) opts.log.warn({ webRoot: opts.webRoot }, 'WEB_ROOT has no index.html: no web client is served (build it with `npm run build -w @confab/web`)');
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: opts.bodyLimit,
    // Per-request lines would be noise at info level; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    // Deep nesting and __proto__ keys are refused by the JSON parser itself.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    // A connection that moves no byte either way for this long is closed: a client that stops
    // reading its answers does not keep them (nor the socket) for ever.
    connectionTimeout: 60_000,
    // Behind a load balancer: who the client is comes from X-Forwarded-For, only from these.
    ...(opts.trustProxy ? { trustProxy: opts.trustProxy } : {}),
    // Malformed URLs and the like get the protocol's error shape too.
    // Requests Node's HTTP parser refuses (headers over 16 KiB, malformed request lines) get
    // the protocol's error shape too, not the framework's.
    clientErrorHandler: clientError,
    frameworkErrors: (err, _req, reply) => {
      const r: FastifyReply = reply;
      void r.code(400).send({ error: new AppError('bad_request', err.message || 'Malformed request.').toBody() });
    },
  });

  app.addHook('onSend', async (req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    // Vite names every file under /assets/ by its content hash: it never changes, so browsers
    // may keep it. Everything else (index.html, the API) is fetched fresh each time.
    const immutable = req.method === 'GET' && reply.statusCode === 200 && req.url.startsWith('/assets/') && webRoot !== '';
    reply.header('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-store');
    // Never framed (clickjacking); HTTPS only once a browser has seen it over HTTPS.
    reply.header('x-frame-options', 'DENY');
    reply.header('strict-transport-security', 'max-age=31536000');
    // API answers are data, never a document: nothing may load or run from them. The web
    // client's page gets its own policy: this origin only, no inline script.
    if (isApi(req.url)) reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
    else if (String(reply.getHeader('content-type') ?? '').startsWith('text/html')) reply.header('content-security-policy', WEB_CSP);
  });

  // The Host check first: a DNS-rebinding page never gets an answer, not even a CORS preflight.
  app.addHook('onRequest', async (req, reply) => {
    if (opts.hosts && !opts.hosts.allows(req.headers.host)) {
      return reply.code(421).send({ error: new AppError('host_not_allowed', 'This node does not answer to that host name (ALLOWED_HOSTS).').toBody() });
    }
  });
  if (opts.maxPipelinedRequests || opts.maxOutboundBytes) boundPipelining(app, { maxPipelined: opts.maxPipelinedRequests ?? 0, maxBytes: opts.maxOutboundBytes ?? 0, refused: () => ctx.metrics.rateLimited.labels('pipelined').inc() });

  // CORS with the Origin allow-list: an allowed browser origin gets the CORS headers (and its
  // preflights an answer); a request from any other origin is refused before it runs.
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (origin === undefined) return;
    if (opts.origins && !opts.origins.allows(origin, req.headers.host)) {
      return reply.code(403).send({ error: new AppError('origin_not_allowed', 'This origin may not call this API (ALLOWED_ORIGINS).').toBody() });
    }
    reply.header('access-control-allow-origin', origin);
    reply.header('vary', 'Origin');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      return reply.code(204)
        .header('access-control-allow-methods', CORS_METHODS)
        .header('access-control-allow-headers', CORS_HEADERS)
        .header('access-control-max-age', '600')
        .send();
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    ctx.metrics.http.labels(req.method, route, String(reply.statusCode)).inc();
    ctx.metrics.httpSeconds.labels(req.method, route).observe(reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err: unknown, req, reply) => {
    const e = mapError(err);
    ctx.metrics.error(e.code);
    if (e.code === 'internal') req.log.error({ err }, 'request failed');
    void reply.code(e.status).send({ error: e.toBody() });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: new AppError('route_not_found', `No route ${req.method} ${req.url.split('?')[0]}.`).toBody() });
  });

  registerRoutes(app, ctx);
  if (webRoot) {
    // One route per file found at start (no wildcard): nothing can shadow /v1/*, /healthz or
    // /readyz, and unknown paths keep the JSON 404. The app routes by URL hash, so `/` is its
    // only page.
    void app.register(fastifyStatic, { root: webRoot, prefix: '/', wildcard: false, cacheControl: false, etag: true, lastModified: false, index: ['index.html'], dotfiles: 'deny' });
  }
  return app;
}

const isApi = (url: string): boolean => url.startsWith('/v1/') || url === '/healthz' || url === '/readyz' || url === '/metrics';

function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || !socket.writable) {
    socket.destroy();
    return;
  }
  const e = err.code === 'HPE_HEADER_OVERFLOW'
    ? new AppError('headers_too_large', 'The request line and headers are larger than 16 KiB.')
    : new AppError('bad_request', 'Malformed HTTP request.');
  const body = JSON.stringify({ error: e.toBody() });
  socket.end(`HTTP/1.1 ${e.status} ${e.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`);
  socket.once('finish', () => socket.destroy());
}

function mapError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const f = err as { code?: string; statusCode?: number; message?: string };
  switch (f.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('frame_too_large', 'The request body is larger than the limit.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('bad_json', 'The request body is not valid JSON.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('bad_request', 'Send request bodies as Content-Type: application/json.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('bad_request', 'Content-Length does not match the body.');
  }
  if (err instanceof SyntaxError || (f.statusCode === 400 && /JSON|prototype|constructor/i.test(f.message ?? ''))) return new AppError('bad_json', 'The request body is not valid JSON (or has a forbidden __proto__/constructor key).');
  if (typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) return new AppError('bad_request', f.message ?? 'Bad request.');
  return toAppError(err);
}
