// One simulated Baton replica: its etcd lease and proof (the same rule as ReplicaSession: a
// keepalive sent at s and acknowledged proves the lease until s + TTL − margin), its supervision
// txns (the same compares as ReplicaSession), and the REAL core on top: ReplicaCoordinator,
// ChainSupervisor (decide, operations runner, lease book), EtcdChainStore and EtcdOperationStore,
// all on the replica's own virtual clock and network link.
import { EtcdChainStore } from '../adapters/etcd/chain-store.js';
import { compare, firstKv, op, rangeKvs, toRevision } from '../adapters/etcd/client.js';
import type { EtcdKeys } from '../adapters/etcd/keys.js';
import { EtcdOperationStore } from '../adapters/etcd/operation-store.js';
import type { ChainSpec } from '../core/chain.js';
import type { FleetSettings, Log, NodeControl, ReplicaProof, Supervision, SupervisionFence } from '../core/ports.js';
import { ReplicaCoordinator } from '../core/replica.js';
import { ChainSupervisor, type SupervisorEvent } from '../core/supervisor.js';
import type { EtcdLink } from './etcd-link.js';
import type { Proc, SimLoop } from './loop.js';

export interface SimReplicaConfig {
  replicaId: string;
  ttlSeconds: number;
  marginMs: number;
  keepaliveIntervalMs: number;
  graceMs: number;
  resyncMs: number;
  fleet: FleetSettings;
}

const silent: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

export class SimReplica implements Supervision, ReplicaProof {
  readonly replicaId: string;
  private leaseId = 0n;
  private provenUntil = -Infinity;
  private dead = false;
  private slotNonce = 0;
  private coordinator: ReplicaCoordinator | undefined;

  constructor(
    private readonly cfg: SimReplicaConfig,
    readonly proc: Proc,
    private readonly loop: SimLoop,
    private readonly link: EtcdLink,
    private readonly keys: EtcdKeys,
    private readonly nodes: NodeControl,
    private readonly onEvent: (e: SupervisorEvent) => void,
    private readonly newOperationId: (wallMs: number) => string,
  ) {
    this.replicaId = cfg.replicaId;
  }

  /** Grants the lease, registers, and starts the coordinator; retried until etcd answers. */
  start(): void {
    const sentAt = this.loop.now();
    this.link.grant(this.cfg.ttlSeconds).then(
      async (id) => {
        this.leaseId = id;
        this.provenUntil = sentAt + this.cfg.ttlSeconds * 1000 - this.cfg.marginMs;
        this.keepaliveLoop();
        this.lossTimer();
        try {
          await this.link.txn({ success: [op.put(this.keys.replica(this.replicaId), JSON.stringify({ id: this.replicaId }), id.toString())] });
        } catch {
          // registered at the next resync attempt is not needed: acquire works without it
        }
        this.startCoordinator();
      },
      () => this.proc.scheduler().after(500, () => this.start()),
    );
  }

  get alive(): boolean {
    return !this.dead && this.proc.alive;
  }

  /** Crash: the process is gone; its lease expires in etcd after the TTL. */
  crash(): void {
    this.dead = true;
    this.proc.alive = false;
    this.proc.epoch++;
  }

  /** One line per supervised chain: what its supervisor last decided (for liveness reports). */
  describe(): string[] {
    const c = this.coordinator;
    if (!c) return [`${this.replicaId}: no coordinator (dead=${this.dead})`];
    return [
      `${this.replicaId}: dead=${this.dead} proven=${this.proven()} pausedUntil=${this.proc.pausedUntil} chains=${c.supervisedChains().join(",")}`,
      ...c.supervisedChains().map((id) => `${this.replicaId}/${id}: ${c.statusOf(id)?.lastReason ?? '?'}`),
    ];
  }

  provenUntilMs(): number {
    return this.dead ? -Infinity : this.provenUntil;
  }

  private proven(): boolean {
    return this.loop.now() < this.provenUntilMs();
  }

  // ---- lease keepalive and proof ----

  private keepaliveLoop(): void {
    if (this.dead) return;
    const sentAt = this.loop.now();
    this.link.keepAlive(this.leaseId).then(
      (ttl) => {
        if (this.dead) return;
        if (ttl <= 0) return this.lose();
        if (this.loop.now() >= this.provenUntil) return this.lose(); // a lapsed proof stays lapsed
        this.provenUntil = Math.max(this.provenUntil, sentAt + ttl * 1000 - this.cfg.marginMs);
      },
      () => undefined,
    );
    this.proc.scheduler().after(this.cfg.keepaliveIntervalMs, () => this.keepaliveLoop());
  }

