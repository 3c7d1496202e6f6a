// Idempotency for the plain mutations (PUT/DELETE of chains, PUT of fleet settings): the response
// of the first request under a key is kept, and a replay gets it back without running again. The
// records share the `idempotency/` keys with operation requests, so a key is bound to exactly one
// request whatever route used it first. Operation requests are made idempotent atomically with the
// intent (operation-store.ts); these writes are idempotent by nature, so a record written just
// after the change is enough: two concurrent first requests under one key both apply the same
// write and answer alike.
import type { Etcd3 } from 'etcd3';
import { BatonError } from '../../core/errors.js';
import type { Clock } from '../../core/ports.js';
import { etcdCall, firstKv, op } from './client.js';
import { parseJsonValue } from './json.js';
import type { EtcdKeys } from './keys.js';
import { DEFAULT_IDEMPOTENCY_TTL_MS } from './operation-store.js';

export interface RecordedResponse {
  readonly status: number;
  readonly body: unknown;
}

export class EtcdIdempotencyRecords {
  constructor(
    private readonly client: Etcd3,
    private readonly keys: EtcdKeys,
    private readonly clock: Clock,
    private readonly ttlMs = DEFAULT_IDEMPOTENCY_TTL_MS,
  ) {}

  /**
   * Runs `apply` once per key: a replay of the same request answers the recorded response
   * (`replayed: true`); the same key with another request is IDEMPOTENCY_MISMATCH.
   */
  async once(key: string, requestHash: string, apply: () => Promise<RecordedResponse>): Promise<RecordedResponse & { replayed: boolean }> {
    const k = this.keys.idempotency(key);
    const res = await etcdCall('read idempotency record', () => this.client.kv.txn({ success: [op.get(k)] }));
    const kv = firstKv(res.responses[0]);
    if (kv) {
      const rec = parseJsonValue(kv.value);
      const fresh = typeof rec.createdAtMs === 'number' && this.clock.wallMs() - rec.createdAtMs < this.ttlMs;
      if (fresh) {
        if (rec.requestHash !== requestHash) {
          throw new BatonError('IDEMPOTENCY_MISMATCH', 'Idempotency-Key was already used for a different request', { key });
        }
        const response = rec.response as RecordedResponse | undefined;
        if (!response) throw new BatonError('CONFLICT', 'Idempotency-Key belongs to an operation request', { key, operationId: rec.operationId });
        return { ...response, replayed: true };
      }
    }
    const response = await apply();
    const record = { requestHash, createdAtMs: this.clock.wallMs(), response };
    await etcdCall('write idempotency record', () => this.client.kv.txn({ success: [op.put(k, JSON.stringify(record))] }));
    return { ...response, replayed: false };
  }
}
