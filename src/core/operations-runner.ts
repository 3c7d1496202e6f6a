// Executes a chain's operator requests (intents) on the replica that supervises it, inside the
// supervisor's single-flight loop: pause, resume and the break-glass controls at once
// (chain-controls.ts); a manual failover or an override by writing the new term (the loop's decide
// then starts the new leader when it is safe); a switchover as a two-phase handoff with rollback
// (switchover.ts); a fencing-mode switch by writing the spec's mode and waiting for the loop's
// switch-mode term (fencing-mode.ts). Every step is recorded on the operation, fenced on the
// supervisor key.
//
// An operation is `running` from the moment its target is chosen (recorded as result.nodeId) until
// it ends. One found running without a new term (result.term) was interrupted between the choice
// and the fence (its supervisor died, or a write failed): the leader record says on which side of
// the fence, and it is either adopted or started over (see resume).
import type { ChainSpec, FencingMode, LeaderRecord, NodeSpec } from './chain.js';
import { chooseTarget, type CandidateRanking } from './candidates.js';
import { isBatonError, type ErrorCode } from './errors.js';
import type { NodeObservation } from './observation.js';
import { ChainControls, type OperationBook } from './chain-controls.js';
import { FencingModeSwitch } from './fencing-mode.js';
import { runSwitchover, type SwitchoverContext } from './switchover.js';
import { isFinal, isPaused, type FailoverParams, type Operation, type OperationStep } from './operation.js';
import type { BreakGlass, ChainState, Log, NodeControl, OperationStore, Scheduler, SupervisionFence } from './ports.js';
import type { Term } from './term.js';
import { noopTracer, type TermTrigger, type Tracer } from './telemetry.js';

/** What the runner needs of the chain's supervisor. */
export interface RunnerHost {
  readonly chainId: string;
  readonly fence: SupervisionFence;
  readonly nodes: NodeControl;
  readonly ops: OperationStore;
  readonly scheduler: Scheduler;
  readonly log: Log;
  spec(): ChainSpec;
  state(): ChainState | undefined;
  observations(): ReadonlyMap<string, NodeObservation>;
  monoMs(): number;
  wallMs(): number;
  /**
   * The fenced txn that makes a new term for `to`, then a stop under it to every other node.
   * `breakGlass`: an override record, and the recorded head it sets back (rollbackHead), both
   * written by the same txn.
   */
  changeLeader(previous: LeaderRecord | undefined, to: string, reason: string, fromHead?: number, trigger?: TermTrigger, breakGlass?: BreakGlass): Promise<Term>;
  /** Writes the spec's fencing mode under the fence (ChainStore.setFencingMode); false: it had it already. */
  setFencingMode(mode: FencingMode): Promise<boolean>;
  /** Records that a grant (start, renewal, handoff) under a term of `mode` is about to be sent to a node. */
  grantSent(nodeId: string, mode: FencingMode): number;
  grantConfirmed(sentAtMs: number): void;
  wake(): void;
  /** Spans of each operation's execution, continuing the request's trace (default: none). */
  readonly tracer?: Tracer;
  /** The target of a handoff was made active under `term` (its first block is awaited next). */
  leaderStarted?(term: Term): void;
}

/** How long a manual failover may take from the new term to the new leader's first report. */
function failoverTimeoutMs(spec: ChainSpec): number {
  return 3 * spec.policy.leaseTtlMs + 10_000;
}



type Step = Omit<OperationStep, 'atMs'>;

export class OperationRunner {
  /** Unfinished operations of the chain, by id, as last written. */
  private readonly ops = new Map<string, Operation>();
  private readonly startedAtMs = new Map<string, number>();
  /** Failovers and switchovers: since when they are due and wait for current reports (reportsCurrent). */
  private readonly dueAtMs = new Map<string, number>();
  /** Switchovers held back until the active's lease is renewed (see leaseTooShort), since when. */
  private readonly deferredAtMs = new Map<string, number>();
  private cancelTimer: (() => void) | undefined;
  private timerAtMs: number | undefined;
  private readonly controls: ChainControls;
  private readonly fencingMode: FencingModeSwitch;
  private readonly switchoverContext: SwitchoverContext;

