// The deployment of the scale benchmark: a real etcd, N `baton serve` replicas and a few
// `baton sim` processes that host every node (a whole chain in one process, so its nodes follow
// each other in-process and the simulators' own traffic does not swamp the machine). DevStack
// starts one process per node, which does not go to thousands of nodes; this reuses its parts.
// A node is "killed" with the simulator's `crash` fault: it goes silent at once and closes its
// port, as a kill -9 of a one-node process would, without taking the other nodes of its process.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChainPolicy } from '../core/chain.js';
import { startBaton, type BatonApi, type BatonProcess, type ChainViewJson } from '../devstack/baton.js';
import { EtcdCluster } from '../devstack/etcd.js';
import { startSim, type SimNodeHandle, type SimProcess } from '../devstack/sim.js';

export interface ScaleFleetOptions {
  readonly dir: string;
  readonly chains: number;
  readonly nodesPerChain: number;
  readonly replicas: number;
  readonly simProcesses: number;
  readonly policy: ChainPolicy;
  readonly batonConfig: Record<string, unknown> | undefined;
  readonly say: (line: string) => void;
  /** Node.js flags of the replicas (--cpu-prof for a profile). */
  readonly batonNodeArgs?: readonly string[];
}

/** How many requests the benchmark keeps in flight against the API while it sets up or polls. */
const API_CONCURRENCY = 8;

export class ScaleFleet {
  readonly replicas: BatonProcess[] = [];
  readonly sims: SimProcess[] = [];
  /** PUTs of registerChains that were answered 429, 5xx or not at all, and sent again. */
  registerRetries = 0;
  private readonly nodes = new Map<string, SimNodeHandle>();
  private readonly supervisorOf = new Map<string, string>();
  private etcdCluster: EtcdCluster | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(readonly opts: ScaleFleetOptions) {}

  /** Starts everything; on failure stops what it started and throws. */
  static async start(opts: ScaleFleetOptions): Promise<ScaleFleet> {
    const f = new ScaleFleet(opts);
    try {
      await f.boot();
    } catch (err) {
      await f.stop();
      throw err;
    }
    return f;
  }

  get etcd(): EtcdCluster {
    if (!this.etcdCluster) throw new Error('etcd is not running');
    return this.etcdCluster;
  }

  chainIds(): string[] {
    return Array.from({ length: this.opts.chains }, (_, i) => `scale-${i + 1}`);
  }

  nodeIds(): string[] {
    return Array.from({ length: this.opts.nodesPerChain }, (_, i) => `n${i + 1}`);
  }

  node(chain: string, node: string): SimNodeHandle {
    const n = this.nodes.get(`${chain}/${node}`);
    if (!n) throw new Error(`no node ${chain}/${node}`);
    return n;
  }

  api(): BatonApi {
    const r = this.replicas.find((x) => x.process.running);
    if (!r) throw new Error('no Baton replica is running');
    return r.api;
  }

  /**
   * The chain's view, asked of the replica that supervised it last time if it still runs: it
   * answers from its own probes, where any other replica would probe the chain's nodes once more
   * (load the benchmark would add to what it measures).
   */
  async view(chain: string): Promise<ChainViewJson> {
    const known = this.replicas.find((r) => r.replicaId === this.supervisorOf.get(chain) && r.process.running);
    const res = await (known?.api ?? this.api()).getChain(chain);
    if (res.status !== 200) throw new Error(`GET /v1/chains/${chain}: ${res.status} ${JSON.stringify(res.body)}`);
    if (res.body.supervisor) this.supervisorOf.set(chain, res.body.supervisor);
    return res.body;
  }

  /**
   * The chain's leader when it produces under its term and every standby is eligible, with the
   * wall ms of its last leader change (null: only its first election).
   */
  async steady(chain: string): Promise<{ leader: string; term: bigint; lastChangeAtMs: number | null } | undefined> {
    const v = await this.view(chain);
    const leader = v.leader;
    const active = v.nodes.find((n) => n.id === leader?.nodeId);
    if (!leader || !active?.producing || active.term !== leader.term || !v.supervisor) return undefined;
    if (v.nodes.some((n) => n.id !== leader.nodeId && !n.eligible)) return undefined;
    const last = v.lastFailover;
    return { leader: leader.nodeId, term: BigInt(leader.term), lastChangeAtMs: last && last.previousNodeId !== null ? last.atMs : null };
  }

