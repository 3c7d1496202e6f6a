// The fleet-wide failover slots 0..max-1 (the cap on concurrent failovers), taken by one replica
// session under its lease. A slot key holds `<replicaId>/<nonce>`, one nonce per take.
//
// A take whose reply is lost (its deadline fired, e.g. etcd traffic held back) may still land
// later, after the undo sent for it; a release can fail the same way. Such a key belongs to no
// failover, yet it stays under the replica's lease for the life of the session, and with the
// default cap of 2, two of them stopped every failover in the fleet (seen in a drill: a chain
// without a producer for 60 s). So the session remembers the nonces it holds and sweeps its
// own keys that carry any other nonce: when it finds every slot taken, and every SWEEP_MS while
// it lives.
import { randomUUID } from 'node:crypto';
import type { ITxnRequest, ITxnResponse } from 'etcd3';
import { BatonError } from '../../core/errors.js';
import { compare, op, rangeKvs } from './client.js';
import type { EtcdKeys } from './keys.js';

export const SWEEP_MS = 5000;

export interface FailoverSlotsDeps {
  readonly keys: EtcdKeys;
  readonly replicaId: string;
  readonly leaseId: string;
  readonly txn: (what: string, req: ITxnRequest) => Promise<ITxnResponse>;
  /** Throws unless the session may act (its lease is proven). */
  readonly assertLive: () => void;
}

export class FailoverSlots {
  /** Nonces of the takes in flight or held; any other nonce of ours in etcd is an orphan. */
  private readonly mine = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: FailoverSlotsDeps) {}

  /** Sweeps orphans every SWEEP_MS until stop(). */
  start(): void {
    this.timer = setInterval(() => void this.sweep().catch(() => undefined), SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Takes one of the slots 0..max-1 (put-if-absent), or returns undefined when all are taken. One
   * replica may hold several slots (one per failover it runs), so a held slot is never adopted.
   */
  async acquire(max: number): Promise<(() => Promise<void>) | undefined> {
    if (!Number.isInteger(max) || max < 0) throw new BatonError('INVALID_ARGUMENT', `failover slot count ${max} must be an integer >= 0`);
    const taken = await this.take(max);
    if (taken || max === 0) return taken;
    // All taken: some may be our own orphans. Sweep only then, off the usual failover path.
    const swept = await this.sweep().catch(() => 0);
    return swept > 0 ? this.take(max) : undefined;
  }

  private async take(max: number): Promise<(() => Promise<void>) | undefined> {
    for (let n = 0; n < max; n++) {
      this.deps.assertLive();
      const key = this.deps.keys.failoverSlot(n);
      const token = `${this.deps.replicaId}/${randomUUID()}`;
      this.mine.add(token);
      let res;
      try {
        res = await this.deps.txn('acquire failover slot', { compare: [compare.absent(key)], success: [op.put(key, token, this.deps.leaseId)] });
      } catch (err) {
        // Maybe taken, maybe not, maybe later: undo now, and the sweep catches a late landing.
        this.mine.delete(token);
        void this.deps.txn('undo failover slot', { compare: [compare.value(key, token)], success: [op.del(key)] }).catch(() => undefined);
        throw err;
      }
      if (!res.succeeded) {
        this.mine.delete(token);
        continue;
      }
      return async () => {
        this.mine.delete(token); // a failed release is swept later
        await this.deps.txn('release failover slot', { compare: [compare.value(key, token)], success: [op.del(key)] });
      };
    }
    return undefined;
  }

  /** Deletes every slot key of this replica whose nonce it does not hold; returns how many. */
  async sweep(): Promise<number> {
    this.deps.assertLive();
    const res = await this.deps.txn('list failover slots', { success: [op.getPrefix(this.deps.keys.failoverSlots())] });
    const prefix = `${this.deps.replicaId}/`;
    let swept = 0;
    for (const kv of rangeKvs(res.responses[0])) {
      const token = kv.value.toString();
      if (!token.startsWith(prefix) || this.mine.has(token)) continue;
      const key = kv.key.toString();
      const del = await this.deps.txn('sweep failover slot', { compare: [compare.value(key, token)], success: [op.del(key)] });
      if (del.succeeded) swept++;
    }
    return swept;
  }
}
