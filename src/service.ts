// One replica's supervision runtime: an etcd session (its one lease), the coordinator that picks
// which chains this replica supervises, and the watches that wake them. When the session's proof
// runs out the replica stops acting at once, then joins again with a fresh session.
import type { Etcd3 } from 'etcd3';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import type { ChainSpec } from './core/chain.js';
import type { ChainStore, Clock, FleetSettings, NodeControl, OperationStore, Scheduler, Supervision } from './core/ports.js';
import { ReplicaCoordinator } from './core/replica.js';
import type { Metrics, Tracer } from './core/telemetry.js';
import { ChainSupervisor, type SupervisorEvent, type SupervisorStatus } from './core/supervisor.js';
import type { EtcdKeys } from './adapters/etcd/keys.js';
import type { ChainKeyListener } from './adapters/etcd/leader-directory.js';
import { ReplicaSession, type Subscription } from './adapters/etcd/replica-session.js';
import { PrefixWatch } from './adapters/etcd/watch.js';

export interface RuntimeDeps {
  readonly config: Config;
  readonly client: Etcd3;
  readonly keys: EtcdKeys;
  readonly store: ChainStore;
  readonly ops: OperationStore;
  readonly nodes: NodeControl;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly log: Logger;
  readonly apiAddress?: string;
  readonly onEvent?: (event: SupervisorEvent) => void;
  /** Spans of failovers, handoffs and decisions (default: none). */
  readonly tracer?: Tracer;
  /** Failover durations, leader changes, decisions, lease renewal latency (default: none). */
  readonly metrics?: Metrics & { keepaliveAcked?(latencyMs: number): void };
  /** Absent: the runtime watches chains/ itself and lists chains from the store. */
  readonly chainFeed?: ChainFeed;
}

/**
 * One watch-fed copy of the chain keys (the leader directory) that the runtime shares instead of
 * holding a watch of its own: its changes wake the coordinator and the supervisors, and the
 * coordinator lists the chains from it rather than reading every chain's keys on each reconcile.
 */
export interface ChainFeed {
  /** Every change under chains/ once the copy applied it, and every resync (re-created watch). */
  subscribe(listener: ChainKeyListener): () => void;
  /** undefined while the copy is not loaded: the store is read instead. */
  chainSpecs(): ChainSpec[] | undefined;
}

const REJOIN_BACKOFF_MS = [250, 500, 1000, 2000];

export class ReplicaRuntime {
  private session: ReplicaSession | undefined;
  private coordinator: ReplicaCoordinator | undefined;
  private subscriptions: Subscription[] = [];
  private fleet: FleetSettings = { autoFailover: true, maxConcurrentFailovers: 2 };
  private closed = false;
  private joining: Promise<void> | undefined;
  private chainWatch: PrefixWatch | undefined;
  private unsubscribeFeed: (() => void) | undefined;
  private fleetWatch: PrefixWatch | undefined;

  constructor(private readonly deps: RuntimeDeps) {}

  /** Ready: holds a proven session. */
  ready(): { ready: boolean; why: string } {
    const s = this.session;
    if (!s || s.state !== 'live') return { ready: false, why: 'no etcd session (joining)' };
    if (!s.proven()) return { ready: false, why: 'etcd lease not proven (self-fenced)' };
    return { ready: true, why: `supervising ${this.coordinator?.supervisedChains().length ?? 0} chain(s)` };
  }

  statusOf(chainId: string): SupervisorStatus | undefined {
    return this.coordinator?.statusOf(chainId);
  }

  supervisedChains(): string[] {
    return this.coordinator?.supervisedChains() ?? [];
  }

  async start(): Promise<void> {
    const feed = this.deps.chainFeed;
    if (feed) {
      this.unsubscribeFeed = feed.subscribe({ onKey: (key) => this.onChainKey(key), onResync: () => this.coordinator?.trigger() });
    } else {
      this.chainWatch = new PrefixWatch(
        this.deps.client,
        this.deps.keys.chains(),
        (_type, kv) => this.onChainKey(kv.key.toString()),
        () => this.coordinator?.trigger(),
        this.deps.config.etcd.callDeadlineMs,
        this.deps.log,
      );
      await this.chainWatch.start();
    }
    // The fleet-wide switches take effect as soon as they are written.
    this.fleetWatch = new PrefixWatch(
      this.deps.client,
      this.deps.keys.fleetSettings(),
      () => void this.refreshFleet(),
      () => void this.refreshFleet(),
      this.deps.config.etcd.callDeadlineMs,
      this.deps.log,
    );
    await this.fleetWatch.start();
    await this.join();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.joining?.catch(() => undefined);
    await this.leave();
    this.unsubscribeFeed?.();
    await this.chainWatch?.close();
    await this.fleetWatch?.close();
  }

