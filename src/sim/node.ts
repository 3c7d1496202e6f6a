// A simulated sequencer node: holds a chain of blocks, produces one block per block time while it
// holds an unexpired lease, follows its peers while it does not, fences every command by term, and
// records what it does in its activity log. It implements evnode.admin.v1.ControlService (node
// contract) and baton.sim.v1.SimService (sim only) as plain synchronous methods; server.ts puts
// them on the wire. All state changes happen synchronously inside one method, so no two commands
// ever interleave.
import type { Logger } from '../adapters/telemetry/log.js';
import { BatonError } from '../core/errors.js';
import { tokenToTerm } from '../core/term.js';
import { Faults, type InspectResponse } from '../gen/baton/sim/v1/sim.js';
import {
  FencingMode,
  HandoffTicket,
  type CompleteHandoffRequest,
  type CompleteHandoffResponse,
  type HealthResponse,
  type PrepareHandoffRequest,
  type PrepareHandoffResponse,
  type RenewLeaseRequest,
  type RenewLeaseResponse,
  type StartSequencerRequest,
  type StartSequencerResponse,
  type StatusResponse,
  type StopSequencerRequest,
  type StopSequencerResponse,
} from '../gen/evnode/admin/v1/control.js';
import type { ActivityEntry, ActiveUntilReason } from './activity.js';
import type { ActivityLog } from './activity-log.js';
import { blockHash, BlockChain, type SimBlock, unsafeHeadOf } from './chain.js';
import type { CommitOutcome, HeadCommitter } from './committer.js';
import { FollowLoop, type Reorg } from './follower.js';
import { LeaseClock, type Lease } from './lease.js';
import { BlockProducer } from './producer.js';
import { leaseTtlMs, readTicket, refuseStale, requireAddressee, requireHeadAtLeast, requireHeadExactly, requireNotAfter } from './rules.js';

export interface SimNodeConfig {
  chainId: string;
  nodeId: string;
  genesisHash: Buffer;
  version: string;
  blockTimeMs: number;
  followIntervalMs: number;
  /** Initial `lag_blocks` fault. */
  lagBlocks: number;
  /** UNSAFE, negative controls only: take commands of terms lower than the highest seen. */
  unsafeAcceptLowerTerms?: boolean;
}

/** How a node reaches its peers' SimService (gRPC, or directly when they share the process). */
export interface PeerTransport {
  getBlocks(peer: string, from: number, max: number, deadlineMs: number): Promise<{ blocks: SimBlock[]; headNumber: number }>;
  gossip(peer: string, blocks: SimBlock[], deadlineMs: number): Promise<void>;
}

export interface SimNodeDeps {
  log: ActivityLog;
  transport: PeerTransport;
  logger: Logger;
  /** Called once when the `crash` fault is set, after the node went silent. */
  onCrash(node: SimNode): void;
  /** Commit mode: where blocks are committed before they leave the node. */
  committer?: HeadCommitter;
}

type NodeState = 'running' | 'stopped' | 'crashed';
type Entry = ActivityEntry extends infer E ? (E extends ActivityEntry ? Omit<E, 't' | 'chain' | 'node'> : never) : never;

const GETBLOCKS_MAX = 8192;

export class SimNode {
  readonly chain: BlockChain;
  private state: NodeState = 'running';
  private highestTerm = 0n;
  private lease: Lease | undefined; // set exactly while active
  private prepared: { term: bigint; response: PrepareHandoffResponse } | undefined;
  private faults: Faults;
  private peers: string[] = [];
  private healthCalls = 0;
  private readonly follower: FollowLoop;
  private readonly clock: LeaseClock;
  private readonly producer: BlockProducer;

  constructor(
    readonly config: SimNodeConfig,
    private readonly deps: SimNodeDeps,
  ) {
    this.chain = new BlockChain(config.genesisHash);
    this.faults = Faults.fromPartial({ lagBlocks: config.lagBlocks });
    this.clock = new LeaseClock(() => this.onLeaseLapsed());
    this.producer = new BlockProducer({
      chain: this.chain,
      clock: this.clock,
      nodeId: config.nodeId,
      blockTimeMs: config.blockTimeMs,
      stalled: () => this.faults.stall,
      push: (blocks, deadlineMs) => this.pushToPeers(blocks, deadlineMs),
      logBlock: (b) => this.logBlock(b),
      commit: (b, deadlineMs) => this.commitBlock(b, deadlineMs),
      onFenced: (lease, outcome) => this.onCommitFenced(lease, outcome),
    });
    this.record({ ev: 'start', version: config.version, genesis: config.genesisHash.toString('hex') });
    this.follower = new FollowLoop({
      chain: this.chain,
      intervalMs: config.followIntervalMs,
      peers: () => this.peers,
      getBlocks: (peer, from, max, deadlineMs) => this.deps.transport.getBlocks(peer, from, max, deadlineMs),
      following: () => this.state === 'running' && !this.lease && !this.faults.stopFollowing,
      lagBlocks: () => this.faults.lagBlocks,
      onReorg: (r) => this.onReorg(r),
      onError: (err) => this.deps.logger.debug({ err }, 'follow round failed'),
    });
    this.follower.start();
  }

