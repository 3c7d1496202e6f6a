// Builders for the pure core tests. Time is a plain number; NOW is "monotonic now".
import { DEFAULT_POLICY, type ChainPolicy, type ChainSpec, type LeaderRecord, type UnsafeHead } from '../../src/core/chain.js';
import type { ChainSnapshot } from '../../src/core/decide.js';
import type { NodeObservation, NodeReport } from '../../src/core/observation.js';

export const NOW = 1_000_000;
export const TERM = 57n;

// blockTime 1000, probe 250 (fresh for 750), threshold 3, stall 5 × 1000, maxLag 2, antiFlap 30 s.
export const POLICY: ChainPolicy = DEFAULT_POLICY;

/** a1 (z1, priority 1), b2 (z2, priority 5), c3 (z3, priority 3); b2 is the usual leader. */
export function spec(over: Partial<ChainSpec> = {}): ChainSpec {
  return {
    id: 'chain-a',
    genesisHash: 'g0',
    nodes: [
      { id: 'a1', endpoint: 'a1:9000', priority: 1, zone: 'z1' },
      { id: 'b2', endpoint: 'b2:9000', priority: 5, zone: 'z2' },
      { id: 'c3', endpoint: 'c3:9000', priority: 3, zone: 'z3' },
    ],
    policy: POLICY,
    ...over,
  };
}

export function report(over: Partial<NodeReport> = {}): NodeReport {
  return {
    healthy: true,
    headNumber: 120,
    headHash: `h${over.headNumber ?? 120}`,
    producing: false,
    term: 0n,
    highestTerm: TERM,
    leaseRemainingMs: 0,
    chainId: 'chain-a',
    genesisHash: 'g0',
    version: 'v1',
    peerCount: 2,
    lastError: '',
    ...over,
  };
}

export interface ObsOptions {
  /** When the report was received; default NOW (fresh). */
  readonly at?: number;
  readonly failures?: number;
  readonly error?: string;
  /** When the head last advanced; default `at`. */
  readonly advancedAt?: number;
}

export function obs(nodeId: string, r: Partial<NodeReport> = {}, o: ObsOptions = {}): NodeObservation {
  const at = o.at ?? NOW;
  return {
    nodeId,
    report: report(r),
    reportAtMs: at,
    consecutiveFailures: o.failures ?? 0,
    lastProbeError: o.error ?? '',
    headAdvancedAtMs: o.advancedAt ?? at,
  };
}

/** A node whose probes never succeeded. */
export function silent(nodeId: string, failures: number, error: string): NodeObservation {
  return { nodeId, report: undefined, reportAtMs: NOW, consecutiveFailures: failures, lastProbeError: error, headAdvancedAtMs: NOW };
}

/** The leader's report while it produces under TERM. */
export const ACTIVE: Partial<NodeReport> = { producing: true, term: TERM, leaseRemainingMs: 3000 };

export function nodes(...list: NodeObservation[]): Map<string, NodeObservation> {
  return new Map(list.map((o) => [o.nodeId, o]));
}

export function head(n: number): UnsafeHead {
  return { number: n, hash: `h${n}`, parentHash: `h${n - 1}`, term: TERM, nodeId: 'b2', l1Origin: 'l1-9', timestamp: 1_700_000_000 };
}

export function leader(nodeId = 'b2', term = TERM): LeaderRecord {
  return { nodeId, term, mode: 'lease', sinceMs: 1, reason: 'test', fromHead: 100 };
}

/**
 * A steady chain: b2 leads under TERM and produces at head 120 (recorded 120), a1 and c3 follow at
 * 120 and have seen TERM, the last grant was 100 ms ago (renew every 1000), old leases are over.
 */
export function snapshot(over: Partial<ChainSnapshot> = {}): ChainSnapshot {
  return {
    spec: spec(),
    leader: leader(),
    head: head(120),
    nodes: nodes(obs('a1'), obs('b2', ACTIVE), obs('c3')),
    nowMs: NOW,
    lease: { oldLeasesEndMs: NOW - 1, lastGrantSentMs: NOW - 100, renewIntervalMs: 1000 },
    lastFailoverAtMs: undefined,
    leaderHasProduced: true,
    paused: false,
    autoFailover: true,
    ...over,
  };
}
