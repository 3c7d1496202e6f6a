// The operations both surfaces offer (REST and gRPC call these, never the stores directly): any
// replica serves any request. Mutations of leadership are intents: validated here, made durable
// by the operation store, executed by the chain's supervisor.
import { createHash } from 'node:crypto';
import { chooseTarget } from '../core/candidates.js';
import type { CommitResult } from '../core/commit.js';
import { BatonError, isBatonError } from '../core/errors.js';
import { isFinal, isPaused, type Operation, type OperationParams } from '../core/operation.js';
import type { ChainStore, Clock, Idempotency, OperationStore } from '../core/ports.js';
import { CHAIN_ID_PATTERN } from '../core/spec.js';
import { describeChain, type ChainObservation, type ChainView } from '../core/status.js';
import type { EventFeed, EventSubscription } from '../adapters/etcd/event-feed.js';
import type { LeaderLookup } from '../adapters/etcd/leader-directory.js';
import type { AuditedChainWrites, AuditQuery, AuditRecord, AuditScope, AuditTrail, LeadershipSnapshot, NewAuditRecord } from './audit.js';
import type { ChainSpec } from '../core/chain.js';
import type { FleetSettings } from '../core/ports.js';

export type ChainFilter = 'leaderless' | 'paused' | 'degraded' | 'failing-over';
export const CHAIN_FILTERS: readonly ChainFilter[] = ['leaderless', 'paused', 'degraded', 'failing-over'];

export interface ChainSummary {
  readonly id: string;
  readonly leader: string | null;
  readonly term: string | null;
  readonly headNumber: number | null;
  readonly supervisor: string | null;
  readonly nodes: number;
  readonly fencingMode: string;
  readonly paused: boolean;
  readonly states: ChainFilter[];
}

export interface ControlPlaneDeps {
  readonly store: ChainStore & AuditedChainWrites;
  readonly ops: OperationStore & {
    listOperations(q: { chainId?: string; limit: number }): Promise<Operation[]>;
    /** `audit`: the record of the request, written by the same txn as the intent. */
    submit(request: Parameters<OperationStore['submit']>[0], idempotency: Idempotency | undefined, audit?: NewAuditRecord): Promise<{ operation: Operation; replayed: boolean }>;
  };
  readonly events: EventFeed;
  readonly clock: Clock;
  /** A chain's state with its nodes' observations (the supervisor's, or fresh probes). */
  readonly observe: (chainId: string) => Promise<ChainObservation | undefined>;
  /** Who leads which chain, from a watch (optional: without it every leader read goes to etcd). */
  readonly leaders?: LeaderLookup;
  /** The audit trail (queries; records of refusals). */
  readonly audit?: AuditTrail;
}

/** A head commit as both surfaces receive it (hashes as lowercase hex, no 0x). */
export interface HeadCommitInput {
  readonly chainId: string;
  readonly nodeId: string;
  readonly term: bigint;
  readonly number: number | bigint;
  readonly hash: string;
  readonly parentHash: string;
  readonly l1Origin: string;
  readonly timestamp: number | bigint;
}

const NODE_ID = /^[A-Za-z0-9._-]{1,128}$/;
const HASH = /^[0-9a-f]{2,128}$/;

export interface RequestMeta {
  readonly requestId: string;
  readonly idempotencyKey?: string;
  /** Canonical form of the request (method, path, body) for idempotency. */
  readonly canonical: string;
  /** Who asks; its record is written with the change (and marked written). */
  readonly audit?: AuditScope;
}

const MAX_SCHEDULE_AHEAD_MS = 7 * 24 * 3600 * 1000;
const MAX_WAIT_MS = 60_000;
const POLL_MS = 100;

export class ControlPlane {
  constructor(private readonly deps: ControlPlaneDeps) {}

