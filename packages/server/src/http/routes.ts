// The REST API: every route of the protocol's ROUTES table, validated with its schemas.
import {
  AddMembersBody, CreateGroupBody, DeleteBody, DirectBody, EditBody, HistoryQuery, LoginBody, LogoutBody, PatchConversationBody,
  PatchMeBody, PresenceQuery, ReadBody, RefreshBody, RegisterBody, RoleBody, ROUTES, SendBody, issuesOf,
  type ConversationId, type DeviceId, type MessageId, type Rate, type UserId,
} from '@confab/protocol';
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { AppError } from '../errors.js';
import type { AddressLimits } from '../core/address-limits.js';
import type { AuthService } from '../core/auth.js';
import type { UserBudgets } from '../core/user-limits.js';
import type { LoginThrottle } from '../core/login-throttle.js';
import type { ConversationService } from '../core/conversations.js';
import type { MessageService } from '../core/messages.js';
import type { PresenceService } from '../core/presence.js';
import type { ReceiptService } from '../core/receipts.js';
import { Id } from '@confab/protocol';
import type { Metrics } from '../metrics.js';

export interface HttpContext {
  auth: AuthService;
  conversations: ConversationService;
  messages: MessageService;
  receipts: ReceiptService;
  presence: PresenceService;
  ready: () => Promise<boolean>;
  metrics: Metrics;
  /** Failed-login limits per address and account (absent: none). */
  loginThrottle?: LoginThrottle;
  /** Per-user budgets of requests and changes (rates.ts); sends are charged by the message service. */
  budgets: UserBudgets;
  /** Budgets of requests before authentication, per client address. */
  addressLimits: AddressLimits;
  /** Where /metrics is served: here (with this bearer token, if any), or on a listener of its own. */
  metricsAccess: { onMain: boolean; token?: string | undefined };
}

interface Caller { userId: UserId; deviceId: DeviceId }
type Handler = (req: FastifyRequest, reply: FastifyReply, caller: Caller) => Promise<unknown>;
type PublicHandler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

function parse<S extends z.ZodType>(schema: S, value: unknown, what = 'body'): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) throw new AppError('bad_request', `The request ${what} does not match its schema.`, { details: issuesOf(r.error) });
  return r.data;
}

function param(req: FastifyRequest, name: string): string {
  const v = (req.params as Record<string, string>)[name] ?? '';
  if (!Id.safeParse(v).success) throw new AppError('bad_request', `:${name} must be a UUID.`, { details: [{ path: name, message: 'must be a UUID' }] });
  return v;
}

const cid = (req: FastifyRequest) => param(req, 'id') as ConversationId;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The rate the route declares in ROUTES. */
    rate?: Rate;
  }
}

const FREE: Rate = { budget: 'none', cost: 0 };
/** The rate a route declares (ROUTES), kept in its fastify route config. */
const rateOf = (req: FastifyRequest): Rate => req.routeOptions.config.rate ?? FREE;

