// The failover policy of one chain, as one pure function over an immutable snapshot. It returns
// the actions the supervisor should run (in order) and a one-line reason that is logged and kept
// in the history, so the log reads as a narrative of why each thing happened.
import { rankCandidates, type CandidateRanking, type CandidateReport } from './candidates.js';
import type { ChainSpec, FencingMode, LeaderRecord, UnsafeHead } from './chain.js';
import { isFresh, judgeActive } from './health.js';
import type { NodeObservation, NodeReport } from './observation.js';
import type { Term } from './term.js';

export interface LeaseView {
  /** Monotonic ms after which no lease granted under a term older than the leader's can be valid. */
  readonly oldLeasesEndMs: number;
  /** When the supervisor last sent a start/renewal to the current leader under its term (undefined: never, e.g. just took over). */
  readonly lastGrantSentMs: number | undefined;
  readonly renewIntervalMs: number;
}

export interface ChainSnapshot {
  readonly spec: ChainSpec;
  readonly leader: LeaderRecord | undefined;
  /** Recorded in etcd. */
  readonly head: UnsafeHead | undefined;
  readonly nodes: ReadonlyMap<string, NodeObservation>;
  /** Monotonic. */
  readonly nowMs: number;
  readonly lease: LeaseView;
  /** Monotonic, this supervisor's view. */
  readonly lastFailoverAtMs: number | undefined;
  /** The leader was observed producing under its term since it was recorded. */
  readonly leaderHasProduced: boolean;
  readonly paused: boolean;
  /** Fleet-wide switch. */
  readonly autoFailover: boolean;
  /**
   * The node a break-glass override forced active, while the override is in force: it is kept
   * (started, renewed) whatever its health, lag or the pause say, and nothing fails away from it
   * automatically, not even when it dies; the operator clears the override to hand back.
   */
  readonly overrideNodeId?: string;
}

export type Action =
  /** No leader yet: write the first leader record, then start it. */
  | { kind: 'elect'; nodeId: string; candidates: CandidateReport[] }
  /** Write the new term, wait out / confirm the old lease, stop the others, start `to`. */
  | { kind: 'failover'; from: string; to: string; candidates: CandidateReport[]; detected: string }
  /** (Re)start the recorded leader under its own term. */
  | { kind: 'start'; nodeId: string; term: Term }
  | { kind: 'renew'; nodeId: string; term: Term }
  /** Nodes that must not produce, stopped under the leader's term. */
  | { kind: 'stop'; nodeIds: string[]; term: Term }
  | { kind: 'record-head'; nodeId: string; headNumber: number; headHash: string }
  /** The chain's fencing mode changed: a new term for the same active, in the new mode. */
  | { kind: 'switch-mode'; nodeId: string; from: Term; mode: FencingMode };

export interface Decision {
  readonly actions: readonly Action[];
  readonly reason: string;
}

/** Where the chain stands; decide switches over exactly these cases. */
type Situation =
  | { readonly kind: 'no-leader' }
  | { readonly kind: 'leader-unprobed'; readonly leader: LeaderRecord }
  | { readonly kind: 'leader-active'; readonly leader: LeaderRecord; readonly report: NodeReport }
  | { readonly kind: 'leader-idle'; readonly leader: LeaderRecord; readonly report: NodeReport }
  | { readonly kind: 'leader-unhealthy'; readonly leader: LeaderRecord; readonly why: string };

/** What one case decided; stray producers are folded in afterwards, whatever the case. */
interface Plan {
  readonly actions: Action[];
  /** Nodes to stop under the leader's term besides stray producers. */
  readonly stop: readonly string[];
  readonly reason: string;
}

