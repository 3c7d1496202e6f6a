// The control loop of one chain on the replica that supervises it. Probe results and store
// changes only update state and wake the loop; the loop runs one action at a time (single flight:
// overlapping actions would reorder commands at a node), asks the pure `decide` what to do next,
// and logs the decision's one-line reason whenever it changes.
import type { ChainSpec, LeaderRecord, NodeSpec, UnsafeHead } from './chain.js';
import { decide, type Action, type ChainSnapshot, type Decision } from './decide.js';
import { isBatonError } from './errors.js';
import { LeaseBook } from './lease-book.js';
import { isPaused } from './operation.js';
import { OperationRunner } from './operations-runner.js';
import { healthSummary } from './health.js';
import { probeNode } from './observe.js';
import type { NodeObservation } from './observation.js';
import type {
  ChainState,
  ChainStore,
  Clock,
  FailoverSlots,
  FleetSettings,
  Log,
  NodeControl,
  OperationStore,
  ReplicaProof,
  Scheduler,
  SupervisionFence,
} from './ports.js';
import type { Term } from './term.js';

export interface SupervisorDeps {
  readonly fence: SupervisionFence;
  readonly store: ChainStore;
  readonly ops: OperationStore;
  readonly nodes: NodeControl;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly proof: ReplicaProof;
  readonly slots: FailoverSlots;
  readonly fleet: () => FleetSettings;
  readonly log: Log;
  readonly onEvent?: (event: SupervisorEvent) => void;
}

export type SupervisorEvent =
  | { kind: 'decision'; chainId: string; reason: string }
  | { kind: 'leader-changed'; chainId: string; from: string | undefined; to: string; term: Term; reason: string }
  | { kind: 'leader-producing'; chainId: string; nodeId: string; term: Term; headNumber: number; sinceDetectMs: number | undefined };

export interface SupervisorStatus {
  readonly chainId: string;
  readonly lastReason: string;
  readonly nodes: ReadonlyMap<string, NodeObservation>;
  readonly state: ChainState | undefined;
  readonly lastFailoverAtMs: number | undefined;
}

function shape(reason: string): string {
  return reason.replace(/\d+/g, '#');
}

/** Full re-read of the chain from etcd at least this often, whatever the watch says. */
const RESYNC_MS = 5000;

export class ChainSupervisor {
  private state: ChainState | undefined;
  private stateReadAtMs = -Infinity;
  private storeDirty = true;
  private observations = new Map<string, NodeObservation>();
  private readonly leases: LeaseBook;
  private readonly runner: OperationRunner;
  private leaderHasProduced = false;
  private lastFailoverAtMs: number | undefined;
  private detectedAtMs: number | undefined;
  private releaseSlot: (() => Promise<void>) | undefined;
  private lastReason = '';
  private publishedHealth = '';
  private running = false;
  private loopDone: Promise<void> = Promise.resolve();
  private dirty = false;
  private stopped = false;
  private probing = false;
  private cancelProbe: (() => void) | undefined;
  private cancelWake: (() => void) | undefined;

  constructor(
    private spec: ChainSpec,
    private readonly deps: SupervisorDeps,
  ) {
    this.leases = new LeaseBook(deps.clock.monoMs(), deps.nodes.deadlineMs);
    this.runner = new OperationRunner({
      chainId: spec.id,
      fence: deps.fence,
      nodes: deps.nodes,
      ops: deps.ops,
      scheduler: deps.scheduler,
      log: deps.log,
      spec: () => this.spec,
      state: () => this.state,
      observations: () => this.observations,
      monoMs: () => this.now(),
      wallMs: () => deps.clock.wallMs(),
      changeLeader: (previous, to, reason, fromHead) => this.writeLeader(previous, to, reason, fromHead),
      grantSent: (nodeId) => this.leases.sent(nodeId, this.now(), this.spec.policy.leaseTtlMs),
      grantConfirmed: (sentAt) => this.leases.confirmed(sentAt),
      wake: () => this.storeChanged(),
    });
  }

  get chainId(): string {
    return this.spec.id;
  }

  start(): void {
    this.deps.log.info({ chain: this.chainId, supervisor: this.deps.fence.replicaId }, 'supervising chain');
    this.probeRound();
  }

