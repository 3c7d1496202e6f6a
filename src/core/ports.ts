// What the core needs from the outside world, as narrow interfaces. Adapters implement them
// (adapters/etcd, adapters/node); tests use fakes that pass the same contract suite.
import type { ChainSpec, FencingMode, LeaderRecord, NodeSpec, TermRecord, UnsafeHead } from './chain.js';
import type { CommitResult, HeadCommit } from './commit.js';
import type { NodeReport } from './observation.js';
import type { Operation, OperationParams, OverrideRecord, OverrideState, PauseRecord } from './operation.js';
import type { Term } from './term.js';

/** Monotonic milliseconds for decisions, wall milliseconds for records. */
export interface Clock {
  monoMs(): number;
  wallMs(): number;
}

/**
 * Proof that this replica supervises a chain: its own election key and that key's create
 * revision. Every fenced write compares both, so a deposed supervisor cannot write.
 */
export interface SupervisionFence {
  readonly chainId: string;
  readonly replicaId: string;
  readonly key: string;
  readonly createRevision: bigint;
}

/** One consistent read of everything the supervisor needs about a chain. */
export interface ChainState {
  readonly spec: ChainSpec;
  readonly leader: LeaderRecord | undefined;
  /**
   * The fencing mode of the term the leader replaced, as written with it (undefined: first leader,
   * or not known). Both commit mode: no grant anyone sent under either term needs waiting out,
   * unless `leaseGrantsLive` says a lease-mode grant of a term before them may still be valid.
   */
  readonly previousMode?: FencingMode;
  /** As written with the leader record: see NewLeader.leaseGrantsLive. */
  readonly leaseGrantsLive?: boolean;
  readonly head: UnsafeHead | undefined;
  /** Mod revision of the head key (0n when absent); recordHead compares it. */
  readonly headRevision: bigint;
  /** Replica id that holds the chain's supervisor key, if any. */
  readonly supervisor: string | undefined;
  /** The chain's pause record, if any (it may have expired: see isPaused). */
  readonly pause: PauseRecord | undefined;
  /** The chain's break-glass override while it is in force (absent: none). */
  readonly override?: OverrideState;
  /** Ids of the chain's unfinished operations (intent keys), oldest first. */
  readonly intents: readonly string[];
  /** The node health summary last published by the chain's supervisor. */
  readonly health: readonly NodeHealth[] | undefined;
}

/** The recorded head and its key's mod revision (0n: none yet), as read together. */
export interface RecordedHead {
  readonly head: UnsafeHead | undefined;
  readonly revision: bigint;
}

export interface NodeHealth {
  readonly nodeId: string;
  readonly reachable: boolean;
  readonly healthy: boolean;
  readonly producing: boolean;
}

export interface FleetSettings {
  readonly autoFailover: boolean;
  readonly maxConcurrentFailovers: number;
}

export interface NewLeader {
  readonly nodeId: string;
  readonly reason: string;
  readonly fromHead: number;
  readonly mode: LeaderRecord['mode'];
  /** The fencing mode of the term this one replaces (undefined: the first leader). */
  readonly previousMode?: FencingMode;
  /**
   * True when the writer knew of a lease-mode grant (of any earlier term) that may still be valid.
   * previousMode looks one term back only: lease -> commit -> commit within one lease TTL leaves a
   * live lease two terms back, which a supervisor taking over must still wait out.
   */
  readonly leaseGrantsLive?: boolean;
  /** Break-glass: the override record, written in the same txn (so it holds from this term on). */
  readonly override?: OverrideRecord;
  /**
   * Break-glass with rollbackHead: the recorded head set back to `head` in the same txn, guarded by
   * a compare on the head key's mod revision (`expectedRevision`, read with the head it replaces).
   * Only with an override record that names the rollback (rolledBackFrom/To).
   */
  readonly rollback?: HeadRollback;
}

export interface HeadRollback {
  readonly head: UnsafeHead;
  readonly expectedRevision: bigint;
}

/** What a break-glass override adds to a leader change (see NewLeader). */
export type BreakGlass = Pick<NewLeader, 'override' | 'rollback'>;