  private lossTimer(): void {
    if (this.dead) return;
    const wait = Math.max(1, this.provenUntil - this.loop.now());
    this.proc.scheduler().after(wait, () => {
      if (this.dead) return;
      if (this.loop.now() >= this.provenUntil) this.lose();
      else this.lossTimer();
    });
  }

  /** The proof ran out: stop acting at once, and for good (the world starts a new incarnation). */
  private lose(): void {
    if (this.dead) return;
    this.dead = true;
    void this.coordinator?.stopAll('self-fenced');
    void this.link.revoke(this.leaseId).catch(() => undefined);
  }

  // ---- the real core ----

  private startCoordinator(): void {
    const store = new EtcdChainStore(this.link, this.keys);
    const ops = new EtcdOperationStore(this.link, this.keys, { clock: this.loop, newId: this.newOperationId });
    const scheduler = this.proc.scheduler();
    const fleet = this.cfg.fleet;
    this.coordinator = new ReplicaCoordinator({
      supervision: this,
      store,
      proof: this,
      clock: this.loop,
      scheduler,
      log: silent,
      graceMs: this.cfg.graceMs,
      resyncMs: this.cfg.resyncMs,
      makeSupervisor: (spec: ChainSpec, fence: SupervisionFence) =>
        new ChainSupervisor(spec, {
          fence,
          store,
          ops,
          nodes: this.nodes,
          clock: this.loop,
          // Every process of the simulated world reads the one loop clock, and the network drops a
          // call that arrives after its deadline: there is no skew to allow for.
          maxClockSkewMs: 0,
          scheduler,
          proof: this,
          slots: { acquire: () => this.acquireFailoverSlot(fleet.maxConcurrentFailovers) },
          fleet: () => fleet,
          log: silent,
          onEvent: this.onEvent,
        }),
    });
    this.coordinator.start();
  }

  // ---- Supervision (the txns of ReplicaSession) ----

  async acquire(chainId: string): Promise<SupervisionFence | undefined> {
    if (!this.proven()) return undefined;
    const key = this.keys.supervisor(chainId);
    const res = await this.link.txn({
      compare: [compare.absent(key), compare.exists(this.keys.spec(chainId))],
      success: [op.put(key, this.replicaId, this.leaseId.toString())],
      failure: [op.get(key), op.get(this.keys.spec(chainId))],
    });
    if (!this.proven()) return undefined;
    const fence = (createRevision: bigint): SupervisionFence => ({ chainId, replicaId: this.replicaId, key, createRevision });
    if (res.succeeded) return fence(toRevision(res.header.revision));
    const [holder, spec] = res.responses.map((r) => firstKv(r));
    if (!spec) return undefined;
    if (holder && holder.value.toString() === this.replicaId && toRevision(holder.lease) === this.leaseId) return fence(toRevision(holder.create_revision));
    return undefined;
  }

  async release(fence: SupervisionFence): Promise<void> {
    await this.link.txn({
      compare: [compare.createRevision(fence.key, fence.createRevision), compare.value(fence.key, this.replicaId)],
      success: [op.del(fence.key)],
    });
  }

  async liveReplicas(): Promise<string[]> {
    const res = await this.link.txn({ success: [op.getPrefix(this.keys.replicas(), { keysOnly: true })] });
    return rangeKvs(res.responses[0])
      .map((kv) => this.keys.parseReplicaKey(kv.key.toString()))
      .filter((id): id is string => id !== undefined)
      .sort();
  }

  async holders(): Promise<Map<string, string>> {
    const res = await this.link.txn({ success: [op.getPrefix(this.keys.supervisors())] });
    const holders = new Map<string, string>();
    for (const kv of rangeKvs(res.responses[0])) {
      const chainId = this.keys.parseSupervisorKey(kv.key.toString());
      if (chainId !== undefined) holders.set(chainId, kv.value.toString());
    }
    return holders;
  }

  private async acquireFailoverSlot(max: number): Promise<(() => Promise<void>) | undefined> {
    for (let n = 0; n < max; n++) {
      if (!this.proven()) return undefined;
      const key = this.keys.failoverSlot(n);
      const token = `${this.replicaId}/${this.slotNonce++}`;
      let res;
      try {
        res = await this.link.txn({ compare: [compare.absent(key)], success: [op.put(key, token, this.leaseId.toString())] });
      } catch (err) {
        void this.link.txn({ compare: [compare.value(key, token)], success: [op.del(key)] }).catch(() => undefined);
        throw err;
      }
      if (!res.succeeded) continue;
      return async () => {
        await this.link.txn({ compare: [compare.value(key, token)], success: [op.del(key)] });
      };
    }
    return undefined;
  }
}
