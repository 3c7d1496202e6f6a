// Who may call what: principals, roles, and THE permission table. Every REST route and every
// baton.v1 gRPC method is one row of ENDPOINTS with exactly one required permission; the REST app
// refuses to register a route that has no row, the gRPC server refuses to start with a method
// that has none, and the role × endpoint matrix test is generated from this table.
import type { RoleBinding, RoleName } from '../config/config.js';
import { BatonError } from '../core/errors.js';

export type Role = RoleName;

/**
 * - public: any authenticated caller (liveness, the API's own documents).
 * - read: fleet-wide reads (chain list, operations, fleet settings).
 * - read-chain: one chain's state; the node role holds it for its own chain only.
 * - events: the event stream.
 * - operate: leadership operations (failover, switchover, pause, resume, fencing mode).
 * - administer: chain specs and fleet settings.
 * - override: break-glass leadership override.
 * - read-audit: the audit trail.
 * - commit-head: a node committing its unsafe head, only as the node its certificate names.
 */
export type Permission = 'public' | 'read' | 'read-chain' | 'events' | 'operate' | 'administer' | 'override' | 'read-audit' | 'commit-head';

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  viewer: ['public', 'read', 'read-chain', 'events'],
  operator: ['public', 'read', 'read-chain', 'events', 'operate'],
  admin: ['public', 'read', 'read-chain', 'events', 'administer', 'read-audit'],
  breakglass: ['public', 'read', 'read-chain', 'events', 'override', 'read-audit'],
  // Scoped by the principal's node binding (see authorize).
  node: ['public', 'read-chain', 'commit-head'],
};

export interface Endpoint {
  /** Stable name, used in audit records (the gRPC method name where there is one). */
  readonly action: string;
  readonly permission: Permission;
  /** `METHOD /path` as registered in Fastify (`:id` parameters; a final `*` covers a subtree). */
  readonly rest?: readonly string[];
  /** Method name in baton.v1.BatonService. */
  readonly grpc?: string;
  /** A change of state: audited whatever its outcome. */
  readonly mutation: boolean;
  /** Counted against the principal's concurrent long-polls or event streams. */
  readonly concurrency?: 'wait' | 'stream';
  /** A high-rate data-plane call: only its access refusals are audited (the data is its own record). */
  readonly dataPlane?: boolean;
}

const e = (
  action: string,
  permission: Permission,
  rest: string[] | undefined,
  grpc: string | undefined,
  mutation = false,
  concurrency?: 'wait' | 'stream',
): Endpoint => ({
  action,
  permission,
  ...(rest ? { rest } : {}),
  ...(grpc ? { grpc } : {}),
  mutation,
  ...(concurrency ? { concurrency } : {}),
});

/** The one table. */
export const ENDPOINTS: readonly Endpoint[] = [
  // Liveness and documents (served without roles, but still over mTLS on this listener).
  e('Livez', 'public', ['GET /livez'], undefined),
  e('Readyz', 'public', ['GET /readyz'], undefined),
  e('OpenApi', 'public', ['GET /openapi.yaml'], undefined),
  // Swagger UI: its page, its assets and its copies of the spec (`*`: every route under the prefix).
  e('Docs', 'public', ['GET /docs', 'GET /docs/*'], undefined),
  // Reads.
  e('ListChains', 'read', ['GET /v1/chains'], 'ListChains'),
  e('GetChain', 'read-chain', ['GET /v1/chains/:id'], 'GetChain'),
  e('GetLeader', 'read-chain', ['GET /v1/chains/:id/leader'], 'GetLeader', false, 'wait'),
  e('GetHistory', 'read-chain', ['GET /v1/chains/:id/history'], 'GetHistory'),
  e('GetOperation', 'read', ['GET /v1/operations/:id'], 'GetOperation', false, 'wait'),
  e('ListOperations', 'read', ['GET /v1/operations'], 'ListOperations'),
  e('GetFleetSettings', 'read', ['GET /v1/fleet/settings'], 'GetFleetSettings'),
  e('WatchEvents', 'events', ['GET /v1/events'], 'WatchEvents', false, 'stream'),
  e('QueryAudit', 'read-audit', ['GET /v1/audit'], 'QueryAudit'),
  // Administration.
  e('PutChain', 'administer', ['PUT /v1/chains/:id'], 'PutChain', true),
  e('DeleteChain', 'administer', ['DELETE /v1/chains/:id'], 'DeleteChain', true),
  e('PutFleetSettings', 'administer', ['PUT /v1/fleet/settings'], 'PutFleetSettings', true),
  // Operations.
  e('Failover', 'operate', ['POST /v1/chains/:id/failover'], 'Failover', true),
  e('Switchover', 'operate', ['POST /v1/chains/:id/switchover'], 'Switchover', true),
  e('CancelSwitchover', 'operate', ['POST /v1/chains/:id/switchover/cancel'], 'CancelSwitchover', true),
  e('Pause', 'operate', ['POST /v1/chains/:id/pause'], 'Pause', true),
  e('Resume', 'operate', ['POST /v1/chains/:id/resume'], 'Resume', true),
  e('SetFencingMode', 'operate', ['POST /v1/chains/:id/fencing-mode'], 'SetFencingMode', true),
  // Break-glass: forcing a node active and ending that are the override permission's alone.
  e('Override', 'override', ['POST /v1/chains/:id/override'], 'Override', true),
  e('ClearOverride', 'override', ['POST /v1/chains/:id/override/clear'], 'ClearOverride', true),
  // The data plane: successful commits are not audited one by one (the head is their record);
  // refusals are.
  { ...e('CommitUnsafeHead', 'commit-head', ['POST /v1/chains/:id/head'], 'CommitUnsafeHead', true), dataPlane: true },
];

