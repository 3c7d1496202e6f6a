// Commit-gated fencing: the rule that decides whether a node may commit a new unsafe head. Pure, so
// every store applies the same judgement to what it read; the store's txn then makes the judgement
// race-free by comparing the leader term and the head revision it was made on.
import type { FencingMode, UnsafeHead } from './chain.js';
import { BatonError } from './errors.js';
import type { Term } from './term.js';

/** A head a node asks to commit: the block it is about to gossip, under the term it holds. */
export interface HeadCommit {
  readonly chainId: string;
  readonly nodeId: string;
  readonly term: Term;
  readonly head: UnsafeHead;
}

/** What the store read: the leader's term, node and fencing mode, and the recorded head. */
export interface CommitBase {
  readonly term: Term;
  readonly leaderNodeId: string;
  /** Fixed with the term: the leader key is written only when the term changes. */
  readonly mode: FencingMode;
  readonly head: UnsafeHead | undefined;
}

export interface CommitResult {
  readonly head: UnsafeHead;
  /** The head key's mod revision after the commit. */
  readonly revision: bigint;
  /** True when the same head was already committed (a retry): nothing was written. */
  readonly duplicate: boolean;
}

/**
 * 'write' when `commit` extends the recorded head by exactly one block under the current term,
 * 'duplicate' when it is the recorded head itself. Otherwise throws: STALE_TERM (the term is not
 * the current one: the node must stop producing), NOT_LEADER (the term belongs to another node),
 * NOT_COMMIT_MODE (a lease-mode term: its node was never told to commit, and the supervisor
 * records its heads instead; nothing in Baton commits under one), HEAD_MISMATCH (wrong parent, a gap, or another hash at a committed height).
 */
export function judgeCommit(base: CommitBase | undefined, commit: HeadCommit): 'write' | 'duplicate' {
  const { chainId, nodeId, term, head } = commit;
  if (base === undefined || base.term !== term) {
    throw new BatonError('STALE_TERM', `term ${term} is not the current term of ${chainId}`, {
      chainId,
      term: term.toString(),
      currentTerm: base?.term.toString() ?? null,
    });
  }
  if (base.leaderNodeId !== nodeId) {
    throw new BatonError('NOT_LEADER', `term ${term} of ${chainId} belongs to ${base.leaderNodeId}, not ${nodeId}`, {
      chainId,
      term: term.toString(),
      leader: base.leaderNodeId,
      nodeId,
    });
  }
  if (base.mode !== 'commit') {
    throw new BatonError('NOT_COMMIT_MODE', `term ${term} of ${chainId} is a ${base.mode}-mode term: its heads are not committed`, {
      chainId,
      term: term.toString(),
      mode: base.mode,
    });
  }
  const recorded = base.head;
  if (recorded !== undefined && head.number === recorded.number && head.hash === recorded.hash) return 'duplicate';
  const expected = recorded === undefined ? undefined : recorded.number + 1;
  if (expected !== undefined && head.number !== expected) {
    const why = head.number <= recorded!.number ? 'another hash at a committed height' : 'a gap after the recorded head';
    throw new BatonError('HEAD_MISMATCH', `head ${head.number} of ${chainId} is ${why} (recorded ${recorded!.number})`, {
      chainId,
      reason: head.number <= recorded!.number ? 'committed-height' : 'gap',
      recorded: recorded!.number,
      offered: head.number,
    });
  }
  if (recorded !== undefined && head.parentHash !== recorded.hash) {
    throw new BatonError('HEAD_MISMATCH', `head ${head.number} of ${chainId} does not extend the recorded head ${recorded.number}`, {
      chainId,
      reason: 'parent',
      recordedHash: recorded.hash,
      parentHash: head.parentHash,
    });
  }
  return 'write';
}
