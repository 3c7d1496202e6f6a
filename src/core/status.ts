// What an operator sees of a chain: its leader, term, head, and each node's health, lag and
// eligibility with reasons. Pure: built from the etcd state and node observations.
import type { ChainSpec, HeadRef, LeaderRecord, TermRecord, UnsafeHead } from './chain.js';
import { judgeActive, judgeStandby } from './health.js';
import type { NodeObservation } from './observation.js';
import { isPaused } from './operation.js';
import type { ChainState } from './ports.js';

export interface NodeView {
  readonly id: string;
  readonly endpoint: string;
  readonly zone: string;
  readonly priority: number;
  readonly role: 'active' | 'standby';
  readonly reachable: boolean;
  readonly healthy: boolean;
  readonly producing: boolean;
  readonly term: string;
  readonly headNumber: number | null;
  /** Blocks behind the recorded unsafe head (0 when at or above it). */
  readonly lag: number | null;
  readonly eligible: boolean;
  readonly reasons: readonly string[];
  readonly lastError: string;
}

export interface ChainView {
  readonly id: string;
  readonly spec: ChainSpec;
  readonly leader: (Omit<LeaderRecord, 'term'> & { term: string }) | null;
  readonly unsafeHead: (Omit<UnsafeHead, 'term'> & { term: string }) | null;
  readonly supervisor: string | null;
  readonly nodes: readonly NodeView[];
  readonly lastFailover: TermRecordView | null;
  /** The supervisor's latest decision, when this replica supervises the chain. */
  readonly decision: string | null;
  /** The chain's pause, while it lasts. */
  readonly paused: { readonly reason: string; readonly untilMs: number | null; readonly operationId: string } | null;
  /** The break-glass override in force (until cleared). */
  readonly override: {
    readonly nodeId: string;
    readonly reason: string;
    readonly sinceMs: number;
    readonly operationId: string;
    readonly term: string;
    /** Break-glass rollbackHead: the recorded head its txn replaced and the one it set (null: none rolled back). */
    readonly rolledBackFrom: HeadRef | null;
    readonly rolledBackTo: HeadRef | null;
  } | null;
}

export type TermRecordView = Omit<TermRecord, 'term' | 'previousTerm' | 'previousNodeId' | 'durationMs'> & {
  term: string;
  previousTerm: string | null;
  previousNodeId: string | null;
  durationMs: number | null;
};

export function viewTermRecord(r: TermRecord): TermRecordView {
  return {
    ...r,
    term: r.term.toString(),
    previousTerm: r.previousTerm?.toString() ?? null,
    previousNodeId: r.previousNodeId ?? null,
    durationMs: r.durationMs ?? null,
  };
}

/** Everything known about a chain at one moment: its etcd state and its nodes' observations. */
export interface ChainObservation {
  readonly state: ChainState;
  readonly observations: ReadonlyMap<string, NodeObservation>;
  /** Monotonic ms the observations are judged at. */
  readonly nowMs: number;
  readonly lastFailover: TermRecord | undefined;
  readonly decision: string | undefined;
  /** Wall ms, to tell whether a timed pause is over. */
  readonly wallMs: number;
}

export function describeChain(input: ChainObservation): ChainView {
  const { state, observations, nowMs } = input;
  const { spec, leader, head } = state;
  const nodes = spec.nodes.map((n): NodeView => {
    const obs = observations.get(n.id);
    const report = obs?.report;
    const isLeader = leader?.nodeId === n.id;
    const reachable = obs !== undefined && obs.consecutiveFailures === 0 && report !== undefined;
    let eligible = false;
    let reasons: string[] = [];
    if (obs && isLeader) {
      const judged = judgeActive(obs, spec.policy, nowMs);
      if (!judged.healthy) reasons = [judged.why];
    } else if (obs) {
      const judged = judgeStandby(obs, spec, head, nowMs);
      eligible = judged.eligible;
      reasons = [...judged.reasons];
    } else {
      reasons = ['not probed yet'];
    }
    const headNumber = report?.headNumber ?? null;
    return {
      id: n.id,
      endpoint: n.endpoint,
      zone: n.zone,
      priority: n.priority,
      role: isLeader ? 'active' : 'standby',
      reachable,
      healthy: reachable && report.healthy,
      producing: report?.producing ?? false,
      term: (report?.term ?? 0n).toString(),
      headNumber,
      lag: headNumber === null ? null : Math.max(0, (head?.number ?? 0) - headNumber),
      eligible,
      reasons,
      lastError: obs?.lastProbeError || report?.lastError || '',
    };
  });
  return {
    id: spec.id,
    spec,
    leader: leader ? { ...leader, term: leader.term.toString() } : null,
    unsafeHead: head ? { ...head, term: head.term.toString() } : null,
    supervisor: state.supervisor ?? null,
    nodes,
    lastFailover: input.lastFailover ? viewTermRecord(input.lastFailover) : null,
    decision: input.decision ?? null,
    paused:
      state.pause && isPaused(state.pause, input.wallMs)
        ? { reason: state.pause.reason, untilMs: state.pause.untilMs ?? null, operationId: state.pause.operationId }
        : null,
    override: state.override
      ? {
          nodeId: state.override.nodeId,
          reason: state.override.reason,
          sinceMs: state.override.sinceMs,
          operationId: state.override.operationId,
          term: state.override.term.toString(),
          rolledBackFrom: state.override.rolledBackFrom ?? null,
          rolledBackTo: state.override.rolledBackTo ?? null,
        }
      : null,
  };
}
