// Executes a chain's operator requests (intents) on the replica that supervises it, inside the
// supervisor's single-flight loop: pause and resume at once; a manual failover by writing the new
// term (the loop's decide then starts the new leader when it is safe); a switchover as a two-phase
// handoff with rollback. Every step is recorded on the operation, fenced on the supervisor key.
import type { ChainSpec, LeaderRecord, NodeSpec } from './chain.js';
import { rankCandidates, type CandidateRanking } from './candidates.js';
import { BatonError, isBatonError, type ErrorCode } from './errors.js';
import type { NodeObservation } from './observation.js';
import { isFinal, isPaused, type FailoverParams, type Operation, type OperationStep, type SwitchoverParams } from './operation.js';
import type { ChainState, Log, NodeControl, OperationStore, Scheduler, SupervisionFence } from './ports.js';
import type { Term } from './term.js';

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
  /** The fenced txn that makes a new term for `to`, then a stop under it to every other node. */
  changeLeader(previous: LeaderRecord | undefined, to: string, reason: string, fromHead?: number): Promise<Term>;
  /** Records that a grant (start, renewal, handoff) is about to be sent to a node. */
  grantSent(nodeId: string): number;
  grantConfirmed(sentAtMs: number): void;
  wake(): void;
}

/** How long a manual failover may take from the new term to the new leader's first report. */
function failoverTimeoutMs(spec: ChainSpec): number {
  return 3 * spec.policy.leaseTtlMs + 10_000;
}

const CATCH_UP_POLL_MS = 10;

export class OperationRunner {
  /** Unfinished operations of the chain, by id, as last written. */
  private readonly ops = new Map<string, Operation>();
  private readonly startedAtMs = new Map<string, number>();
  private cancelTimer: (() => void) | undefined;

  constructor(private readonly host: RunnerHost) {}

  stop(): void {
    this.cancelTimer?.();
  }

  /** Advances the chain's operations by one step; true when it changed something. */
  async step(): Promise<boolean> {
    const state = this.host.state();
    if (!state) return false;
    await this.load(state.intents);
    for (const op of this.ordered()) {
      if (op.state === 'running') {
        if (await this.checkRunning(op)) return true;
        continue;
      }
      switch (op.params.kind) {
        case 'pause':
        case 'resume':
          await this.pauseOrResume(op);
          return true;
        case 'cancel-switchover':
          await this.cancelSwitchover(op);
          return true;
        case 'failover':
        case 'switchover': {
          const due = op.params.kind === 'switchover' ? (op.params.scheduledAtMs ?? 0) : 0;
          const wait = due - this.host.wallMs();
          if (wait > 0) {
            if (op.state !== 'scheduled') await this.save(op, { state: 'scheduled' });
            this.wakeAfter(wait);
            continue;
          }
          if (op.params.kind === 'failover') await this.failover(op, op.params);
          else await this.switchover(op, op.params);
          return true;
        }
      }
    }
    return false;
  }

  // ---- bookkeeping -----------------------------------------------------------------------

  private async load(intents: readonly string[]): Promise<void> {
    const wanted = new Set(intents);
    for (const id of [...this.ops.keys()]) if (!wanted.has(id)) this.ops.delete(id);
    if (intents.every((id) => this.ops.has(id))) return;
    for (const op of await this.host.ops.pending(this.host.chainId)) {
      if (!isFinal(op.state) && wanted.has(op.id)) this.ops.set(op.id, op);
    }
  }

