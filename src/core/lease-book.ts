// What a supervisor knows about the node leases it granted: for every node, the latest instant its
// lease could still be valid. A grant sent at s with TTL t can be accepted by the node as late as
// s + RPC deadline (a node refuses calls past their deadline), and then lasts t from acceptance.
// The node judges that deadline on its own wall clock (not_after_unix_ms: a relative one restarts
// when a frozen node wakes), so a node clock behind ours by up to the allowed skew stretches the
// bound by that much: s + deadline + skew + t.
import type { FencingMode } from './chain.js';
import type { LeaseView } from './decide.js';

/** How often a healthy active's lease is renewed, as a fraction of its TTL. */
const RENEW_FRACTION = 0.2;

/** How often a healthy active with a lease of `ttlMs` is renewed (ms). */
export function renewIntervalMs(ttlMs: number): number {
  return Math.max(1, Math.floor(ttlMs * RENEW_FRACTION));
}

export class LeaseBook {
  private readonly bound = new Map<string, number>();
  private lastGrantOkSentMs: number | undefined;
  private inheritedWaived = false;

  /**
   * @param acquiredAtMs when this replica became the chain's supervisor: a grant sent by the
   *   previous supervisor cannot have been sent after that, so it ends by acquiredAt + window + TTL.
   * @param maxClockSkewMs how far a node's wall clock may be behind this replica's (config
   *   node.maxClockSkewMs); part of every bound, with the deadline.
   */
  constructor(
    private readonly acquiredAtMs: number,
    deadlineMs: number,
    maxClockSkewMs: number,
  ) {
    if (!(maxClockSkewMs >= 0)) throw new RangeError(`maxClockSkewMs must be >= 0, got ${maxClockSkewMs}`);
    this.windowMs = deadlineMs + maxClockSkewMs;
  }

  /** From a grant's send time to the latest instant a node may accept it, as this replica sees it. */
  private readonly windowMs: number;

  /**
   * A grant is about to be sent; returns its send time. A grant under a commit-mode term does not
   * need waiting out: its holder cannot publish a block once a newer term exists (every block is
   * committed in a txn on the term first), so only lease-mode grants bound the wait.
   */
  sent(nodeId: string, nowMs: number, ttlMs: number, mode: FencingMode): number {
    if (mode === 'lease') {
      const bound = nowMs + this.windowMs + ttlMs;
      this.bound.set(nodeId, Math.max(this.bound.get(nodeId) ?? 0, bound));
    }
    return nowMs;
  }

  /** The node accepted the grant sent at `sentAtMs` (start, renewal or handoff). */
  confirmed(sentAtMs: number): void {
    this.lastGrantOkSentMs = sentAtMs;
  }

  /** A new term: no grant under it has been confirmed yet. */
  newTerm(): void {
    this.lastGrantOkSentMs = undefined;
  }

  /** The previous supervisor's grants were all under commit-mode terms: none needs waiting out. */
  waiveInherited(): void {
    this.inheritedWaived = true;
  }

  /**
   * Whether a lease-mode grant this supervisor knows of (its own, or its predecessor's unless
   * waived) may still be valid: written with a new term, so that a successor does not waive it.
   */
  leaseGrantsLive(nowMs: number, ttlMs: number): boolean {
    if (!this.inheritedWaived && nowMs < this.acquiredAtMs + this.windowMs + ttlMs) return true;
    return [...this.bound.values()].some((bound) => nowMs < bound);
  }

  view(leaderId: string | undefined, ttlMs: number): LeaseView {
    let oldLeasesEndMs = this.inheritedWaived ? 0 : this.acquiredAtMs + this.windowMs + ttlMs;
    for (const [nodeId, bound] of this.bound) {
      if (nodeId !== leaderId) oldLeasesEndMs = Math.max(oldLeasesEndMs, bound);
    }
    return {
      oldLeasesEndMs,
      lastGrantSentMs: this.lastGrantOkSentMs,
      renewIntervalMs: renewIntervalMs(ttlMs),
    };
  }
}