  private async refreshFleet(): Promise<void> {
    try {
      const next = await this.deps.store.getFleetSettings();
      if (JSON.stringify(next) !== JSON.stringify(this.fleet)) this.deps.log.info({ ...next }, 'fleet settings changed');
      this.fleet = next;
    } catch (err) {
      this.deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'reading fleet settings failed');
    }
  }

  private onChainKey(key: string): void {
    const parsed = this.deps.keys.parseChainKey(key);
    if (!parsed) return;
    if (parsed.kind === 'spec') this.coordinator?.trigger();
    // Our own head writes echo back here; a spec or leader change needs a re-read, and so does a
    // new intent (an operator request accepted by any replica), which must not wait for a resync.
    if (parsed.kind === 'spec' || parsed.kind === 'leader' || parsed.kind === 'intents') this.coordinator?.chainChanged(parsed.chainId);
  }

  private join(): Promise<void> {
    this.joining = this.joinWithRetry().finally(() => {
      this.joining = undefined;
    });
    return this.joining;
  }

  private async joinWithRetry(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        await this.joinOnce();
        return;
      } catch (err) {
        const wait = REJOIN_BACKOFF_MS[Math.min(attempt, REJOIN_BACKOFF_MS.length - 1)]!;
        this.deps.log.warn({ err: err instanceof Error ? err.message : String(err), retryInMs: wait }, 'joining etcd failed');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  private async joinOnce(): Promise<void> {
    const { config, client, keys, log } = this.deps;
    const session = await ReplicaSession.start({
      client,
      keys,
      replicaId: config.replicaId,
      ttlSeconds: config.replica.leaseTtlS,
      marginMs: config.replica.fenceMarginMs,
      apiAddress: this.deps.apiAddress,
      clock: this.deps.clock,
      log: log.child({ component: 'session' }),
      onKeepaliveAck: (ms) => this.deps.metrics?.keepaliveAcked?.(ms),
    });
    this.session = session;
    session.once('lost', (loss) => {
      log.error({ provenUntilMs: loss.provenUntilMs, reason: loss.reason }, 'etcd lease no longer proven: stopped acting');
      void this.coordinator?.stopAll('self-fenced');
      void this.leave().then(() => (this.closed ? undefined : this.join()));
    });
    this.fleet = await this.deps.store.getFleetSettings();
    const supervision: Supervision = {
      replicaId: config.replicaId,
      acquire: (chainId) => session.acquire(chainId),
      release: async (fence) => {
        await session.release(fence);
      },
      liveReplicas: () => session.liveReplicas(),
      holders: () => session.holders(),
    };
    const feed = this.deps.chainFeed;
    const coordinator = new ReplicaCoordinator({
      supervision,
      store: feed ? { listSpecs: async () => feed.chainSpecs() ?? this.deps.store.listSpecs() } : this.deps.store,
      proof: session,
      clock: this.deps.clock,
      scheduler: this.deps.scheduler,
      log: log.child({ component: 'coordinator' }),
      graceMs: config.replica.takeoverGraceMs,
      resyncMs: config.replica.resyncMs,
      makeSupervisor: (spec: ChainSpec, fence) =>
        new ChainSupervisor(spec, {
          fence,
          store: this.deps.store,
          ops: this.deps.ops,
          nodes: this.deps.nodes,
          clock: this.deps.clock,
          maxClockSkewMs: config.node.maxClockSkewMs,
          scheduler: this.deps.scheduler,
          proof: session,
          slots: { acquire: () => session.acquireFailoverSlot(this.fleet.maxConcurrentFailovers) },
          fleet: () => this.fleet,
          log: log.child({ component: 'supervisor' }),
          onEvent: this.deps.onEvent,
          tracer: this.deps.tracer,
          metrics: this.deps.metrics,
          unsafeOverlappingTicks: config.unsafe.includes('overlapping-ticks'),
        }),
    });
    this.coordinator = coordinator;
    this.subscriptions = [
      await session.watchReplicas(() => coordinator.trigger()),
      await session.watchSupervisors(() => coordinator.trigger()),
    ];
    coordinator.start();
    log.info({ replica: config.replicaId, leaseId: session.leaseId }, 'joined');
  }

  private async leave(): Promise<void> {
    const subs = this.subscriptions;
    this.subscriptions = [];
    const coordinator = this.coordinator;
    this.coordinator = undefined;
    const session = this.session;
    this.session = undefined;
    await Promise.all(subs.map((s) => s.close().catch(() => undefined)));
    await coordinator?.close().catch(() => undefined);
    await session?.close().catch(() => undefined);
  }
}
