// Ranks a chain's nodes as candidates to become active, and says in one line why the best won
// and why each other lost. Pure.
import type { ChainSpec, NodeSpec, UnsafeHead } from './chain.js';
import { BatonError } from './errors.js';
import { judgeStandby } from './health.js';
import type { NodeObservation } from './observation.js';

export interface CandidateReport {
  readonly nodeId: string;
  readonly eligible: boolean;
  /** Why it is not eligible; empty when eligible. */
  readonly reasons: string[];
  readonly headNumber?: number;
  readonly priority: number;
  /** 1 = best; only eligible candidates are ranked. */
  readonly rank?: number;
}

export interface CandidateRanking {
  readonly best: string | undefined;
  /** Eligible candidates best first, then the ineligible ones by node id. */
  readonly ranking: CandidateReport[];
  readonly summary: string;
}

interface Judged {
  readonly node: NodeSpec;
  readonly head: number | undefined;
  readonly reasons: string[];
}

/**
 * Every node of the spec except `excludeNodeIds`, judged with judgeStandby. Among the eligible:
 * highest head first, then higher priority, then a zone other than the failed leader's, then node
 * id, so the order is total and the same on every replica.
 */
export function rankCandidates(
  spec: ChainSpec,
  nodes: ReadonlyMap<string, NodeObservation>,
  recordedHead: UnsafeHead | undefined,
  excludeNodeIds: readonly string[],
  nowMs: number,
  failedLeaderZone?: string,
): CandidateRanking {
  const judged: Judged[] = spec.nodes
    .filter((node) => !excludeNodeIds.includes(node.id))
    .map((node) => {
      const obs = nodes.get(node.id);
      return { node, head: obs?.report?.headNumber, reasons: judgeStandby(obs, spec, recordedHead, nowMs).reasons };
    });
  const eligible = judged.filter((j) => j.reasons.length === 0).sort((a, b) => compare(a, b, failedLeaderZone));
  const ineligible = judged.filter((j) => j.reasons.length > 0).sort((a, b) => byId(a.node.id, b.node.id));

  const ranking: CandidateReport[] = [
    ...eligible.map((j, i) => report(j, i + 1)),
    ...ineligible.map((j) => report(j, undefined)),
  ];
  const best = eligible[0];
  const notes = ineligible.map((j) => `not ${j.node.id}: ${j.reasons.join(' and ')}`);
  if (best === undefined) {
    return { best: undefined, ranking, summary: notes.length > 0 ? notes.join('; ') : 'no candidates' };
  }
  const summary = [
    `chose ${best.node.id} (head ${best.head}, priority ${best.node.priority})`,
    ...eligible.slice(1).map((j) => `not ${j.node.id}: ${whyBehind(j, best, failedLeaderZone)}`),
    ...notes,
  ].join('; ');
  return { best: best.node.id, ranking, summary };
}

function report(j: Judged, rank: number | undefined): CandidateReport {
  return {
    nodeId: j.node.id,
    eligible: j.reasons.length === 0,
    reasons: j.reasons,
    ...(j.head !== undefined ? { headNumber: j.head } : {}),
    priority: j.node.priority,
    ...(rank !== undefined ? { rank } : {}),
  };
}

// Eligible candidates always have a report, so `head` is defined for them.
function compare(a: Judged, b: Judged, failedZone: string | undefined): number {
  if (a.head !== b.head) return (b.head ?? -1) - (a.head ?? -1);
  if (a.node.priority !== b.node.priority) return b.node.priority - a.node.priority;
  const aSame = sameZone(a, failedZone);
  if (aSame !== sameZone(b, failedZone)) return aSame ? 1 : -1;
  return byId(a.node.id, b.node.id);
}

/** The first ranking key on which an eligible candidate lost to the best. */
function whyBehind(j: Judged, best: Judged, failedZone: string | undefined): string {
  if (j.head !== best.head) return `head ${j.head} < ${best.head}`;
  if (j.node.priority !== best.node.priority) return `priority ${j.node.priority} < ${best.node.priority}`;
  if (sameZone(j, failedZone) !== sameZone(best, failedZone)) return `same zone as the failed leader (${failedZone})`;
  return `tied with ${best.node.id}, which sorts first`;
}

function sameZone(j: Judged, failedZone: string | undefined): boolean {
  return failedZone !== undefined && j.node.zone === failedZone;
}

// Code-unit order, not localeCompare: every replica must sort the same way.
function byId(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The target of an operator's failover or switchover: the node asked for, if it is eligible, else
 * the best eligible standby; with why. Both the dry run and the execution use this, so the plan a
 * dry run shows is the choice the supervisor makes. Throws NOT_FOUND (not in the chain),
 * INVALID_ARGUMENT (already the leader) or NOT_ELIGIBLE (with the reasons).
 */
export function chooseTarget(
  spec: ChainSpec,
  nodes: ReadonlyMap<string, NodeObservation>,
  recordedHead: UnsafeHead | undefined,
  leaderId: string | undefined,
  requested: string | undefined,
  nowMs: number,
): { to: string; why: string; ranked: CandidateRanking } {
  const zone = spec.nodes.find((n) => n.id === leaderId)?.zone;
  const ranked = rankCandidates(spec, nodes, recordedHead, leaderId === undefined ? [] : [leaderId], nowMs, zone);
  if (requested !== undefined) {
    if (!spec.nodes.some((n) => n.id === requested)) throw new BatonError('NOT_FOUND', `node ${requested} is not in chain ${spec.id}`);
    if (requested === leaderId) throw new BatonError('INVALID_ARGUMENT', `${requested} is already the leader`);
    const entry = ranked.ranking.find((c) => c.nodeId === requested);
    if (!entry?.eligible) throw new BatonError('NOT_ELIGIBLE', `${requested} is not eligible: ${entry?.reasons.join(' and ') || 'no report'}`);
    return { to: requested, why: `${requested} as requested (eligible, head ${entry.headNumber}, priority ${entry.priority})`, ranked };
  }
  if (ranked.best === undefined) throw new BatonError('NOT_ELIGIBLE', `no eligible standby: ${ranked.summary}`);
  return { to: ranked.best, why: ranked.summary, ranked };
}
