// Group commit for head commits: while one etcd request is on its way, the commits that arrive meanwhile
// wait and then go out together as ONE etcd txn whose success branch holds each commit's own txn
// (etcd's nested txns). Every inner txn keeps its own compares and its own outcome, so batching
// changes no commit's meaning: it only spends one request, one raft entry and one apply on many
// chains. An idle store sends a lone commit at once (no added latency); a busy one sends bigger
// batches. etcd refuses a txn that writes one key twice, so a batch holds at most one commit per
// chain (the others wait for the next batch: one chain's commits stay in order), and at most
// `maxBatch` (etcd's --max-txn-ops, 128 by default, bounds the ops of one txn level).
//
// A commit that waited longer than `maxWaitMs` for its batch is refused (STORE_UNAVAILABLE) without
// being sent: its node gave up long ago and has sent it again. Without that bound an overloaded
// replica's queue held every retry of every commit (one per chain per batch), and grew without end.
import type { ITxnRequest, ITxnResponse } from 'etcd3';
import { BatonError } from '../../core/errors.js';

export interface InnerTxnResult {
  readonly succeeded: boolean;
  readonly responses: ITxnResponse['responses'];
  /** Revision of the whole batch (every write in it has this mod revision). */
  readonly revision: string;
}

interface Pending {
  readonly chainId: string;
  /** When it was submitted (`now`, monotonic ms). */
  readonly atMs: number;
  readonly txn: ITxnRequest;
  resolve(r: InnerTxnResult): void;
  reject(err: unknown): void;
}

export class CommitBatcher {
  private queue: Pending[] = [];
  private inFlight = false;

  constructor(
    private readonly send: (req: ITxnRequest) => Promise<ITxnResponse>,
    private readonly maxBatch = 64,
    private readonly maxWaitMs = Infinity,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Runs `txn` (one chain's commit) in the next batch. */
  submit(chainId: string, txn: ITxnRequest): Promise<InnerTxnResult> {
    return new Promise<InnerTxnResult>((resolve, reject) => {
      this.queue.push({ chainId, txn, atMs: this.now(), resolve, reject });
      if (!this.inFlight) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch: Pending[] = [];
      const chains = new Set<string>();
      const rest: Pending[] = [];
      const now = this.now();
      for (const p of this.queue) {
        if (now - p.atMs > this.maxWaitMs) {
          p.reject(new BatonError('STORE_UNAVAILABLE', `commit of ${p.chainId} waited ${Math.round(now - p.atMs)} ms for its batch (limit ${this.maxWaitMs}); not sent`));
        } else if (batch.length < this.maxBatch && !chains.has(p.chainId)) {
          batch.push(p);
          chains.add(p.chainId);
        } else {
          rest.push(p);
        }
      }
      this.queue = rest;
      if (batch.length === 0) continue;
      this.inFlight = true;
      try {
        const res = await this.send(batch.length === 1 ? batch[0]!.txn : { success: batch.map((p) => ({ request_txn: p.txn })) });
        const revision = res.header.revision;
        if (batch.length === 1) {
          batch[0]!.resolve({ succeeded: res.succeeded, responses: res.responses, revision });
        } else {
          batch.forEach((p, i) => {
            const inner = res.responses[i]?.response_txn;
            if (inner) p.resolve({ succeeded: inner.succeeded, responses: inner.responses, revision });
            else p.reject(new Error('etcd answered a batched commit without its inner txn'));
          });
        }
      } catch (err) {
        for (const p of batch) p.reject(err);
      } finally {
        this.inFlight = false;
      }
    }
  }
}