export function decide(s: ChainSnapshot): Decision {
  const situation = classify(s);
  let plan: Plan;
  switch (situation.kind) {
    // No leader record yet: elect the best eligible node unless paused. There is no term to
    // fence a stop with, so stray producers can only be reported.
    case 'no-leader':
      plan = decideNoLeader(s);
      break;
    // The leader is in the spec but this supervisor has no probe result for it yet (it just took
    // over): judging it now would fail over a healthy node whose first probe is still in flight.
    case 'leader-unprobed':
      plan = noAction(`waiting for the first probe of ${situation.leader.nodeId}`);
      break;
    // Healthy and producing under its own term: keep its lease and record its progress.
    case 'leader-active':
      plan = decideActive(s, situation.leader, situation.report);
      break;
    // Healthy but not producing under its term (just elected, lease lapsed, new supervisor): start
    // it once no older lease can be valid, or replace it if it is behind and a standby is ahead.
    case 'leader-idle':
      plan = decideIdle(s, situation.leader, situation.report);
      break;
    // Unhealthy: never renewed, so its lease runs out; fail over when allowed and someone is eligible.
    case 'leader-unhealthy':
      plan = decideUnhealthy(s, situation.leader, situation.why);
      break;
    default:
      return unreachable(situation);
  }
  return withStrays(s, plan);
}

function classify(s: ChainSnapshot): Situation {
  const leader = s.leader;
  if (leader === undefined) return { kind: 'no-leader' };
  // An operator removed the leader's node from the spec: nobody probes it any more.
  if (!s.spec.nodes.some((n) => n.id === leader.nodeId)) {
    return { kind: 'leader-unhealthy', leader, why: 'not in the chain spec' };
  }
  const obs = s.nodes.get(leader.nodeId);
  // Not heard from yet, and fewer failed probes than the threshold: a slow first probe after a
  // takeover must not fail over a healthy leader.
  if (obs === undefined || (obs.report === undefined && obs.consecutiveFailures < s.spec.policy.failureThreshold)) {
    return { kind: 'leader-unprobed', leader };
  }
  const verdict = judgeActive(obs, s.spec.policy, s.nowMs);
  // Forced by an override: judged only on whether it answers, so that it is started and renewed.
  const forced = s.overrideNodeId === leader.nodeId && obs.consecutiveFailures < s.spec.policy.failureThreshold;
  if (obs.report === undefined || (!verdict.healthy && !forced)) return { kind: 'leader-unhealthy', leader, why: verdict.why };
  if (obs.report.producing && obs.report.term === leader.term) return { kind: 'leader-active', leader, report: obs.report };
  return { kind: 'leader-idle', leader, report: obs.report };
}

function decideNoLeader(s: ChainSnapshot): Plan {
  if (s.paused) return noAction('paused; no leader');
  const ranked = rankCandidates(s.spec, s.nodes, s.head, [], s.nowMs);
  if (ranked.best === undefined) return noAction(`no leader and no eligible node: ${ranked.summary}`);
  return {
    actions: [{ kind: 'elect', nodeId: ranked.best, candidates: ranked.ranking }],
    stop: [],
    reason: `no leader; electing ${ranked.best}: ${ranked.summary}`,
  };
}

function decideActive(s: ChainSnapshot, leader: LeaderRecord, report: NodeReport): Plan {
  const { nodeId, term } = leader;
  const mode = s.spec.policy.fencingMode;
  // The spec's fencing mode changed under a running term: the same node gets a new term in the
  // new mode (the supervisor stops it under that term first, so its head is final). Not while
  // paused: pause freezes the chain as it is.
  if (leader.mode !== mode && !s.paused) {
    return {
      actions: [{ kind: 'switch-mode', nodeId, from: term, mode }],
      stop: [],
      reason: `${nodeId} active under a ${leader.mode}-mode term ${term}; the chain is now in ${mode} mode: new term for ${nodeId}`,
    };
  }
  const actions: Action[] = [];
  if (grantDue(s)) actions.push({ kind: 'renew', nodeId, term });
  // In commit mode the node itself commits every block before it leaves: the head is exact already.
  if (leader.mode === 'lease' && (s.head === undefined || report.headNumber > s.head.number)) {
    actions.push({ kind: 'record-head', nodeId, headNumber: report.headNumber, headHash: report.headHash });
  }
  const forced = s.overrideNodeId === nodeId ? ' (forced by a break-glass override: no automatic failover until it is cleared)' : '';
  return { actions, stop: [], reason: `${nodeId} active at head ${report.headNumber}, term ${term}${forced}` };
}

