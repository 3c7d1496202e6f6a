// The audit trail in etcd: one key per record under `audit/`, named by its time so that a range is
// a time range. A change and its record share one txn: the stores add auditPut(...) to the txn of
// the change. Records no API deletes; the retention sweep drops records older than the configured
// age and the oldest beyond the configured count. The sweep is not fenced: every replica may run
// it, because deleting records that are out of retention is idempotent and never touches a record
// that is still inside it (new records are always the newest keys).
import { randomBytes } from 'node:crypto';
import type { IKeyValue, IRequestOp } from 'etcd3';
import type { AuditQuery, AuditRecord, AuditTrail, NewAuditRecord } from '../../api/audit.js';
import { BatonError } from '../../core/errors.js';
import type { Clock } from '../../core/ports.js';
import { etcdCall, op, rangeKvs, toRevision, type EtcdClient } from './client.js';
import type { EtcdKeys } from './keys.js';

const MAX_QUERY_LIMIT = 1000;
const PAGE = 200;
/** Keys deleted per sweep step (a range delete is one op, but the read of excess keys is paged). */
const SWEEP_BATCH = 1000;

/** `<wall ms, 13 digits>-<8 hex>`. */
export function newAuditId(wallMs: number): string {
  return `${String(wallMs).padStart(13, '0')}-${randomBytes(4).toString('hex')}`;
}

/** A record and the put that stores it, to add to the txn of the change it records. */
export function auditPut(keys: EtcdKeys, wallMs: number, fields: NewAuditRecord): { record: AuditRecord; op: IRequestOp } {
  const record: AuditRecord = { id: newAuditId(wallMs), atMs: wallMs, ...fields };
  return { record, op: op.put(keys.audit(record.id), JSON.stringify(record)) };
}

export interface AuditRetention {
  readonly maxRecords: number;
  readonly maxAgeMs: number;
}

export class EtcdAuditLog implements AuditTrail {
  constructor(
    private readonly client: EtcdClient,
    private readonly keys: EtcdKeys,
    private readonly clock: Clock,
    private readonly retention: AuditRetention,
  ) {}

  async append(fields: NewAuditRecord): Promise<AuditRecord> {
    const { record, op: put } = auditPut(this.keys, this.clock.wallMs(), fields);
    await etcdCall('append audit record', () => this.client.kv.txn({ success: [put] }));
    return record;
  }

  /** Newest first, within [fromMs, toMs], filtered by chain and principal, as of one revision. */
  async query(q: AuditQuery): Promise<AuditRecord[]> {
    if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_QUERY_LIMIT) {
      throw new BatonError('INVALID_ARGUMENT', `limit: ${q.limit} must be an integer in 1..${MAX_QUERY_LIMIT}`);
    }
    const from = Buffer.from(this.keys.auditAt(Math.max(0, q.fromMs ?? 0)));
    let end: Buffer = Buffer.from(this.keys.auditAt(q.toMs === undefined ? 9_999_999_999_999 : q.toMs + 1));
    const filtered = q.chainId !== undefined || q.principal !== undefined;
    const page = filtered ? PAGE : q.limit;
    let atRevision: bigint | undefined;
    const out: AuditRecord[] = [];
    for (;;) {
      const range: IRequestOp = {
        request_range: {
          key: from,
          range_end: end,
          limit: page,
          sort_order: 'Descend',
          sort_target: 'Key',
          ...(atRevision ? { revision: atRevision.toString() } : {}),
        },
      };
      const res = await etcdCall('query audit', () => this.client.kv.txn({ success: [range] }));
      atRevision ??= toRevision(res.header.revision);
      const kvs = rangeKvs(res.responses[0]);
      for (const kv of kvs) {
        const r = parse(kv);
        if (!r) continue;
        if (q.chainId !== undefined && r.chainId !== q.chainId) continue;
        if (q.principal !== undefined && r.principal !== q.principal) continue;
        out.push(r);
        if (out.length === q.limit) return out;
      }
      const last = kvs[kvs.length - 1];
      if (!last || kvs.length < page) return out;
      end = last.key;
    }
  }

  /** Drops records out of retention; returns how many. */
  async sweep(): Promise<number> {
    const prefix = this.keys.auditLog();
    let deleted = 0;
    // By age: everything before the cutoff, one range delete.
    const cutoff = this.keys.auditAt(Math.max(0, this.clock.wallMs() - this.retention.maxAgeMs));
    const byAge = await etcdCall('sweep audit by age', () =>
      this.client.kv.txn({ success: [{ request_delete_range: { key: Buffer.from(prefix), range_end: Buffer.from(cutoff) } }] }),
    );
    deleted += Number(byAge.responses[0]?.response_delete_range?.deleted ?? 0);
    // By count: the oldest records beyond maxRecords.
    for (;;) {
      const counted = await etcdCall('count audit', () => this.client.kv.txn({ success: [op.getPrefix(prefix, { keysOnly: true, limit: 1 })] }));
      const total = Number(counted.responses[0]?.response_range?.count ?? 0);
      const excess = Math.min(total - this.retention.maxRecords, SWEEP_BATCH);
      if (excess <= 0) return deleted;
      const oldest = await etcdCall('read oldest audit keys', () => this.client.kv.txn({ success: [op.getPrefix(prefix, { keysOnly: true, limit: excess })] }));
      const kvs = rangeKvs(oldest.responses[0]);
      const last = kvs[kvs.length - 1];
      if (!last) return deleted;
      const res = await etcdCall('sweep audit by count', () =>
        this.client.kv.txn({ success: [{ request_delete_range: { key: Buffer.from(prefix), range_end: Buffer.concat([last.key, Buffer.from([0])]) } }] }),
      );
      deleted += Number(res.responses[0]?.response_delete_range?.deleted ?? 0);
    }
  }
}

function parse(kv: IKeyValue): AuditRecord | undefined {
  try {
    return JSON.parse(kv.value.toString()) as AuditRecord;
  } catch {
    return undefined;
  }
}
