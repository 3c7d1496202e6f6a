// Commit mode's path from a node to Baton (baton.v1 CommitUnsafeHead) in the simulated world. Each
// replica incarnation serves head commits with the real EtcdChainStore.commitHead (judgeCommit and
// the txn fenced on term and head revision, batched like production), over an etcd link of its
// own that shares the replica's process: its pauses, crashes and partitions apply. A node commits
// to one replica at a time over the simulated network and moves to the next when one does not
// answer in time, like src/sim/committer.ts.
import { EtcdChainStore } from '../adapters/etcd/chain-store.js';
import type { CommitResult, HeadCommit } from '../core/commit.js';
import { isBatonError } from '../core/errors.js';
import type { Proc } from './loop.js';
import type { Network } from './network.js';
import type { Block, CommitOutcome } from './sequencer.js';

/** One replica incarnation's commit service. */
export interface CommitService {
  readonly proc: Proc;
  commitHead(commit: HeadCommit): Promise<CommitResult>;
}

export function commitService(proc: Proc, store: EtcdChainStore): CommitService {
  return { proc, commitHead: (commit) => store.commitHead(commit) };
}

const FENCING_CODES = ['STALE_TERM', 'NOT_LEADER', 'NOT_COMMIT_MODE', 'HEAD_MISMATCH'] as const;

/** A node's client of the replicas' commit services. */
export class SimHeadCommitter {
  private next = 0;

  constructor(
    private readonly from: Proc,
    private readonly net: Network,
    /** The current incarnation of every replica (a restarted replica is a new one). */
    private readonly services: () => readonly CommitService[],
  ) {}

  async commit(block: Block, deadlineMs: number): Promise<CommitOutcome> {
    const services = this.services();
    const service = services[this.next % services.length];
    if (!service) return { kind: 'retry' };
    const commit: HeadCommit = {
      chainId: block.chainId,
      nodeId: block.nodeId,
      term: block.term,
      head: {
        number: block.number,
        hash: block.hash,
        parentHash: block.parent,
        term: block.term,
        nodeId: block.nodeId,
        l1Origin: '',
        timestamp: Math.floor(block.atMs / 1000),
      },
    };
    try {
      await this.net.callAsync(this.from, service.proc, deadlineMs, () => service.commitHead(commit), () => new Error('commit deadline exceeded'), true);
      return { kind: 'committed' };
    } catch (err) {
      const code = FENCING_CODES.find((c) => isBatonError(err, c));
      if (code) return { kind: 'fenced', code };
      this.next++; // this replica did not answer (or could not): the next try goes to another
      return { kind: 'retry' };
    }
  }
}
