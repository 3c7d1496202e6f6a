// A planned handoff (switchover) as the runner executes it: the active stops at head h and hands
// out a ticket bound to (term, h); the target must hold exactly h; then the new term, and the
// target continues at h+1. Any failure after the prepare rolls back to the old leader under a new
// term. The node-side steps are in handoff-steps.ts.
import type { ChainSpec, LeaderRecord, NodeSpec } from './chain.js';
import { isBatonError, type ErrorCode } from './errors.js';
import { completeHandoff, nextBlock, waitForHead } from './handoff-steps.js';
import { isPaused, type Operation, type OperationStep, type SwitchoverParams } from './operation.js';
import type { RunnerHost } from './operations-runner.js';
import type { HandoffTicket } from './ports.js';
import type { Tracer } from './telemetry.js';

type Step = Omit<OperationStep, 'atMs'>;

/**
 * How long the target of a handoff may take to hold exactly the old active's last block. The chain
 * makes nothing meanwhile, so this is short: an eligible target is at most maxLagBlocks behind and
 * normally has the block already (the active pushes each block before it logs it).
 */
function catchUpTimeoutMs(spec: ChainSpec): number {
  return Math.min(spec.policy.leaseTtlMs, Math.max(1000, 4 * spec.policy.blockTimeMs));
}

/** What a switchover needs of the runner. */
export interface SwitchoverContext {
  readonly host: RunnerHost;
  readonly tracer: Tracer;
  attrs(extra: Record<string, string | number | bigint | undefined>): Record<string, string | number | bigint | undefined>;
  node(id: string): NodeSpec | undefined;
  /** The target (chooseTarget), or the operation failed with the reason; undefined then. */
  chooseOrFail(op: Operation, requested: string | undefined, leader: LeaderRecord | undefined): Promise<{ to: string; why: string } | undefined>;
  save(op: Operation, change: Partial<Operation>, ...steps: (Step | OperationStep)[]): Promise<Operation>;
  stamp(step: Step): OperationStep;
  fail(op: Operation, code: ErrorCode, message: string, step: string): Promise<Operation>;
  /** Fails the operation (OVERRIDDEN) when a break-glass override is in force. */
  refusedByOverride(op: Operation): Promise<boolean>;
}

/**
 * Between PrepareHandoff and CompleteHandoff the chain makes no block, so nothing on that path
 * writes the operation: its steps are stamped as they happen and written once it ended.
 * `resumeTo`: the target an interrupted run of this operation had chosen.
 */
