// Commit mode at the node: before a block leaves the node it is committed to Baton
// (baton.v1.BatonService/CommitUnsafeHead). The answer decides what the node does next:
// `committed` — gossip it; `fenced` — the term is over (STALE_TERM / NOT_LEADER), is not a
// commit-mode term (NOT_COMMIT_MODE) or the block does not extend the committed head
// (HEAD_MISMATCH): drop it and stop producing; `retry` — Baton did not answer (or not in time): try
// the same block again, with the next endpoint.
import * as grpc from '@grpc/grpc-js';
import { grpcStatusOf, unaryCall, type UnaryMethod } from '../adapters/node/grpc.js';
import { ERROR_CODE_KEY } from '../adapters/node/wire.js';
import { BatonServiceService, type CommitUnsafeHeadRequest, type CommitUnsafeHeadResponse } from '../gen/baton/v1/baton.js';
import { hash64 } from '../core/rendezvous.js';
import type { SimBlock } from './chain.js';

export type CommitOutcome = { kind: 'committed' } | { kind: 'fenced'; code: string; reason: string } | { kind: 'retry'; reason: string };

export interface HeadCommitter {
  commit(chainId: string, block: SimBlock, deadlineMs: number): Promise<CommitOutcome>;
  close(): void;
}

const FENCING_CODES = new Set(['STALE_TERM', 'NOT_LEADER', 'NOT_COMMIT_MODE', 'HEAD_MISMATCH']);

/** Commits over gRPC to any of Baton's replicas (any replica serves any chain). */
export class GrpcHeadCommitter implements HeadCommitter {
  private readonly clients: grpc.Client[];
  private next = 0;

  /**
   * `credentials`: the node's mTLS identity towards Baton (its certificate names the principal Baton
   * binds to the node role for this one node); plaintext when absent (insecure dev mode only).
   */
  /**
   * `spreadKey` (the chain id) picks which endpoint is tried first, so that a fleet's commits
   * spread over the replicas instead of all landing on the first one; a chain's nodes share it.
   */
  constructor(endpoints: readonly string[], credentials?: grpc.ChannelCredentials, spreadKey = '') {
    this.clients = endpoints.map((e) => new grpc.Client(e, credentials ?? grpc.credentials.createInsecure()));
    this.next = Number(hash64(spreadKey) % BigInt(Math.max(1, endpoints.length)));
  }

  async commit(chainId: string, block: SimBlock, deadlineMs: number): Promise<CommitOutcome> {
    if (this.clients.length === 0) return { kind: 'retry', reason: 'no Baton endpoint configured (--baton)' };
    const client = this.clients[this.next % this.clients.length]!;
    const request: CommitUnsafeHeadRequest = {
      chainId,
      nodeId: block.nodeId,
      term: block.term,
      head: {
        number: BigInt(block.number),
        hash: block.hash,
        parentHash: block.parent,
        l1Origin: block.l1Origin,
        timestamp: BigInt(Math.floor(block.timeMs / 1000)),
        term: block.term,
        nodeId: block.nodeId,
      },
    };
    try {
      const method = BatonServiceService.commitUnsafeHead as unknown as UnaryMethod<CommitUnsafeHeadRequest, CommitUnsafeHeadResponse>;
      await unaryCall(client, method, request, { deadlineMs });
      return { kind: 'committed' };
    } catch (err) {
      const code = (err as grpc.ServiceError).metadata?.get(ERROR_CODE_KEY)[0];
      if (grpcStatusOf(err) === grpc.status.FAILED_PRECONDITION && typeof code === 'string' && FENCING_CODES.has(code)) {
        return { kind: 'fenced', code, reason: (err as grpc.ServiceError).details };
      }
      this.next++; // this replica did not answer: the next try goes to another
      return { kind: 'retry', reason: err instanceof Error ? err.message : String(err) };
    }
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}