export interface ChainStore {
  putSpec(spec: ChainSpec): Promise<void>;
  getSpec(chainId: string): Promise<ChainSpec | undefined>;
  listSpecs(): Promise<ChainSpec[]>;
  /** Removes the spec and the chain's state; false when it did not exist. */
  deleteChain(chainId: string): Promise<boolean>;
  read(chainId: string): Promise<ChainState | undefined>;
  /**
   * Writes a new leader record in one txn that compares the supervisor key (fence) and the
   * current leader term (undefined: no leader yet), and appends the history entry in the same
   * txn. Returns the new term (the txn's revision). FENCED when the fence no longer holds,
   * CONFLICT when the leader changed since it was read.
   */
  writeLeader(fence: SupervisionFence, expected: Term | undefined, next: NewLeader, history: Omit<TermRecord, 'term'>): Promise<Term>;
  /**
   * Lease mode: records a newer unsafe head reported by the active, fenced on the supervisor key,
   * the leader term and the head revision read before (`expected`, from the same read as its
   * head: no lost update). A head not above the recorded one is refused (CONFLICT), the block
   * right above it must extend it (HEAD_MISMATCH); the head never goes back.
   */
  recordHead(fence: SupervisionFence, term: Term, expected: RecordedHead, head: UnsafeHead): Promise<bigint>;
  /**
   * Commit mode: the active node commits its next block before gossiping it. One txn compares the
   * leader term and the head revision the judgement (core/commit.ts judgeCommit) was made on, so
   * a deposed node's commit is refused (STALE_TERM) and one chain's heads form one lineage. An
   * identical re-commit is a duplicate, not an error, once the store confirmed it under the same
   * compares (never on a cached read alone: a newer term or a rollback may have happened since).
   */
  commitHead(commit: HeadCommit): Promise<CommitResult>;
  history(chainId: string, limit: number): Promise<TermRecord[]>;
  /**
   * Sets the spec's policy.fencingMode, fenced on the supervisor key and on the spec revision it
   * read (no lost update of a concurrent spec PUT: CONFLICT). False, writing nothing, when the spec
   * already has that mode. NOT_FOUND when the chain has no spec; FENCED when the fence no longer holds.
   */
  setFencingMode(fence: SupervisionFence, mode: FencingMode): Promise<boolean>;
  /** Publishes the chain's node health summary (for the event stream), fenced on the supervisor key. */
  publishHealth(fence: SupervisionFence, health: readonly NodeHealth[]): Promise<void>;
  getFleetSettings(): Promise<FleetSettings>;
  putFleetSettings(settings: FleetSettings): Promise<void>;
}

/** Schedules a callback after `ms` (monotonic); returns a cancel function. */
export interface Scheduler {
  after(ms: number, fn: () => void): () => void;
}