  get crashed(): boolean {
    return this.state === 'crashed';
  }

  /** The faults in force; server.ts applies `hang` and `slow_ms`, the node the rest. */
  get currentFaults(): Readonly<Faults> {
    return this.faults;
  }

  // ---- ControlService -------------------------------------------------------------------------

  startSequencer(req: StartSequencerRequest): StartSequencerResponse {
    return this.fenced('StartSequencer', req.leaseToken, (term) => {
      const ttlMs = leaseTtlMs(req.leaseTtlMs);
      const endBy = requireNotAfter(req.notAfterUnixMs, ttlMs, Date.now());
      refuseStale(term, this.highestTerm, this.config.unsafeAcceptLowerTerms);
      requireAddressee(req, this.reportedIdentity().chainId, this.config.nodeId);
      const mode = modeOf(req.fencingMode);
      if (this.lease?.term === term && this.clock.valid(this.lease)) {
        throw new BatonError('ALREADY_ACTIVE', `already active under term ${term}`);
      }
      // A committed block that never left its producer (it stopped or died between commit and
      // gossip) is one past this node's head: adopt it. In lease mode too: a chain switched from
      // commit to lease mode continues from that head, and no node holds it (the simulated world,
      // src/simworld, found the stall).
      if (req.unsafe) this.adoptCommitted(req.unsafe);
      if (req.unsafe) requireHeadAtLeast(this.chain, Number(req.unsafe.l2Number), req.unsafe.l2Hash);
      this.activate(term, ttlMs, undefined, mode, endBy);
      return {
        activated: true,
        term: { term, leaderId: this.config.nodeId },
        unsafe: unsafeHeadOf(this.chain.head),
        leaseRemainingMs: this.leaseRemainingMs(),
      };
    });
  }

  stopSequencer(req: StopSequencerRequest): StopSequencerResponse {
    return this.fenced('StopSequencer', req.leaseToken, (term) => {
      refuseStale(term, this.highestTerm, this.config.unsafeAcceptLowerTerms);
      this.raiseHighest(term);
      if (this.lease) this.deactivate(this.clock.valid(this.lease) ? 'stopped' : 'lease-expired');
      return { stopped: true, unsafe: unsafeHeadOf(this.chain.head), highestTerm: this.highestTerm };
    });
  }

  prepareHandoff(req: PrepareHandoffRequest): PrepareHandoffResponse {
    return this.fenced('PrepareHandoff', req.leaseToken, (term) => {
      refuseStale(term, this.highestTerm, this.config.unsafeAcceptLowerTerms);
      if (this.prepared?.term === term) return this.prepared.response; // a retry gets the same ticket
      this.requireActive(term);
      // Commit mode: a block whose commit has not answered may be committed already; a ticket for
      // the head below it would hand the target a head behind the committed one.
      if (this.producer.committing) throw new BatonError('UNAVAILABLE', 'a block is being committed; ask again once it is done');
      this.raiseHighest(term);
      this.deactivate('handoff');
      const head = this.chain.head;
      const ticket: HandoffTicket = {
        chainId: this.reportedIdentity().chainId,
        fromNodeId: this.config.nodeId,
        targetId: req.targetId,
        term,
        l2Number: BigInt(head.number),
        l2Hash: head.hash,
      };
      const response: PrepareHandoffResponse = {
        handoffTicket: Buffer.from(HandoffTicket.encode(ticket).finish()),
        term: { term, leaderId: this.config.nodeId },
        unsafe: unsafeHeadOf(head),
      };
      this.prepared = { term, response };
      return response;
    });
  }

