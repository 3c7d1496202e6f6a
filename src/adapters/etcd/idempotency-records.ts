// Idempotency for the plain mutations (PUT/DELETE of chains, PUT of fleet settings): the response
// of the first request under a key is kept, and a replay gets it back without running again. The
// records share the `idempotency/` keys with operation requests, so a key is bound to exactly one
// request whatever route used it first. Operation requests are made idempotent atomically with the
// intent (operation-store.ts). Here the key is claimed in one txn before the write runs, so that
// exactly one request under a key has an effect; a concurrent retry gets CONFLICT until the first
// one answers, then its recorded response.

import { BatonError } from '../../core/errors.js';
import type { Clock } from '../../core/ports.js';
import { compare, etcdCall, firstKv, op, toRevision, type EtcdClient } from './client.js';
import { parseJsonValue } from './json.js';
import type { EtcdKeys } from './keys.js';
import { DEFAULT_IDEMPOTENCY_TTL_MS } from './operation-store.js';

export interface RecordedResponse {
  readonly status: number;
  readonly body: unknown;
}

/** A claim of a request that never finished (its replica died) stops blocking the key after this. */
export const PENDING_TTL_MS = 120_000;
const CLAIM_ATTEMPTS = 3;

export class EtcdIdempotencyRecords {
  constructor(
    private readonly client: EtcdClient,
    private readonly keys: EtcdKeys,
    private readonly clock: Clock,
    private readonly ttlMs = DEFAULT_IDEMPOTENCY_TTL_MS,
  ) {}

  /**
   * Runs `apply` once per key: a replay of the same request answers the recorded response
   * (`replayed: true`); the same key with another request is IDEMPOTENCY_MISMATCH; the same
   * request while the first is still running is CONFLICT (the key is claimed, in one txn, before
   * `apply` runs). A claim whose request died with its replica lapses after PENDING_TTL_MS.
   */
  async once(key: string, requestHash: string, apply: () => Promise<RecordedResponse>, principal?: string): Promise<RecordedResponse & { replayed: boolean }> {
    const k = principal === undefined ? this.keys.idempotency(key) : this.keys.idempotencyOf(principal, key);
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const res = await etcdCall('read idempotency record', () => this.client.kv.txn({ success: [op.get(k)] }));
      const kv = firstKv(res.responses[0]);
      const now = this.clock.wallMs();
      let expiredRevision = 0n;
      if (kv) {
        const rec = parseJsonValue(kv.value);
        const age = typeof rec.createdAtMs === 'number' ? now - rec.createdAtMs : Infinity;
        const live = rec.pending === true ? age < PENDING_TTL_MS : age < this.ttlMs;
        if (live) {
          if (rec.requestHash !== requestHash) {
            throw new BatonError('IDEMPOTENCY_MISMATCH', 'Idempotency-Key was already used for a different request', { key });
          }
          if (rec.pending === true) throw new BatonError('CONFLICT', 'a request with this Idempotency-Key is still in progress; retry later', { key });
          const response = rec.response as RecordedResponse | undefined;
          if (!response) throw new BatonError('CONFLICT', 'Idempotency-Key belongs to an operation request', { key, operationId: rec.operationId });
          return { ...response, replayed: true };
        }
        expiredRevision = toRevision(kv.mod_revision);
      }
      // Claim the key: only one request under it runs at a time.
      const claim = { requestHash, createdAtMs: now, pending: true };
      const claimed = await etcdCall('claim idempotency key', () =>
        this.client.kv.txn({
          compare: [expiredRevision === 0n ? compare.absent(k) : compare.modRevision(k, expiredRevision)],
          success: [op.put(k, JSON.stringify(claim))],
        }),
      );
      if (!claimed.succeeded) continue; // another request claimed it first: read again
      const claimRevision = toRevision(claimed.header.revision);
      let response: RecordedResponse;
      try {
        response = await apply();
      } catch (err) {
        // Nothing was done (or it failed): free the key for a retry, if it is still our claim.
        await etcdCall('release idempotency key', () =>
          this.client.kv.txn({ compare: [compare.modRevision(k, claimRevision)], success: [op.del(k)] }),
        ).catch(() => undefined);
        throw err;
      }
      const record = { requestHash, createdAtMs: this.clock.wallMs(), response };
      await etcdCall('write idempotency record', () => this.client.kv.txn({ success: [op.put(k, JSON.stringify(record))] }));
      return { ...response, replayed: false };
    }
    throw new BatonError('CONFLICT', 'Idempotency-Key is being claimed concurrently; retry later', { key });
  }
}