/** Whether a request carries `Authorization: Bearer <token>` with exactly this token (constant time). */
export function bearerIs(header: string | undefined, token: string): boolean {
  const m = header ? /^Bearer +(\S+)$/i.exec(header) : null;
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function registerRoutes(app: FastifyInstance, ctx: HttpContext): void {
  /** Authenticates the caller, then charges the route's rate to their budget (nothing runs when over it). */
  const authed = (h: Handler) => async (req: FastifyRequest, reply: FastifyReply) => {
    const header = req.headers.authorization;
    const m = header ? /^Bearer +(\S+)$/i.exec(header) : null;
    if (!m) throw new AppError('not_authenticated', 'Send `Authorization: Bearer <access token>`.');
    const caller = await ctx.auth.authenticate(m[1]!);
    const rate = rateOf(req);
    if (rate.budget === 'requests' || rate.budget === 'changes') {
      try {
        ctx.budgets.charge(rate.budget, caller.userId, rate.cost);
      } catch (err) {
        ctx.metrics.rateLimited.labels(rate.budget).inc();
        throw err;
      }
    }
    return h(req, reply, caller);
  };
  /** Charges a route that runs before authentication to the client address's budgets. */
  const anonymous = (req: FastifyRequest): void => {
    const rate = rateOf(req);
    try {
      if (rate.budget === 'password') ctx.addressLimits.password(req.ip, req.routeOptions.url === '/v1/auth/register');
      else if (rate.budget === 'address') ctx.addressLimits.request(req.ip, rate.cost);
    } catch (err) {
      ctx.metrics.rateLimited.labels(rate.budget).inc();
      throw err;
    }
  };

  const handlers: Record<string, PublicHandler> = {
    'GET /healthz': () => Promise.resolve({ status: 'ok' }),
    'GET /readyz': async (_req, reply) => {
      if (await ctx.ready()) return { status: 'ready' };
      return reply.code(503).send({ status: 'unavailable' });
    },
    'GET /metrics': async (req, reply) => {
      // Served on a listener of its own (METRICS_PORT): not here.
      if (!ctx.metricsAccess.onMain) return reply.code(404).send({ error: new AppError('route_not_found', 'No route GET /metrics.').toBody() });
      const token = ctx.metricsAccess.token;
      if (token !== undefined && !bearerIs(req.headers.authorization, token)) throw new AppError('not_authenticated', 'Send `Authorization: Bearer <METRICS_TOKEN>`.');
      return reply.type(ctx.metrics.contentType).send(await ctx.metrics.text());
    },
    'POST /v1/auth/register': async (req, reply) => {
      const b = parse(RegisterBody, req.body);
      anonymous(req);
      return reply.code(201).send(await ctx.auth.register(b.username, b.password, b.deviceName));
    },
    'POST /v1/auth/login': async (req) => {
      const b = parse(LoginBody, req.body);
      anonymous(req);
      const attempt = ctx.loginThrottle?.begin(req.ip, b.username);
      try {
        const session = await ctx.auth.login(b.username, b.password, b.deviceName);
        attempt?.succeeded();
        return session;
      } catch (err) {
        // Only wrong credentials count as a failed login (not a store outage, say).
        if (!(err instanceof AppError && err.code === 'invalid_credentials')) attempt?.void();
        throw err;
      }
    },
    'POST /v1/auth/refresh': async (req) => {
      const b = parse(RefreshBody, req.body);
      anonymous(req);
      return ctx.auth.refresh(b.refreshToken);
    },
    'POST /v1/auth/logout': authed(async (req, reply, c) => {
      parse(LogoutBody, req.body);
      await ctx.auth.logout(c.userId, c.deviceId);
      return reply.code(204).send();
    }),
    'GET /v1/me': authed(async (_req, _reply, c) => ctx.conversations.user(c.userId)),
    'PATCH /v1/me': authed(async (req, _reply, c) => {
      const b = parse(PatchMeBody, req.body);
      await ctx.conversations.setHideLastSeen(c.userId, b.hideLastSeen);
      ctx.presence.setHideLastSeen(c.userId, b.hideLastSeen);
      return ctx.conversations.user(c.userId);
    }),
    'GET /v1/presence': authed(async (req, _reply, c) => {
      const wanted = [...new Set(parse(PresenceQuery, req.query, 'query').users)] as UserId[];
      const allowed = new Set(await ctx.conversations.sharedWith(c.userId, wanted));
      const users = await Promise.all(wanted.filter((u) => allowed.has(u)).map((u) => ctx.presence.entry(u)));
      return { users, denied: wanted.filter((u) => !allowed.has(u)) };
    }),
    'GET /v1/users/:username': authed(async (req) => ctx.conversations.userByName((req.params as { username: string }).username)),
    'GET /v1/conversations': authed(async (_req, _reply, c) => ctx.conversations.list(c.userId)),
    'POST /v1/conversations/direct': authed(async (req, _reply, c) => ctx.conversations.direct(c.userId, parse(DirectBody, req.body).username)),
    'POST /v1/conversations': authed(async (req, reply, c) => {
      const b = parse(CreateGroupBody, req.body);
      return reply.code(201).send(await ctx.conversations.createGroup(c.userId, b.name, b.members));
    }),
    'GET /v1/conversations/:id': authed(async (req, _reply, c) => ctx.conversations.get(c.userId, cid(req))),
    'PATCH /v1/conversations/:id': authed(async (req, _reply, c) => ctx.conversations.rename(c.userId, cid(req), parse(PatchConversationBody, req.body).name)),
    'GET /v1/conversations/:id/members': authed(async (req, _reply, c) => ({ members: await ctx.conversations.members(c.userId, cid(req)) })),
    'POST /v1/conversations/:id/members': authed(async (req, _reply, c) => ({ members: await ctx.conversations.addMembers(c.userId, cid(req), parse(AddMembersBody, req.body).members) })),
    'DELETE /v1/conversations/:id/members/:userId': authed(async (req, reply, c) => {
      await ctx.conversations.removeMember(c.userId, cid(req), param(req, 'userId') as UserId);
      return reply.code(204).send();
    }),
    'PUT /v1/conversations/:id/members/:userId/role': authed(async (req, _reply, c) => ({
      members: await ctx.conversations.setRole(c.userId, cid(req), param(req, 'userId') as UserId, parse(RoleBody, req.body).role),
    })),
    'GET /v1/conversations/:id/messages': authed(async (req, _reply, c) => ctx.messages.history(c.userId, cid(req), parse(HistoryQuery, req.query, 'query'))),
    'POST /v1/conversations/:id/messages': authed(async (req, reply, c) => {
      const b = parse(SendBody, req.body);
      const r = await ctx.messages.send(c.userId, cid(req), b.clientId, b.text);
      return reply.code(r.duplicate ? 200 : 201).send(r);
    }),
    'PATCH /v1/conversations/:id/messages/:messageId': authed(async (req, _reply, c) => {
      const b = parse(EditBody, req.body);
      return ctx.messages.edit(c.userId, cid(req), param(req, 'messageId') as MessageId, b.clientId, b.text);
    }),
    'DELETE /v1/conversations/:id/messages/:messageId': authed(async (req, _reply, c) => {
      const b = parse(DeleteBody, req.body);
      return ctx.messages.delete(c.userId, cid(req), param(req, 'messageId') as MessageId, b.clientId);
    }),
    'GET /v1/conversations/:id/receipts': authed(async (req, _reply, c) => ctx.receipts.view(c.userId, cid(req))),
    'POST /v1/conversations/:id/read': authed(async (req, _reply, c) => ctx.conversations.markRead(c.userId, cid(req), parse(ReadBody, req.body).seq)),
  };

  for (const r of ROUTES) {
    const key = `${r.method} ${r.path}`;
    const handler = handlers[key];
    if (!handler) throw new Error(`route ${key} is documented but has no handler`);
    app.route({ method: r.method, url: r.path, handler, config: { rate: r.rate } });
  }
  const documented = new Set(ROUTES.map((r) => `${r.method} ${r.path}`));
  for (const key of Object.keys(handlers)) if (!documented.has(key)) throw new Error(`route ${key} has a handler but is not documented`);
}
