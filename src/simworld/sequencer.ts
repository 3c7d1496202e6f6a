// A simulated sequencer node on virtual time, with the rules of `baton sim` (src/sim/node.ts and
// rules.ts): a term is a fencing token and nothing older than the highest term seen is obeyed; a
// lease runs from the moment the node accepts a grant and the node stops producing by itself when
// it lapses; a standby follows its peers (adopting a divergent branch only when that branch's tip
// has a higher term than its own) and takes gossip that extends its head; handoff is prepare (stop at h,
// ticket bound to term and h) then complete (only at exactly h, only under a newer term).
// Commit mode (src/sim/producer.ts and node.ts): a block is committed to Baton before it leaves the
// node; a refused commit (STALE_TERM, NOT_LEADER, HEAD_MISMATCH) ends production, one Baton did not
// answer is retried (the same block, the next replica) while the lease allows; a start adopts the
// committed head when it is the one block this node never received; no handoff ticket while a
// commit is on its way. Every command it accepts and every block it makes or publishes is reported
// to the world's recorder.
import type { FencingMode } from '../core/chain.js';
import { BatonError } from '../core/errors.js';
import type { NodeReport } from '../core/observation.js';
import type { StartGrant } from '../core/ports.js';
import type { Proc, SimLoop } from './loop.js';
import type { Network } from './network.js';

export interface Block {
  readonly chainId: string;
  readonly number: number;
  readonly hash: string;
  readonly parent: string;
  readonly term: bigint;
  readonly nodeId: string;
  readonly atMs: number;
  /** The fencing mode of the lease it was made under (commit: committed before it was published). */
  readonly mode: FencingMode;
}

/** What Baton answered a commit (src/sim/committer.ts): go on, stop producing, or try again. */
export type CommitOutcome = { kind: 'committed' } | { kind: 'fenced'; code: string } | { kind: 'retry' };

export interface NodeRecorder {
  accepted(node: SimSequencer, rpc: string, term: bigint): void;
  activated(node: SimSequencer, term: bigint, mode: FencingMode): void;
  /** A block was made (commit mode: not yet published). */
  made(block: Block): void;
  /** A block became available to peers: made here and published, or adopted from the committed head. */
  published(node: SimSequencer, block: Block, how: 'produced' | 'adopted'): void;
  /** Commit mode: Baton refused a commit (the node stops producing). */
  refused(node: SimSequencer, block: Block, code: string): void;
  /** The block with this hash, if any node ever made it (a node verifies an adopted head so). */
  known(hash: string): Block | undefined;
  newHash(): string;
}

export interface SequencerOptions {
  blockTimeMs: number;
  followIntervalMs: number;
  /** BROKEN VARIANT (tests only): obey commands with a term lower than the highest seen. */
  acceptLowerTerms?: boolean;
  /** Commit mode: commits a block to Baton over the network (settles by its deadline, never rejects). */
  commit?: (block: Block, deadlineMs: number) => Promise<CommitOutcome>;
  /** BROKEN VARIANT (tests only): commit mode publishes a block first and commits it afterwards. */
  publishBeforeCommit?: boolean;
}

export interface Lease {
  term: bigint;
  expiresAt: number;
  ticket: string | undefined;
  mode: FencingMode;
}

/** How long one commit may take, and the pause before the same block is tried again (producer.ts). */
export const COMMIT_DEADLINE_MS = 250;
const COMMIT_RETRY_MS = 25;

const FOLLOW_BACK = 16;
const FOLLOW_MAX = 256;

export class SimSequencer {
  blocks: Block[];
  highestTerm = 0n;
  lease: Lease | undefined;
  unhealthy = false;
  lagging = false;
  private prepared: { term: bigint; ticket: string; number: number; hash: string } | undefined;
  private peerIndex = 0;
  private producing = false;
  /** Commit mode: the block on its way to Baton (its outcome not known yet). */
  private committing: Block | undefined;
  peers: SimSequencer[] = [];

