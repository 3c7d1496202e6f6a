// Operator requests. Every mutation is an intent: the API validates it, writes it to etcd together
// with its operation record (durable before the API answers 202), and the chain's supervisor
// executes it. The operation record is what a caller polls: state, steps, timings, result.
import type { FencingMode, HeadRef } from './chain.js';

export type OperationKind = 'failover' | 'switchover' | 'pause' | 'resume' | 'cancel-switchover' | 'override' | 'clear-override' | 'set-fencing-mode';

export type OperationState = 'pending' | 'scheduled' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const FINAL_STATES: readonly OperationState[] = ['succeeded', 'failed', 'cancelled'];

export interface FailoverParams {
  readonly kind: 'failover';
  /** Node to make active; undefined: the best eligible standby. */
  readonly candidate?: string;
  readonly reason: string;
}

export interface SwitchoverParams {
  readonly kind: 'switchover';
  readonly target?: string;
  /** Wall ms; undefined: now. */
  readonly scheduledAtMs?: number;
  readonly reason: string;
}

export interface PauseParams {
  readonly kind: 'pause';
  /** Wall ms at which the pause ends by itself; undefined: until resumed. */
  readonly untilMs?: number;
  readonly reason: string;
}

export interface ResumeParams {
  readonly kind: 'resume';
  readonly reason: string;
}

export interface CancelSwitchoverParams {
  readonly kind: 'cancel-switchover';
  readonly reason: string;
}

/**
 * Break-glass: make `nodeId` active now, skipping every eligibility check (health, lag, version,
 * zone, pause) but none of the fencing (see ChainControls.override in chain-controls.ts).
 */
export interface OverrideParams {
  readonly kind: 'override';
  readonly nodeId: string;
  readonly reason: string;
  /**
   * Also set the recorded unsafe head back to the node's own head when it is below it (see
   * core/rollback.ts). Absent or false: an override exactly as without it.
   */
  readonly rollbackHead?: boolean;
}

/** Ends the chain's break-glass override: the supervisor judges the chain normally again. */
export interface ClearOverrideParams {
  readonly kind: 'clear-override';
  readonly reason: string;
}

/**
 * Switches the chain's fencing mode: the spec's policy.fencingMode is written under the supervision
 * fence, then the loop's switch-mode decision gives the same active a new term in that mode (see
 * core/fencing-mode.ts).
 */
export interface SetFencingModeParams {
  readonly kind: 'set-fencing-mode';
  readonly mode: FencingMode;
  readonly reason: string;
}

export type OperationParams =
  | FailoverParams
  | SwitchoverParams
  | PauseParams
  | ResumeParams
  | CancelSwitchoverParams
  | OverrideParams
  | ClearOverrideParams
  | SetFencingModeParams;

export interface OperationStep {
  readonly name: string;
  readonly state: 'running' | 'done' | 'failed' | 'skipped';
  readonly atMs: number;
  readonly detail: string;
}

export interface OperationResult {
  readonly term?: string;
  readonly nodeId?: string;
  readonly headNumber?: number;
  readonly detail: string;
}

export interface Operation {
  readonly id: string;
  readonly chainId: string;
  readonly params: OperationParams;
  readonly state: OperationState;
  readonly steps: readonly OperationStep[];
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
  readonly result?: OperationResult;
  readonly error?: { readonly code: string; readonly message: string };
  readonly requestId: string;
  readonly idempotencyKey?: string;
  /** Replica that executes (or executed) it. */
  readonly executor?: string;
  /** Trace of the request that created it (32 hex digits), for operators and audit. */
  readonly traceId?: string;
  /** W3C traceparent of that request: the replica that executes it continues the same trace. */
  readonly traceparent?: string;
}

/** A chain's pause, as stored in etcd. */
export interface PauseRecord {
  readonly reason: string;
  readonly untilMs: number | undefined;
  readonly sinceMs: number;
  readonly operationId: string;
}

/**
 * A chain's break-glass override, as stored in etcd: written in the same txn as the term it forced
 * (so it is in force exactly from that term on), removed only by a clear-override operation.
 */
export interface OverrideRecord {
  readonly nodeId: string;
  readonly reason: string;
  readonly sinceMs: number;
  readonly operationId: string;
  /** The recorded head this override's txn rolled back (rollbackHead), and the head it set instead. */
  readonly rolledBackFrom?: HeadRef;
  readonly rolledBackTo?: HeadRef;
}

/** An override as read back: with the term it was forced under (the mod revision of its key). */
export interface OverrideState extends OverrideRecord {
  readonly term: bigint;
}

export function isFinal(state: OperationState): boolean {
  return FINAL_STATES.includes(state);
}

export function isPaused(pause: PauseRecord | undefined, wallMs: number): boolean {
  return pause !== undefined && (pause.untilMs === undefined || wallMs < pause.untilMs);
}
