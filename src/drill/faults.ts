// Executes one step of the drill's schedule on the stack: inject the fault, hold it, heal it, and
// note what the end checks need (failover timings, operations accepted, stale commands refused or
// not, quorum-loss windows, lagging standbys). Every wait has a deadline.
import type { ActivityEntry } from '../sim/activity.js';
import { LogTail } from '../bench/log-tail.js';
import { waitFor } from '../devstack/process.js';
import { leaseToken, readActivityLog } from '../devstack/sim.js';
import { clusterStep } from './cluster-faults.js';
import type { DrillStack, NodeSlot } from './stack.js';
import type { FaultKind, Step } from './schedule.js';

/** A fault that takes the active out: the drill times the failover it causes. */
const ACTIVE_OUT: ReadonlySet<FaultKind> = new Set(['kill-active', 'pause-supervisor-kill-active', 'pause-supervisor-mid-failover', 'pause-active', 'stall-active', 'unhealthy-active', 'cut-active', 'lag-standby', 'delay-supervisor-etcd']);

export interface FailoverSample {
  readonly chain: string;
  readonly kind: FaultKind;
  readonly ms: number;
}

/** A breach the drill itself observed (the checker and the etcd scan report theirs separately). */
export interface DrillFinding {
  readonly kind: 'STALE_ACCEPTED' | 'PROMOTED_BEHIND' | 'PROMOTED_WITHOUT_QUORUM' | 'NOT_RECOVERED' | 'NO_FAILOVER' | 'BLAST_RADIUS' | 'NOT_SELF_FENCED';
  readonly chain: string;
  readonly message: string;
}

export interface DrillRecord {
  readonly faults: Partial<Record<FaultKind, number>>;
  readonly failovers: FailoverSample[];
  /** Operation ids the API accepted (202). */
  readonly operations: { id: string; chain: string; kind: string }[];
  readonly findings: DrillFinding[];
  staleRefused: number;
  /** `node rpc term` of every stale command the drill itself sent (not Baton's refusals). */
  readonly ownStale: Set<string>;
  /** Fencing lines logged by replicas after they were resumed from a pause longer than their lease. */
  fencedAfterPause: number;
  /** Replicas cut off from etcd that said they stopped acting while cut off. */
  fencedAfterCut: number;
  skipped: number;
}

export function newRecord(): DrillRecord {
  return { faults: {}, failovers: [], operations: [], findings: [], staleRefused: 0, ownStale: new Set(), fencedAfterPause: 0, fencedAfterCut: 0, skipped: 0 };
}

export interface StepContext {
  readonly stack: DrillStack;
  readonly chainIds: readonly string[];
  readonly record: DrillRecord;
  /** How long a chain may take to produce again once a fault is healed. */
  readonly recoverMs: number;
  readonly note: (line: string) => void;
}

