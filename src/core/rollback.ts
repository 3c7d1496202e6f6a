// Break-glass head rollback: an override with `rollbackHead` may set the recorded unsafe head back
// to the forced node's own head, the one exception DESIGN invariant 3 allows ("unless an operator
// explicitly authorises it"). The case it exists for: a lease-mode active died holding the only
// copies of the last recorded blocks; every standby is behind the recorded head, so none can ever
// continue from it and the chain halts for good.
//
// What it still refuses (ROLLBACK_REFUSED), judged on the supervisor's snapshot at execution:
//   - the leader is seen producing under its term (fresh report): rolling back would discard live
//     blocks, the operator wants a plain override or a failover;
//   - the target has never reported: its head is unknown, so there is nothing to roll back to.
// The rollback itself is written in the fenced txn of the new term (see ChainStore.writeLeader).
import { normalizeHex, type ChainPolicy, type HeadRef, type LeaderRecord, type UnsafeHead } from './chain.js';
import type { ErrorCode } from './errors.js';
import { isFresh } from './health.js';
import type { NodeObservation } from './observation.js';

export type RollbackPlan =
  | { readonly kind: 'refused'; readonly code: ErrorCode; readonly message: string }
  /** The target is at or above the recorded head: nothing to roll back. */
  | { readonly kind: 'none'; readonly detail: string }
  | { readonly kind: 'rollback'; readonly from: HeadRef; readonly to: HeadRef; readonly head: UnsafeHead; readonly detail: string };

export interface RollbackInput {
  readonly leader: LeaderRecord | undefined;
  readonly target: string;
  readonly recorded: UnsafeHead | undefined;
  readonly observations: ReadonlyMap<string, NodeObservation>;
  readonly policy: ChainPolicy;
  readonly nowMs: number;
}

/**
 * Whether (and to what) an override with rollbackHead sets the recorded head back. The head it
 * returns is the target's reported head, recorded as held by the target; its `term` is the term
 * the recorded head had (the new term is the txn's own revision, which the txn cannot write into a
 * value: the head key's mod revision, equal to the new term, says when it was recorded).
 */
export function planRollback(i: RollbackInput): RollbackPlan {
  const leaderObs = i.leader ? i.observations.get(i.leader.nodeId) : undefined;
  if (i.leader && isFresh(leaderObs, i.policy, i.nowMs) && leaderObs!.report!.producing && leaderObs!.report!.term === i.leader.term) {
    return {
      kind: 'refused',
      code: 'ROLLBACK_REFUSED',
      message: `${i.leader.nodeId} is producing under term ${i.leader.term} (head ${leaderObs!.report!.headNumber}): rolling the head back would discard live blocks`,
    };
  }
  const report = i.observations.get(i.target)?.report;
  if (!report) {
    return { kind: 'refused', code: 'ROLLBACK_REFUSED', message: `${i.target} has not reported its head yet: nothing to roll back to` };
  }
  const recorded = i.recorded;
  if (!recorded || report.headNumber >= recorded.number) {
    const at = recorded ? `recorded head ${recorded.number}` : 'no recorded head';
    return { kind: 'none', detail: `no rollback: ${i.target} is at head ${report.headNumber}, ${at}` };
  }
  const head: UnsafeHead = {
    number: report.headNumber,
    hash: normalizeHex(report.headHash),
    parentHash: normalizeHex(report.headParentHash ?? ''),
    term: recorded.term,
    nodeId: i.target,
    l1Origin: report.headL1Origin ?? '',
    timestamp: report.headTimestamp ?? 0,
  };
  const from = { number: recorded.number, hash: recorded.hash };
  const to = { number: head.number, hash: head.hash };
  return {
    kind: 'rollback',
    from,
    to,
    head,
    detail: `recorded head rolled back from ${from.number} (${short(from.hash)}) to ${to.number} (${short(to.hash)}), ${i.target}'s head; blocks above ${to.number} are discarded`,
  };
}

function short(hash: string): string {
  return hash.length > 12 ? `${hash.slice(0, 12)}…` : hash;
}
