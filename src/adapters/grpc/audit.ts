// QueryAudit's wire form of an audit record.
import type { AuditRecord, LeadershipSnapshot } from '../../api/audit.js';
import type * as pb from '../../gen/baton/v1/baton.js';

function snapshot(s: LeadershipSnapshot | null): pb.LeadershipSnapshot | undefined {
  if (!s) return undefined;
  return { leader: s.leader ?? '', term: s.term === null ? 0n : BigInt(s.term), ...(s.head === null ? {} : { head: BigInt(s.head) }) };
}

export function toWireAudit(r: AuditRecord): pb.AuditRecord {
  return {
    id: r.id,
    at: new Date(r.atMs),
    principal: r.principal,
    role: r.role,
    action: r.action,
    chainId: r.chainId ?? '',
    reason: r.reason ?? '',
    requestId: r.requestId,
    traceId: r.traceId ?? '',
    idempotencyKey: r.idempotencyKey ?? '',
    before: snapshot(r.before),
    after: snapshot(r.after),
    outcome: r.outcome,
    errorCode: r.error?.code ?? '',
    errorMessage: r.error?.message ?? '',
    operationId: r.operationId ?? '',
    status: r.status,
  };
}
