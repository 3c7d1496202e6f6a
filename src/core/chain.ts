// The domain of one supervised chain: its spec, leader record and unsafe head.
import type { Term } from './term.js';

export type FencingMode = 'lease' | 'commit';

export interface NodeSpec {
  readonly id: string;
  /** host:port of the node's ControlService. */
  readonly endpoint: string;
  /** Higher wins ties between equally caught-up candidates. */
  readonly priority: number;
  readonly zone: string;
}

export interface ChainPolicy {
  readonly blockTimeMs: number;
  readonly probeIntervalMs: number;
  /** The active is unhealthy after this many failed probes in a row. */
  readonly failureThreshold: number;
  /** The active is stalled when its head has not advanced for stallFactor × blockTime. */
  readonly stallFactor: number;
  /** Node lease granted by Start and each renewal. */
  readonly leaseTtlMs: number;
  /** A standby is eligible only within this many blocks of the recorded unsafe head. */
  readonly maxLagBlocks: number;
  /** No automatic failover within this long after the previous one. */
  readonly antiFlapMs: number;
  readonly fencingMode: FencingMode;
}

export interface ChainSpec {
  /** Baton's id of the chain, also the chain id every node must report. */
  readonly id: string;
  /** Hex genesis hash every node must report; empty: not checked. */
  readonly genesisHash: string;
  readonly nodes: readonly NodeSpec[];
  readonly policy: ChainPolicy;
}

/** A head as an operator checks it: its number and hash. */
export interface HeadRef {
  readonly number: number;
  readonly hash: string;
}

/** Hashes compare as lowercase hex without 0x, so `0xAB..` in a spec matches `ab..` on the wire. */
export function normalizeHex(hex: string): string {
  const lower = hex.toLowerCase();
  return lower.startsWith('0x') ? lower.slice(2) : lower;
}

export interface UnsafeHead {
  readonly number: number;
  /** Lowercase hex, no 0x. */
  readonly hash: string;
  readonly parentHash: string;
  readonly term: Term;
  readonly nodeId: string;
  readonly l1Origin: string;
  /** Unix seconds. */
  readonly timestamp: number;
}

/** Who is active. Its term is the mod revision of the leader key: written only when it changes. */
export interface LeaderRecord {
  readonly nodeId: string;
  readonly term: Term;
  readonly mode: FencingMode;
  readonly sinceMs: number;
  readonly reason: string;
  /** The recorded unsafe head height the node was told to continue from. */
  readonly fromHead: number;
}

/** One entry of a chain's leadership history. */
export interface TermRecord {
  readonly term: Term;
  readonly nodeId: string;
  readonly previousNodeId: string | undefined;
  readonly previousTerm: Term | undefined;
  readonly fromHead: number;
  readonly reason: string;
  readonly atMs: number;
  readonly supervisor: string;
  /** Detection → new leader started, when known. */
  readonly durationMs: number | undefined;
}

export const DEFAULT_POLICY: ChainPolicy = Object.freeze({
  blockTimeMs: 1000,
  probeIntervalMs: 250,
  failureThreshold: 3,
  stallFactor: 5,
  leaseTtlMs: 5000,
  maxLagBlocks: 2,
  antiFlapMs: 30_000,
  fencingMode: 'lease',
});
