// The deployment a drill runs against: a DevStack (3-member etcd, `baton sim` per node, N
// `baton serve` replicas) with a TCP proxy in front of every node's admin endpoint (Baton talks
// to the proxy, peers to the node) and one between every replica and every etcd member, plus
// what the stack does not do by itself: restart a killed node in place, and keep every replica's
// output lines that the drill reads.
import type { ChainPolicy } from '../core/chain.js';
import type { BatonProcess, ChainViewJson } from '../devstack/baton.js';
import { waitFor } from '../devstack/process.js';
import { startSim, wirePeers, type SimNodeHandle, type SimProcess } from '../devstack/sim.js';
import { DevStack, FAST_BATON_CONFIG, FAST_POLICY } from '../devstack/stack.js';
import { TcpProxy } from '../devstack/tcp-proxy.js';

export interface DrillChain {
  readonly id: string;
  readonly mode: 'lease' | 'commit';
}

export interface NodeSlot {
  readonly chain: string;
  readonly node: string;
  readonly logFile: string;
  readonly proxy: TcpProxy;
  /** The node's own address (peers use it); the proxy forwards to it. */
  address: string;
  process: SimProcess;
  paused: boolean;
}

export interface DrillStackOptions {
  readonly dir: string;
  readonly chains: readonly DrillChain[];
  readonly replicas: number;
  readonly blockTimeMs: number;
  /** Added to every replica's and node's environment (the unsafe switches of negative controls). */
  readonly env?: Record<string, string>;
}

export const NODES_PER_CHAIN = 3;
export const DRILL_POLICY: Partial<ChainPolicy> = { ...FAST_POLICY };

export class DrillStack {
  private readonly slots = new Map<string, NodeSlot>();
  private readonly proxies = new Map<string, TcpProxy>();
  /** Per replica, its proxies to the etcd members (kept across its restarts). */
  private readonly etcdProxies = new Map<string, TcpProxy[]>();
  /** Every stdout line of every replica, with the wall clock ms it arrived. */
  readonly replicaLines: { replica: string; at: number; line: string }[] = [];
  private stack: DevStack | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(readonly opts: DrillStackOptions) {}

  static async start(opts: DrillStackOptions): Promise<DrillStack> {
    const d = new DrillStack(opts);
    try {
      d.stack = await DevStack.start({
        dir: opts.dir,
        etcdMembers: 3,
        replicas: opts.replicas,
        blockTimeMs: opts.blockTimeMs,
        batonConfig: FAST_BATON_CONFIG,
        batonEnv: opts.env,
        chains: opts.chains.map((c) => ({
          id: c.id,
          nodes: Array.from({ length: NODES_PER_CHAIN }, (_, i) => `n${i + 1}`),
          policy: { ...DRILL_POLICY, fencingMode: c.mode },
        })),
        onBatonLine: (replica, line) => d.onLine(replica, line),
        etcdFor: async (replicaId, endpoints) => {
          let proxies = d.etcdProxies.get(replicaId);
          if (!proxies) {
            proxies = await Promise.all(endpoints.map((url) => TcpProxy.start(new URL(url).host)));
            d.etcdProxies.set(replicaId, proxies);
          }
          return proxies.map((p) => `http://${p.address}`);
        },
        endpointFor: async (chain, node, address) => {
          const proxy = await TcpProxy.start(address);
          d.proxies.set(key(chain, node), proxy);
          return proxy.address;
        },
      });
    } catch (err) {
      await Promise.all([...d.proxies.values(), ...[...d.etcdProxies.values()].flat()].map((p) => p.close()));
      throw err;
    }
    const stack = d.stack;
    for (const c of opts.chains) {
      for (let i = 1; i <= NODES_PER_CHAIN; i++) {
        const node = `n${i}`;
        const handle = stack.node(c.id, node);
        d.slots.set(key(c.id, node), {
          chain: c.id,
          node,
          logFile: handle.logFile,
          proxy: d.proxies.get(key(c.id, node))!,
          address: handle.address,
          process: stack.simProcess(c.id, node),
          paused: false,
        });
      }
    }
    return d;
  }

  get dev(): DevStack {
    if (!this.stack) throw new Error('the stack is not running');
    return this.stack;
  }

  nodesOf(chain: string): NodeSlot[] {
    return [...this.slots.values()].filter((s) => s.chain === chain);
  }