const byRest = new Map<string, Endpoint>();
const byGrpc = new Map<string, Endpoint>();
for (const ep of ENDPOINTS) {
  for (const r of ep.rest ?? []) {
    if (byRest.has(r)) throw new Error(`permission table: ${r} is listed twice`);
    byRest.set(r, ep);
  }
  if (ep.grpc) {
    if (byGrpc.has(ep.grpc)) throw new Error(`permission table: ${ep.grpc} is listed twice`);
    byGrpc.set(ep.grpc, ep);
  }
}

/** The row of a Fastify route (`HEAD` routes are their `GET`'s). */
export function restEndpoint(method: string, url: string): Endpoint | undefined {
  const m = method === 'HEAD' ? 'GET' : method;
  const exact = byRest.get(`${m} ${url}`);
  if (exact) return exact;
  for (const [route, ep] of byRest) {
    if (route.endsWith('/*') && `${m} ${url}`.startsWith(route.slice(0, -1))) return ep;
  }
  return undefined;
}

/** The row of a baton.v1.BatonService method (its name as in the proto, e.g. `GetChain`). */
export function grpcEndpoint(method: string): Endpoint | undefined {
  return byGrpc.get(method);
}

export interface Principal {
  /** Subject CN, else the first SAN, of the client certificate; `insecure-dev` in that mode. */
  readonly name: string;
  readonly roles: readonly Role[];
  readonly node?: { readonly chainId: string; readonly nodeId: string };
  /** Insecure dev mode: every permission, for any chain and node. */
  readonly unrestricted?: boolean;
}

export const INSECURE_DEV_PRINCIPAL: Principal = Object.freeze({
  name: 'insecure-dev',
  roles: Object.freeze(['viewer', 'operator', 'admin', 'breakglass', 'node'] as Role[]),
  unrestricted: true,
});

/** Principal name → its roles, from the configured bindings; unbound names have no role. */
export class RoleBindings {
  private readonly byName: ReadonlyMap<string, RoleBinding>;

  constructor(bindings: readonly RoleBinding[]) {
    this.byName = new Map(bindings.map((b) => [b.principal, b]));
  }

  principal(name: string): Principal {
    const b = this.byName.get(name);
    return { name, roles: b?.roles ?? [], ...(b?.node ? { node: b.node } : {}) };
  }
}

/** What a request touches, for the permissions scoped to a chain or a node. */
export interface Target {
  readonly chainId?: string;
  readonly nodeId?: string;
}

export type Decision = { readonly allowed: true; readonly role: Role | 'insecure-dev' } | { readonly allowed: false; readonly why: string };

/**
 * Whether `principal` may call `endpoint` on `target`, and under which role. The node role's
 * permissions hold only for the chain (and, to commit, the node) its binding names.
 */
export function authorize(principal: Principal, endpoint: Endpoint, target: Target): Decision {
  if (principal.unrestricted) return { allowed: true, role: 'insecure-dev' };
  const need = endpoint.permission;
  let scopedRefusal: string | undefined;
  for (const role of principal.roles) {
    if (!ROLE_PERMISSIONS[role].includes(need)) continue;
    if (role !== 'node' || need === 'public') return { allowed: true, role };
    const bound = principal.node;
    if (!bound) continue;
    if (target.chainId !== bound.chainId) {
      scopedRefusal = `${principal.name} is node ${bound.nodeId} of ${bound.chainId}, not of ${target.chainId ?? '(no chain)'}`;
      continue;
    }
    if (need === 'commit-head' && target.nodeId !== bound.nodeId) {
      scopedRefusal = `${principal.name} may commit only as node ${bound.nodeId}, not as ${target.nodeId ?? '(no node)'}`;
      continue;
    }
    return { allowed: true, role };
  }
  const roles = principal.roles.length > 0 ? principal.roles.join(', ') : 'no role';
  return { allowed: false, why: scopedRefusal ?? `${principal.name} (${roles}) lacks the ${need} permission for ${endpoint.action}` };
}

export type AccessErrorCode = 'UNAUTHENTICATED' | 'PERMISSION_DENIED' | 'RESOURCE_EXHAUSTED';

/** A refusal of the access layer, as Baton's one error type. */
export function accessError(code: AccessErrorCode, message: string, details: Record<string, unknown> = {}): BatonError {
  return new BatonError(code, message, details);
}