/** A cut at least this long must end in a failover (the default timings fail over in ~2-5 s). */
const CUT_MUST_FAIL_OVER_MS = 12_000;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runStep(ctx: StepContext, step: Step): Promise<void> {
  const { stack, record } = ctx;
  const chain = ctx.chainIds[step.chain]!;
  const before = await stack.producingLeader(chain);
  const nodes = stack.nodesOf(chain);
  const active = before ? stack.slot(chain, before.nodeId) : undefined;
  const standbys = nodes.filter((n) => n !== active);
  const standby = standbys[Math.floor(step.pick * standbys.length)]!;
  const anyNode = nodes[Math.floor(step.pick * nodes.length)]!;
  if (!active && needsActive(step.kind)) {
    record.skipped++;
    ctx.note(`  skipped: ${chain} has no producing leader`);
    return;
  }
  const tails = nodes.map((n) => new LogTail(n.logFile));
  const faultAt = Date.now();
  let healed = false;
  let after: { nodeId: string; term: bigint } | undefined;
  const count = () => (record.faults[step.kind] = (record.faults[step.kind] ?? 0) + 1);

  switch (step.kind) {
    case 'kill-active':
      await stack.killNode(active!);
      count();
      after = await waitRecovered(ctx, chain, active!.node);
      await stack.restartNode(active!);
      healed = true;
      break;
    case 'kill-standby':
      await stack.killNode(standby);
      count();
      await sleep(step.holdMs);
      await stack.restartNode(standby);
      break;
    case 'pause-active':
    case 'pause-standby': {
      const s = step.kind === 'pause-active' ? active! : standby;
      stack.pauseNode(s);
      count();
      await sleep(step.holdMs);
      stack.resumeNode(s);
      break;
    }
    case 'stall-active':
    case 'unhealthy-active':
    case 'slow-active': {
      const h = stack.handle(active!);
      const faults = step.kind === 'stall-active' ? { stall: true } : step.kind === 'unhealthy-active' ? { unhealthy: 'drill' } : { slowMs: 100 + Math.floor(step.pick * 400) };
      await h.sim.setFaults({ faults } as never);
      count();
      await sleep(step.holdMs);
      await h.sim.setFaults({ faults: {} } as never).catch(() => undefined);
      break;
    }
    case 'cut-active':
    case 'delay-node': {
      const s = step.kind === 'cut-active' ? active! : anyNode;
      s.proxy.setMode(step.kind === 'cut-active' ? { kind: 'blackhole' } : { kind: 'delay', delayMs: 50 + Math.floor(step.pick * 250) });
      count();
      await sleep(step.holdMs);
      // Liveness: an active cut off from Baton this long must have been replaced before the cut heals.
      if (step.kind === 'cut-active' && step.holdMs >= CUT_MUST_FAIL_OVER_MS && !firstBlockAbove(tails, before!.term)) {
        record.findings.push({ kind: 'NO_FAILOVER', chain, message: `${s.node} was cut off from Baton for ${step.holdMs} ms and never replaced` });
        ctx.note(`  NO_FAILOVER ${chain}: ${s.node} cut off for ${step.holdMs} ms, no new term`);
      }
      s.proxy.setMode({ kind: 'pass' });
      break;
    }
    case 'lag-standby':
      after = await lagStandby(ctx, chain, active!, standby, step, count);
      healed = true;
      break;
    case 'stale-command':
      await staleCommand(ctx, chain, anyNode, count);
      break;
    case 'kill-replica':
    case 'pause-replica':
    case 'pause-replica-kill-etcd-leader':
    case 'pause-supervisor-kill-active':
    case 'pause-supervisor-mid-failover':
    case 'kill-etcd-follower':
    case 'kill-etcd-leader':
    case 'pause-etcd-follower':
    case 'pause-etcd-leader':
    case 'etcd-quorum-loss':
    case 'rolling-restart':
    case 'cut-replica-etcd':
    case 'delay-supervisor-etcd': {
      const done = await clusterStep(ctx, step, chain, active, count);
      if (!done) return;
      ({ after, healed } = done);
      break;
    }
    case 'switchover':
    case 'failover-op':
    case 'pause-chain':
      await operatorStep(ctx, chain, step, standby, count);
      break;
  }
  if (!healed) after = await waitRecovered(ctx, chain);
  if (ACTIVE_OUT.has(step.kind) && before && after && after.term > before.term) {
    // The API saw the new term producing; its first block is in a log within moments.
    const first = await waitFor('the first block of the new term', () => firstBlockAbove(tails, before.term), 10_000, 100).catch(() => undefined);
    if (first) record.failovers.push({ chain, kind: step.kind, ms: first.t - faultAt });
  }
}

function needsActive(kind: FaultKind): boolean {
  return ACTIVE_OUT.has(kind) || kind === 'slow-active' || kind === 'pause-active';
}

/**
 * Waits until every chain produces again (the focus chain under a node other than `not`); a chain
 * that does not is a NOT_RECOVERED finding. Returns the focus chain's producing leader.
 */
export async function waitRecovered(ctx: StepContext, focus: string, not?: string): Promise<{ nodeId: string; term: bigint } | undefined> {
  let leader: { nodeId: string; term: bigint } | undefined;
  for (const chain of [focus, ...ctx.chainIds.filter((c) => c !== focus)]) {
    try {
      const l = await waitFor(
        `a producing leader of ${chain}${chain === focus && not ? ` other than ${not}` : ''}`,
        async () => {
          const p = await ctx.stack.producingLeader(chain);
          return p && !(chain === focus && p.nodeId === not) ? p : undefined;
        },
        ctx.recoverMs,
        200,
      );
      if (chain === focus) leader = l;
    } catch (err) {
      ctx.record.findings.push({ kind: 'NOT_RECOVERED', chain, message: (err as Error).message });
      ctx.note(`  NOT_RECOVERED ${chain}: ${(err as Error).message}`);
    }
  }
  return leader;
}

