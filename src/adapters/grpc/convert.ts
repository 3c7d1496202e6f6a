// Between the domain and the baton.v1 messages. Requests become the same inputs the REST routes
// hand to core (validated there, by the same functions); answers are built from the same views.
// Terms, heads and times are uint64/int64 on the wire: bigint here, never a JS number.
import type { ChainFilter, ChainSummary } from '../../api/control-plane.js';
import type { ChainSpec, FencingMode, HeadRef } from '../../core/chain.js';
import { BatonError } from '../../core/errors.js';
import type { Operation, OperationKind, OperationState, OperationStep } from '../../core/operation.js';
import type { ChainSpecInput } from '../../core/spec.js';
import type { ChainView, NodeView, TermRecordView } from '../../core/status.js';
import type { BatonEvent, EventType } from '../etcd/event-feed.js';
import { fromHex, toHex } from '../node/wire.js';
import * as pb from '../../gen/baton/v1/baton.js';

const FENCING_MODE: Readonly<Record<FencingMode, pb.FencingMode>> = {
  lease: pb.FencingMode.FENCING_MODE_LEASE,
  commit: pb.FencingMode.FENCING_MODE_COMMIT,
};

const CHAIN_FILTER: Readonly<Record<ChainFilter, pb.ChainFilter>> = {
  leaderless: pb.ChainFilter.CHAIN_FILTER_LEADERLESS,
  paused: pb.ChainFilter.CHAIN_FILTER_PAUSED,
  degraded: pb.ChainFilter.CHAIN_FILTER_DEGRADED,
  'failing-over': pb.ChainFilter.CHAIN_FILTER_FAILING_OVER,
};

const OPERATION_KIND: Readonly<Record<OperationKind, pb.OperationKind>> = {
  failover: pb.OperationKind.OPERATION_KIND_FAILOVER,
  switchover: pb.OperationKind.OPERATION_KIND_SWITCHOVER,
  pause: pb.OperationKind.OPERATION_KIND_PAUSE,
  resume: pb.OperationKind.OPERATION_KIND_RESUME,
  'cancel-switchover': pb.OperationKind.OPERATION_KIND_CANCEL_SWITCHOVER,
  override: pb.OperationKind.OPERATION_KIND_OVERRIDE,
  'clear-override': pb.OperationKind.OPERATION_KIND_CLEAR_OVERRIDE,
  'set-fencing-mode': pb.OperationKind.OPERATION_KIND_SET_FENCING_MODE,
};

const OPERATION_STATE: Readonly<Record<OperationState, pb.OperationState>> = {
  pending: pb.OperationState.OPERATION_STATE_PENDING,
  scheduled: pb.OperationState.OPERATION_STATE_SCHEDULED,
  running: pb.OperationState.OPERATION_STATE_RUNNING,
  succeeded: pb.OperationState.OPERATION_STATE_SUCCEEDED,
  failed: pb.OperationState.OPERATION_STATE_FAILED,
  cancelled: pb.OperationState.OPERATION_STATE_CANCELLED,
};

const STEP_STATE: Readonly<Record<OperationStep['state'], pb.StepState>> = {
  running: pb.StepState.STEP_STATE_RUNNING,
  done: pb.StepState.STEP_STATE_DONE,
  failed: pb.StepState.STEP_STATE_FAILED,
  skipped: pb.StepState.STEP_STATE_SKIPPED,
};

const EVENT_TYPE: Readonly<Record<EventType, pb.EventType>> = {
  'chain-registered': pb.EventType.EVENT_TYPE_CHAIN_REGISTERED,
  'chain-updated': pb.EventType.EVENT_TYPE_CHAIN_UPDATED,
  'chain-removed': pb.EventType.EVENT_TYPE_CHAIN_REMOVED,
  'leader-changed': pb.EventType.EVENT_TYPE_LEADER_CHANGED,
  paused: pb.EventType.EVENT_TYPE_PAUSED,
  resumed: pb.EventType.EVENT_TYPE_RESUMED,
  'override-set': pb.EventType.EVENT_TYPE_OVERRIDE_SET,
  'override-cleared': pb.EventType.EVENT_TYPE_OVERRIDE_CLEARED,
  'node-health-changed': pb.EventType.EVENT_TYPE_NODE_HEALTH_CHANGED,
  'operation-changed': pb.EventType.EVENT_TYPE_OPERATION_CHANGED,
  resync: pb.EventType.EVENT_TYPE_RESYNC,
};