  constructor(private readonly host: RunnerHost) {
    const book: OperationBook = {
      save: (op, change, ...steps) => this.save(op, change, ...steps),
      fail: (op, code, message, step) => this.fail(op, code, message, step),
      wakeAfter: (ms) => this.wakeAfter(ms),
      ordered: () => this.ordered(),
      started: (op) => this.startedAtMs.set(op.id, this.host.monoMs()),
      since: (op) => {
        const at = this.startedAtMs.get(op.id) ?? this.host.monoMs();
        this.startedAtMs.set(op.id, at);
        return at;
      },
    };
    this.controls = new ChainControls(host, book);
    this.fencingMode = new FencingModeSwitch(host, book, () => failoverTimeoutMs(host.spec()));
    this.switchoverContext = {
      host,
      tracer: this.tracer,
      attrs: (extra) => this.attrs(extra),
      node: (id) => this.node(id),
      chooseOrFail: (op, requested, leader) => this.chooseOrFail(op, requested, leader),
      save: (op, change, ...steps) => this.save(op, change, ...steps),
      stamp: (step) => this.stamp(step),
      fail: (op, code, message, step) => this.fail(op, code, message, step),
      refusedByOverride: (op) => this.controls.refusedByOverride(op),
    };
  }

  /** Some operation of the chain is not finished yet. */
  busy(): boolean {
    return this.ops.size > 0;
  }

  /** The kind and state of each unfinished operation of the chain, as last written. */
  unfinished(): { kind: Operation['params']['kind']; state: Operation['state'] }[] {
    return [...this.ops.values()].map((op) => ({ kind: op.params.kind, state: op.state }));
  }

