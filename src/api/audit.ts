// The audit trail: one record per mutating request (and per refused request of any kind), whatever
// its outcome. A change and its record are written by the same etcd txn (the stores take the
// record as an extra put); a request that changed nothing (refused, invalid, replayed, failed) gets
// its record written on its own by the surface, just before it answers. Append-only: no API
// deletes records; a retention sweep drops the oldest (see adapters/etcd/audit-log.ts).
import type { ChainSpec } from '../core/chain.js';
import type { FleetSettings } from '../core/ports.js';
import type { Role } from './access.js';

export type AuditOutcome = 'accepted' | 'applied' | 'replayed' | 'denied' | 'refused' | 'failed';

/** Leader, term and head of a chain at one moment (null: none). */
export interface LeadershipSnapshot {
  readonly leader: string | null;
  readonly term: string | null;
  readonly head: number | null;
}

export interface AuditRecord {
  /** `<wall ms, 13 digits>-<8 hex>`: sorts by time. */
  readonly id: string;
  readonly atMs: number;
  readonly principal: string;
  /** The role the action was allowed under; the principal's roles, joined, when it was denied. */
  readonly role: string;
  readonly action: string;
  readonly chainId: string | null;
  readonly reason: string | null;
  readonly requestId: string;
  readonly traceId: string | null;
  readonly idempotencyKey: string | null;
  readonly before: LeadershipSnapshot | null;
  readonly after: LeadershipSnapshot | null;
  readonly outcome: AuditOutcome;
  /** The refusal or failure: Baton's error code and message. */
  readonly error: { readonly code: string; readonly message: string } | null;
  /** The operation an accepted intent created (its record tracks the execution). */
  readonly operationId: string | null;
  /** The protocol status answered (HTTP status, or gRPC status name). */
  readonly status: string;
}

export type NewAuditRecord = Omit<AuditRecord, 'id' | 'atMs'>;

/**
 * The audit side of one request, carried from the surface to the ControlPlane: who asks, and
 * whether a record has been written yet (exactly one per request).
 */
export class AuditScope {
  written = false;
  /** Idempotency keys are scoped to the principal (not in insecure dev mode: one principal). */
  scopeKeys = true;

  constructor(
    /** The surface the request came in on: its status names differ. */
    readonly surface: 'rest' | 'grpc',
    readonly principal: string,
    readonly role: Role | 'insecure-dev' | string,
    readonly action: string,
    readonly requestId: string,
    readonly traceId: string | null,
    readonly idempotencyKey: string | null,
  ) {}

  /** The status a successful answer carries on this surface (`httpStatus` on REST, OK on gRPC). */
  okStatus(httpStatus: number): string {
    return this.surface === 'rest' ? String(httpStatus) : 'OK';
  }

  /** A record of this request (the caller fills in what it knows). */
  record(fields: Partial<NewAuditRecord> & Pick<NewAuditRecord, 'outcome' | 'status'>): NewAuditRecord {
    return {
      principal: this.principal,
      role: this.role,
      action: this.action,
      chainId: null,
      reason: null,
      requestId: this.requestId,
      traceId: this.traceId,
      idempotencyKey: this.idempotencyKey,
      before: null,
      after: null,
      error: null,
      operationId: null,
      ...fields,
    };
  }
}

export interface AuditQuery {
  readonly chainId?: string;
  readonly principal?: string;
  /** Inclusive wall-ms bounds. */
  readonly fromMs?: number;
  readonly toMs?: number;
  readonly limit: number;
}

/** Where records go and come from (etcd). */
export interface AuditTrail {
  /** Writes one record on its own (for requests that changed nothing). */
  append(record: NewAuditRecord): Promise<AuditRecord>;
  /** Newest first. */
  query(q: AuditQuery): Promise<AuditRecord[]>;
}

/** The chain-store writes that take the audit record of their request into their txn. */
export interface AuditedChainWrites {
  putSpec(spec: ChainSpec, audit?: NewAuditRecord): Promise<void>;
  deleteChain(chainId: string, audit?: NewAuditRecord): Promise<boolean>;
  putFleetSettings(settings: FleetSettings, audit?: NewAuditRecord): Promise<void>;
}

/** W3C traceparent header → trace id. */
export function traceIdOf(traceparent: unknown): string | null {
  const m = typeof traceparent === 'string' ? /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent) : null;
  return m ? m[1]! : null;
}