  slot(chain: string, node: string): NodeSlot {
    const s = this.slots.get(key(chain, node));
    if (!s) throw new Error(`no node ${chain}/${node}`);
    return s;
  }

  handle(s: NodeSlot): SimNodeHandle {
    return s.process.node(s.chain, s.node);
  }

  logFiles(): string[] {
    return [...this.slots.values()].map((s) => s.logFile);
  }

  /** GET /v1/chains/{id} from any running replica; undefined while none answers. */
  async view(chain: string): Promise<ChainViewJson | undefined> {
    for (const r of this.dev.replicas) {
      if (!r.process.running) continue;
      try {
        const res = await r.api.getChain(chain);
        if (res.status === 200) return res.body;
      } catch {
        // paused or busy replica: try the next one
      }
    }
    return undefined;
  }

  /** The running replica that supervises the chain (per the API), or undefined. */
  async supervisorOf(chain: string): Promise<BatonProcess | undefined> {
    const supervisor = (await this.view(chain))?.supervisor;
    return this.dev.replicas.find((x) => x.replicaId === supervisor && x.process.running);
  }

  /** The chain's leader producing under its term (per the API), or undefined. */
  async producingLeader(chain: string): Promise<{ nodeId: string; term: bigint } | undefined> {
    const v = await this.view(chain);
    const leader = v?.leader;
    if (!v || !leader) return undefined;
    const n = v.nodes.find((x) => x.id === leader.nodeId);
    if (!n?.producing || n.term !== leader.term) return undefined;
    return { nodeId: leader.nodeId, term: BigInt(leader.term) };
  }

  async waitProducing(chain: string, timeoutMs: number): Promise<{ nodeId: string; term: bigint }> {
    return waitFor(`a producing leader of ${chain}`, () => this.producingLeader(chain), timeoutMs, 200);
  }

  /** kill -9 of the node's process. */
  async killNode(s: NodeSlot): Promise<void> {
    s.paused = false;
    await s.process.kill();
  }

  /** A fresh process for a killed node, on its old port (else a new one: the proxy follows). */
  async restartNode(s: NodeSlot): Promise<void> {
    const peers = this.nodesOf(s.chain).filter((o) => o !== s);
    const i = s.address.lastIndexOf(':');
    const host = s.address.slice(0, i);
    const port = Number(s.address.slice(i + 1));
    const spec = { chain: s.chain, node: s.node, host, blockTimeMs: this.opts.blockTimeMs, peers: peers.map((p) => p.address), baton: this.dev.batonEndpoints() };
    const logDir = this.dev.logDir();
    let proc: SimProcess;
    try {
      proc = await startSim({ logDir, nodes: [{ ...spec, port }] });
    } catch {
      proc = await startSim({ logDir, nodes: [{ ...spec, port: 0 }] });
    }
    s.process = proc;
    const address = proc.nodes[0]!.address;
    if (address !== s.address) {
      s.address = address;
      s.proxy.retarget(address);
      await wirePeers(this.nodesOf(s.chain).map((n) => this.handle(n)));
    }
  }

  /** Every connection between the replica and etcd blackholed (`cut`), or restored. */
  cutFromEtcd(replicaId: string, cut: boolean): void {
    for (const p of this.etcdProxies.get(replicaId) ?? []) p.setMode(cut ? { kind: 'blackhole' } : { kind: 'pass' });
  }

  /** The replica's etcd traffic, open connections included, held back `delayMs` (0: pass). */
  delayEtcd(replicaId: string, delayMs: number): void {
    for (const p of this.etcdProxies.get(replicaId) ?? []) p.holdBack(delayMs);
  }

  pauseNode(s: NodeSlot): void {
    s.process.process.pause();
    s.paused = true;
  }

  resumeNode(s: NodeSlot): void {
    s.process.process.resume();
    s.paused = false;
  }

  /** Stops everything this drill started, once. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all([...this.slots.values()].map((s) => s.process.stop(3000).catch(() => undefined)));
      await this.stack?.stop();
      await Promise.all([...this.proxies.values(), ...[...this.etcdProxies.values()].flat()].map((p) => p.close().catch(() => undefined)));
    })();
    return this.stopping;
  }

  private onLine(replica: string, line: string): void {
    // Only what the drill reads: fencing and self-fencing lines.
    if (!/fenced|no longer proven/.test(line)) return;
    this.replicaLines.push({ replica, at: Date.now(), line });
  }
}

function key(chain: string, node: string): string {
  return `${chain}/${node}`;
}