function decideIdle(s: ChainSnapshot, leader: LeaderRecord, report: NodeReport): Plan {
  const id = leader.nodeId;
  // Pause freezes the chain as it is: what runs keeps its lease, nothing new is started; except
  // the node a break-glass override forced, which the operator wants producing.
  if (s.paused && s.overrideNodeId !== id) return noAction(`paused; ${id} not producing under term ${leader.term}`);
  let prefix = '';
  if (s.head !== undefined && report.headNumber < s.head.number) {
    const detected = `not producing and behind: head ${report.headNumber}, recorded ${s.head.number}`;
    const ranked = rankCandidates(s.spec, s.nodes, s.head, [id], s.nowMs, zoneOf(s.spec, id));
    const bestHead = ranked.ranking.find((c) => c.nodeId === ranked.best)?.headNumber;
    // Replacing it only helps when the standby is further along than the leader itself.
    if (ranked.best !== undefined && bestHead !== undefined && bestHead > report.headNumber) {
      const blocked = failoverBlocked(s);
      if (blocked === undefined) return failover(leader, ranked.best, ranked, detected, `${id} ${detected}`);
      prefix = `${id} ${detected}; ${blocked}; `;
    } else {
      prefix = `${id} ${detected}; no eligible standby ahead of it; `;
    }
  }
  return startWhenSafe(s, leader, report, prefix);
}

/**
 * Starts the leader only when no other node can still hold a lease from an older term: the old
 * leases have run out, or every other node is seen not producing and has seen the leader's term
 * (so it refuses any older renewal). Until then, tells the nodes that have not seen the term to stop.
 */
function startWhenSafe(s: ChainSnapshot, leader: LeaderRecord, report: NodeReport, prefix: string): Plan {
  const { nodeId: id, term } = leader;
  const at = `${id} at head ${report.headNumber}, term ${term}`;
  if (!grantDue(s)) {
    const ago = Math.round(s.nowMs - (s.lease.lastGrantSentMs ?? s.nowMs));
    return noAction(`${prefix}started ${at} ${ago} ms ago; waiting for it to report producing`);
  }
  const start: Action = { kind: 'start', nodeId: id, term };
  // A node that stopped ahead of the leader holds blocks the leader has not seen yet: starting now
  // would make a second block at the same height. The leader follows its peers, so wait for it.
  const ahead = nodeIds(s).filter((n) => n !== id && stoppedAhead(s, n, report.headNumber, term));
  if (ahead.length > 0) {
    const best = Math.max(...ahead.map((n) => s.nodes.get(n)!.report!.headNumber));
    return noAction(`${prefix}waiting for ${id} (head ${report.headNumber}) to catch up to head ${best} of ${ahead.join(', ')} before starting it`);
  }
  if (s.nowMs >= s.lease.oldLeasesEndMs) {
    return { actions: [start], stop: [], reason: `${prefix}starting ${at}: old leases have ended` };
  }
  const others = nodeIds(s).filter((n) => n !== id);
  const unconfirmed = others.filter((n) => !confirmedStopped(s, n, term));
  if (unconfirmed.length === 0) {
    return { actions: [start], stop: [], reason: `${prefix}starting ${at}: every other node saw the term and is not producing` };
  }
  const stop = unconfirmed.filter((n) => !sawTerm(s.nodes.get(n), term));
  const waitMs = Math.ceil(s.lease.oldLeasesEndMs - s.nowMs);
  return {
    actions: [],
    stop,
    reason: `${prefix}waiting ${waitMs} ms for old leases before starting ${id}; not confirmed stopped: ${unconfirmed.join(', ')}`,
  };
}

function decideUnhealthy(s: ChainSnapshot, leader: LeaderRecord, why: string): Plan {
  const id = leader.nodeId;
  const blocked = failoverBlocked(s);
  if (blocked !== undefined) return noAction(`${blocked}; ${id} unhealthy: ${why}`);
  const ranked = rankCandidates(s.spec, s.nodes, s.head, [id], s.nowMs, zoneOf(s.spec, id));
  if (ranked.best === undefined) return noAction(`${id} unhealthy (${why}); no eligible standby: ${ranked.summary}`);
  return failover(leader, ranked.best, ranked, why, `${id} unhealthy (${why})`);
}