function invert<K extends string, V>(table: Readonly<Record<K, V>>): Map<V, K> {
  return new Map(Object.entries(table).map(([k, v]) => [v as V, k as K]));
}
const FENCING_MODE_OF = invert(FENCING_MODE);
const CHAIN_FILTER_OF = invert(CHAIN_FILTER);

function invalid(message: string): BatonError {
  return new BatonError('INVALID_ARGUMENT', message);
}

// ---- requests ----

/** The mode of a SetFencingMode request: LEASE or COMMIT (UNSPECIFIED or an unknown number is refused). */
export function fencingModeOf(mode: pb.FencingMode): FencingMode {
  const m = FENCING_MODE_OF.get(mode);
  if (m === undefined) throw invalid(`mode: required, FENCING_MODE_LEASE or FENCING_MODE_COMMIT (got ${mode})`);
  return m;
}

/**
 * The spec as validateChainSpec takes it (the same input as a PUT body): unset policy fields and
 * zero or UNSPECIFIED block time and fencing mode are left out, so the defaults apply.
 */
export function specInput(spec: pb.ChainSpec | undefined): ChainSpecInput {
  if (!spec) throw invalid('spec: required');
  const policy: Record<string, unknown> = {};
  if (spec.blockTimeMs !== 0) policy.blockTimeMs = spec.blockTimeMs;
  if (spec.fencingMode !== pb.FencingMode.FENCING_MODE_UNSPECIFIED) {
    // An unknown number reaches validateChainSpec as itself and is refused there, by name.
    policy.fencingMode = FENCING_MODE_OF.get(spec.fencingMode) ?? `fencing mode ${spec.fencingMode}`;
  }
  for (const [field, value] of Object.entries(spec.policy ?? {})) if (value !== undefined) policy[field] = value;
  return {
    id: spec.id,
    genesisHash: toHex(spec.genesisHash),
    nodes: spec.nodes.map((n) => ({ id: n.id, endpoint: n.endpoint, priority: n.priority, zone: n.zone })),
    policy,
  };
}

export function chainFilter(filter: pb.ChainFilter): ChainFilter | undefined {
  if (filter === pb.ChainFilter.CHAIN_FILTER_UNSPECIFIED) return undefined;
  const f = CHAIN_FILTER_OF.get(filter);
  if (!f) throw invalid(`filter: ${filter} is not a ChainFilter`);
  return f;
}

/** Wall milliseconds of a Timestamp field; undefined when unset. */
export function wallMs(field: string, at: Date | undefined): number | undefined {
  if (at === undefined) return undefined;
  const ms = at.getTime();
  if (!Number.isSafeInteger(ms) || ms < 0) throw invalid(`${field}: not a time after 1970`);
  return ms;
}

// ---- answers ----

const big = (n: number | string | bigint): bigint => BigInt(n);
const bigOrUndefined = (n: number | string | null | undefined): bigint | undefined => (n === null || n === undefined ? undefined : BigInt(n));

export function toWireSpec(spec: ChainSpec): pb.ChainSpec {
  const { blockTimeMs, fencingMode, ...policy } = spec.policy;
  return {
    id: spec.id,
    nodes: spec.nodes.map((n) => ({ id: n.id, endpoint: n.endpoint, priority: n.priority, zone: n.zone })),
    blockTimeMs,
    fencingMode: FENCING_MODE[fencingMode],
    genesisHash: fromHex(spec.genesisHash),
    policy,
  };
}

export function toWireNode(n: NodeView): pb.NodeStatus {
  return {
    id: n.id,
    endpoint: n.endpoint,
    zone: n.zone,
    priority: n.priority,
    role: n.role === 'active' ? pb.NodeRole.NODE_ROLE_ACTIVE : pb.NodeRole.NODE_ROLE_STANDBY,
    reachable: n.reachable,
    healthy: n.healthy,
    producing: n.producing,
    term: big(n.term),
    headNumber: bigOrUndefined(n.headNumber),
    lag: bigOrUndefined(n.lag),
    eligible: n.eligible,
    reasons: [...n.reasons],
    lastError: n.lastError,
  };
}

export function toWireTerm(r: TermRecordView): pb.TermRecord {
  return {
    term: big(r.term),
    nodeId: r.nodeId,
    previousNodeId: r.previousNodeId ?? '',
    previousTerm: bigOrUndefined(r.previousTerm) ?? 0n,
    fromHead: big(r.fromHead),
    reason: r.reason,
    atMs: big(r.atMs),
    supervisor: r.supervisor,
    durationMs: bigOrUndefined(r.durationMs),
  };
}