  /** Stops acting at once; an action in flight finishes but every later write is fenced anyway. */
  async stop(why: string): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.cancelProbe?.();
    this.cancelWake?.();
    this.runner.stop();
    this.deps.log.info({ chain: this.chainId, why }, 'stopped supervising chain');
    // The action in flight (bounded by its deadlines) ends before the key may be handed over.
    await this.loopDone;
    await this.releaseFailoverSlot();
  }

  /** The chain's keys changed in etcd (spec edited, or a write of ours echoed back). */
  storeChanged(): void {
    this.storeDirty = true;
    this.wake();
  }

  status(): SupervisorStatus {
    return {
      chainId: this.chainId,
      lastReason: this.lastReason,
      nodes: new Map(this.observations),
      state: this.state,
      lastFailoverAtMs: this.lastFailoverAtMs,
    };
  }

  private now(): number {
    return this.deps.clock.monoMs();
  }

  private proven(): boolean {
    return this.now() < this.deps.proof.provenUntilMs();
  }

  // ---- probes ------------------------------------------------------------------------------

  private probeRound(): void {
    if (this.stopped) return;
    this.cancelProbe = this.deps.scheduler.after(this.spec.policy.probeIntervalMs, () => this.probeRound());
    if (this.probing) return; // the previous round is still waiting on a slow node
    this.probing = true;
    void Promise.all(this.spec.nodes.map((node) => this.probe(node))).finally(() => {
      this.probing = false;
      this.publishHealth();
      this.wake();
    });
  }

  private async probe(node: NodeSpec): Promise<void> {
    this.observations.set(node.id, await probeNode(this.deps.nodes, node, this.observations.get(node.id), () => this.now()));
  }

  /** Writes the node health summary to etcd when it changed (the event stream reads it there). */
  private publishHealth(): void {
    const health = healthSummary(this.spec, this.observations);
    const text = JSON.stringify(health);
    if (text === this.publishedHealth || !this.proven()) return;
    this.publishedHealth = text;
    this.deps.store.publishHealth(this.deps.fence, health).catch(() => {
      this.publishedHealth = ''; // try again after the next probe round
    });
  }

  // ---- the loop ----------------------------------------------------------------------------

  private wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    this.running = true;
    this.loopDone = this.loop().finally(() => {
      this.running = false;
    });
  }

  private async loop(): Promise<void> {
    do {
      this.dirty = false;
      if (this.stopped) return;
      if (!this.proven()) {
        this.note('self-fenced: cannot prove this replica is alive in etcd; not acting');
        return;
      }
      try {
        await this.refreshState();
        if (!this.state) {
          this.note('chain no longer exists in etcd');
          return;
        }
        this.trackLeaderProgress();
        // Operator requests first; what they changed is read back before deciding.
        if (await this.runner.step()) {
          this.storeDirty = true;
          this.dirty = true;
          continue;
        }
        const decision = decide(this.snapshot(this.state));
        this.note(decision.reason, decision);
        for (const action of decision.actions) {
          if (this.stopped || !this.proven()) break;
          await this.execute(action);
        }
      } catch (err) {
        this.handleError(err);
      }
    } while (this.dirty && !this.stopped);
  }

  private async refreshState(): Promise<void> {
    if (!this.storeDirty && this.now() - this.stateReadAtMs < RESYNC_MS) return;
    this.storeDirty = false;
    const state = await this.deps.store.read(this.chainId);
    this.stateReadAtMs = this.now();
    const prevTerm = this.state?.leader?.term;
    this.state = state;
    if (state) this.spec = state.spec;
    if (state?.leader?.term !== prevTerm) this.leaderHasProduced = false;
  }

  private snapshot(state: ChainState): ChainSnapshot {
    return {
      spec: state.spec,
      leader: state.leader,
      head: state.head,
      nodes: this.observations,
      nowMs: this.now(),
      lease: this.leases.view(state.leader?.nodeId, state.spec.policy.leaseTtlMs),
      lastFailoverAtMs: this.lastFailoverAtMs,
      leaderHasProduced: this.leaderHasProduced,
      paused: isPaused(state.pause, this.deps.clock.wallMs()),
      autoFailover: this.deps.fleet().autoFailover,
    };
  }

  /** Notices the first block of a new leader (the end of a failover) and releases its slot. */
  private trackLeaderProgress(): void {
    const leader = this.state?.leader;
    if (!leader || this.leaderHasProduced) return;
    const report = this.observations.get(leader.nodeId)?.report;
    if (!report || !report.producing || report.term !== leader.term) return;
    this.leaderHasProduced = true;
    const sinceDetectMs = this.detectedAtMs === undefined ? undefined : this.now() - this.detectedAtMs;
    this.detectedAtMs = undefined;
    this.deps.log.info(
      { chain: this.chainId, node: leader.nodeId, term: leader.term.toString(), head: report.headNumber, sinceDetectMs },
      'leader producing',
    );
    this.emit({ kind: 'leader-producing', chainId: this.chainId, nodeId: leader.nodeId, term: leader.term, headNumber: report.headNumber, sinceDetectMs });
    void this.releaseFailoverSlot();
  }

  private note(reason: string, decision?: Decision): void {
    if (reason === this.lastReason) return;
    // Log a reason once per shape: "waiting 1200 ms" and "waiting 1050 ms" are the same story.
    const sameStory = shape(reason) === shape(this.lastReason);
    this.lastReason = reason;
    if (sameStory) return;
    const acting = decision !== undefined && decision.actions.some((a) => a.kind !== 'renew' && a.kind !== 'record-head');
    this.deps.log[acting ? 'info' : 'debug']({ chain: this.chainId }, reason);
    this.emit({ kind: 'decision', chainId: this.chainId, reason });
    // Sleep until the next instant at which waiting could end (old leases), if that is sooner
    // than the next probe round.
    this.cancelWake?.();
    const state = this.state;
    if (state) {
      const wait = this.snapshot(state).lease.oldLeasesEndMs - this.now();
      if (wait > 0 && wait < 60_000) this.cancelWake = this.deps.scheduler.after(wait + 1, () => this.wake());
    }
  }

  private emit(event: SupervisorEvent): void {
    this.deps.onEvent?.(event);
  }

  private handleError(err: unknown): void {
    if (isBatonError(err, 'FENCED')) {
      this.deps.log.warn({ chain: this.chainId, err: err.message }, 'write fenced: no longer the supervisor');
      void this.stop('fenced');
      return;
    }
    if (isBatonError(err, 'CONFLICT')) {
      this.storeDirty = true; // someone else changed the chain: read again and decide again
      this.dirty = true;
      this.deps.log.info({ chain: this.chainId, err: err.message }, 'conflict; re-reading chain');
      return;
    }
    this.storeDirty = true;
    this.deps.log.warn({ chain: this.chainId, err: err instanceof Error ? err.message : String(err) }, 'action failed');
  }

  // ---- actions -----------------------------------------------------------------------------

  private async execute(action: Action): Promise<void> {
    switch (action.kind) {
      case 'elect':
        await this.writeLeader(undefined, action.nodeId, `elected: ${this.lastReason}`);
        return;
      case 'failover':
        return this.failover(action.from, action.to);
      case 'start':
        return this.startLeader(action.nodeId, action.term);
      case 'renew':
        return this.renew(action.nodeId, action.term);
      case 'stop':
        return this.stopNodes(action.nodeIds, action.term, 'not the leader');
      case 'record-head':
        return this.recordHead(action.nodeId, action.headNumber, action.headHash);
    }
  }

  private node(nodeId: string): NodeSpec {
    const node = this.spec.nodes.find((n) => n.id === nodeId);
    if (!node) throw new Error(`node ${nodeId} is not in the spec of ${this.chainId}`);
    return node;
  }

  private async failover(from: string, to: string): Promise<void> {
    const release = await this.deps.slots.acquire();
    if (!release) {
      this.note(`fleet-wide cap on concurrent failovers reached; ${from} stays leader for now`);
      return;
    }
    await this.releaseFailoverSlot();
    this.releaseSlot = release;
    this.detectedAtMs = this.now();
    this.lastFailoverAtMs = this.now();
    await this.writeLeader(this.state?.leader, to, `failover from ${from}: ${this.lastReason}`);
  }

  /** The fenced txn that makes a new term, then a stop under it to every other node. */
  private async writeLeader(previous: LeaderRecord | undefined, to: string, reason: string, head?: number): Promise<Term> {
    const fromHead = head ?? this.state?.head?.number ?? 0;
    const term = await this.deps.store.writeLeader(
      this.deps.fence,
      previous?.term,
      { nodeId: to, reason, fromHead, mode: this.spec.policy.fencingMode },
      {
        nodeId: to,
        previousNodeId: previous?.nodeId,
        previousTerm: previous?.term,
        fromHead,
        reason,
        atMs: this.deps.clock.wallMs(),
        supervisor: this.deps.fence.replicaId,
        durationMs: undefined,
      },
    );
    this.deps.log.info(
      { chain: this.chainId, from: previous?.nodeId, to, term: term.toString(), fromHead, reason },
      'leader changed',
    );
    this.emit({ kind: 'leader-changed', chainId: this.chainId, from: previous?.nodeId, to, term, reason });
    this.leases.newTerm();
    this.storeDirty = true;
    this.dirty = true;
    // Tell every other node about the new term at once: a node that has seen it refuses the old
    // term, and one that confirms it stopped need not be waited out.
    const others = this.spec.nodes.filter((n) => n.id !== to).map((n) => n.id);
    await this.stopNodes(others, term, `new term ${term} for ${to}`);
    this.probeNow();
    return term;
  }

  private async stopNodes(nodeIds: readonly string[], term: Term, reason: string): Promise<void> {
    await Promise.all(
      nodeIds.map(async (id) => {
        try {
          await this.deps.nodes.stop(this.node(id), term, reason);
        } catch (err) {
          this.deps.log.debug({ chain: this.chainId, node: id, err: String(err) }, 'stop failed');
        }
      }),
    );
  }

  private async startLeader(nodeId: string, term: Term): Promise<void> {
    const ttlMs = this.spec.policy.leaseTtlMs;
    const sentAt = this.grantSent(nodeId);
    try {
      await this.deps.nodes.start(this.node(nodeId), {
        chainId: this.chainId,
        term,
        ttlMs,
        head: this.state?.head,
        reason: this.lastReason,
      });
      this.leases.confirmed(sentAt);
      this.deps.log.info({ chain: this.chainId, node: nodeId, term: term.toString(), head: this.state?.head?.number }, 'leader started');
    } catch (err) {
      if (isBatonError(err, 'ALREADY_ACTIVE')) {
        this.leases.confirmed(sentAt);
        return;
      }
      this.deps.log.warn({ chain: this.chainId, node: nodeId, term: term.toString(), err: String(err) }, 'start refused');
    }
    this.probeNow();
  }

  private async renew(nodeId: string, term: Term): Promise<void> {
    const sentAt = this.grantSent(nodeId);
    try {
      await this.deps.nodes.renew(this.node(nodeId), term, this.spec.policy.leaseTtlMs);
      this.leases.confirmed(sentAt);
    } catch (err) {
      this.deps.log.warn({ chain: this.chainId, node: nodeId, term: term.toString(), err: String(err) }, 'renewal failed');
      // A refusal (lease lapsed, term moved on) is worth a fresh look at once; an unreachable node
      // is left to the regular probes, so failures count at the probe interval (the threshold's
      // meaning) rather than piling up within milliseconds.
      if (!isBatonError(err, 'NODE_UNREACHABLE')) this.probeNow();
    }
  }

  private grantSent(nodeId: string): number {
    return this.leases.sent(nodeId, this.now(), this.spec.policy.leaseTtlMs);
  }

  private async recordHead(nodeId: string, headNumber: number, headHash: string): Promise<void> {
    const state = this.state;
    const leader = state?.leader;
    if (!state || !leader || leader.nodeId !== nodeId) return;
    const report = this.observations.get(nodeId)?.report;
    const sameBlock = report?.headNumber === headNumber && report.headHash === headHash;
    const head: UnsafeHead = {
      number: headNumber,
      hash: headHash,
      parentHash: sameBlock ? (report.headParentHash ?? '') : '',
      term: leader.term,
      nodeId,
      l1Origin: sameBlock ? (report.headL1Origin ?? '') : '',
      timestamp: sameBlock && report.headTimestamp ? report.headTimestamp : Math.floor(this.deps.clock.wallMs() / 1000),
    };
    const revision = await this.deps.store.recordHead(this.deps.fence, leader.term, state.headRevision, head);
    this.state = { ...state, head, headRevision: revision };
  }

  private probeNow(): void {
    if (this.stopped) return;
    void Promise.all(this.spec.nodes.map((node) => this.probe(node))).finally(() => this.wake());
  }

  private async releaseFailoverSlot(): Promise<void> {
    const release = this.releaseSlot;
    this.releaseSlot = undefined;
    if (release) await release().catch(() => undefined);
  }
}
