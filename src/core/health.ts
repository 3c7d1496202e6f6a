// Health judgments over one node observation: is the active fit to keep its lease, and may a
// standby take over. Pure; every "no" says why in stable words (logged, kept in history, shown
// to operators).
import { normalizeHex, type ChainPolicy, type ChainSpec, type UnsafeHead } from './chain.js';
import type { NodeObservation } from './observation.js';
import type { NodeHealth } from './ports.js';

export interface ActiveVerdict {
  readonly healthy: boolean;
  readonly why: string;
}

export interface StandbyVerdict {
  readonly eligible: boolean;
  /** Every failed condition; empty when eligible. */
  readonly reasons: string[];
}

/** A report older than this many probe intervals no longer describes the node. */
export const FRESH_PROBES = 3;

/**
 * While a chain is steady, a quiet standby is probed every this many rounds (probe-plan.ts); as
 * soon as anything is in doubt, every round.
 */
export const QUIET_STANDBY_EVERY = 4;

/** How often a quiet standby is probed (ms). */
export function quietStandbyIntervalMs(policy: ChainPolicy): number {
  return QUIET_STANDBY_EVERY * policy.probeIntervalMs;
}

/** A standby's report older than this no longer describes it: FRESH_PROBES of its own intervals. */
export function standbyMaxAgeMs(policy: ChainPolicy): number {
  return FRESH_PROBES * quietStandbyIntervalMs(policy);
}

/** The last probe succeeded and its report is recent enough to act on. */
export function isFresh(obs: NodeObservation | undefined, policy: ChainPolicy, nowMs: number): boolean {
  return (
    obs !== undefined &&
    obs.report !== undefined &&
    obs.consecutiveFailures === 0 &&
    nowMs - obs.reportAtMs <= FRESH_PROBES * policy.probeIntervalMs
  );
}

/**
 * Whether the active node stays active. Unhealthy after `failureThreshold` failed probes in a row,
 * when it never reported, when it says so itself, or when it is producing but its head has not
 * advanced for more than stallFactor × blockTime. Failures below the threshold are tolerated:
 * the last report still stands.
 */
export function judgeActive(obs: NodeObservation | undefined, policy: ChainPolicy, nowMs: number): ActiveVerdict {
  if (obs !== undefined && obs.consecutiveFailures >= policy.failureThreshold) {
    return { healthy: false, why: `${obs.consecutiveFailures} probes failed in a row: ${obs.lastProbeError}` };
  }
  const report = obs?.report;
  if (obs === undefined || report === undefined) {
    const err = obs?.lastProbeError ? ` (last error: ${obs.lastProbeError})` : '';
    return { healthy: false, why: `never reported${err}` };
  }
  if (!report.healthy) {
    return { healthy: false, why: `reports unhealthy: ${report.lastError || 'no error given'}` };
  }
  const limit = policy.stallFactor * policy.blockTimeMs;
  const still = nowMs - obs.headAdvancedAtMs;
  // Judged on a current report only: after a failed probe the last report is old news, and its
  // head looks still only because nobody asked again (failures have their own threshold).
  if (report.producing && obs.consecutiveFailures === 0 && still > limit) {
    // Whole ms in the words: the clock is monotonic and fractional, the reason is read by people.
    return { healthy: false, why: `head ${report.headNumber} has not advanced for ${Math.ceil(still)} ms (limit ${limit})` };
  }
  return { healthy: true, why: 'healthy' };
}

/**
 * Whether a standby may be made active: fresh healthy report, right chain id and genesis, and
 * caught up within `maxLagBlocks` of the recorded unsafe head. Conditions are checked on the last
 * report even when it is stale, so an operator sees everything that is wrong at once.
 */
export function judgeStandby(
  obs: NodeObservation | undefined,
  spec: ChainSpec,
  recordedHead: UnsafeHead | undefined,
  nowMs: number,
): StandbyVerdict {
  const policy = spec.policy;
  const report = obs?.report;
  if (obs === undefined || report === undefined) {
    const err = obs?.lastProbeError ? ` (last error: ${obs.lastProbeError})` : '';
    return { eligible: false, reasons: [`never reported${err}`] };
  }
  const reasons: string[] = [];
  if (obs.consecutiveFailures > 0) {
    const n = obs.consecutiveFailures;
    reasons.push(`${n === 1 ? 'last probe' : `last ${n} probes`} failed: ${obs.lastProbeError}`);
  }
  const age = nowMs - obs.reportAtMs;
  const maxAge = standbyMaxAgeMs(policy);
  if (age > maxAge) reasons.push(`report is ${Math.ceil(age)} ms old (limit ${maxAge})`);
  if (!report.healthy) reasons.push(`reports unhealthy: ${report.lastError || 'no error given'}`);
  if (report.chainId !== spec.id) reasons.push(`wrong chain id ${report.chainId}, want ${spec.id}`);
  if (spec.genesisHash !== '' && normalizeHex(report.genesisHash) !== normalizeHex(spec.genesisHash)) {
    reasons.push(`wrong genesis ${report.genesisHash}, want ${spec.genesisHash}`);
  }
  if (recordedHead !== undefined && report.headNumber + policy.maxLagBlocks < recordedHead.number) {
    reasons.push(`behind: head ${report.headNumber}, recorded ${recordedHead.number}, max lag ${policy.maxLagBlocks}`);
  }
  return { eligible: reasons.length === 0, reasons };
}

/** The node health summary a supervisor publishes for the event stream. */
export function healthSummary(spec: ChainSpec, observations: ReadonlyMap<string, NodeObservation>): NodeHealth[] {
  return spec.nodes.map((n) => {
    const obs = observations.get(n.id);
    const report = obs !== undefined && obs.consecutiveFailures < spec.policy.failureThreshold ? obs.report : undefined;
    return { nodeId: n.id, reachable: report !== undefined, healthy: report?.healthy ?? false, producing: report?.producing ?? false };
  });
}
