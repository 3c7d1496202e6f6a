// A simulated sequencer node on virtual time, with the rules of `baton sim` (src/sim/node.ts and
// rules.ts): a term is a fencing token and nothing older than the highest term seen is obeyed; a
// lease runs from the moment the node accepts a grant and the node stops producing by itself when
// it lapses; a standby follows its peers (adopting a divergent branch only when that branch's tip
// has a higher term than its own) and takes gossip that extends its head; handoff is prepare (stop at h,
// ticket bound to term and h) then complete (only at exactly h, only under a newer term).
// Every command it accepts and every block it makes is reported to the world's recorder.
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
}

export interface NodeRecorder {
  accepted(node: SimSequencer, rpc: string, term: bigint): void;
  activated(node: SimSequencer, term: bigint): void;
  produced(node: SimSequencer, block: Block): void;
  newHash(): string;
}

export interface SequencerOptions {
  blockTimeMs: number;
  followIntervalMs: number;
  /** BROKEN VARIANT (tests only): obey commands with a term lower than the highest seen. */
  acceptLowerTerms?: boolean;
}

interface Lease {
  term: bigint;
  expiresAt: number;
  ticket: string | undefined;
}

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
    if (head) {
      const have = this.blocks[head.number];
      if (!have) throw new BatonError('HEAD_BEHIND', `head behind: have ${this.head.number} need ${head.number}`);
      if (head.hash !== '' && have.hash !== head.hash) throw new BatonError('HEAD_MISMATCH', `head mismatch at ${head.number}`);
    }
    if (this.lease?.term === term && this.leaseValid()) throw new BatonError('ALREADY_ACTIVE', `already active under term ${term}`);
    this.activate(term, grant.ttlMs, undefined, 'start');
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
    this.raise(term);
    this.recorder.accepted(this, 'prepare', term);
    this.deactivate();
    const head = this.head;
    this.prepared = { term, ticket: `${this.chainId}/${term}/${head.number}/${head.hash}`, number: head.number, hash: head.hash };
    return this.prepared;
  }

  completeHandoff(ticket: { ticket: string; term: bigint; number: number; hash: string }, term: bigint, ttlMs: number): void {
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
    this.activate(term, ttlMs, ticket.ticket, 'complete');
  }

  // ---- production ----

  private activate(term: bigint, ttlMs: number, ticket: string | undefined, rpc: string): void {
    this.raise(term);
    this.prepared = undefined;
    this.lease = { term, expiresAt: this.loop.now() + ttlMs, ticket };
    this.recorder.accepted(this, rpc, term);
    this.recorder.activated(this, term);
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
    if (!this.lease) return;
    if (!this.leaseValid()) {
      this.lease = undefined; // lapsed: stop by itself
      return;
    }
    const head = this.head;
    const block: Block = {
      chainId: this.chainId,
      number: head.number + 1,
      hash: this.recorder.newHash(),
      parent: head.hash,
      term: this.lease.term,
      nodeId: this.nodeId,
      atMs: this.loop.now(),
    };
    this.blocks.push(block);
    this.recorder.produced(this, block);
    for (const p of this.peers) this.net.send(this.proc, p.proc, () => p.gossip(block));
    this.producing = true;
    this.proc.scheduler().after(this.opts.blockTimeMs, () => this.produce());
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