  stop(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  /** Advances the chain's operations by one step; true when it changed something. */
  async step(): Promise<boolean> {
    const state = this.host.state();
    if (!state) return false;
    await this.load(state.intents);
    for (const op of this.ordered()) {
      if (op.state === 'running') {
        if (await this.continueRunning(op)) return true;
        continue;
      }
      switch (op.params.kind) {
        case 'pause':
        case 'resume':
          await this.traced(op, () => this.controls.pauseOrResume(op));
          return true;
        case 'cancel-switchover':
          await this.traced(op, () => this.controls.cancelSwitchover(op));
          return true;
        case 'clear-override':
          await this.traced(op, () => this.controls.clearOverride(op));
          return true;
        case 'set-fencing-mode': {
          const params = op.params;
          await this.traced(op, () => this.fencingMode.start(op, params));
          return true;
        }
        case 'override': {
          // Its identity check reads the node's report: wait for the first probes, as a failover does.
          if (!this.probed()) continue;
          const params = op.params;
          await this.traced(op, () => this.controls.override(op, params));
          return true;
        }
        case 'failover':
        case 'switchover': {
          const due = op.params.kind === 'switchover' ? (op.params.scheduledAtMs ?? 0) : 0;
          const wait = due - this.host.wallMs();
          if (wait > 0) {
            if (op.state !== 'scheduled') await this.save(op, { state: 'scheduled' });
            this.wakeAfter(wait);
            continue;
          }
          // Choose on current reports only (see reportsCurrent).
          if (!this.reportsCurrent(op)) continue;
          if (op.params.kind === 'switchover' && this.leaseTooShort(op)) continue;
          const params = op.params;
          await this.traced(op, () => (params.kind === 'failover' ? this.failover(op, params) : runSwitchover(this.switchoverContext, op, params)));
          return true;
        }
      }
    }
    return false;
  }

  // ---- tracing ---------------------------------------------------------------------------

  private get tracer(): Tracer {
    return this.host.tracer ?? noopTracer;
  }

  /**
   * Runs the execution of an operation as a span that continues the trace of the request that
   * created it (its traceparent is stored with the operation), whichever replica executes it.
   */
  private traced<T>(op: Operation, fn: () => Promise<T>): Promise<T> {
    const attrs = { 'baton.chain': op.chainId, 'baton.operation': op.id, 'baton.reason': op.params.reason, 'baton.executor': this.host.fence.replicaId };
    return this.tracer.span(op.params.kind, attrs, () => fn(), { parent: op.traceparent ? { traceparent: op.traceparent } : null });
  }

  private attrs(extra: Record<string, string | number | bigint | undefined>): Record<string, string | number | bigint | undefined> {
    return { 'baton.chain': this.host.chainId, ...extra };
  }

  // ---- bookkeeping -----------------------------------------------------------------------

  private async load(intents: readonly string[]): Promise<void> {
    const wanted = new Set(intents);
    for (const id of [...this.ops.keys()]) {
      if (wanted.has(id)) continue;
      this.ops.delete(id);
      this.startedAtMs.delete(id);
      this.dueAtMs.delete(id);
      this.deferredAtMs.delete(id);
    }
    if (intents.every((id) => this.ops.has(id))) return;
    for (const op of await this.host.ops.pending(this.host.chainId)) {
      if (!isFinal(op.state) && wanted.has(op.id)) this.ops.set(op.id, op);
    }
  }

  private ordered(): Operation[] {
    return [...this.ops.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** Every node of the spec has been probed at least once by this supervisor. */
  private probed(): boolean {
    const seen = this.host.observations();
    return this.host.spec().nodes.every((n) => seen.has(n.id));
  }

  /**
   * Whether the nodes' reports are current enough to choose a target by. A supervisor that just
   * took over has not heard from every node yet. And while a chain is steady its standbys are
   * asked only every few rounds (probe-plan.ts), so a standby's last report can be a second old
   * and look behind a head that moved meanwhile: a caught-up standby would be refused as behind.
   * With the operation under way every node is asked every round, so one round after the
   * operation became due (the first call here) every node that answers has reported; after two
   * rounds the choice is made on what there is.
   */
  private reportsCurrent(op: Operation): boolean {
    if (!this.probed()) return false;
    const now = this.host.monoMs();
    const since = this.dueAtMs.get(op.id) ?? now;
    this.dueAtMs.set(op.id, since);
    if (now - since >= 2 * this.host.spec().policy.probeIntervalMs) return true;
    const seen = this.host.observations();
    return this.host.spec().nodes.every((n) => {
      const obs = seen.get(n.id)!;
      return obs.reportAtMs >= since || obs.consecutiveFailures > 0;
    });
  }

  /**
   * The active's lease, as it last reported it, may run out during a handoff, which holds the loop
   * (and so the renewals) for a few block times: a supervisor that just took over has not renewed
   * it yet. Then the loop's decide renews it first. Not for longer than one lease: a lease that
   * is never renewed is decide's problem, and the handoff then fails with the reason.
   */
  private leaseTooShort(op: Operation): boolean {
    const leader = this.host.state()?.leader;
    const report = leader && this.host.observations().get(leader.nodeId)?.report;
    const ttlMs = this.host.spec().policy.leaseTtlMs;
    if (!report?.producing || report.leaseRemainingMs >= ttlMs / 2) {
      this.deferredAtMs.delete(op.id);
      return false;
    }
    const since = this.deferredAtMs.get(op.id) ?? this.host.monoMs();
    this.deferredAtMs.set(op.id, since);
    return this.host.monoMs() - since < ttlMs;
  }

  private stamp(step: Step): OperationStep {
    return { ...step, atMs: this.host.wallMs() };
  }

  /** Writes the operation with `change` and the steps (already stamped, or stamped now). */
  private async save(op: Operation, change: Partial<Operation>, ...steps: (Step | OperationStep)[]): Promise<Operation> {
    const stamped = steps.map((s) => ('atMs' in s ? s : this.stamp(s)));
    const next: Operation = { ...op, ...change, steps: [...op.steps, ...stamped], executor: this.host.fence.replicaId, updatedAtMs: this.host.wallMs() };
    try {
      await this.host.ops.update(this.host.fence, next);
    } catch (err) {
      // Changed or finished behind our back: read it again rather than retry a stale copy forever.
      if (isBatonError(err, 'CONFLICT')) this.ops.delete(op.id);
      throw err;
    }
    if (isFinal(next.state)) {
      this.ops.delete(op.id);
      this.startedAtMs.delete(op.id);
      this.dueAtMs.delete(op.id);
      this.deferredAtMs.delete(op.id);
    } else {
      this.ops.set(op.id, next);
    }
    for (const s of stamped) {
      this.host.log.info({ chain: this.host.chainId, operation: op.id, kind: op.params.kind, state: next.state, step: s.name, detail: s.detail }, 'operation step');
    }
    if (stamped.length === 0) this.host.log.info({ chain: this.host.chainId, operation: op.id, kind: op.params.kind, state: next.state }, 'operation state');
    return next;
  }

  private fail(op: Operation, code: ErrorCode, message: string, step: string): Promise<Operation> {
    return this.save(op, { state: 'failed', error: { code, message } }, { name: step, state: 'failed', detail: message });
  }

  /** Wakes the loop after `ms`, unless an earlier wake is already set (the loop re-arms the later one). */
  private wakeAfter(ms: number): void {
    const at = this.host.monoMs() + Math.max(0, ms);
    if (this.cancelTimer && this.timerAtMs !== undefined && this.timerAtMs <= at) return;
    this.cancelTimer?.();
    this.timerAtMs = at;
    this.cancelTimer = this.host.scheduler.after(Math.min(Math.max(0, ms) + 1, 60_000), () => {
      this.cancelTimer = undefined;
      this.timerAtMs = undefined;
      this.host.wake();
    });
  }

  private node(id: string): NodeSpec | undefined {
    return this.host.spec().nodes.find((n) => n.id === id);
  }

  /** The target, chosen exactly as a dry run shows it (chooseTarget). */
  private choose(requested: string | undefined, leader: LeaderRecord | undefined): { to: string; why: string; ranked: CandidateRanking } {
    return chooseTarget(this.host.spec(), this.host.observations(), this.host.state()?.head, leader?.nodeId, requested, this.host.monoMs());
  }

  /** choose, or the operation failed with the reason; undefined then. */
  private async chooseOrFail(op: Operation, requested: string | undefined, leader: LeaderRecord | undefined): Promise<{ to: string; why: string } | undefined> {
    try {
      return this.choose(requested, leader);
    } catch (err) {
      if (!isBatonError(err)) throw err;
      await this.fail(op, err.code, err.message, 'choose');
      return undefined;
    }
  }

  // ---- running operations ----------------------------------------------------------------------

  private continueRunning(op: Operation): Promise<boolean> {
    // A mode switch waits for the loop's own switch-mode term, not for a term it wrote.
    if (op.params.kind === 'set-fencing-mode') return this.fencingMode.check(op, op.params);
    return op.result?.term !== undefined ? this.checkRunning(op) : this.traced(op, () => this.resume(op));
  }

  /**
   * A running operation without a new term was interrupted between choosing its target and
   * recording the term. If the leader record changed since the choice, the fence was written: to
   * the chosen node (adopt its term and wait for it to produce; the loop starts it from the
   * recorded head if the handoff never completed), or to someone else (superseded). Otherwise
   * nothing was fenced and the operation starts over with the same target: PrepareHandoff is
   * idempotent per term, so an active that already stopped for it hands out the same ticket.
   */
  private async resume(op: Operation): Promise<boolean> {
    if (!this.probed()) return false;
    const leader = this.host.state()?.leader;
    const chosen = op.result?.nodeId;
    const chosenAtMs = lastStep(op, 'choose')?.atMs ?? op.createdAtMs;
    if (leader && leader.sinceMs >= chosenAtMs) {
      if (leader.nodeId === chosen) {
        this.startedAtMs.set(op.id, this.host.monoMs());
        await this.save(op, { result: { term: leader.term.toString(), nodeId: chosen, detail: `term ${leader.term} for ${chosen} was written; waiting for it to produce` } }, {
          name: 'fence',
          state: 'done',
          detail: `found term ${leader.term} for ${chosen} written before the interruption`,
        });
      } else if (op.params.kind === 'override') {
        // Break-glass forces its node whoever leads now: it simply runs again.
        await this.controls.override(op, op.params);
      } else {
        await this.fail(op, 'CONFLICT', `interrupted; meanwhile ${leader.nodeId} became leader under term ${leader.term}`, 'resume');
      }
      return true;
    }
    if (op.params.kind === 'failover') await this.failover(op, op.params, chosen);
    else if (op.params.kind === 'switchover') await runSwitchover(this.switchoverContext, op, op.params, chosen);
    else if (op.params.kind === 'override') await this.controls.override(op, op.params);
    else await this.fail(op, 'INTERNAL', `a ${op.params.kind} operation is never left running`, 'resume');
    return true;
  }

  /** A failover (or adopted handoff) is done when its leader reports producing under its term. */
  private async checkRunning(op: Operation): Promise<boolean> {
    const term = op.result?.term;
    const nodeId = op.result?.nodeId;
    const leader = this.host.state()?.leader;
    if (term === undefined || nodeId === undefined) return false;
    if (leader?.term.toString() !== term) {
      await this.fail(op, 'CONFLICT', `term ${term} was superseded by term ${leader?.term ?? 'none'}`, 'start');
      return true;
    }
    const report = this.host.observations().get(nodeId)?.report;
    if (report?.producing && report.term.toString() === term) {
      await this.save(op, { state: 'succeeded', result: { term, nodeId, headNumber: report.headNumber, detail: `${nodeId} producing under term ${term}` } }, {
        name: 'start',
        state: 'done',
        detail: `${nodeId} producing at head ${report.headNumber}`,
      });
      return true;
    }
    const started = this.startedAtMs.get(op.id) ?? this.host.monoMs();
    this.startedAtMs.set(op.id, started);
    if (this.host.monoMs() - started > failoverTimeoutMs(this.host.spec())) {
      await this.fail(op, 'UNAVAILABLE', `${nodeId} did not start producing under term ${term} in time`, 'start');
      return true;
    }
    return false;
  }

  // ---- failover ------------------------------------------------------------------------------

  /** `resumeTo`: the node an interrupted run of this operation had chosen. */
  private async failover(op: Operation, params: FailoverParams, resumeTo?: string): Promise<void> {
    const state = this.host.state()!;
    if (await this.controls.refusedByOverride(op)) return;
    if (isPaused(state.pause, this.host.wallMs())) return void (await this.fail(op, 'PAUSED', 'chain is paused: resume it first', 'check'));
    // Before the new term, the step acts under the old leader's: that is its `baton.term`.
    const chooseAttrs = this.attrs({ 'baton.from': state.leader?.nodeId, 'baton.term': state.leader?.term });
    const choice = await this.tracer.span('choose', chooseAttrs, async (span) => {
      const c = await this.chooseOrFail(op, params.candidate ?? resumeTo, state.leader);
      span.set({ 'baton.node': c?.to, 'baton.reason': c?.why });
      return c;
    });
    if (!choice) return;
    op = await this.save(op, { state: 'running', result: { nodeId: choice.to, detail: `failing over to ${choice.to}` } }, { name: 'choose', state: 'done', detail: `${choice.to}: ${choice.why}` });
    const term = await this.host.changeLeader(state.leader, choice.to, `operator failover (${params.reason}): ${choice.why}`, undefined, 'operator');
    this.startedAtMs.set(op.id, this.host.monoMs());
    await this.save(op, { result: { term: term.toString(), nodeId: choice.to, detail: 'new term written; starting the new leader' } }, {
      name: 'fence',
      state: 'done',
      detail: `term ${term} for ${choice.to}`,
    });
  }
}

function lastStep(op: Operation, name: string): OperationStep | undefined {
  for (let i = op.steps.length - 1; i >= 0; i--) if (op.steps[i]!.name === name) return op.steps[i];
  return undefined;
}