  private ordered(): Operation[] {
    return [...this.ops.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  private async save(op: Operation, change: Partial<Operation>, step?: Omit<OperationStep, 'atMs'>): Promise<Operation> {
    const steps = step ? [...op.steps, { ...step, atMs: this.host.wallMs() }] : op.steps;
    const next: Operation = { ...op, ...change, steps, executor: this.host.fence.replicaId, updatedAtMs: this.host.wallMs() };
    await this.host.ops.update(this.host.fence, next);
    if (isFinal(next.state)) this.ops.delete(op.id);
    else this.ops.set(op.id, next);
    this.host.log.info({ chain: this.host.chainId, operation: op.id, kind: op.params.kind, state: next.state, step: step?.name }, step?.detail ?? next.state);
    return next;
  }

  private fail(op: Operation, code: ErrorCode, message: string, step: string): Promise<Operation> {
    return this.save(op, { state: 'failed', error: { code, message } }, { name: step, state: 'failed', detail: message });
  }

  private wakeAfter(ms: number): void {
    this.cancelTimer?.();
    this.cancelTimer = this.host.scheduler.after(Math.min(ms + 1, 60_000), () => this.host.wake());
  }

  private node(id: string): NodeSpec | undefined {
    return this.host.spec().nodes.find((n) => n.id === id);
  }

  /** The target: the one asked for if it is eligible, else the best eligible standby. */
  private choose(requested: string | undefined, leader: LeaderRecord | undefined): { to: string; ranked: CandidateRanking } {
    const spec = this.host.spec();
    const exclude = leader ? [leader.nodeId] : [];
    const ranked = rankCandidates(spec, this.host.observations(), this.host.state()?.head, exclude, this.host.monoMs(), leader && this.node(leader.nodeId)?.zone);
    if (requested !== undefined) {
      if (!this.node(requested)) throw new BatonError('NOT_FOUND', `node ${requested} is not in chain ${spec.id}`);
      if (requested === leader?.nodeId) throw new BatonError('INVALID_ARGUMENT', `${requested} is already the leader`);
      const entry = ranked.ranking.find((c) => c.nodeId === requested);
      if (!entry?.eligible) throw new BatonError('NOT_ELIGIBLE', `${requested} is not eligible: ${entry?.reasons.join(' and ') || 'no report'}`);
      return { to: requested, ranked };
    }
    if (ranked.best === undefined) throw new BatonError('NOT_ELIGIBLE', `no eligible standby: ${ranked.summary}`);
    return { to: ranked.best, ranked };
  }

  // ---- pause, resume, cancel -----------------------------------------------------------------

  private async pauseOrResume(op: Operation): Promise<void> {
    const now = this.host.wallMs();
    if (op.params.kind === 'pause') {
      await this.host.ops.setPause(this.host.fence, { reason: op.params.reason, untilMs: op.params.untilMs, sinceMs: now, operationId: op.id });
      const until = op.params.untilMs === undefined ? 'until resumed' : `until ${new Date(op.params.untilMs).toISOString()}`;
      await this.save(op, { state: 'succeeded', result: { detail: `paused ${until}` } }, { name: 'pause', state: 'done', detail: `paused ${until}: ${op.params.reason}` });
      if (op.params.untilMs !== undefined) this.wakeAfter(op.params.untilMs - now);
    } else {
      const was = isPaused(this.host.state()?.pause, now);
      await this.host.ops.setPause(this.host.fence, undefined);
      const detail = was ? 'resumed' : 'was not paused';
      await this.save(op, { state: 'succeeded', result: { detail } }, { name: 'resume', state: 'done', detail });
    }
  }

  private async cancelSwitchover(op: Operation): Promise<void> {
    const target = this.ordered().find((o) => o.params.kind === 'switchover' && o.state === 'scheduled');
    if (!target) {
      await this.fail(op, 'NOT_FOUND', 'no scheduled switchover to cancel', 'cancel');
      return;
    }
    await this.save(target, { state: 'cancelled', result: { detail: `cancelled by ${op.id}` } }, { name: 'cancel', state: 'done', detail: op.params.reason });
    await this.save(op, { state: 'succeeded', result: { detail: `cancelled ${target.id}` } }, { name: 'cancel', state: 'done', detail: `cancelled ${target.id}` });
  }

  // ---- failover ------------------------------------------------------------------------------

  private async failover(op: Operation, params: FailoverParams): Promise<void> {
    const state = this.host.state()!;
    if (isPaused(state.pause, this.host.wallMs())) return void (await this.fail(op, 'PAUSED', 'chain is paused: resume it first', 'check'));
    let choice;
    try {
      choice = this.choose(params.candidate, state.leader);
    } catch (err) {
      if (!isBatonError(err)) throw err;
      return void (await this.fail(op, err.code, err.message, 'choose'));
    }
    op = await this.save(op, { state: 'running' }, { name: 'choose', state: 'done', detail: `${choice.to}: ${choice.ranked.summary}` });
    const term = await this.host.changeLeader(state.leader, choice.to, `operator failover (${params.reason}): ${choice.ranked.summary}`);
    this.startedAtMs.set(op.id, this.host.monoMs());
    await this.save(op, { result: { term: term.toString(), nodeId: choice.to, detail: 'new term written; starting the new leader' } }, {
      name: 'fence',
      state: 'done',
      detail: `term ${term} for ${choice.to}`,
    });
  }

  /** A manual failover is done when its leader reports producing under its term. */
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

  // ---- switchover (two-phase handoff) ----------------------------------------------------------

  private async switchover(op: Operation, params: SwitchoverParams): Promise<void> {
    const state = this.host.state()!;
    const leader = state.leader;
    const from = leader && this.node(leader.nodeId);
    const report = leader && this.host.observations().get(leader.nodeId)?.report;
    if (isPaused(state.pause, this.host.wallMs())) return void (await this.fail(op, 'PAUSED', 'chain is paused: resume it first', 'check'));
    if (!leader || !from || !report?.producing || report.term !== leader.term) {
      return void (await this.fail(op, 'NOT_ACTIVE', 'no producing leader to hand over from', 'check'));
    }
    let choice;
    try {
      choice = this.choose(params.target, leader);
    } catch (err) {
      if (!isBatonError(err)) throw err;
      return void (await this.fail(op, err.code, err.message, 'choose'));
    }
    const target = this.node(choice.to)!;
    op = await this.save(op, { state: 'running' }, { name: 'choose', state: 'done', detail: `${target.id}: ${choice.ranked.summary}` });

    // Phase 1: the active stops at head h and hands out a ticket bound to (term, h).
    let ticket;
    try {
      ticket = await this.host.nodes.prepareHandoff(from, leader.term, target.id, params.reason);
    } catch (err) {
      // The active may or may not have stopped; the loop restarts it under its own term if needed.
      return void (await this.fail(op, 'NODE_UNREACHABLE', `prepare on ${from.id} failed: ${String(err)}`, 'prepare'));
    }
    op = await this.save(op, {}, { name: 'prepare', state: 'done', detail: `${from.id} stopped at head ${ticket.headNumber}` });

    // The target must hold exactly h before it may continue.
    const caughtUp = await this.waitForHead(target, ticket.headNumber, ticket.headHash, this.host.spec().policy.leaseTtlMs);
    if (!caughtUp) return this.rollback(op, leader, from.id, ticket.headNumber, `${target.id} did not reach head ${ticket.headNumber}`);

    // Phase 2: the new term, then the old node is told about it, then the target continues at h+1.
    const term = await this.host.changeLeader(leader, target.id, `switchover (${params.reason}): ${choice.ranked.summary}`, ticket.headNumber);
    const sentAt = this.host.grantSent(target.id);
    try {
      await this.host.nodes.completeHandoff(target, ticket, term, this.host.spec().policy.leaseTtlMs);
      this.host.grantConfirmed(sentAt);
    } catch (err) {
      const written: LeaderRecord = { ...leader, term, nodeId: target.id, fromHead: ticket.headNumber };
      return this.rollback(op, written, from.id, ticket.headNumber, `complete on ${target.id} failed: ${String(err)}`);
    }
    await this.save(op, { state: 'succeeded', result: { term: term.toString(), nodeId: target.id, headNumber: ticket.headNumber + 1, detail: `${target.id} continues at ${ticket.headNumber + 1}` } }, {
      name: 'complete',
      state: 'done',
      detail: `${target.id} active under term ${term} from head ${ticket.headNumber}`,
    });
  }

  private async waitForHead(node: NodeSpec, number: number, hash: string, timeoutMs: number): Promise<boolean> {
    const deadline = this.host.monoMs() + timeoutMs;
    while (this.host.monoMs() < deadline) {
      try {
        const r = await this.host.nodes.health(node);
        if (r.headNumber === number && r.headHash === hash) return true;
        if (r.headNumber > number) return false; // a different branch: never hand over to it
      } catch {
        // unreachable for now: try again until the deadline
      }
      await new Promise<void>((resolve) => this.host.scheduler.after(CATCH_UP_POLL_MS, resolve));
    }
    return false;
  }

  /** Back to the old leader under a new term; the loop's decide starts it when it is safe. */
  private async rollback(op: Operation, current: LeaderRecord, oldNodeId: string, head: number, why: string): Promise<void> {
    const term = await this.host.changeLeader(current, oldNodeId, `switchover rolled back: ${why}`, head);
    await this.save(op, { state: 'failed', error: { code: 'ABORTED', message: why }, result: { term: term.toString(), nodeId: oldNodeId, detail: `rolled back to ${oldNodeId} under term ${term}` } }, {
      name: 'rollback',
      state: 'done',
      detail: `${why}; rolled back to ${oldNodeId} under term ${term}`,
    });
  }
}
