// Block production of an active node: one block per block time, one at a time, each made only
// while the lease holds. Order per block: make it, push it to the peers, then log it: a block is
// logged only once it has left the node, so a SIGKILL can leave a block unlogged at its producer
// (a gap) but never logged and unseen by the peers (which would become a fork after a failover).
import { performance } from 'node:perf_hooks';
import type { BlockChain, SimBlock } from './chain.js';
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
}

interface InFlight {
  block: SimBlock;
  logged: boolean;
}

export class BlockProducer {
  /** Blocks made since the node started. */
  produced = 0;
  private lease: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: InFlight | undefined;

  constructor(private readonly deps: ProducerDeps) {}

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
    if (this.deps.stalled() || !this.deps.clock.validFor(lease, this.pushDeadlineMs, now, timeMs)) {
      this.schedule();
      return;
    }
    const block = this.deps.chain.next(lease.term, this.deps.nodeId, timeMs);
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
