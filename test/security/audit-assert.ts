// The shared assertion of the audit trail: a request (by its request id) left exactly one record.
// Read straight from etcd under the service's prefix, so it checks what is stored, not an API.
import type { Etcd3 } from 'etcd3';
import type { Test } from 'tap';
import type { AuditRecord } from '../../src/api/audit.js';

/** Every audit record under `prefix` (oldest first). */
export async function auditRecords(etcd: Etcd3, prefix: string): Promise<AuditRecord[]> {
  const kvs = await etcd.getAll().prefix(`${prefix}audit/`).strings();
  return Object.keys(kvs)
    .sort()
    .map((k) => JSON.parse(kvs[k]!) as AuditRecord);
}

export async function assertOneAuditRecord(
  t: Test,
  etcd: Etcd3,
  prefix: string,
  requestId: string | undefined,
  expect: { principal?: string; action?: string; denied?: boolean; outcome?: string } = {},
): Promise<AuditRecord | undefined> {
  if (!requestId) {
    t.fail('the response carries no request id');
    return undefined;
  }
  const records = (await auditRecords(etcd, prefix)).filter((r) => r.requestId === requestId);
  t.equal(records.length, 1, `request ${requestId} left exactly one audit record`);
  const r = records[0];
  if (!r) return undefined;
  if (expect.principal !== undefined) t.equal(r.principal, expect.principal, 'audit: principal');
  if (expect.action !== undefined) t.equal(r.action, expect.action, 'audit: action');
  if (expect.denied !== undefined) t.equal(r.outcome === 'denied', expect.denied, `audit: outcome ${r.outcome}`);
  if (expect.outcome !== undefined) t.equal(r.outcome, expect.outcome, 'audit: outcome');
  return r;
}
