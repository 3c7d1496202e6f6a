// Access control of the REST app, in hooks around every route: the principal (from the TLS client
// certificate, or the insecure-dev principal), the per-principal rate and concurrency limits, the
// one required permission of the route (src/api/access.ts), and the audit record of every mutating
// or refused request that its handler did not already write in the txn of its change.
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { accessError, authorize, INSECURE_DEV_PRINCIPAL, restEndpoint, type Endpoint, type Principal } from '../../api/access.js';
import { AuditScope, traceIdOf, type AuditOutcome, type AuditTrail } from '../../api/audit.js';
import type { PrincipalLimits } from '../security/limits.js';
import { currentTraceId } from '../telemetry/tracing.js';

export interface RestAccess {
  /** The caller of a request; undefined refuses it (UNAUTHENTICATED). */
  readonly authenticate: (req: FastifyRequest) => Principal | undefined;
  readonly limits?: PrincipalLimits;
  readonly audit?: AuditTrail;
}

/** Dev mode and in-process tests: everybody is the insecure-dev principal. */
export const INSECURE_REST_ACCESS: RestAccess = { authenticate: () => INSECURE_DEV_PRINCIPAL };

/** The client certificate of a TLS request (undefined on plaintext). */
export function peerCertificate(req: FastifyRequest) {
  const socket = req.raw.socket as Partial<TLSSocket>;
  return socket.encrypted && typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** The audit side of the request (set once it is authenticated). */
    audit: AuditScope | null;
  }
}

const CHAIN_ROUTE = /^\/v1\/chains\/:id(\/|$)/;

/** Registers the hooks; call before any route is registered (the route check runs on each). */
export function registerAccess(app: FastifyInstance, access: RestAccess): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('audit', null);

  // A route without a row in the permission table is a bug: the app does not build.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) {
      if (!restEndpoint(m, route.url)) throw new Error(`${m} ${route.url} has no required permission in the permission table (src/api/access.ts)`);
    }
  });

  const endpointOf = (req: FastifyRequest): Endpoint | undefined => {
    const url = req.routeOptions.url;
    return url === undefined ? undefined : restEndpoint(req.method, url);
  };

  app.addHook('onRequest', async (req, reply) => {
    const principal = access.authenticate(req);
    const endpoint = endpointOf(req);
    const key = req.headers['idempotency-key'];
    // No audit trail (in-process tests): no records, neither with changes nor of refusals.
    if (endpoint && access.audit) {
      const name = principal?.name ?? '(unauthenticated)';
      const roles = principal?.roles.join(',') || 'none';
      req.audit = new AuditScope('rest', name, roles, endpoint.action, req.id, currentTraceId() ?? traceIdOf(req.headers.traceparent), typeof key === 'string' ? key : null);
      req.audit.scopeKeys = !principal?.unrestricted;
    }
    if (!principal) throw accessError('UNAUTHENTICATED', 'the client certificate names no principal usable for client authentication');
    req.principal = principal;
    access.limits?.take(principal.name);
    if (!endpoint) return; // no route: the 404 handler answers
    if (endpoint.concurrency && access.limits) {
      const release = access.limits.acquire(principal.name, endpoint.concurrency);
      reply.raw.once('close', release);
    }
  });

  // After parsing (the node id of a head commit is in the body), before validation and handler.
  app.addHook('preValidation', async (req) => {
    const endpoint = endpointOf(req);
    if (!endpoint || !req.principal) return;
    const params = req.params as Record<string, unknown> | undefined;
    const body = req.body as Record<string, unknown> | undefined;
    const chainId = CHAIN_ROUTE.test(req.routeOptions.url ?? '') && typeof params?.id === 'string' ? params.id : undefined;
    const nodeId = typeof body?.nodeId === 'string' ? body.nodeId : undefined;
    const decision = authorize(req.principal, endpoint, { chainId, nodeId });
    if (!decision.allowed) throw accessError('PERMISSION_DENIED', decision.why, { action: endpoint.action });
    if (req.audit) (req.audit as { role: string }).role = decision.role;
  });

  // Exactly one audit record per mutating or refused request: the handler's (in the txn of the
  // change) or this one, written before the answer leaves.
  app.addHook('onSend', async (req, reply, payload) => {
    const scope = req.audit;
    const endpoint = endpointOf(req);
    if (!scope || scope.written || !endpoint || !access.audit) return payload;
    const status = reply.statusCode;
    const refused = status >= 400;
    const denial = status === 401 || status === 403;
    // Over a limit is not audited: a flood must not turn into as many etcd writes.
    if (status === 429) return payload;
    if ((!endpoint.mutation || endpoint.dataPlane) && !denial) return payload;
    let outcome: AuditOutcome;
    if (status === 403 || status === 401) outcome = 'denied';
    else if (reply.getHeader('idempotent-replayed') === 'true') outcome = 'replayed';
    else if (status >= 500) outcome = 'failed';
    else if (refused) outcome = 'refused';
    else outcome = 'applied';
    const params = req.params as Record<string, unknown> | undefined;
    const chainId = CHAIN_ROUTE.test(req.routeOptions.url ?? '') && typeof params?.id === 'string' ? params.id : null;
    const body = req.body as Record<string, unknown> | undefined;
    let error: { code: string; message: string } | null = null;
    if (refused && typeof payload === 'string') {
      try {
        const b = JSON.parse(payload) as { code?: unknown; message?: unknown };
        error = { code: String(b.code ?? 'UNKNOWN'), message: String(b.message ?? '').slice(0, 1000) };
      } catch {
        error = { code: 'UNKNOWN', message: '' };
      }
    }
    scope.written = true;
    try {
      await access.audit.append(
        scope.record({
          outcome,
          status: String(status),
          chainId,
          reason: typeof body?.reason === 'string' ? body.reason.slice(0, 1000) : null,
          error,
        }),
      );
    } catch (err) {
      req.log.error({ err, requestId: req.id }, 'audit record not written');
    }
    return payload;
  });
}