  constructor(
    readonly chainId: string,
    readonly nodeId: string,
    readonly proc: Proc,
    genesis: Block,
    private readonly loop: SimLoop,
    private readonly net: Network,
    private readonly recorder: NodeRecorder,
    private readonly opts: SequencerOptions,
  ) {
    this.blocks = [genesis];
    this.follow();
  }

  get head(): Block {
    return this.blocks[this.blocks.length - 1]!;
  }

  /** Holds a lease that has not run out (invariant 1 counts these). */
  leaseValid(now = this.loop.now()): boolean {
    return this.proc.alive && this.lease !== undefined && now < this.lease.expiresAt;
  }

  // ---- lifecycle faults ----

  crash(): void {
    this.proc.alive = false;
    this.proc.epoch++;
    this.lease = undefined;
    this.producing = false;
    this.committing = undefined;
  }

  /** Restarts with its blocks and highest term (kept on disk), inactive. */
  restart(): void {
    if (this.proc.alive) return;
    this.proc.alive = true;
    this.proc.pausedUntil = 0;
    this.follow();
  }

  // ---- ControlService ----

  health(): NodeReport {
    const head = this.head;
    const producing = this.leaseValid();
    return {
      healthy: !this.unhealthy,
      headNumber: head.number,
      headHash: head.hash,
      headParentHash: head.parent,
      headL1Origin: '',
      headTimestamp: Math.floor(head.atMs / 1000),
      producing,
      term: producing ? this.lease!.term : 0n,
      highestTerm: this.highestTerm,
      leaseRemainingMs: producing ? this.lease!.expiresAt - this.loop.now() : 0,
      chainId: this.chainId,
      genesisHash: '',
      version: 'sim',
      peerCount: this.peers.length,
      lastError: this.unhealthy ? 'unhealthy (fault)' : '',
    };
  }

  start(grant: StartGrant): void {
    const term = grant.term;
    this.refuseStale(term);
    const head = grant.head;
    // Refused before anything changes, as src/sim/node.ts does: a repeated start of the active term
    // may carry the node's own block whose commit has not answered yet as the committed head;
    // adopting it here and publishing it once the commit answers appended it twice, and every
    // height above it pointed one block too low from then on (simworld seed 7000008: HEAD_MISMATCH
    // on every later start).
    if (this.lease?.term === term && this.leaseValid()) throw new BatonError('ALREADY_ACTIVE', `already active under term ${term}`);
    // A committed block that never left its producer (it stopped or died between commit and
    // publish) is one past this node's head: adopt it (src/sim/node.ts adoptCommitted). In either
    // mode: a chain switched from commit to lease mode starts its lease term from that head too,
    // and no node holds it (the simulator found that stall).
    if (head) this.adoptCommitted(head);
    if (head) {
      const have = this.blocks[head.number];
      if (!have) throw new BatonError('HEAD_BEHIND', `head behind: have ${this.head.number} need ${head.number}`);
      if (head.hash !== '' && have.hash !== head.hash) throw new BatonError('HEAD_MISMATCH', `head mismatch at ${head.number}`);
    }
    this.activate(term, grant.ttlMs, undefined, 'start', grant.mode);
  }

  renew(term: bigint, ttlMs: number): void {
    this.refuseStale(term);
    this.requireActive(term);
    this.raise(term);
    this.lease!.expiresAt = this.loop.now() + ttlMs;
    this.recorder.accepted(this, 'renew', term);
  }

  stop(term: bigint): void {
    this.refuseStale(term);
    this.raise(term);
    this.recorder.accepted(this, 'stop', term);
    this.deactivate();
  }

  prepareHandoff(term: bigint): { ticket: string; number: number; hash: string } {
    this.refuseStale(term);
    if (this.prepared?.term === term) return this.prepared;
    this.requireActive(term);
    // Commit mode: a block whose commit has not answered may be committed already; a ticket for the
    // head below it would hand the target a head behind the committed one.
    if (this.committing) throw new BatonError('UNAVAILABLE', 'a block is being committed; ask again once it is done');
    this.raise(term);
    this.recorder.accepted(this, 'prepare', term);
    this.deactivate();
    const head = this.head;
    this.prepared = { term, ticket: `${this.chainId}/${term}/${head.number}/${head.hash}`, number: head.number, hash: head.hash };
    return this.prepared;
  }