export async function runSwitchover(ctx: SwitchoverContext, op: Operation, params: SwitchoverParams, resumeTo?: string): Promise<void> {
  const host = ctx.host;
  const state = host.state()!;
  const leader = state.leader;
  const from = leader && ctx.node(leader.nodeId);
  if (await ctx.refusedByOverride(op)) return;
  if (isPaused(state.pause, host.wallMs())) return void (await ctx.fail(op, 'PAUSED', 'chain is paused: resume it first', 'check'));
  const report = leader && host.observations().get(leader.nodeId)?.report;
  const producing = report?.producing === true && report.term === leader?.term;
  // A resumed handoff may find the active already stopped by its own PrepareHandoff: asking again
  // returns the same ticket, or NOT_ACTIVE if the active is neither producing nor prepared.
  if (!leader || !from || (!producing && resumeTo === undefined)) {
    return void (await ctx.fail(op, 'NOT_ACTIVE', 'no producing leader to hand over from', 'check'));
  }
  // Until the new term is written, a step acts under the old one: that is its `baton.term`.
  const choice = await ctx.tracer.span('choose', ctx.attrs({ 'baton.from': leader.nodeId, 'baton.term': leader.term }), async (span) => {
    const c = await ctx.chooseOrFail(op, params.target ?? resumeTo, leader);
    span.set({ 'baton.node': c?.to, 'baton.reason': c?.why });
    return c;
  });
  if (!choice) return;
  const target = ctx.node(choice.to)!;
  op = await ctx.save(op, { state: 'running', result: { nodeId: target.id, detail: `handing over from ${from.id} to ${target.id}` } }, {
    name: 'choose',
    state: 'done',
    detail: `${target.id}: ${choice.why}`,
  });

  // Phase 1: the active stops at head h and hands out a ticket bound to (term, h); right after it
  // made a block, so that the handoff has the whole slot to finish in.
  // Its polls are not worth a span each.
  if (producing) await ctx.tracer.outside(() => nextBlock(host, from));
  let ticket: HandoffTicket;
  try {
    const attrs = ctx.attrs({ 'baton.node': from.id, 'baton.term': leader.term, 'baton.target': target.id, 'baton.reason': params.reason });
    ticket = await ctx.tracer.span('prepare', attrs, async (span) => {
      const t = await host.nodes.prepareHandoff(from, leader.term, target.id, params.reason);
      span.set({ 'baton.head': t.headNumber });
      return t;
    });
  } catch (err) {
    // The active may or may not have stopped; the loop restarts it under its own term if it did.
    const code = isBatonError(err) ? err.code : 'NODE_UNREACHABLE';
    return void (await ctx.fail(op, code, `prepare on ${from.id} failed: ${message(err)}`, 'prepare'));
  }
  const h = ticket.headNumber;
  const steps: OperationStep[] = [ctx.stamp({ name: 'prepare', state: 'done', detail: `${from.id} stopped at head ${h}` })];

  // The target must hold exactly h before it may continue.
  const catchUpAttrs = ctx.attrs({ 'baton.node': target.id, 'baton.term': leader.term, 'baton.head': h, 'baton.reason': params.reason });
  const caughtUp = await ctx.tracer.span('catch-up', catchUpAttrs, async (span) => {
    const ok = await ctx.tracer.outside(() => waitForHead(host, target, h, ticket.headHash, catchUpTimeoutMs(host.spec())));
    if (!ok) span.fail('HEAD_BEHIND', `${target.id} did not reach head ${h}`);
    return ok;
  });
  if (!caughtUp) return rollback(ctx, op, steps, leader, from.id, h, `${target.id} did not reach head ${h}`);
  steps.push(ctx.stamp({ name: 'catch-up', state: 'done', detail: `${target.id} holds head ${h}` }));

  // Phase 2: the new term (every other node is told at once), then the target continues at h+1.
  const term = await host.changeLeader(leader, target.id, `switchover (${params.reason}): ${choice.why}`, h, 'switchover');
  steps.push(ctx.stamp({ name: 'fence', state: 'done', detail: `term ${term} for ${target.id}` }));
  const completeAttrs = ctx.attrs({ 'baton.node': target.id, 'baton.term': term, 'baton.head': h, 'baton.reason': params.reason });
  const completed = await ctx.tracer.span('complete', completeAttrs, async (span) => {
    const c = await completeHandoff(host, target, ticket, term);
    if (c !== true) span.fail('NOT_ACTIVE', c);
    return c;
  });
  if (completed === true) host.leaderStarted?.(term);
  if (completed !== true) {
    const written: LeaderRecord = { ...leader, term, nodeId: target.id, fromHead: h };
    return rollback(ctx, op, steps, written, from.id, h, `complete on ${target.id} failed: ${completed}`);
  }
  steps.push(ctx.stamp({ name: 'complete', state: 'done', detail: `${target.id} active under term ${term} from head ${h}` }));
  await ctx.save(
    op,
    { state: 'succeeded', result: { term: term.toString(), nodeId: target.id, headNumber: h + 1, detail: `${target.id} continues at ${h + 1}` } },
    ...steps,
  );
}

/**
 * Back to the old leader under a new term (it holds h, having made it); every other node is told
 * the term at once, and the loop's decide starts the old leader when no other lease can be valid.
 */
async function rollback(ctx: SwitchoverContext, op: Operation, steps: OperationStep[], current: LeaderRecord, oldNodeId: string, head: number, why: string): Promise<void> {
  const host = ctx.host;
  const term = await ctx.tracer.span('rollback', ctx.attrs({ 'baton.node': oldNodeId, 'baton.reason': why }), async (span) => {
    const t = await host.changeLeader(current, oldNodeId, `switchover rolled back: ${why}`, head, 'rollback');
    span.set({ 'baton.term': t });
    return t;
  });
  await ctx.save(
    op,
    { state: 'failed', error: { code: 'ABORTED', message: why }, result: { term: term.toString(), nodeId: oldNodeId, detail: `rolled back to ${oldNodeId} under term ${term}` } },
    ...steps,
    ctx.stamp({ name: 'rollback', state: 'done', detail: `${why}; rolled back to ${oldNodeId} under term ${term}` }),
  );
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