export function toWireHead(head: { number: number; hash: string; parentHash: string; l1Origin: string; timestamp: number; term: bigint | string; nodeId: string }): pb.UnsafeHead {
  return {
    number: big(head.number),
    hash: fromHex(head.hash),
    parentHash: fromHex(head.parentHash),
    l1Origin: head.l1Origin,
    timestamp: big(head.timestamp),
    term: big(head.term),
    nodeId: head.nodeId,
  };
}

export function toWireStatus(view: ChainView): pb.ChainStatus {
  const { leader, unsafeHead: head } = view;
  return {
    spec: toWireSpec(view.spec),
    leader: leader
      ? { nodeId: leader.nodeId, term: big(leader.term), mode: FENCING_MODE[leader.mode], sinceMs: big(leader.sinceMs), reason: leader.reason, fromHead: big(leader.fromHead) }
      : undefined,
    unsafeHead: head ? toWireHead(head) : undefined,
    supervisor: view.supervisor ?? '',
    nodes: view.nodes.map(toWireNode),
    lastFailover: view.lastFailover ? toWireTerm(view.lastFailover) : undefined,
    decision: view.decision ?? '',
    override: view.override
      ? {
          nodeId: view.override.nodeId,
          reason: view.override.reason,
          sinceMs: big(view.override.sinceMs),
          operationId: view.override.operationId,
          term: BigInt(view.override.term),
          rolledBackFrom: headRef(view.override.rolledBackFrom),
          rolledBackTo: headRef(view.override.rolledBackTo),
        }
      : undefined,
  };
}

export function toWireSummary(c: ChainSummary): pb.ChainSummary {
  return {
    id: c.id,
    leader: c.leader ?? '',
    term: bigOrUndefined(c.term) ?? 0n,
    headNumber: bigOrUndefined(c.headNumber),
    supervisor: c.supervisor ?? '',
    nodes: c.nodes,
    fencingMode: FENCING_MODE[c.fencingMode as FencingMode] ?? pb.FencingMode.FENCING_MODE_UNSPECIFIED,
    paused: c.paused,
    states: c.states.map((s) => CHAIN_FILTER[s]),
  };
}

export function toWireOperation(op: Operation): pb.Operation {
  const p = op.params;
  return {
    id: op.id,
    chainId: op.chainId,
    kind: OPERATION_KIND[p.kind],
    state: OPERATION_STATE[op.state],
    reason: p.reason,
    candidate: p.kind === 'failover' ? (p.candidate ?? '') : '',
    target: p.kind === 'switchover' ? (p.target ?? '') : '',
    scheduledAtMs: p.kind === 'switchover' ? bigOrUndefined(p.scheduledAtMs) : undefined,
    untilMs: p.kind === 'pause' ? bigOrUndefined(p.untilMs) : undefined,
    steps: op.steps.map((s) => ({ name: s.name, state: STEP_STATE[s.state], atMs: big(s.atMs), detail: s.detail })),
    createdAtMs: big(op.createdAtMs),
    updatedAtMs: big(op.updatedAtMs),
    result: op.result
      ? { term: bigOrUndefined(op.result.term) ?? 0n, nodeId: op.result.nodeId ?? '', headNumber: bigOrUndefined(op.result.headNumber), detail: op.result.detail }
      : undefined,
    error: op.error ? { code: op.error.code, message: op.error.message } : undefined,
    requestId: op.requestId,
    idempotencyKey: op.idempotencyKey ?? '',
    executor: op.executor ?? '',
    traceId: op.traceId ?? '',
    nodeId: p.kind === 'override' ? p.nodeId : '',
    rollbackHead: p.kind === 'override' && p.rollbackHead === true,
    fencingMode: p.kind === 'set-fencing-mode' ? FENCING_MODE[p.mode] : pb.FencingMode.FENCING_MODE_UNSPECIFIED,
  };
}

export function toWireEvent(e: BatonEvent): pb.Event {
  // A Struct holds JSON values only: undefined fields go, bigints become decimal strings.
  const data = JSON.parse(JSON.stringify(e.data, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, unknown>;
  return { id: e.id, type: EVENT_TYPE[e.type], chainId: e.chainId ?? '', data };
}

function headRef(h: HeadRef | null): pb.HeadRef | undefined {
  return h ? { number: big(h.number), hash: h.hash } : undefined;
}