  completeHandoff(req: CompleteHandoffRequest): CompleteHandoffResponse {
    return this.fenced('CompleteHandoff', req.leaseToken, (term) => {
      const ttlMs = leaseTtlMs(req.leaseTtlMs);
      const endBy = requireNotAfter(req.notAfterUnixMs, ttlMs, Date.now());
      const ticket = readTicket(req.handoffTicket, this.reportedIdentity().chainId, this.config.nodeId);
      if (term <= ticket.term) {
        throw new BatonError('STALE_TERM', `stale term ${term}: must be greater than the ticket's term ${ticket.term}`);
      }
      refuseStale(term, this.highestTerm, this.config.unsafeAcceptLowerTerms);
      const respond = (): CompleteHandoffResponse => ({
        activated: true,
        term: { term, leaderId: this.config.nodeId },
        unsafe: unsafeHeadOf(this.chain.head),
      });
      if (this.lease?.term === term && this.clock.valid(this.lease)) {
        if (this.lease.ticket?.equals(req.handoffTicket)) return respond(); // a retry of this handoff
        throw new BatonError('ALREADY_ACTIVE', `already active under term ${term}`);
      }
      requireHeadExactly(this.chain, Number(ticket.l2Number), ticket.l2Hash);
      this.activate(term, ttlMs, Buffer.from(req.handoffTicket), modeOf(req.fencingMode), endBy);
      return respond();
    });
  }

  renewLease(req: RenewLeaseRequest): RenewLeaseResponse {
    return this.fenced('RenewLease', req.leaseToken, (term) => {
      const ttlMs = leaseTtlMs(req.leaseTtlMs);
      const endBy = requireNotAfter(req.notAfterUnixMs, ttlMs, Date.now());
      refuseStale(term, this.highestTerm, this.config.unsafeAcceptLowerTerms);
      const lease = this.requireActive(term);
      this.raiseHighest(term);
      this.clock.extend(lease, ttlMs, endBy);
      this.record({ ev: 'lease-renewed', term: term.toString(), ttlMs, expiresAt: lease.expiresAt }, lease.grantedAt);
      return { renewed: true, leaseRemainingMs: this.leaseRemainingMs(), unsafe: unsafeHeadOf(this.chain.head) };
    });
  }

  health(): HealthResponse {
    this.assertServing();
    this.healthCalls++;
    const head = this.chain.head;
    const id = this.reportedIdentity();
    const producing = this.producing();
    return {
      healthy: this.faults.unhealthy === '',
      l2Number: BigInt(head.number),
      l2Hash: head.hash,
      l1Origin: head.l1Origin,
      peerCount: BigInt(this.peers.length),
      daHeight: 0n,
      lastErr: this.faults.unhealthy,
      l2Timestamp: BigInt(Math.floor(head.timeMs / 1000)),
      producing,
      term: producing ? this.lease!.term : 0n,
      leaseRemainingMs: this.leaseRemainingMs(),
      chainId: id.chainId,
      genesisHash: id.genesisHash,
      version: id.version,
      nodeId: this.config.nodeId,
      highestTerm: this.highestTerm,
      l2ParentHash: head.parent,
    };
  }

  status(): StatusResponse {
    this.assertServing();
    const id = this.reportedIdentity();
    const producing = this.producing();
    return {
      sequencerActive: producing,
      buildVersion: id.version,
      leaderHint: producing ? this.config.nodeId : '',
      lastErr: this.faults.unhealthy,
      term: { term: producing ? this.lease!.term : 0n, leaderId: producing ? this.config.nodeId : '' },
      chainId: id.chainId,
      nodeId: this.config.nodeId,
      highestTerm: this.highestTerm,
    };
  }

  // ---- SimService -----------------------------------------------------------------------------

  blocksFrom(from: number, max: number): { blocks: SimBlock[]; headNumber: number } {
    this.assertServing();
    const n = max <= 0 ? 256 : Math.min(max, GETBLOCKS_MAX);
    return { blocks: this.chain.range(Math.max(1, from), n), headNumber: this.chain.height };
  }

  /** Gossip is adopted only by a following standby, and only blocks that sit on its head. */
  acceptGossip(blocks: readonly SimBlock[]): boolean {
    this.assertServing();
    if (this.lease || this.faults.stopFollowing || this.faults.lagBlocks > 0) return false;
    let adopted = 0;
    for (const b of blocks) {
      if (!this.chain.extendsHead(b)) continue;
      this.chain.append(b);
      adopted++;
    }
    return adopted > 0;
  }

  setFaults(faults: Faults): Faults {
    this.assertServing();
    this.faults = { ...faults, genesisHash: Buffer.from(faults.genesisHash) };
    this.deps.logger.info({ faults: Faults.toJSON(this.faults) }, 'faults set'); // only those set
    if (faults.crash) this.crash();
    return this.faults;
  }

