// The control loop of one chain on the replica that supervises it. Probe results and store
// changes only update state and wake the loop; the loop runs one action at a time (single flight:
// overlapping actions would reorder commands at a node), asks the pure `decide` what to do next,
// and logs the decision's one-line reason whenever it changes.
import type { ChainSpec, FencingMode, LeaderRecord, NodeSpec, UnsafeHead } from './chain.js';
import { decide, type Action, type ChainSnapshot, type Decision } from './decide.js';
import { isBatonError } from './errors.js';
import { LeaseBook } from './lease-book.js';
import { boundByProof } from './proof-bound.js';
import { isPaused } from './operation.js';
import { OperationRunner } from './operations-runner.js';
import { LeaderChangeTrace } from './leader-change.js';
import type { Metrics, TermTrigger, Tracer } from './telemetry.js';
import { healthSummary } from './health.js';
import { probeNode } from './observe.js';
import { nodesToProbe } from './probe-plan.js';
import type { NodeObservation } from './observation.js';
import type {
  BreakGlass,
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
  /** How far a node's wall clock may be behind this replica's (config node.maxClockSkewMs): part of every lease bound. */
  readonly maxClockSkewMs: number;
  readonly scheduler: Scheduler;
  readonly proof: ReplicaProof;
  readonly slots: FailoverSlots;
  readonly fleet: () => FleetSettings;
  readonly log: Log;
  readonly onEvent?: (event: SupervisorEvent) => void;
  /** Spans of leader changes and decisions (default: none). */
  readonly tracer?: Tracer;
  /** Failover durations, leader changes, decisions (default: none). */
  readonly metrics?: Metrics;
  /** UNSAFE, the drill's negative control only: no single flight; every wake starts a loop, and a second one alongside. */
  readonly unsafeOverlappingTicks?: boolean;
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
  /** Unfinished operations of the chain this supervisor has loaded: kind and state. */
  readonly operations: readonly { readonly kind: string; readonly state: string }[];
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
  /** deps.nodes, with every grant's deadline bounded by this replica's proof (proof-bound.ts). */
  private readonly nodes: NodeControl;
  private readonly runner: OperationRunner;
  /** Spans and metrics of the leader change under way. */
  private readonly change: LeaderChangeTrace;
  /** Shape of the last acting decision that was counted and traced. */
  private lastActedStory = '';
  private leaderHasProduced = false;
  private lastFailoverAtMs: number | undefined;
  private detectedAtMs: number | undefined;
  private releaseSlot: (() => Promise<void>) | undefined;
  private lastReason = '';
  /** The line of an acting decision, written once inside its span (so it carries the trace id). */
  private pendingLine: { level: 'info' | 'debug'; reason: string } | undefined;
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
    this.leases = new LeaseBook(deps.clock.monoMs(), deps.nodes.deadlineMs, deps.maxClockSkewMs);
    this.nodes = boundByProof(deps.nodes, deps.proof, deps.clock);
    this.change = new LeaderChangeTrace({ chainId: spec.id, tracer: deps.tracer, metrics: deps.metrics, monoMs: () => deps.clock.monoMs(), wallMs: () => deps.clock.wallMs() });
    this.runner = new OperationRunner({
      tracer: this.change.tracer,
      leaderStarted: (term) => this.change.started(term),
      chainId: spec.id,
      fence: deps.fence,
      nodes: this.nodes,
      ops: deps.ops,
      scheduler: deps.scheduler,
      log: deps.log,
      spec: () => this.spec,
      state: () => this.state,
      observations: () => this.observations,
      monoMs: () => this.now(),
      wallMs: () => deps.clock.wallMs(),
      changeLeader: (previous, to, reason, fromHead, trigger, breakGlass) => this.writeLeader(previous, to, reason, fromHead, trigger ?? 'operator', breakGlass),
      setFencingMode: (mode) => deps.store.setFencingMode(deps.fence, mode),
      grantSent: (nodeId, mode) => this.leases.sent(nodeId, this.now(), this.spec.policy.leaseTtlMs, mode),
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
    this.change.abandon();
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
      operations: this.runner.unfinished(),
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
    const nodes = nodesToProbe({
      spec: this.spec,
      leader: this.state?.leader,
      nodes: this.observations,
      nowMs: this.now(),
      busy: !this.leaderHasProduced || this.detectedAtMs !== undefined || this.runner.busy(),
    });
    void Promise.all(nodes.map((node) => this.probe(node))).finally(() => {
      this.probing = false;
      this.publishHealth();
      this.wake();
    });
  }

  private async probe(node: NodeSpec): Promise<void> {
    const observation = await probeNode(this.deps.nodes, node, this.observations.get(node.id), () => this.now());
    this.observations.set(node.id, observation);
    this.change.metrics.probed(this.chainId, observation.consecutiveFailures === 0);
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
    if (this.running && !this.deps.unsafeOverlappingTicks) {
      this.dirty = true;
      return;
    }
    this.running = true;
    // A turn of the loop is not part of whatever traced step happened to wake it.
    this.loopDone = this.change.tracer.outside(() => this.loop()).finally(() => {
      this.running = false;
    });
    // The broken build overlaps every turn with a second one, so that the drill sees the
    // consequence on every schedule rather than only when a wake happens to land mid-turn.
    if (this.deps.unsafeOverlappingTicks) void this.change.tracer.outside(() => this.loop());
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
        try {
          await this.act(decision);
        } finally {
          this.writeDecisionLine(); // if the action ended before its span opened
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
    // As the chain was when this replica took it over: if neither the leader's term nor the one
    // before it is lease mode, and the writer knew of no live lease-mode grant of an older term,
    // no grant the previous supervisor sent needs waiting out.
    if (this.state === undefined && state?.leader?.mode === 'commit' && state.previousMode === 'commit' && !state.leaseGrantsLive) this.leases.waiveInherited();
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
      overrideNodeId: state.override?.nodeId,
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
    // Written outside any span: the trace of the change it ends is named explicitly.
    const traceId = this.change.producing(leader.term, report.headNumber);
    const sinceDetectMs = this.detectedAtMs === undefined ? undefined : this.now() - this.detectedAtMs;
    this.detectedAtMs = undefined;
    this.deps.log.info(
      { chain: this.chainId, node: leader.nodeId, term: leader.term.toString(), head: report.headNumber, sinceDetectMs, traceId },
      'leader producing',
    );
    this.emit({ kind: 'leader-producing', chainId: this.chainId, nodeId: leader.nodeId, term: leader.term, headNumber: report.headNumber, sinceDetectMs });
    void this.releaseFailoverSlot();
  }

  /**
   * Keeps the reason; logs it once per shape, at info when it acts or `notable` says so. The line of
   * a decision that acts is written by act(), inside the span of that decision (or of the failover
   * it starts), so that it carries the trace id.
   */
  private note(reason: string, decision?: Decision, notable = false): void {
    if (reason === this.lastReason) return;
    // Log a reason once per shape: "waiting 1200 ms" and "waiting 1050 ms" are the same story.
    const sameStory = shape(reason) === shape(this.lastReason);
    this.lastReason = reason;
    if (sameStory) return;
    const acting = decision !== undefined && decision.actions.some((a) => a.kind !== 'renew' && a.kind !== 'record-head');
    this.writeDecisionLine(); // an earlier one not written yet comes first
    if (acting) this.pendingLine = { level: 'info', reason };
    else this.deps.log[notable ? 'info' : 'debug']({ chain: this.chainId }, reason);
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

  /** Writes the line of the acting decision noted last, if not written yet; in the current span. */
  private writeDecisionLine(): void {
    const line = this.pendingLine;
    this.pendingLine = undefined;
    if (line) this.deps.log[line.level]({ chain: this.chainId }, line.reason);
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

  /**
   * Runs a decision's actions. A decision that changes something (not only renewals and head
   * records) is counted and is a `decision` span, in the trace of the leader change under way if
   * there is one; a failover is a trace of its own (see failover).
   */
  private async act(decision: Decision): Promise<void> {
    const run = async (): Promise<void> => {
      for (const action of decision.actions) {
        if (this.stopped || !this.proven()) break;
        await this.execute(action);
      }
    };
    const kinds = decision.actions.map((a) => a.kind).filter((k) => k !== 'renew' && k !== 'record-head');
    // The same story again (a stop resent while an old lease runs out) is neither counted nor traced again.
    const story = shape(decision.reason);
    if (kinds.length === 0 || story === this.lastActedStory) {
      this.writeDecisionLine();
      return run();
    }
    this.lastActedStory = story;
    for (const kind of kinds) this.change.metrics.decision(this.chainId, kind);
    // A failover writes its line inside its own root span (see failover).
    if (kinds.includes('failover')) return run();
    const parent = this.change.parent();
    const attrs = { 'baton.chain': this.chainId, 'baton.reason': decision.reason, 'baton.actions': kinds.join(',') };
    return this.change.tracer.span('decision', attrs, () => {
      this.writeDecisionLine();
      return run();
    }, { parent: parent ?? null });
  }

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
      case 'switch-mode':
        return this.switchMode(action.nodeId, action.from, action.mode);
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
      // At info: a cap that stays reached (say, by leaked slots) stops every failover of the fleet.
      this.note(`fleet-wide cap on concurrent failovers reached; ${from} stays leader for now`, undefined, true);
      return;
    }
    await this.releaseFailoverSlot();
    this.releaseSlot = release;
    this.detectedAtMs = this.now();
    this.lastFailoverAtMs = this.now();
    // The decision was made on this leader: the txn compares its term, whatever is read below.
    const decidedOn = this.state?.leader;
    // Detection began at the old leader's last good report.
    const root = this.change.beginFailover({
      from,
      fromTerm: decidedOn?.term,
      to,
      reason: this.lastReason,
      mode: this.spec.policy.fencingMode,
      lastGoodMs: this.observations.get(from)?.reportAtMs,
    });
    // In commit mode the head moves with every block without this supervisor reading it: read it
    // now, so that the new term records where it takes over (its start reads it again, exactly).
    if (decidedOn?.mode === 'commit') {
      this.storeDirty = true;
      await this.refreshState();
    }
    try {
      await root.within(() => {
        this.writeDecisionLine();
        return this.writeLeader(decidedOn, to, `failover from ${from}: ${this.lastReason}`, undefined, 'auto');
      });
    } catch (err) {
      this.change.failoverNotWritten(isBatonError(err) ? err.code : 'ERROR', err instanceof Error ? err.message : String(err));
      throw err;
    }
  }

  /**
   * The `fence` step of a leader change: the fenced txn that makes a new term, then a stop under it
   * to every other node. `trigger` says why, for the change's spans and metrics.
   */
  private writeLeader(previous: LeaderRecord | undefined, to: string, reason: string, head?: number, trigger: TermTrigger = 'elect', breakGlass?: BreakGlass): Promise<Term> {
    // The span that asked for the change (a failover root, an operation): its later steps hang there.
    const parent = this.change.tracer.carrier();
    const mode = this.spec.policy.fencingMode;
    const attrs = { 'baton.chain': this.chainId, 'baton.node': to, 'baton.from': previous?.nodeId, 'baton.reason': reason, 'baton.trigger': trigger, 'baton.mode': mode };
    return this.change.tracer.span('fence', attrs, (span) =>
      this.writeLeaderFenced(previous, to, reason, head, breakGlass, (term) => {
        span.set({ 'baton.term': term });
        this.change.written({ term, nodeId: to, reason, trigger, mode, parent, handoff: head !== undefined });
      }),
    );
  }

  private async writeLeaderFenced(
    previous: LeaderRecord | undefined,
    to: string,
    reason: string,
    head: number | undefined,
    breakGlass: BreakGlass | undefined,
    written: (term: Term) => void,
  ): Promise<Term> {
    const fromHead = head ?? this.state?.head?.number ?? 0;
    const term = await this.deps.store.writeLeader(
      this.deps.fence,
      previous?.term,
      {
        nodeId: to,
        reason,
        fromHead,
        mode: this.spec.policy.fencingMode,
        previousMode: previous?.mode,
        leaseGrantsLive: this.leases.leaseGrantsLive(this.now(), this.spec.policy.leaseTtlMs),
        ...breakGlass,
      },
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
    written(term);
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
          await this.nodes.stop(this.node(id), term, reason);
        } catch (err) {
          this.deps.log.debug({ chain: this.chainId, node: id, err: String(err) }, 'stop failed');
        }
      }),
    );
  }

  /** A new term for the same active in the chain's new fencing mode; it is stopped under it first. */
  private async switchMode(nodeId: string, from: Term, mode: FencingMode): Promise<void> {
    const previous = this.state?.leader;
    if (!previous || previous.term !== from || previous.nodeId !== nodeId) return;
    const term = await this.writeLeader(previous, nodeId, `fencing mode ${previous.mode} -> ${mode}: ${this.lastReason}`, undefined, 'mode-switch');
    await this.stopNodes([nodeId], term, `fencing mode ${previous.mode} -> ${mode}`);
  }

  /**
   * A commit-mode term continues from the recorded head exactly, but a node may hold blocks it
   * published under an older lease-mode term that were never recorded (a mode switch). Once the
   * node has stopped under this term its head is final: record it, then start. Until then, stop it.
   * True when the node may be started now.
   */
  private async settleHeadForCommit(nodeId: string, term: Term): Promise<boolean> {
    const report = this.observations.get(nodeId)?.report;
    const recorded = this.state?.head?.number ?? 0;
    if (!report || report.headNumber <= recorded) return true;
    if (report.producing || report.highestTerm < term) {
      await this.stopNodes([nodeId], term, `stop at a final head before term ${term} in commit mode`);
      this.probeNow();
      return false;
    }
    await this.recordHead(nodeId, report.headNumber, report.headHash);
    return true;
  }

  private async startLeader(nodeId: string, term: Term): Promise<void> {
    const ttlMs = this.spec.policy.leaseTtlMs;
    const mode = this.leaderMode();
    if (mode === 'commit') {
      // The term's own node commits blocks without this supervisor reading them: a restart under
      // the same term must carry the head as committed now, or the node cannot adopt a block it
      // committed but never published (its lease ran out on the way) and its next commit is refused.
      this.storeDirty = true;
      await this.refreshState();
      if (this.state?.leader?.nodeId !== nodeId || this.state.leader.term !== term) return;
      if (!(await this.settleHeadForCommit(nodeId, term))) return;
    }
    const sentAt = this.grantSent(nodeId, mode);
    try {
      // In commit mode the head was read after the term was written, when no older term could
      // commit any more: it is exact, and the node continues from it.
      await this.change.start(term, () => this.nodes.start(this.node(nodeId), {
        chainId: this.chainId,
        term,
        ttlMs,
        head: this.state?.head,
        reason: this.lastReason,
        mode,
      }));
      this.leases.confirmed(sentAt);
      this.change.started(term);
      this.deps.log.info({ chain: this.chainId, node: nodeId, term: term.toString(), head: this.state?.head?.number }, 'leader started');
    } catch (err) {
      if (isBatonError(err, 'ALREADY_ACTIVE')) {
        this.leases.confirmed(sentAt);
        this.change.started(term);
        return;
      }
      this.deps.log.warn({ chain: this.chainId, node: nodeId, term: term.toString(), err: String(err) }, 'start refused');
    }
    this.probeNow();
  }

  private async renew(nodeId: string, term: Term): Promise<void> {
    const sentAt = this.grantSent(nodeId, this.leaderMode());
    try {
      await this.nodes.renew(this.node(nodeId), term, this.spec.policy.leaseTtlMs);
      this.leases.confirmed(sentAt);
    } catch (err) {
      this.deps.log.warn({ chain: this.chainId, node: nodeId, term: term.toString(), err: String(err) }, 'renewal failed');
      // A refusal (lease lapsed, term moved on) is worth a fresh look at once; an unreachable node
      // is left to the regular probes, so failures count at the probe interval (the threshold's
      // meaning) rather than piling up within milliseconds.
      if (!isBatonError(err, 'NODE_UNREACHABLE')) this.probeNow();
    }
  }

  private grantSent(nodeId: string, mode: FencingMode): number {
    return this.leases.sent(nodeId, this.now(), this.spec.policy.leaseTtlMs, mode);
  }

  /** The fencing mode of the current term (its leader record's), which its grants carry. */
  private leaderMode(): FencingMode {
    return this.state?.leader?.mode ?? this.spec.policy.fencingMode;
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
    const revision = await this.deps.store.recordHead(this.deps.fence, leader.term, { head: state.head, revision: state.headRevision }, head);
    this.state = { ...state, head, headRevision: revision };
  }

  private probeNow(): void {
    if (this.stopped) return;
    // Probes are not part of the step that asked for them (no Health spans in a failover's trace).
    void this.change.tracer.outside(() => Promise.all(this.spec.nodes.map((node) => this.probe(node)))).finally(() => this.wake());
  }

  private async releaseFailoverSlot(): Promise<void> {
    const release = this.releaseSlot;
    this.releaseSlot = undefined;
    if (release) await release().catch(() => undefined);
  }
}