  /**
   * Commit mode: the active node's next block, committed before it leaves the node. STALE_TERM
   * tells the node to stop producing; HEAD_MISMATCH that the block does not extend the chain.
   */
  async commitHead(input: HeadCommitInput): Promise<CommitResult> {
    const bad = (message: string) => new BatonError('INVALID_ARGUMENT', message);
    if (!CHAIN_ID_PATTERN.test(input.chainId)) throw bad(`chainId ${JSON.stringify(input.chainId)} must match ${CHAIN_ID_PATTERN}`);
    if (!NODE_ID.test(input.nodeId)) throw bad(`nodeId ${JSON.stringify(input.nodeId)} must match ${NODE_ID}`);
    if (input.term <= 0n || input.term >= 2n ** 64n) throw bad(`term ${input.term} must be a uint64 above 0`);
    const number = Number(input.number);
    const timestamp = Number(input.timestamp);
    if (!Number.isSafeInteger(number) || number < 1) throw bad(`head number ${input.number} must be an integer in 1..${Number.MAX_SAFE_INTEGER}`);
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw bad(`head timestamp ${input.timestamp} must be a non-negative integer`);
    if (!HASH.test(input.hash) || input.hash.length % 2 !== 0) throw bad('head hash must be 1..64 bytes of lowercase hex');
    if (!HASH.test(input.parentHash) || input.parentHash.length % 2 !== 0) throw bad('head parentHash must be 1..64 bytes of lowercase hex');
    if (input.l1Origin.length > 256) throw bad('head l1Origin must be at most 256 characters');
    const { chainId, nodeId, term } = input;
    return this.deps.store.commitHead({
      chainId,
      nodeId,
      term,
      head: { number, hash: input.hash, parentHash: input.parentHash, term, nodeId, l1Origin: input.l1Origin, timestamp },
    });
  }

  async listChains(filter: ChainFilter | undefined): Promise<{ chains: ChainSummary[]; counts: Record<ChainFilter | 'total', number> }> {
    const specs = await this.deps.store.listSpecs();
    const now = this.deps.clock.wallMs();
    const all = await Promise.all(
      specs.map(async (spec): Promise<ChainSummary> => {
        const s = await this.deps.store.read(spec.id);
        const paused = isPaused(s?.pause, now);
        const health = s?.health;
        const states: ChainFilter[] = [];
        if (!s?.leader) states.push('leaderless');
        if (paused) states.push('paused');
        if (health?.some((n) => !n.healthy)) states.push('degraded');
        const leaderHealth = health?.find((n) => n.nodeId === s?.leader?.nodeId);
        if (s?.leader && (s.intents.length > 0 || leaderHealth?.producing === false)) states.push('failing-over');
        return {
          id: spec.id,
          leader: s?.leader?.nodeId ?? null,
          term: s?.leader?.term.toString() ?? null,
          headNumber: s?.head?.number ?? null,
          supervisor: s?.supervisor ?? null,
          nodes: spec.nodes.length,
          fencingMode: spec.policy.fencingMode,
          paused,
          states,
        };
      }),
    );
    const counts = { total: all.length, leaderless: 0, paused: 0, degraded: 0, 'failing-over': 0 };
    for (const c of all) for (const st of c.states) counts[st]++;
    return { chains: filter ? all.filter((c) => c.states.includes(filter)) : all, counts };
  }

  /**
   * The leader, answered at once when its term differs from `waitForChangeFrom`, else when it
   * changes or after `timeoutMs` (long-poll for leader-aware proxies).
   */
  async leader(chainId: string, waitForChangeFrom: bigint | undefined, timeoutMs: number): Promise<{ nodeId: string | null; term: string | null; endpoint: string | null; changed: boolean }> {
    const read = async (fromWatch = false) => {
      // The watch-fed copy answers the plain question; a chain it does not know (yet) is read from
      // etcd, and so is every read of a long-poll, which must not miss a change the copy lags.
      const known = fromWatch ? this.deps.leaders?.leaderOf(chainId) : undefined;
      if (known) return { nodeId: known.nodeId, term: known.term?.toString() ?? null, endpoint: known.endpoint };
      const s = await this.deps.store.read(chainId);
      if (!s) throw new BatonError('NOT_FOUND', `chain ${chainId} does not exist`);
      const node = s.spec.nodes.find((n) => n.id === s.leader?.nodeId);
      return { nodeId: s.leader?.nodeId ?? null, term: s.leader?.term.toString() ?? null, endpoint: node?.endpoint ?? null };
    };
    // No leader counts as term 0: a proxy that knows of none waits with waitForChangeFrom=0.
    const from = waitForChangeFrom?.toString();
    const differs = (r: { term: string | null }) => (r.term ?? '0') !== from;
    if (from === undefined) return { ...(await read(true)), changed: false };
    const first = await read();
    if (differs(first)) return { ...first, changed: true };
    const changed = await this.waitForEvent(
      Math.min(timeoutMs, MAX_WAIT_MS),
      (e) => e.chainId === chainId && (e.type === 'leader-changed' || e.type === 'chain-removed'),
      async () => differs(await read()),
    );
    const now = await read();
    return { ...now, changed: changed && differs(now) };
  }

