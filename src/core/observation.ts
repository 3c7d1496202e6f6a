// What the supervisor knows about each node, folded from probe results. Immutable values: each
// probe result produces a new NodeObservation (see observe.ts).
import type { Term } from './term.js';

/** The node's own report (evnode.admin.v1 HealthResponse), in domain types. */
export interface NodeReport {
  readonly healthy: boolean;
  readonly headNumber: number;
  readonly headHash: string;
  /** Parent hash, L1 origin and unix-seconds timestamp of the head block, when the node reports them. */
  readonly headParentHash?: string;
  readonly headL1Origin?: string;
  readonly headTimestamp?: number;
  readonly producing: boolean;
  /** Term of its current lease, 0n when not active. */
  readonly term: Term;
  readonly highestTerm: Term;
  readonly leaseRemainingMs: number;
  readonly chainId: string;
  readonly genesisHash: string;
  readonly version: string;
  readonly peerCount: number;
  readonly lastError: string;
}

export interface NodeObservation {
  readonly nodeId: string;
  /** Last successful report, if any probe ever succeeded. */
  readonly report: NodeReport | undefined;
  /** When `report` was received (monotonic ms). */
  readonly reportAtMs: number;
  /** Failed probes in a row since the last success. */
  readonly consecutiveFailures: number;
  readonly lastProbeError: string;
  /** Monotonic ms at which the reported head last increased (stall detection). */
  readonly headAdvancedAtMs: number;
}

/** A node command the supervisor may send, with the term as fencing token. */
export type NodeCommand =
  | { readonly kind: 'start'; readonly nodeId: string; readonly term: Term }
  | { readonly kind: 'renew'; readonly nodeId: string; readonly term: Term }
  | { readonly kind: 'stop'; readonly nodeId: string; readonly term: Term };
