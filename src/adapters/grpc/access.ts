// Access control of baton.v1.BatonService: every method handler is wrapped with the principal (from
// the TLS client certificate, or the insecure-dev principal), the per-principal limits, the one
// required permission of the method (src/api/access.ts) and the audit record of every mutating or
// refused call that the handler did not already write in the txn of its change. The server refuses
// to start when a method has no row in the permission table.
import { randomUUID } from 'node:crypto';
import { Metadata, status as S, type ServerUnaryCall, type ServerWritableStream, type ServiceDefinition, type StatusObject } from '@grpc/grpc-js';
import { accessError, authorize, grpcEndpoint, INSECURE_DEV_PRINCIPAL, type Endpoint, type Principal } from '../../api/access.js';
import { AuditScope, traceIdOf, type AuditOutcome, type AuditTrail } from '../../api/audit.js';
import { BatonError } from '../../core/errors.js';
import type { Logger } from '../telemetry/log.js';
import type { PrincipalLimits } from '../security/limits.js';
import { currentTraceId } from '../telemetry/tracing.js';
import { toServiceError } from './errors.js';

export interface GrpcAccess {
  /** The caller of a call; undefined refuses it (UNAUTHENTICATED). */
  readonly authenticate: (call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>) => Principal | undefined;
  readonly limits?: PrincipalLimits;
  readonly audit?: AuditTrail;
}

export const INSECURE_GRPC_ACCESS: GrpcAccess = { authenticate: () => INSECURE_DEV_PRINCIPAL };

export const REQUEST_ID_KEY = 'x-request-id';

/** The audit scope of the call being handled; handlers pass it to the ControlPlane. */
const scopes = new WeakMap<object, AuditScope>();

export function auditScopeOf(call: object): AuditScope | undefined {
  return scopes.get(call);
}

/** The request id of a call: the caller's `x-request-id` when sane, else a new one (stable per call). */
const requestIds = new WeakMap<object, string>();
export function requestIdOf(call: { metadata: Metadata }): string {
  let id = requestIds.get(call);
  if (!id) {
    const given = call.metadata.get(REQUEST_ID_KEY)[0];
    id = typeof given === 'string' && /^[\x21-\x7e]{1,128}$/.test(given) ? given : randomUUID();
    requestIds.set(call, id);
  }
  return id;
}

type AnyHandler = (call: never, callback?: never) => void;

/**
 * `impl` with every method behind the access checks. `service` is the generated definition (its
 * `originalName` is the proto method name the permission table uses).
 */
export function guardService<T extends object>(service: ServiceDefinition, impl: T, access: GrpcAccess, log: Logger): T {
  const out: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(service)) {
    const method = (def as { path: string }).path.split('/').pop()!;
    const endpoint = grpcEndpoint(method);
    if (!endpoint) throw new Error(`gRPC method ${method} has no required permission in the permission table (src/api/access.ts)`);
    const handler = (impl as Record<string, AnyHandler>)[name];
    if (!handler) throw new Error(`gRPC method ${method} has no handler`);
    out[name] = (def as { responseStream: boolean }).responseStream ? guardStream(endpoint, handler, access, log) : guardUnary(endpoint, handler, access, log);
  }
  return out as T;
}

function chainOf(request: unknown): { chainId?: string; nodeId?: string } {
  const r = request as { chainId?: unknown; nodeId?: unknown; spec?: { id?: unknown } } | undefined;
  const chainId = typeof r?.chainId === 'string' && r.chainId ? r.chainId : typeof r?.spec?.id === 'string' ? r.spec.id : undefined;
  const nodeId = typeof r?.nodeId === 'string' && r.nodeId ? r.nodeId : undefined;
  return { ...(chainId ? { chainId } : {}), ...(nodeId ? { nodeId } : {}) };
}

