// The operations both surfaces offer (REST and gRPC call these, never the stores directly): any
// replica serves any request. Mutations of leadership are intents: validated here, made durable
// by the operation store, executed by the chain's supervisor.
import { createHash } from 'node:crypto';
import { chooseTarget } from '../core/candidates.js';
import { BatonError, isBatonError } from '../core/errors.js';
import { isFinal, isPaused, type Operation, type OperationParams } from '../core/operation.js';
import type { ChainStore, Clock, Idempotency, OperationStore } from '../core/ports.js';
import { describeChain, type ChainObservation, type ChainView } from '../core/status.js';
import type { EventFeed, EventSubscription } from '../adapters/etcd/event-feed.js';

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
  readonly store: ChainStore;
  readonly ops: OperationStore & { listOperations(q: { chainId?: string; limit: number }): Promise<Operation[]> };
  readonly events: EventFeed;
  readonly clock: Clock;
  /** A chain's state with its nodes' observations (the supervisor's, or fresh probes). */
  readonly observe: (chainId: string) => Promise<ChainObservation | undefined>;
}

export interface RequestMeta {
  readonly requestId: string;
  readonly idempotencyKey?: string;
  /** Canonical form of the request (method, path, body) for idempotency. */
  readonly canonical: string;
}

const MAX_SCHEDULE_AHEAD_MS = 7 * 24 * 3600 * 1000;
const MAX_WAIT_MS = 60_000;
const POLL_MS = 100;

export class ControlPlane {
  constructor(private readonly deps: ControlPlaneDeps) {}

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
    const read = async () => {
      const s = await this.deps.store.read(chainId);
      if (!s) throw new BatonError('NOT_FOUND', `chain ${chainId} does not exist`);
      const node = s.spec.nodes.find((n) => n.id === s.leader?.nodeId);
      return { nodeId: s.leader?.nodeId ?? null, term: s.leader?.term.toString() ?? null, endpoint: node?.endpoint ?? null };
    };
    // No leader counts as term 0: a proxy that knows of none waits with waitForChangeFrom=0.
    const from = waitForChangeFrom?.toString();
    const differs = (r: { term: string | null }) => (r.term ?? '0') !== from;
    const first = await read();
    if (from === undefined || differs(first)) return { ...first, changed: from !== undefined };
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
    const node = params.kind === 'failover' ? params.candidate : params.kind === 'switchover' ? params.target : undefined;
    if (node !== undefined) {
      const spec = await this.deps.store.getSpec(chainId);
      if (!spec) throw new BatonError('NOT_FOUND', `chain ${chainId} does not exist`, { chainId });
      if (!spec.nodes.some((n) => n.id === node)) throw new BatonError('NOT_FOUND', `node ${node} is not in chain ${chainId}`, { chainId, nodeId: node });
    }
    const idempotency: Idempotency | undefined = meta.idempotencyKey
      ? { key: meta.idempotencyKey, requestHash: createHash('sha256').update(meta.canonical).digest('hex') }
      : undefined;
    return this.deps.ops.submit({ chainId, params, requestId: meta.requestId }, idempotency);
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
    if (!params.reason || params.reason.length > 1000) throw new BatonError('INVALID_ARGUMENT', 'reason: required, at most 1000 characters');
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