  async submit(chainId: string, params: OperationParams, meta: RequestMeta): Promise<{ operation: Operation; replayed: boolean }> {
    this.validate(params);
    // A node the chain does not have is refused here, before anything is written (the supervisor
    // checks again when it executes: the spec may change in between).
    const node = params.kind === 'failover' ? params.candidate : params.kind === 'switchover' ? params.target : params.kind === 'override' ? params.nodeId : undefined;
    if (node !== undefined) {
      const spec = await this.deps.store.getSpec(chainId);
      if (!spec) throw new BatonError('NOT_FOUND', `chain ${chainId} does not exist`, { chainId });
      if (!spec.nodes.some((n) => n.id === node)) throw new BatonError('NOT_FOUND', `node ${node} is not in chain ${chainId}`, { chainId, nodeId: node });
    }
    // A break-glass override holds leadership (and the term it forced) until it is cleared: refused
    // here at once (and again by the supervisor, should one be set in between).
    if (params.kind === 'failover' || params.kind === 'switchover' || params.kind === 'set-fencing-mode') {
      const override = (await this.deps.store.read(chainId))?.override;
      if (override) {
        throw new BatonError('OVERRIDDEN', `break-glass override in force on ${chainId}: ${override.nodeId} forced active under term ${override.term}; clear it first`, {
          chainId,
          nodeId: override.nodeId,
          operationId: override.operationId,
        });
      }
    }
    // A head rollback while the leader produces would discard live blocks: refused here at once
    // on the supervisor's published health (and again by the supervisor on its own probes).
    if (params.kind === 'override' && params.rollbackHead === true) {
      const state = await this.deps.store.read(chainId);
      const leader = state?.leader;
      if (leader && state.health?.some((h) => h.nodeId === leader.nodeId && h.producing)) {
        throw new BatonError('ROLLBACK_REFUSED', `${leader.nodeId} is producing under term ${leader.term}: rolling the head of ${chainId} back would discard live blocks`, {
          chainId,
          nodeId: leader.nodeId,
          term: leader.term.toString(),
        });
      }
    }
    const idempotency: Idempotency | undefined = meta.idempotencyKey
      ? { key: meta.idempotencyKey, requestHash: createHash('sha256').update(meta.canonical).digest('hex') }
      : undefined;
    const scope = meta.audit;
    let record: NewAuditRecord | undefined;
    if (scope) {
      // The intent changes no leader yet: before = after; the operation record tracks the rest.
      const before = await this.leadership(chainId);
      record = scope.record({ outcome: 'accepted', status: scope.okStatus(202), chainId, reason: params.reason, before, after: before });
    }
    // A key is its principal's own: another principal's same key is another request.
    const scoped = idempotency && scope?.scopeKeys ? { ...idempotency, principal: scope.principal } : idempotency;
    const result = await this.deps.ops.submit({ chainId, params, requestId: meta.requestId }, scoped, record);
    if (scope && !result.replayed) scope.written = true;
    return result;
  }

  /** Creates or replaces a chain's spec (validated by the caller); its audit record shares the txn. */
  async putChain(spec: ChainSpec, meta: { audit?: AuditScope }): Promise<{ created: boolean }> {
    const existed = (await this.deps.store.getSpec(spec.id)) !== undefined;
    const scope = meta.audit;
    const before = scope ? await this.leadership(spec.id) : null;
    await this.deps.store.putSpec(spec, scope?.record({ outcome: 'applied', status: scope.okStatus(existed ? 200 : 201), chainId: spec.id, before, after: before }));
    if (scope) scope.written = true;
    return { created: !existed };
  }

  async deleteChain(chainId: string, meta: { audit?: AuditScope }): Promise<void> {
    const scope = meta.audit;
    const before = scope ? await this.leadership(chainId) : null;
    const gone: LeadershipSnapshot = { leader: null, term: null, head: null };
    const deleted = await this.deps.store.deleteChain(chainId, scope?.record({ outcome: 'applied', status: scope.okStatus(204), chainId, before, after: gone }));
    if (!deleted) throw new BatonError('NOT_FOUND', `chain ${chainId} does not exist`);
    if (scope) scope.written = true;
  }

  async putFleetSettings(settings: FleetSettings, meta: { audit?: AuditScope }): Promise<FleetSettings> {
    const scope = meta.audit;
    await this.deps.store.putFleetSettings(settings, scope?.record({ outcome: 'applied', status: scope.okStatus(200) }));
    if (scope) scope.written = true;
    return this.deps.store.getFleetSettings();
  }

  /** The audit trail, newest first. */
  queryAudit(q: AuditQuery): Promise<AuditRecord[]> {
    if (!this.deps.audit) throw new BatonError('UNAVAILABLE', 'this replica keeps no audit trail');
    if (q.fromMs !== undefined && q.toMs !== undefined && q.fromMs > q.toMs) throw new BatonError('INVALID_ARGUMENT', 'from: is after to');
    return this.deps.audit.query(q);
  }