/** Structured log lines: fields first, a short stable message second (pino's signature). */
export interface Log {
  debug(fields: object, msg: string): void;
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

export interface StartGrant {
  readonly chainId: string;
  readonly term: Term;
  readonly ttlMs: number;
  /** The recorded unsafe head the node must hold before it produces. */
  readonly head: UnsafeHead | undefined;
  readonly reason: string;
  /** `commit`: the node commits each block to Baton before gossiping it; `head` is then exact. */
  readonly mode: FencingMode;
}

/** Per call: an end earlier than the adapter's own deadline. */
export interface NodeCallOptions {
  /**
   * The instant (monotonic ms, the Clock's monoMs) after which the node must not act on the call:
   * fixed before the call is made, so time lost on the way (a pause of this process) uses it up.
   */
  readonly notAfterMonoMs?: number;
  /**
   * The same instant on the wall clock (the Clock's wallMs), sent to the node as the call's
   * absolute deadline (not_after_unix_ms): a relative gRPC deadline restarts when a frozen node
   * wakes and reads the call, this one does not.
   */
  readonly notAfterWallMs?: number;
}

/**
 * Commands to a chain's nodes. Every call has its own deadline (`deadlineMs` of the adapter) and
 * rejects with a BatonError: NODE_UNREACHABLE, STALE_TERM, HEAD_BEHIND, HEAD_MISMATCH,
 * MISCONFIGURED, LEASE_EXPIRED, NOT_ACTIVE, ALREADY_ACTIVE.
 */
export interface NodeControl {
  readonly deadlineMs: number;
  health(node: NodeSpec): Promise<NodeReport>;
  start(node: NodeSpec, grant: StartGrant, options?: NodeCallOptions): Promise<void>;
  renew(node: NodeSpec, term: Term, ttlMs: number, options?: NodeCallOptions): Promise<void>;
  stop(node: NodeSpec, term: Term, reason: string): Promise<void>;
  /** Stops the active at its head h and returns the ticket bound to (term, h). */
  prepareHandoff(node: NodeSpec, term: Term, targetId: string, reason: string): Promise<HandoffTicket>;
  /** Makes the target active under `term`, continuing at h+1; only when its head is h. */
  completeHandoff(node: NodeSpec, ticket: HandoffTicket, term: Term, ttlMs: number, mode: FencingMode, options?: NodeCallOptions): Promise<void>;
}

export interface HandoffTicket {
  /** Opaque bytes the target node checks. */
  readonly ticket: Uint8Array;
  readonly term: Term;
  readonly headNumber: number;
  readonly headHash: string;
}

/** The proof that this replica is alive in etcd (its lease), checked before every action. */
export interface ReplicaProof {
  provenUntilMs(): number;
}

/** Fleet-wide cap on concurrent failovers; resolves undefined when every slot is taken. */
export interface FailoverSlots {
  acquire(): Promise<(() => Promise<void>) | undefined>;
}

/** Supervisor election per chain, under this replica's one etcd lease. */
export interface Supervision {
  readonly replicaId: string;
  /** Takes the chain's supervisor key if nobody holds it; undefined when someone does. */
  acquire(chainId: string): Promise<SupervisionFence | undefined>;
  /** Gives the key up, only if it is still ours. */
  release(fence: SupervisionFence): Promise<void>;
  /** Replica ids currently registered (alive) in etcd. */
  liveReplicas(): Promise<string[]>;
  /** chain id → replica id holding its supervisor key. */
  holders(): Promise<Map<string, string>>;
}

/** A new operator request, before it has an id and timestamps. */
export interface NewOperation {
  readonly chainId: string;
  readonly params: OperationParams;
  readonly requestId: string;
  /** Trace of the request (32 hex digits) and its W3C traceparent, stored with the operation. */
  readonly traceId?: string;
  readonly traceparent?: string;
}

export interface Idempotency {
  readonly key: string;
  /** Hash of the canonical request (method, path, body): the same key with another body is refused. */
  readonly requestHash: string;
}

export interface OperationStore {
  /**
   * Makes a request durable: writes the operation (state `pending`, or `scheduled` for a future
   * switchover) and the chain's intent key in ONE txn, before the API answers 202. The chain must
   * exist (NOT_FOUND). A failover, switchover or set-fencing-mode also takes the chain's
   * leadership-operation lock: while one is unfinished another is refused with CONFLICT. With an idempotency key, a replay of
   * the same request returns the first operation (`replayed: true`) and writes nothing; the same key
   * with a different request is IDEMPOTENCY_MISMATCH.
   */
  submit(op: NewOperation, idempotency: Idempotency | undefined): Promise<{ operation: Operation; replayed: boolean }>;
  get(operationId: string): Promise<Operation | undefined>;
  /** Unfinished operations of a chain, oldest first (what its supervisor must execute). */
  pending(chainId: string): Promise<Operation[]>;
  /**
   * The supervisor records progress, fenced on its supervisor key. When the operation reaches a
   * final state its intent key and, for those that took it, the chain's lock are removed in the
   * same txn.
   */
  update(fence: SupervisionFence, operation: Operation): Promise<void>;
  /** Sets or clears (undefined) the chain's pause, fenced on the supervisor key. */
  setPause(fence: SupervisionFence, pause: PauseRecord | undefined): Promise<void>;
  /** Removes the chain's break-glass override, fenced on the supervisor key; false when none was set. */
  clearOverride(fence: SupervisionFence): Promise<boolean>;
}