/** The earliest block above `term` appended to any of the tails (kept across calls). */
function firstBlockAbove(tails: LogTail[], term: bigint): Extract<ActivityEntry, { ev: 'block' }> | undefined {
  for (const t of tails) {
    for (const e of t.read()) {
      if (e.ev === 'block' && BigInt(e.term) > term) seenAbove.set(t, e.t < (seenAbove.get(t)?.t ?? Infinity) ? e : seenAbove.get(t)!);
    }
  }
  let best: Extract<ActivityEntry, { ev: 'block' }> | undefined;
  for (const t of tails) {
    const e = seenAbove.get(t);
    if (e && (!best || e.t < best.t)) best = e;
  }
  return best;
}
const seenAbove = new WeakMap<LogTail, Extract<ActivityEntry, { ev: 'block' }>>();

/**
 * A standby far behind the recorded head, then the active dies: the lagging standby must not be
 * made active while it is behind (the other standby is).
 */
async function lagStandby(
  ctx: StepContext,
  chain: string,
  active: NodeSlot,
  lagging: NodeSlot,
  step: Step,
  count: () => void,
): Promise<{ nodeId: string; term: bigint } | undefined> {
  const { stack } = ctx;
  const h = stack.handle(lagging);
  await h.sim.setFaults({ faults: { lagBlocks: 20 } } as never);
  await sleep(step.holdMs);
  const from = Date.now();
  await stack.killNode(active);
  count();
  const after = await waitRecovered(ctx, chain, active.node);
  const promoted = readActivityLog(lagging.logFile).find((e) => e.ev === 'active-from' && e.t >= from);
  if (promoted) {
    ctx.record.findings.push({ kind: 'PROMOTED_BEHIND', chain, message: `${lagging.node} was made active (term ${(promoted as { term: string }).term}) while 20 blocks behind` });
  }
  await h.sim.setFaults({ faults: {} } as never).catch(() => undefined);
  await stack.restartNode(active);
  return after;
}

/**
 * A command of an older term delivered late (a paused replica waking up, a delayed packet): sent
 * straight to a node that has seen a newer term. The node must refuse both a start and a stop.
 */
async function staleCommand(ctx: StepContext, chain: string, target: NodeSlot, count: () => void): Promise<void> {
  const h = ctx.stack.handle(target);
  let highest: bigint;
  try {
    highest = (await h.sim.inspect({})).highestTerm;
  } catch {
    ctx.record.skipped++;
    return;
  }
  if (highest <= 1n) {
    ctx.record.skipped++;
    return;
  }
  const stale = leaseToken(highest - 1n);
  count();
  const start = {
    fromUnsafeHead: true,
    leaseToken: stale,
    reason: 'drill: delayed stale start',
    idempotencyKey: '',
    requester: 'drill',
    leaseTtlMs: 3000n,
    unsafe: undefined,
    chainId: chain,
    nodeId: target.node,
  };
  const tries: [string, Promise<unknown>][] = [
    ['StartSequencer', h.control.startSequencer(start as never)],
    ['StopSequencer', h.control.stopSequencer({ leaseToken: stale, force: false, reason: 'drill: duplicated stale stop', idempotencyKey: '', requester: 'drill' } as never)],
  ];
  for (const [rpc, p] of tries) {
    ctx.record.ownStale.add(`${chain}/${target.node} ${rpc} ${highest - 1n}`);
    try {
      await p;
      ctx.record.findings.push({ kind: 'STALE_ACCEPTED', chain, message: `${target.node} accepted ${rpc} under term ${highest - 1n} after seeing term ${highest}` });
      ctx.note(`  STALE_ACCEPTED ${chain}/${target.node} ${rpc} term ${highest - 1n} < ${highest}`);
    } catch {
      ctx.record.staleRefused++;
    }
  }
}

async function operatorStep(ctx: StepContext, chain: string, step: Step, standby: NodeSlot, count: () => void): Promise<void> {
  const api = ctx.stack.dev.api();
  const accept = async (kind: string, path: string, body: unknown): Promise<void> => {
    try {
      const res = await api.request<{ id?: string }>('POST', `/v1/chains/${chain}/${path}`, body);
      if (res.status === 202 && res.body?.id) ctx.record.operations.push({ id: res.body.id, chain, kind });
    } catch (err) {
      ctx.note(`  ${kind} ${chain}: ${(err as Error).message}`);
    }
  };
  count();
  if (step.kind === 'switchover') {
    await accept('switchover', 'switchover', step.pick < 0.5 ? { reason: 'drill' } : { target: standby.node, reason: 'drill' });
  } else if (step.kind === 'failover-op') {
    await accept('failover', 'failover', { reason: 'drill' });
  } else {
    await accept('pause', 'pause', { reason: 'drill' });
    await new Promise((r) => setTimeout(r, step.holdMs));
    await accept('resume', 'resume', { reason: 'drill' });
  }
}