  /** Leader, term and head of a chain now (null fields: none, or no chain). */
  async leadership(chainId: string): Promise<LeadershipSnapshot> {
    const s = await this.deps.store.read(chainId);
    return { leader: s?.leader?.nodeId ?? null, term: s?.leader?.term.toString() ?? null, head: s?.head?.number ?? null };
  }

  /** What a failover would do now, changing nothing: the same choice the supervisor would make. */
  async planFailover(chainId: string, candidate: string | undefined): Promise<{ from: string | null; to: string | null; reason: string; nodes: ChainView['nodes'] }> {
    const observed = await this.deps.observe(chainId);
    if (!observed) throw new BatonError('NOT_FOUND', `chain ${chainId} does not exist`);
    const { state, observations, nowMs } = observed;
    const from = state.leader?.nodeId ?? null;
    const nodes = describeChain(observed).nodes;
    try {
      const choice = chooseTarget(state.spec, observations, state.head, from ?? undefined, candidate, nowMs);
      return { from, to: choice.to, reason: `would fail over from ${from ?? '(no leader)'} to ${choice.to}: ${choice.why}`, nodes };
    } catch (err) {
      if (!isBatonError(err) || err.code === 'NOT_FOUND') throw err;
      return { from, to: null, reason: err.message, nodes };
    }
  }

  /** The operation, once final or after `waitMs` (0: at once). */
  async operation(id: string, waitMs: number): Promise<Operation> {
    const get = async () => {
      const op = await this.deps.ops.get(id);
      if (!op) throw new BatonError('NOT_FOUND', `operation ${id} does not exist`);
      return op;
    };
    let op = await get();
    const deadline = this.deps.clock.monoMs() + Math.min(waitMs, MAX_WAIT_MS);
    while (!isFinal(op.state) && this.deps.clock.monoMs() < deadline) {
      await this.waitForEvent(
        deadline - this.deps.clock.monoMs(),
        (e) => e.type === 'operation-changed' && e.data.id === id,
        async () => isFinal((await get()).state),
      );
      op = await get();
    }
    return op;
  }

  listOperations(chainId: string | undefined, limit: number): Promise<Operation[]> {
    return this.deps.ops.listOperations({ chainId, limit });
  }

  private validate(params: OperationParams): void {
    const now = this.deps.clock.wallMs();
    if (!params.reason || params.reason.trim() === '' || params.reason.length > 1000) throw new BatonError('INVALID_ARGUMENT', 'reason: required, at most 1000 characters');
    if (params.kind === 'set-fencing-mode' && params.mode !== 'lease' && params.mode !== 'commit') {
      throw new BatonError('INVALID_ARGUMENT', `mode: ${JSON.stringify(params.mode)} must be "lease" or "commit"`);
    }
    if (params.kind === 'override' && !NODE_ID.test(params.nodeId)) throw new BatonError('INVALID_ARGUMENT', `nodeId: ${JSON.stringify(params.nodeId)} must match ${NODE_ID}`);
    if (params.kind === 'switchover' && params.scheduledAtMs !== undefined) {
      if (params.scheduledAtMs < now - 1000) throw new BatonError('INVALID_ARGUMENT', 'scheduledAt: is in the past');
      if (params.scheduledAtMs > now + MAX_SCHEDULE_AHEAD_MS) throw new BatonError('INVALID_ARGUMENT', 'scheduledAt: more than 7 days ahead');
    }
    if (params.kind === 'pause' && params.untilMs !== undefined && params.untilMs <= now) {
      throw new BatonError('INVALID_ARGUMENT', 'until: is in the past');
    }
  }

  /**
   * Resolves true when a matching event arrives (or `recheck`, run once the watch is in place so
   * that nothing between the caller's read and the watch is missed, says it already happened),
   * false after `timeoutMs`.
   */
  private async waitForEvent(
    timeoutMs: number,
    match: (e: { type: string; chainId?: string; data: Record<string, unknown> }) => boolean,
    recheck: () => Promise<boolean>,
  ): Promise<boolean> {
    if (timeoutMs <= 0) return false;
    let sub: EventSubscription | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<boolean>((resolve, reject) => {
        timer = setTimeout(() => resolve(false), Math.max(POLL_MS, timeoutMs));
        this.deps.events
          .subscribe(undefined, (e) => {
            if (match(e)) resolve(true);
          })
          .then(async (s) => {
            sub = s;
            if (await recheck()) resolve(true);
          })
          .catch(reject);
      });
    } finally {
      clearTimeout(timer);
      await sub?.close();
    }
  }
}
