// The operator requests that do not pick a target by eligibility, as the runner executes them:
// pause and resume, cancelling a scheduled switchover, and the break-glass override and its clear.
//
// Break-glass override. An operator with the `breakglass` role forces one node active. What it
// skips: every judgement of whether the node is a good choice (health, lag limit, version, zone,
// priority, flaps) and the chain's pause. What it never skips, because DESIGN's invariants do not
// bend for anyone:
//   - one producer: the node gets a NEW term in the same fenced txn as any failover (supervisor
//     key + leader term compared), every other node is told to stop under it at once, and the
//     node is started only by the loop's decide, which waits out the old leases (lease mode) or
//     relies on the old term no longer committing (commit mode) exactly as after a failover;
//   - terms only grow: the term is the txn's revision; a node refuses anything older;
//   - heads never go back / continuity: the node is started from the recorded unsafe head and
//     refuses to produce until it holds it (HEAD_BEHIND), so a lagging node produces only once it
//     has caught up; a node that reports another chain id or genesis is refused (MISCONFIGURED):
//     making it active would fork the chain, which is not an eligibility question;
//   - fenced writes and nothing lost: the override is an intent like any other operation, and its
//     record is written in the txn of the term it forces, so it holds from exactly that term on.
// With `rollbackHead` (see rollback.ts) the one exception: the operator authorises setting the
// recorded head back to the node's own head, in the same fenced txn, when no leader is producing.
// While the override is in force (see decide.ts) nothing moves leadership away from the forced
// node automatically, even when it is unhealthy or unreachable: the operator took the decision
// and keeps it until a clear-override. Operator failovers and switchovers are refused
// (OVERRIDDEN) meanwhile; another override may move it.
import { normalizeHex } from './chain.js';
import { isBatonError, type ErrorCode } from './errors.js';
import { isPaused, type Operation, type OperationStep, type OverrideParams, type OverrideRecord } from './operation.js';
import type { RunnerHost } from './operations-runner.js';
import { planRollback } from './rollback.js';

type Step = Omit<OperationStep, 'atMs'>;

/** The runner's bookkeeping these controls use. */
export interface OperationBook {
  save(op: Operation, change: Partial<Operation>, ...steps: (Step | OperationStep)[]): Promise<Operation>;
  fail(op: Operation, code: ErrorCode, message: string, step: string): Promise<Operation>;
  wakeAfter(ms: number): void;
  /** Unfinished operations of the chain, oldest first. */
  ordered(): Operation[];
  /** The operation's new leader is awaited from now (its timeout starts). */
  started(op: Operation): void;
  /** Monotonic ms since which the running operation is awaited (now, when not known: a new supervisor). */
  since(op: Operation): number;
}

export class ChainControls {
  constructor(
    private readonly host: RunnerHost,
    private readonly book: OperationBook,
  ) {}

  async pauseOrResume(op: Operation): Promise<void> {
    const now = this.host.wallMs();
    if (op.params.kind === 'pause') {
      await this.host.ops.setPause(this.host.fence, { reason: op.params.reason, untilMs: op.params.untilMs, sinceMs: now, operationId: op.id });
      const until = op.params.untilMs === undefined ? 'until resumed' : `until ${new Date(op.params.untilMs).toISOString()}`;
      await this.book.save(op, { state: 'succeeded', result: { detail: `paused ${until}` } }, { name: 'pause', state: 'done', detail: `paused ${until}: ${op.params.reason}` });
      if (op.params.untilMs !== undefined) this.book.wakeAfter(op.params.untilMs - now);
    } else {
      const was = isPaused(this.host.state()?.pause, now);
      await this.host.ops.setPause(this.host.fence, undefined);
      const detail = was ? 'resumed' : 'was not paused';
      await this.book.save(op, { state: 'succeeded', result: { detail } }, { name: 'resume', state: 'done', detail });
    }
  }

  async cancelSwitchover(op: Operation): Promise<void> {
    const target = this.book.ordered().find((o) => o.params.kind === 'switchover' && o.state === 'scheduled');
    if (!target) {
      await this.book.fail(op, 'NOT_FOUND', 'no scheduled switchover to cancel', 'cancel');
      return;
    }
    await this.book.save(target, { state: 'cancelled', result: { detail: `cancelled by ${op.id}` } }, { name: 'cancel', state: 'done', detail: op.params.reason });
    await this.book.save(op, { state: 'succeeded', result: { detail: `cancelled ${target.id}` } }, { name: 'cancel', state: 'done', detail: `cancelled ${target.id}` });
  }