  completeHandoff(ticket: { ticket: string; term: bigint; number: number; hash: string }, term: bigint, ttlMs: number, mode: FencingMode): void {
    if (!ticket.ticket.startsWith(`${this.chainId}/`)) throw new BatonError('BAD_TICKET', 'bad ticket: another chain');
    if (term <= ticket.term) throw new BatonError('STALE_TERM', `stale term ${term}: must be greater than the ticket's term ${ticket.term}`);
    this.refuseStale(term);
    if (this.lease?.term === term && this.leaseValid()) {
      if (this.lease.ticket === ticket.ticket) return;
      throw new BatonError('ALREADY_ACTIVE', `already active under term ${term}`);
    }
    const have = this.blocks[ticket.number];
    if (!have || have.hash !== ticket.hash || this.head.number !== ticket.number) {
      throw new BatonError(have ? 'HEAD_MISMATCH' : 'HEAD_BEHIND', `head is not exactly ${ticket.number}`);
    }
    this.activate(term, ttlMs, ticket.ticket, 'complete', mode);
  }

  // ---- production ----

  private activate(term: bigint, ttlMs: number, ticket: string | undefined, rpc: string, mode: FencingMode): void {
    this.raise(term);
    this.prepared = undefined;
    this.lease = { term, expiresAt: this.loop.now() + ttlMs, ticket, mode };
    this.recorder.accepted(this, rpc, term);
    this.recorder.activated(this, term, mode);
    if (!this.producing) {
      this.producing = true;
      this.proc.scheduler().after(this.opts.blockTimeMs, () => this.produce());
    }
  }

  private deactivate(): void {
    this.lease = undefined;
  }

  private produce(): void {
    this.producing = false;
    const lease = this.lease;
    if (!lease) return;
    if (!this.leaseValid()) {
      this.lease = undefined; // lapsed: stop by itself
      return;
    }
    // Commit mode: only a block whose commit can be answered before the lease ends (producer.ts).
    if (lease.mode === 'commit' && !this.leaseValid(this.loop.now() + COMMIT_DEADLINE_MS)) return this.nextSlot();
    const head = this.head;
    const block: Block = {
      chainId: this.chainId,
      number: head.number + 1,
      hash: this.recorder.newHash(),
      parent: head.hash,
      term: lease.term,
      nodeId: this.nodeId,
      atMs: this.loop.now(),
      mode: lease.mode,
    };
    this.recorder.made(block);
    if (lease.mode === 'commit') {
      if (this.opts.publishBeforeCommit) this.publish(block);
      this.producing = true; // the slot is taken until the commit is answered
      this.committing = block;
      void this.commitThenPublish(lease, block, this.proc.epoch);
      return;
    }
    this.publish(block);
    this.nextSlot();
  }

  private nextSlot(): void {
    this.producing = true;
    this.proc.scheduler().after(this.opts.blockTimeMs, () => this.produce());
  }

  private publish(block: Block): void {
    this.blocks.push(block);
    this.recorder.published(this, block, 'produced');
    for (const p of this.peers) this.net.send(this.proc, p.proc, () => p.gossip(block));
  }