  /**
   * Polls until every chain is steady or `timeoutMs` passed; returns how long it took and how
   * many chains were steady at the end (a fleet that never settles is a figure, not a crash).
   */
  async waitAllSteady(timeoutMs: number): Promise<{ ms: number; steady: number; steadyIds: string[] }> {
    const t0 = Date.now();
    let pending = this.chainIds();
    while (pending.length > 0 && Date.now() - t0 < timeoutMs) {
      const started = Date.now();
      const still: string[] = [];
      await eachLimited(pending, API_CONCURRENCY, async (c) => {
        const s = await this.steady(c).catch(() => undefined);
        if (!s) still.push(c);
      });
      pending = still;
      if (still.length === 0) break;
      this.opts.say(`  ${this.opts.chains - still.length}/${this.opts.chains} chains steady (${Math.round((Date.now() - t0) / 1000)} s)`);
      await new Promise((r) => setTimeout(r, Math.max(0, 5000 - (Date.now() - started))));
    }
    const notSteady = new Set(pending);
    return { ms: Date.now() - t0, steady: this.opts.chains - pending.length, steadyIds: this.chainIds().filter((c) => !notSteady.has(c)) };
  }

  /** The node goes silent at once and closes its port (the `crash` fault); the wall ms just before. */
  async crashNode(chain: string, node: string): Promise<number> {
    const at = Date.now();
    await this.node(chain, node).sim.setFaults({ faults: { crash: true } });
    return at;
  }

  logFiles(): string[] {
    return [...this.nodes.values()].map((n) => n.logFile);
  }

  /** Stops everything this fleet started, once, by PID. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.replicas.map((r) => r.stop(3000).catch(() => undefined)));
      await Promise.all(this.sims.map((s) => s.stop(5000).catch(() => undefined)));
      await this.etcdCluster?.stop();
    })();
    return this.stopping;
  }

  private async boot(): Promise<void> {
    const { opts } = this;
    mkdirSync(opts.dir, { recursive: true });
    this.etcdCluster = await EtcdCluster.start({ members: 1 });
    // Replicas first: commit-mode nodes are told Baton's gRPC addresses when they start.
    for (let i = 0; i < opts.replicas; i++) {
      this.replicas.push(await startBaton({ replicaId: `r${i + 1}`, etcd: this.etcd.endpoints, dir: opts.dir, config: opts.batonConfig, nodeArgs: opts.batonNodeArgs, readyTimeoutMs: 60_000 }));
    }
    const baton = this.replicas.map((r) => r.grpcAddress);
    const groups: { chain: string; node: string }[][] = Array.from({ length: opts.simProcesses }, () => []);
    this.chainIds().forEach((chain, i) => {
      for (const node of this.nodeIds()) groups[i % opts.simProcesses]!.push({ chain, node });
    });
    const t0 = Date.now();
    const logDir = join(opts.dir, 'sim');
    const procs = await Promise.all(
      groups
        .filter((g) => g.length > 0)
        .map((g) => startSim({ logDir, readyTimeoutMs: 300_000, nodes: g.map((n) => ({ ...n, blockTimeMs: opts.policy.blockTimeMs, baton })) })),
    );
    this.sims.push(...procs);
    for (const p of procs) for (const n of p.nodes) this.nodes.set(`${n.chain}/${n.node}`, n);
    opts.say(`  ${this.nodes.size} nodes listening in ${procs.length} simulator processes after ${Date.now() - t0} ms`);
  }

  /** PUT every chain (a few requests in flight); returns how long that took. */
  async registerChains(): Promise<number> {
    const t0 = Date.now();
    let done = 0;
    await eachLimited(this.chainIds(), API_CONCURRENCY, async (chain) => {
      const nodes = this.nodeIds().map((node) => ({ id: node, endpoint: this.node(chain, node).address, zone: `z-${node}` }));
      // PUT is idempotent: a busy replica's 503 (an etcd call past its deadline) or 429 is
      // retried as an operator's automation would, and counted.
      for (let attempt = 1; ; attempt++) {
        const res = await this.api().putChain(chain, { nodes, policy: this.opts.policy }).catch((err: unknown) => ({ status: 0, body: String(err) }));
        if (res.status >= 200 && res.status < 300) break;
        if ((res.status !== 0 && res.status !== 429 && res.status < 500) || attempt >= 10) {
          throw new Error(`PUT /v1/chains/${chain}: ${res.status} ${JSON.stringify(res.body)}`);
        }
        this.registerRetries++;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
      if (++done % 100 === 0) this.opts.say(`  ${done}/${this.opts.chains} chains registered (${Date.now() - t0} ms)`);
    });
    return Date.now() - t0;
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; the first error is thrown at the end. */
export async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (next < items.length && failed === undefined) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}