  /** OVERRIDDEN when a break-glass override is in force: failover and switchover must not undo it. */
  async refusedByOverride(op: Operation): Promise<boolean> {
    const o = this.host.state()?.override;
    if (!o) return false;
    await this.book.fail(op, 'OVERRIDDEN', `break-glass override in force: ${o.nodeId} forced active under term ${o.term} (${o.reason}); clear it first`, 'check');
    return true;
  }

  /**
   * Forces `params.nodeId` active under a new term (see the file comment for what is skipped and
   * what is not). Ends `running` with the term; the runner's checkRunning then waits for the node
   * to produce under it, like a failover.
   */
  async override(op: Operation, params: OverrideParams): Promise<void> {
    const state = this.host.state()!;
    const leader = state.leader;
    const to = params.nodeId;
    if (!this.host.spec().nodes.some((n) => n.id === to)) {
      return void (await this.book.fail(op, 'NOT_FOUND', `node ${to} is not in chain ${this.host.chainId}`, 'check'));
    }
    const report = this.host.observations().get(to)?.report;
    const spec = this.host.spec();
    if (report && report.chainId !== spec.id) {
      return void (await this.book.fail(op, 'MISCONFIGURED', `${to} reports chain id ${report.chainId}, not ${spec.id}: never made active, not even by an override`, 'check'));
    }
    if (report && spec.genesisHash !== '' && normalizeHex(report.genesisHash) !== normalizeHex(spec.genesisHash)) {
      return void (await this.book.fail(op, 'MISCONFIGURED', `${to} reports genesis ${report.genesisHash}, not ${spec.genesisHash}: never made active, not even by an override`, 'check'));
    }
    const plan = params.rollbackHead === true
      ? planRollback({ leader, target: to, recorded: state.head, observations: this.host.observations(), policy: spec.policy, nowMs: this.host.monoMs() })
      : undefined;
    if (plan?.kind === 'refused') return void (await this.book.fail(op, plan.code, plan.message, 'check'));
    const skipped = report ? `head ${report.headNumber}, ${report.healthy ? 'healthy' : 'unhealthy'}` : 'no report yet';
    op = await this.book.save(op, { state: 'running', result: { nodeId: to, detail: `forcing ${to} active` } }, {
      name: 'choose',
      state: 'done',
      detail: `${to} forced by break-glass override, eligibility not checked (${skipped})`,
    });
    const record: OverrideRecord = {
      nodeId: to,
      reason: params.reason,
      sinceMs: this.host.wallMs(),
      operationId: op.id,
      ...(plan?.kind === 'rollback' ? { rolledBackFrom: plan.from, rolledBackTo: plan.to } : {}),
    };
    // The rollback rides in the txn of the new term, on the head revision it was judged against.
    const rollback = plan?.kind === 'rollback' ? { head: plan.head, expectedRevision: state.headRevision } : undefined;
    const why = plan?.kind === 'rollback'
      ? `break-glass override (${params.reason}); head rolled back from ${plan.from.number} (${plan.from.hash}) to ${plan.to.number} (${plan.to.hash})`
      : `break-glass override (${params.reason})`;
    const term = await this.host.changeLeader(leader, to, why, rollback?.head.number, 'override', { override: record, ...(rollback ? { rollback } : {}) });
    // The same node forced again: it is running under the old term, so stop it under the new one;
    // the loop then starts it (it saw the term and is not producing: nothing to wait out).
    if (leader?.nodeId === to) {
      const node = this.host.spec().nodes.find((n) => n.id === to)!;
      await this.host.nodes.stop(node, term, `break-glass override: new term ${term}`).catch(() => undefined);
    }
    this.book.started(op);
    const fenced = { name: 'fence', state: 'done' as const, detail: `term ${term} for ${to}; every other node told to stop under it` };
    const rolled = plan ? [{ name: 'rollback', state: plan.kind === 'rollback' ? ('done' as const) : ('skipped' as const), detail: plan.detail }] : [];
    await this.book.save(op, { result: { term: term.toString(), nodeId: to, detail: 'new term written; starting the forced node' } }, fenced, ...rolled);
  }

  /** Ends the override: from now on the supervisor judges the chain normally again. */
  async clearOverride(op: Operation): Promise<void> {
    let was: boolean;
    try {
      was = await this.host.ops.clearOverride(this.host.fence);
    } catch (err) {
      if (!isBatonError(err) || err.code === 'FENCED') throw err;
      return void (await this.book.fail(op, err.code, err.message, 'clear'));
    }
    const detail = was ? 'override cleared; automatic failover applies again' : 'no override was in force';
    await this.book.save(op, { state: 'succeeded', result: { detail } }, { name: 'clear', state: 'done', detail });
  }
}