  /**
   * Nothing leaves the node before Baton committed it. Stopped meanwhile (a stop, a handoff, a new
   * start, the lease ran out): the block is dropped; if its commit succeeded anyway, the committed
   * head is exact and the next active adopts it.
   */
  private async commitThenPublish(lease: Lease, block: Block, epoch: number): Promise<void> {
    const commit = this.opts.commit;
    const current = () => this.proc.epoch === epoch && this.committing === block;
    const stillOurs = () => current() && this.lease === lease && this.leaseValid();
    for (;;) {
      const outcome: CommitOutcome = commit ? await commit(block, COMMIT_DEADLINE_MS) : { kind: 'retry' };
      if (!current()) return; // crashed meanwhile: its timers and answers are gone
      if (!stillOurs()) return this.endCommit();
      if (outcome.kind === 'committed') break;
      if (outcome.kind === 'fenced') {
        this.recorder.refused(this, block, outcome.code);
        this.lease = undefined; // the term is over (or the block is wrong): stop producing
        return this.endCommit();
      }
      await new Promise<void>((resolve) => this.proc.scheduler().after(COMMIT_RETRY_MS, resolve));
      if (!current()) return;
      // The lease ends before another try could be answered: keep the block back.
      if (!stillOurs() || !this.leaseValid(this.loop.now() + COMMIT_DEADLINE_MS)) return this.endCommit();
    }
    this.committing = undefined;
    if (!this.opts.publishBeforeCommit) this.publish(block);
    this.nextSlot();
  }

  private endCommit(): void {
    this.committing = undefined;
    this.nextSlot();
  }

  /** Appends the committed head when it is exactly the next block of this node's chain. */
  private adoptCommitted(head: NonNullable<StartGrant['head']>): void {
    if (head.number !== this.head.number + 1 || head.parentHash !== this.head.hash) return;
    const block = this.recorder.known(head.hash);
    if (!block || block.number !== head.number || block.parent !== this.head.hash) return;
    this.blocks.push(block);
    this.recorder.published(this, block, 'adopted');
  }

  private gossip(b: Block): void {
    if (this.lease || this.lagging) return;
    if (b.number === this.head.number + 1 && b.parent === this.head.hash) this.blocks.push(b);
  }

  // ---- following ----

  private follow(): void {
    this.proc.scheduler().after(this.opts.followIntervalMs, () => {
      if (!this.proc.alive) return;
      this.follow();
      if (this.lease || this.lagging || this.peers.length === 0) return;
      const peer = this.peers[this.peerIndex++ % this.peers.length]!;
      const from = Math.max(1, this.head.number - FOLLOW_BACK);
      this.net
        .call(this.proc, peer.proc, this.opts.followIntervalMs, () => peer.blocks.slice(from, from + FOLLOW_MAX), () => new Error('timeout'), true)
        .then((blocks) => this.adopt(blocks), () => undefined);
    });
  }

  private adopt(blocks: readonly Block[]): void {
    if (this.lease || this.lagging || !this.proc.alive) return;
    const peerTip = blocks[blocks.length - 1];
    for (const b of blocks) {
      const mine = this.blocks[b.number];
      if (mine?.hash === b.hash) continue;
      if (mine) {
        // Divergence: the branch whose tip has the later term wins (a later term can only come
        // from a later leader). Not the first divergent block's term, as src/sim/follower.ts
        // does: a leader may build on an old-term block, and its later blocks must not lose to
        // an older leader's (the simulator found that dropping a recorded head).
        if (peerTip!.term <= this.head.term || this.blocks[b.number - 1]?.hash !== b.parent) return;
        this.blocks.length = b.number;
      }
      if (b.number !== this.head.number + 1 || b.parent !== this.head.hash) return;
      this.blocks.push(b);
    }
  }

  // ---- checks ----

  private refuseStale(term: bigint): void {
    if (this.opts.acceptLowerTerms) return;
    if (term < this.highestTerm) throw new BatonError('STALE_TERM', `stale term ${term} < highest ${this.highestTerm}`);
  }

  private requireActive(term: bigint): void {
    if (!this.lease || this.lease.term !== term) throw new BatonError('NOT_ACTIVE', `not active under term ${term}`);
    if (!this.leaseValid()) {
      this.lease = undefined;
      throw new BatonError('LEASE_EXPIRED', `lease expired for term ${term}`);
    }
  }

  private raise(term: bigint): void {
    if (term > this.highestTerm) this.highestTerm = term;
  }
}