/** Authenticates, limits and authorizes; returns the release of a concurrency slot. */
function admit(endpoint: Endpoint, call: ServerUnaryCall<unknown, unknown>, access: GrpcAccess): { scope: AuditScope; release: () => void } {
  const principal = access.authenticate(call);
  const key = call.metadata.get('idempotency-key')[0];
  const r = call.request as { idempotencyKey?: unknown } | undefined;
  const idem = typeof r?.idempotencyKey === 'string' && r.idempotencyKey ? r.idempotencyKey : typeof key === 'string' ? key : null;
  const scope = new AuditScope(
    'grpc',
    principal?.name ?? '(unauthenticated)',
    principal?.roles.join(',') || 'none',
    endpoint.action,
    requestIdOf(call),
    // The request's span (traceGrpcService) continues the caller's trace, or starts one.
    currentTraceId() ?? traceIdOf(call.metadata.get('traceparent')[0]),
    idem,
  );
  scope.scopeKeys = !principal?.unrestricted;
  // No audit trail configured: no records, neither with changes nor of refusals.
  if (access.audit) scopes.set(call, scope);
  if (!principal) throw Object.assign(accessError('UNAUTHENTICATED', 'the client certificate names no principal usable for client authentication'), { scope });
  access.limits?.take(principal.name);
  const decision = authorize(principal, endpoint, chainOf(call.request));
  if (!decision.allowed) throw accessError('PERMISSION_DENIED', decision.why, { action: endpoint.action });
  (scope as { role: string }).role = decision.role;
  const release = endpoint.concurrency && access.limits ? access.limits.acquire(principal.name, endpoint.concurrency) : () => undefined;
  return { scope, release };
}

async function auditCall(endpoint: Endpoint, call: ServerUnaryCall<unknown, unknown>, access: GrpcAccess, log: Logger, err: Partial<StatusObject> | null, replayed: boolean): Promise<void> {
  const scope = scopes.get(call);
  if (!scope || scope.written || !access.audit) return;
  const code = err?.code ?? S.OK;
  const denied = code === S.PERMISSION_DENIED || code === S.UNAUTHENTICATED;
  // Over a limit is not audited: a flood must not turn into as many etcd writes.
  if (code === S.RESOURCE_EXHAUSTED) return;
  if ((!endpoint.mutation || endpoint.dataPlane) && !denied) return;
  let outcome: AuditOutcome;
  if (denied) outcome = 'denied';
  else if (err) outcome = code === S.INTERNAL || code === S.UNAVAILABLE ? 'failed' : 'refused';
  else outcome = replayed ? 'replayed' : 'applied';
  const r = call.request as { reason?: unknown } | undefined;
  const batonCode = err?.metadata?.get('baton-error-code')[0];
  scope.written = true;
  try {
    await access.audit.append(
      scope.record({
        outcome,
        status: S[code] ?? String(code),
        chainId: chainOf(call.request).chainId ?? null,
        reason: typeof r?.reason === 'string' && r.reason ? r.reason.slice(0, 1000) : null,
        error: err ? { code: typeof batonCode === 'string' ? batonCode : (S[code] ?? 'UNKNOWN'), message: String(err.details ?? '').slice(0, 1000) } : null,
      }),
    );
  } catch (e) {
    log.error({ err: e, requestId: scope.requestId }, 'audit record not written');
  }
}

function guardUnary(endpoint: Endpoint, handler: AnyHandler, access: GrpcAccess, log: Logger) {
  return (call: ServerUnaryCall<unknown, unknown>, callback: (err: Partial<StatusObject> | null, res?: unknown) => void) => {
    let release = () => undefined as void;
    const answer = (err: Partial<StatusObject> | null, res?: unknown) => {
      release();
      const replayed = (res as { replayed?: unknown } | undefined)?.replayed === true;
      void auditCall(endpoint, call, access, log, err, replayed).then(() => callback(err, res));
    };
    try {
      release = admit(endpoint, call, access).release;
    } catch (err) {
      answer(toServiceError(err instanceof BatonError ? err : new BatonError('INTERNAL', 'access check failed')));
      return;
    }
    (handler as unknown as (c: unknown, cb: unknown) => void)(call, answer);
  };
}

function guardStream(endpoint: Endpoint, handler: AnyHandler, access: GrpcAccess, log: Logger) {
  return (call: ServerWritableStream<unknown, unknown>) => {
    let release: () => void;
    try {
      release = admit(endpoint, call as unknown as ServerUnaryCall<unknown, unknown>, access).release;
    } catch (err) {
      const status = toServiceError(err instanceof BatonError ? err : new BatonError('INTERNAL', 'access check failed'));
      void auditCall(endpoint, call as unknown as ServerUnaryCall<unknown, unknown>, access, log, status, false).then(() => call.emit('error', status));
      return;
    }
    let released = false;
    const done = () => {
      if (released) return;
      released = true;
      release();
    };
    call.once('finish', done);
    call.once('cancelled', done);
    call.once('close', done);
    call.once('error', done);
    (handler as unknown as (c: unknown) => void)(call);
  };
}