function failover(leader: LeaderRecord, to: string, ranked: CandidateRanking, detected: string, headline: string): Plan {
  return {
    actions: [{ kind: 'failover', from: leader.nodeId, to, candidates: ranked.ranking, detected }],
    stop: [],
    reason: `${headline}; failing over to ${to}: ${ranked.summary}`,
  };
}

/** Why an automatic failover may not happen now; undefined when it may. */
function failoverBlocked(s: ChainSnapshot): string | undefined {
  if (s.overrideNodeId !== undefined) return `break-glass override in force (${s.overrideNodeId} forced active)`;
  if (s.paused) return 'paused';
  if (!s.autoFailover) return 'automatic failover disabled fleet-wide';
  // Anti-flap protects a leader that proved itself; one that never produced may be replaced at once.
  if (s.leaderHasProduced && s.lastFailoverAtMs !== undefined) {
    const since = s.nowMs - s.lastFailoverAtMs;
    const limit = s.spec.policy.antiFlapMs;
    if (since < limit) return `anti-flap: last failover ${Math.floor(since)} ms ago, ${Math.ceil(limit - since)} ms left`;
  }
  return undefined;
}

/** Adds one stop (under the leader's term, before anything else) for every other node seen producing. */
function withStrays(s: ChainSnapshot, plan: Plan): Decision {
  const all = nodeIds(s);
  const strays = all.filter((n) => n !== s.leader?.nodeId && producing(s, n));
  if (s.leader === undefined) {
    const reason = strays.length > 0 ? `${plan.reason}; producing without a leader record: ${strays.join(', ')}` : plan.reason;
    return { actions: plan.actions, reason };
  }
  const stop = all.filter((n) => strays.includes(n) || plan.stop.includes(n));
  const actions: Action[] = stop.length > 0 ? [{ kind: 'stop', nodeIds: stop, term: s.leader.term }, ...plan.actions] : plan.actions;
  const noun = strays.length === 1 ? 'producer' : 'producers';
  const reason = strays.length > 0 ? `${plan.reason}; stopping stray ${noun} ${strays.join(', ')}` : plan.reason;
  return { actions, reason };
}

/** The spec's nodes in spec order, then any other observed node by id. */
function nodeIds(s: ChainSnapshot): string[] {
  const ids = s.spec.nodes.map((n) => n.id);
  const extra = [...s.nodes.keys()].filter((id) => !ids.includes(id)).sort();
  return [...ids, ...extra];
}

function producing(s: ChainSnapshot, nodeId: string): boolean {
  const obs = s.nodes.get(nodeId);
  return isFresh(obs, s.spec.policy, s.nowMs) && obs?.report?.producing === true;
}

function sawTerm(obs: NodeObservation | undefined, term: Term): boolean {
  return obs?.report !== undefined && obs.report.highestTerm >= term;
}

function confirmedStopped(s: ChainSnapshot, nodeId: string, term: Term): boolean {
  const obs = s.nodes.get(nodeId);
  return isFresh(obs, s.spec.policy, s.nowMs) && obs?.report?.producing === false && sawTerm(obs, term);
}

/** A node of this chain, seen stopped under the leader's term, whose head is above `headNumber`. */
function stoppedAhead(s: ChainSnapshot, nodeId: string, headNumber: number, term: Term): boolean {
  const report = s.nodes.get(nodeId)?.report;
  return confirmedStopped(s, nodeId, term) && report !== undefined && report.chainId === s.spec.id && report.headNumber > headNumber;
}

function grantDue(s: ChainSnapshot): boolean {
  const last = s.lease.lastGrantSentMs;
  return last === undefined || s.nowMs >= last + s.lease.renewIntervalMs;
}

function zoneOf(spec: ChainSpec, nodeId: string): string | undefined {
  return spec.nodes.find((n) => n.id === nodeId)?.zone;
}

function noAction(reason: string): Plan {
  return { actions: [], stop: [], reason };
}

function unreachable(situation: never): never {
  throw new Error(`unhandled situation ${(situation as { kind: string }).kind}`);
}
