// Which chains this replica supervises. Chains spread over live replicas by rendezvous hashing;
// the supervisor key in etcd (one per chain, under this replica's lease) is the safety net: a
// replica acts only on chains whose key it holds, and a chain whose preferred owner does not take
// it within a grace period is taken by whoever sees it free.
import type { ChainSpec } from './chain.js';
import type { ChainStore, Clock, Log, ReplicaProof, Scheduler, Supervision, SupervisionFence } from './ports.js';
import { rendezvousOwner } from './rendezvous.js';
import type { SupervisorStatus } from './supervisor.js';

/** What the coordinator needs of a chain supervisor. */
export interface SupervisorHandle {
  start(): void;
  stop(why: string): Promise<void>;
  storeChanged(): void;
  status(): SupervisorStatus;
}

export interface CoordinatorDeps {
  readonly supervision: Supervision;
  /** Which chains exist (the runtime answers from a watch-fed copy when it has one). */
  readonly store: Pick<ChainStore, 'listSpecs'>;
  readonly proof: ReplicaProof;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly log: Log;
  readonly makeSupervisor: (spec: ChainSpec, fence: SupervisionFence) => SupervisorHandle;
  /** A free chain not taken by its preferred owner within this long is taken by anyone. */
  readonly graceMs: number;
  /** Reconcile at least this often, whatever the watches say. */
  readonly resyncMs: number;
}

interface Supervised {
  readonly fence: SupervisionFence;
  readonly supervisor: SupervisorHandle;
}

export class ReplicaCoordinator {
  private readonly supervised = new Map<string, Supervised>();
  private readonly freeSince = new Map<string, number>();
  private running = false;
  private again = false;
  private stopped = false;
  private cancelTimer: (() => void) | undefined;

  constructor(private readonly deps: CoordinatorDeps) {}

  get replicaId(): string {
    return this.deps.supervision.replicaId;
  }

  start(): void {
    this.trigger();
  }

  /** Chains, replicas or supervisor keys changed: reconcile soon (coalesced). */
  trigger(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.reconcileLoop().finally(() => {
      this.running = false;
    });
  }

  /** The chain's keys changed in etcd: tell its supervisor, if we have one. */
  chainChanged(chainId: string): void {
    this.supervised.get(chainId)?.supervisor.storeChanged();
  }

  /** The live status of a chain this replica supervises. */
  statusOf(chainId: string): SupervisorStatus | undefined {
    return this.supervised.get(chainId)?.supervisor.status();
  }

  supervisedChains(): string[] {
    return [...this.supervised.keys()].sort();
  }

  /** Self-fence or shutdown: stop every supervisor at once, without touching etcd. */
  async stopAll(why: string): Promise<void> {
    const all = [...this.supervised.values()];
    this.supervised.clear();
    await Promise.all(all.map((s) => s.supervisor.stop(why)));
  }

  /** Shutdown: stop acting, then hand the supervisor keys back so others take over at once. */
  async close(): Promise<void> {
    this.stopped = true;
    this.cancelTimer?.();
    const all = [...this.supervised.values()];
    await this.stopAll('shutting down');
    await Promise.all(all.map((s) => this.deps.supervision.release(s.fence).catch(() => undefined)));
  }

  private async reconcileLoop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.reconcile();
      } catch (err) {
        this.deps.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'reconcile failed');
      }
    } while (this.again && !this.stopped);
    if (!this.stopped) {
      this.cancelTimer?.();
      this.cancelTimer = this.deps.scheduler.after(this.deps.resyncMs, () => this.trigger());
    }
  }

  private async reconcile(): Promise<void> {
    if (this.deps.clock.monoMs() >= this.deps.proof.provenUntilMs()) {
      if (this.supervised.size > 0) await this.stopAll('self-fenced');
      return;
    }
    const me = this.replicaId;
    const [specs, live, holders] = await Promise.all([
      this.deps.store.listSpecs(),
      this.deps.supervision.liveReplicas(),
      this.deps.supervision.holders(),
    ]);
    const now = this.deps.clock.monoMs();
    const existing = new Set(specs.map((s) => s.id));

    for (const [chainId, s] of [...this.supervised]) {
      if (existing.has(chainId) && holders.get(chainId) === me) continue;
      // Deleted, or our key is gone (lease lost, or taken away): stop at once.
      this.supervised.delete(chainId);
      await s.supervisor.stop(existing.has(chainId) ? 'supervisor key lost' : 'chain deleted');
      if (!existing.has(chainId)) await this.deps.supervision.release(s.fence).catch(() => undefined);
    }

    for (const spec of specs) {
      const owner = rendezvousOwner(spec.id, live.includes(me) ? live : [...live, me]);
      const mine = this.supervised.get(spec.id);
      if (mine) {
        if (owner !== undefined && owner !== me && live.includes(owner)) {
          // The preferred owner is alive: hand the chain over. The active node keeps its lease
          // and the new supervisor renews it under the same term.
          this.supervised.delete(spec.id);
          await mine.supervisor.stop(`handing over to ${owner}`);
          await this.deps.supervision.release(mine.fence);
        }
        continue;
      }
      const holder = holders.get(spec.id);
      if (holder !== undefined && holder !== me) {
        this.freeSince.delete(spec.id);
        continue;
      }
      if (holder === me) {
        // Our key but no supervisor: an acquire whose reply was lost after etcd applied it. Nobody
        // else can take the chain while our lease lives, so adopt the key now (acquire does).
        await this.take(spec);
        continue;
      }
      const since = this.freeSince.get(spec.id) ?? now;
      this.freeSince.set(spec.id, since);
      if (owner !== me && now - since < this.deps.graceMs) continue;
      await this.take(spec);
    }
    for (const chainId of this.freeSince.keys()) if (!existing.has(chainId)) this.freeSince.delete(chainId);
  }

  private async take(spec: ChainSpec): Promise<void> {
    const fence = await this.deps.supervision.acquire(spec.id);
    if (!fence) return;
    this.freeSince.delete(spec.id);
    if (this.stopped) {
      await this.deps.supervision.release(fence);
      return;
    }
    const supervisor = this.deps.makeSupervisor(spec, fence);
    this.supervised.set(spec.id, { fence, supervisor });
    supervisor.start();
  }
}
