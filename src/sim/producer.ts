// Block production of an active node: one block per block time, one at a time, each made only
// while the lease holds. Order per block: make it, push it to the peers, then log it: a block is
// logged only once it has left the node, so a SIGKILL can leave a block unlogged at its producer
// (a gap) but never logged and unseen by the peers (which would become a fork after a failover).
// Under a commit-mode lease the block is committed to Baton first and only then appended, pushed and
// logged; a fenced commit drops it and ends production, a commit Baton did not answer is retried.
import { performance } from 'node:perf_hooks';
import type { BlockChain, SimBlock } from './chain.js';
import type { CommitOutcome } from './committer.js';
import type { Lease, LeaseClock } from './lease.js';

export interface ProducerDeps {
  chain: BlockChain;
  clock: LeaseClock;
  nodeId: string;
  blockTimeMs: number;
  /** The `stall` fault: stay active, make nothing. */
  stalled(): boolean;
  /** Pushes to every peer; settles within `deadlineMs`, never rejects. */
  push(blocks: SimBlock[], deadlineMs: number): Promise<void>;
  logBlock(block: SimBlock): void;
  /** Commit mode: commits the block to Baton (settles within `deadlineMs`, never rejects). */
  commit(block: SimBlock, deadlineMs: number): Promise<CommitOutcome>;
  /** Commit mode: Baton refused the block; the node must stop producing under this lease. */
  onFenced(lease: Lease, outcome: Extract<CommitOutcome, { kind: 'fenced' }>): void;
}

interface InFlight {
  block: SimBlock;
  logged: boolean;
}

/** How long one commit may take; it is retried (same block) while the lease allows. */
const COMMIT_DEADLINE_MS = 250;
const COMMIT_RETRY_MS = 25;

export class BlockProducer {
  /** Blocks made since the node started. */
  produced = 0;
  private lease: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: InFlight | undefined;
  private commitMarker: InFlight | undefined;

  constructor(private readonly deps: ProducerDeps) {}

  /** Commit mode: a block is on its way to Baton (its outcome is not known yet). */
  get committing(): boolean {
    return this.inFlight !== undefined && this.inFlight === this.commitMarker;
  }

  /** The peers' deadline for a pushed block: min(100 ms, block time / 2). */
  get pushDeadlineMs(): number {
    return Math.max(1, Math.min(100, Math.floor(this.deps.blockTimeMs / 2)));
  }

  /** Produce under `lease` (its nextBlockAt says when the first block is due). */
  start(lease: Lease): void {
    this.lease = lease;
    this.schedule();
  }

  /** Ends production at the current head: a block still on its way is logged now, as part of it. */
  stop(): void {
    this.lease = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight) this.log(this.inFlight);
    this.inFlight = undefined;
  }

  /** A crash: nothing more is logged, not even the block on its way. */
  silence(): void {
    if (this.inFlight) this.inFlight.logged = true;
    this.stop();
  }

  private schedule(): void {
    const lease = this.lease;
    if (!lease || this.timer || this.inFlight) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.produce();
      },
      Math.max(0, lease.nextBlockAt - performance.now()),
    );
  }

  private produce(): void {
    const lease = this.lease;
    if (!lease || this.inFlight) return;
    const { blockTimeMs } = this.deps;
    const now = performance.now();
    lease.nextBlockAt += blockTimeMs;
    if (lease.nextBlockAt < now) lease.nextBlockAt = now + blockTimeMs; // woke from a pause
    const timeMs = Date.now();
    // Only a block whose push can finish before the lease ends: once a lease is over, each of its
    // blocks is logged and at the peers (or its push failed), none is still on its way.
    const budgetMs = lease.mode === 'commit' ? COMMIT_DEADLINE_MS + this.pushDeadlineMs : this.pushDeadlineMs;
    if (this.deps.stalled() || !this.deps.clock.validFor(lease, budgetMs, now, timeMs)) {
      this.schedule();
      return;
    }
    const block = this.deps.chain.next(lease.term, this.deps.nodeId, timeMs);
    if (lease.mode === 'commit') {
      void this.commitThenPublish(lease, block);
      return;
    }
    this.publish(block);
  }

  /**
   * Commit mode: nothing leaves the node before Baton has committed it. The block is not part of
   * the node's chain until then, so a dropped block leaves no trace; if the node stops while the
   * commit is on its way and it succeeded anyway, the committed head is exact and the next active
   * continues from it (node.ts adopts it on start).
   */
  private async commitThenPublish(lease: Lease, block: SimBlock): Promise<void> {
    const marker: InFlight = { block, logged: true }; // holds the slot; not logged by stop()
    this.inFlight = marker;
    this.commitMarker = marker;
    for (;;) {
      const outcome = await this.deps.commit(block, COMMIT_DEADLINE_MS);
      if (this.inFlight !== marker || this.lease !== lease) return; // stopped meanwhile: dropped
      if (outcome.kind === 'committed') break;
      if (outcome.kind === 'fenced') {
        this.inFlight = undefined;
        this.deps.onFenced(lease, outcome);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, COMMIT_RETRY_MS));
      if (this.inFlight !== marker || this.lease !== lease) return;
      if (!this.deps.clock.validFor(lease, COMMIT_DEADLINE_MS + this.pushDeadlineMs, performance.now(), Date.now())) {
        // The lease ends before another commit and push could finish: keep the block back. It may
        // still have been committed by an earlier try; then the next active continues from it.
        this.inFlight = undefined;
        return;
      }
    }
    this.inFlight = undefined;
    // Committed: it belongs to the chain whatever the lease does now, so it is published.
    this.publish(block);
  }

  private publish(block: SimBlock): void {
    this.deps.chain.append(block);
    this.produced++;
    const flight: InFlight = { block, logged: false };
    this.inFlight = flight;
    void this.deps.push([block], this.pushDeadlineMs).finally(() => {
      if (this.inFlight !== flight) return; // stopped meanwhile: already logged (or crashed)
      this.inFlight = undefined;
      this.log(flight);
      this.schedule();
    });
  }

  private log(flight: InFlight): void {
    if (flight.logged) return;
    flight.logged = true;
    this.deps.logBlock(flight.block);
  }
}