  setPeers(peers: readonly string[]): void {
    this.assertServing();
    this.peers = [...new Set(peers)];
  }

  inspect(): InspectResponse {
    this.assertServing();
    return {
      chainId: this.config.chainId,
      nodeId: this.config.nodeId,
      headNumber: BigInt(this.chain.height),
      headHash: this.chain.head.hash,
      active: this.producing(),
      term: this.lease?.term ?? 0n,
      highestTerm: this.highestTerm,
      leaseRemainingMs: this.leaseRemainingMs(),
      faults: this.faults,
      peers: [...this.peers],
      blocksProduced: BigInt(this.producer.produced),
      healthCalls: BigInt(this.healthCalls),
    };
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  /** Orderly stop (SIGTERM): an active node records that it stopped; then the node goes quiet. */
  shutdown(): void {
    if (this.state !== 'running') return;
    if (this.lease) this.deactivate(this.clock.valid(this.lease) ? 'stopped' : 'lease-expired');
    this.silence('stopped');
  }

  /** The `crash` fault: silent at once, nothing more is written (a block in flight stays unlogged). */
  private crash(): void {
    if (this.state !== 'running') return;
    this.deps.logger.warn('crashed (fault)');
    this.silence('crashed');
    this.deps.onCrash(this);
  }

  private silence(state: NodeState): void {
    this.state = state;
    this.lease = undefined;
    this.clock.disarm();
    this.producer.silence();
    this.follower.stop();
    this.deps.log.close();
  }

  // ---- activity -------------------------------------------------------------------------------

  private activate(term: bigint, ttlMs: number, ticket: Buffer | undefined, mode: Lease['mode'], endByWall: number): void {
    if (this.lease) this.deactivate(this.clock.valid(this.lease) ? 'superseded' : 'lease-expired');
    this.raiseHighest(term);
    this.prepared = undefined;
    const lease = this.clock.grant(term, ttlMs, this.firstBlockInMs(), ticket, mode, endByWall);
    this.lease = lease;
    const termStr = term.toString();
    this.record({ ev: 'lease-granted', term: termStr, ttlMs, expiresAt: lease.expiresAt }, lease.grantedAt);
    this.record({ ev: 'active-from', term: termStr, head: this.chain.height, ...(mode === 'commit' ? { mode } : {}) }, lease.grantedAt);
    this.deps.logger.info({ term: termStr, head: this.chain.height, ttlMs, mode }, 'active');
    this.producer.start(lease);
  }

  /**
   * A sequencer keeps the chain's slot cadence: the block after the head is due one block time
   * after the head was made, or at once when that slot has passed (a handoff faster than a block
   * time costs no slot; a failover after a longer outage starts at once). Capped at one block time
   * from now, should the head carry a time ahead of this node's clock.
   */
  private firstBlockInMs(): number {
    const { blockTimeMs } = this.config;
    const head = this.chain.head;
    if (head.number === 0) return blockTimeMs; // genesis has no time of its own
    return Math.min(blockTimeMs, Math.max(0, head.timeMs + blockTimeMs - Date.now()));
  }

  private deactivate(reason: ActiveUntilReason): void {
    const lease = this.lease;
    if (!lease) return;
    this.producer.stop(); // first: the block on its way belongs before active-until
    const term = lease.term.toString();
    if (reason === 'lease-expired') this.record({ ev: 'lease-expired', term });
    this.record({ ev: 'active-until', term, head: this.chain.height, reason });
    this.deps.logger.info({ term, head: this.chain.height, reason }, 'inactive');
    this.lease = undefined;
    this.clock.disarm();
  }

  /** Appends the committed head `unsafe` when it is exactly the next block of this node's chain. */
  private adoptCommitted(unsafe: NonNullable<StartSequencerRequest['unsafe']>): void {
    const number = Number(unsafe.l2Number);
    const head = this.chain.head;
    if (number !== head.number + 1 || !head.hash.equals(unsafe.l2ParentHash)) return;
    const block: SimBlock = {
      number,
      hash: Buffer.from(unsafe.l2Hash),
      parent: head.hash,
      term: unsafe.term,
      nodeId: unsafe.nodeId,
      timeMs: Number(unsafe.timestamp) * 1000,
      l1Origin: unsafe.l1Origin,
    };
    if (!block.hash.equals(blockHash(block.parent, number, block.term, block.nodeId, block.timeMs))) return;
    this.chain.append(block);
    this.record(
      { ev: 'adopt', term: block.term.toString(), number, hash: block.hash.toString('hex'), parent: block.parent.toString('hex'), from: block.nodeId },
      Date.now(),
    );
    this.deps.logger.info({ number, from: block.nodeId }, 'adopted the committed head');
  }

  private async commitBlock(block: SimBlock, deadlineMs: number): Promise<CommitOutcome> {
    const committer = this.deps.committer;
    if (!committer) return { kind: 'retry', reason: 'commit mode without a Baton endpoint (--baton)' };
    return committer.commit(this.config.chainId, block, deadlineMs);
  }

  /** Baton refused a commit: the term is over (or the block is wrong). Stop producing at once. */
  private onCommitFenced(lease: Lease, outcome: Extract<CommitOutcome, { kind: 'fenced' }>): void {
    if (this.state !== 'running' || this.lease !== lease) return;
    this.record({ ev: 'rejected', rpc: 'CommitUnsafeHead', term: lease.term.toString(), code: outcome.code, reason: outcome.reason });
    this.deps.logger.warn({ term: lease.term.toString(), code: outcome.code, reason: outcome.reason }, 'commit refused; stopping');
    this.deactivate('fenced');
  }

  private onLeaseLapsed(): void {
    if (this.state === 'running' && this.lease) this.deactivate('lease-expired');
  }

  private async pushToPeers(blocks: SimBlock[], deadlineMs: number): Promise<void> {
    await Promise.allSettled(this.peers.map((p) => this.deps.transport.gossip(p, blocks, deadlineMs)));
  }

  private logBlock(b: SimBlock): void {
    this.record(
      { ev: 'block', term: b.term.toString(), number: b.number, hash: b.hash.toString('hex'), parent: b.parent.toString('hex') },
      b.timeMs,
    );
  }

  private onReorg(r: Reorg): void {
    this.record({ ev: 'reorg', ancestor: r.ancestor, droppedHead: r.droppedHead, droppedHash: r.droppedHash.toString('hex') });
    this.deps.logger.warn({ peer: r.peer, ancestor: r.ancestor, droppedHead: r.droppedHead }, 'reorg onto a higher term');
  }

  private record(entry: Entry, t: number = Date.now()): void {
    this.deps.log.append({ t, chain: this.config.chainId, node: this.config.nodeId, ...entry } as ActivityEntry);
  }

  // ---- checks ---------------------------------------------------------------------------------

  /** Parses the lease token and records every refusal of the command as a `rejected` entry. */
  private fenced<T>(rpc: string, token: Uint8Array, run: (term: bigint) => T): T {
    this.assertServing();
    let term: bigint | undefined;
    try {
      term = tokenToTerm(token);
      return run(term);
    } catch (err) {
      if (err instanceof BatonError) {
        const termField = term === undefined ? {} : { term: term.toString() };
        this.record({ ev: 'rejected', rpc, ...termField, code: err.code, reason: err.message });
        this.deps.logger.info({ rpc, ...termField, code: err.code, reason: err.message }, 'rejected');
      }
      throw err;
    }
  }

  private assertServing(): void {
    if (this.state !== 'running') throw new BatonError('UNAVAILABLE', `node ${this.state}`);
  }

  private raiseHighest(term: bigint): void {
    if (term > this.highestTerm) this.highestTerm = term;
  }

  private requireActive(term: bigint): Lease {
    const lease = this.lease;
    if (!lease || lease.term !== term) throw new BatonError('NOT_ACTIVE', `not active under term ${term}`);
    if (!this.clock.valid(lease)) {
      this.deactivate('lease-expired'); // its timer has not run yet (the process was paused)
      throw new BatonError('LEASE_EXPIRED', `lease expired for term ${term}`);
    }
    return lease;
  }

  private producing(): boolean {
    return this.lease !== undefined && this.clock.valid(this.lease);
  }

  private leaseRemainingMs(): bigint {
    return this.lease ? BigInt(Math.max(0, Math.floor(this.clock.remainingMs(this.lease)))) : 0n;
  }

  /** Identity as the node reports it: a misconfiguration fault replaces the real values. */
  private reportedIdentity(): { chainId: string; genesisHash: Buffer; version: string } {
    const f = this.faults;
    return {
      chainId: f.chainId || this.config.chainId,
      genesisHash: f.genesisHash.length > 0 ? f.genesisHash : this.config.genesisHash,
      version: f.version || this.config.version,
    };
  }
}

function modeOf(mode: FencingMode): Lease['mode'] {
  return mode === FencingMode.FENCING_MODE_COMMIT ? 'commit' : 'lease';
}
