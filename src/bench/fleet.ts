// The deployment a benchmark runs against: a DevStack (real etcd, one `baton sim` process per
// node, N `baton serve` replicas) plus what the stack does not do by itself: bring a killed node
// back on its old address, and remember the replicas' log lines the benchmark reads times from.
import { join } from 'node:path';
import type { ChainPolicy } from '../core/chain.js';
import type { ChainViewJson, TermJson } from '../devstack/baton.js';
import { waitFor } from '../devstack/process.js';
import { readActivityLog, startSim, wirePeers, type SimNodeHandle, type SimProcess } from '../devstack/sim.js';
import { DevStack } from '../devstack/stack.js';

export interface FleetOptions {
  readonly dir: string;
  readonly chains: number;
  readonly nodesPerChain: number;
  readonly replicas: number;
  readonly blockTimeMs: number;
  readonly policy: ChainPolicy;
  readonly batonConfig: Record<string, unknown> | undefined;
}

/** One node of one chain and the process currently running it. */
export interface NodeSlot {
  readonly chain: string;
  readonly node: string;
  readonly logFile: string;
  address: string;
  process: SimProcess;
}

/** GET /v1/chains/{id} with the last leader change, which ChainViewJson leaves out. */
export type ChainView = ChainViewJson & {
  lastFailover: { term: string; nodeId: string; previousNodeId: string | null; reason: string; atMs: number } | null;
};

/** A line a replica logged that the benchmark reads a time from. */
export interface BatonEvent {
  readonly replica: string;
  readonly msg: string;
  /** Wall clock ms (pino's `time`). */
  readonly time: number;
  readonly chain: string | undefined;
  readonly term: string | undefined;
  readonly to: string | undefined;
  readonly node: string | undefined;
  /** "waiting N ms for old leases …": N, so time + N is the supervisor's bound on the old lease. */
  readonly waitMs: number | undefined;
}

/** A chain with a producing leader and eligible standbys. */
export interface Steady {
  readonly leader: string;
  readonly term: bigint;
  readonly supervisor: string;
  readonly lastChange: ChainView['lastFailover'];
}

const EVENT_MESSAGES = ['"leader changed"', '"supervising chain"', '"leader started"', '"renewal failed"', 'ms for old leases'];
const WAITING = /^waiting (\d+) ms for old leases/;

export class BenchFleet {
  private readonly events: BatonEvent[] = [];
  private readonly slots = new Map<string, NodeSlot>();
  private stack: DevStack | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(readonly opts: FleetOptions) {}

  static async start(opts: FleetOptions): Promise<BenchFleet> {
    const fleet = new BenchFleet(opts);
    const chains = fleet.chainIds().map((id) => ({
      id,
      nodes: Array.from({ length: opts.nodesPerChain }, (_, i) => `n${i + 1}`),
      policy: opts.policy,
    }));
    fleet.stack = await DevStack.start({
      dir: opts.dir,
      chains,
      replicas: opts.replicas,
      blockTimeMs: opts.blockTimeMs,
      batonConfig: opts.batonConfig,
      onBatonLine: (replica, line) => fleet.onBatonLine(replica, line),
    });
    for (const c of chains) {
      for (const node of c.nodes) {
        const handle = fleet.stack.node(c.id, node);
        fleet.slots.set(key(c.id, node), { chain: c.id, node, logFile: handle.logFile, address: handle.address, process: fleet.stack.simProcess(c.id, node) });
      }
    }
    return fleet;
  }

  get devStack(): DevStack {
    if (!this.stack) throw new Error('the stack is not running');
    return this.stack;
  }

  chainIds(): string[] {
    return Array.from({ length: this.opts.chains }, (_, i) => `bench-${i + 1}`);
  }

  nodesOf(chain: string): NodeSlot[] {
    return [...this.slots.values()].filter((s) => s.chain === chain);
  }

  slot(chain: string, node: string): NodeSlot {
    const s = this.slots.get(key(chain, node));
    if (!s) throw new Error(`no node ${chain}/${node}`);
    return s;
  }

  /** SIGKILL of the node's process; returns the wall clock ms just before the signal. */
  async killNode(chain: string, node: string): Promise<number> {
    const s = this.slot(chain, node);
    const at = Date.now();
    await s.process.kill();
    return at;
  }

  /**
   * A fresh process for a killed node, on its old port so the chain spec in Baton stays as it
   * is (a crashed sequencer restarting in place). It starts from genesis and catches up from its
   * peers. Should that fail (say, the port was taken meanwhile), it gets one more try on a new
   * port, and the chain spec is PUT again with the new endpoint.
   */
  async restartNode(chain: string, node: string): Promise<void> {
    const s = this.slot(chain, node);
    const peers = this.nodesOf(chain).filter((o) => o !== s);
    const [host, port] = splitAddress(s.address);
    const spec = { chain, node, host, blockTimeMs: this.opts.blockTimeMs, peers: peers.map((p) => p.address), baton: this.devStack.batonEndpoints() };
    const logDir = this.devStack.logDir();
    let proc: SimProcess;
    try {
      proc = await startSim({ logDir, nodes: [{ ...spec, port }] });
    } catch (err) {
      process.stderr.write(`  ${chain}/${node}: restart on port ${port} failed (${(err as Error).message}); trying once more on a new port\n`);
      proc = await startSim({ logDir, nodes: [{ ...spec, port: 0 }] });
    }
    s.process = proc;
    const address = proc.nodes[0]!.address;
    if (address !== s.address) {
      s.address = address;
      await this.putSpec(chain);
      await wirePeers(this.nodesOf(chain).map((n) => this.handleOf(n)));
    }
  }

  /** The chain's view, from any running replica (every wait in the benchmark has a deadline). */
  async view(chain: string): Promise<ChainView> {
    const res = await this.devStack.api().getChain<ChainView>(chain);
    if (res.status !== 200) throw new Error(`GET /v1/chains/${chain}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** Every leader change of the chain, newest first. */
  async history(chain: string): Promise<TermJson[]> {
    const res = await this.devStack.api().request<{ terms: TermJson[] }>('GET', `/v1/chains/${chain}/history?limit=1000`);
    if (res.status !== 200) throw new Error(`GET /v1/chains/${chain}/history: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.terms;
  }

  /** Waits until the chain has a leader producing under its term and every standby is eligible. */
  async waitSteady(chain: string, timeoutMs: number): Promise<Steady> {
    let last = '';
    try {
      return await waitFor(
        `${chain} to have a producing leader and eligible standbys`,
        async () => {
          const v = await this.view(chain);
          const leader = v.leader;
          const active = v.nodes.find((n) => n.id === leader?.nodeId);
          const waiting = v.nodes.filter((n) => n.id !== leader?.nodeId && !n.eligible);
          last = `leader ${leader?.nodeId ?? 'none'} producing=${active?.producing ?? false}; supervisor ${v.supervisor ?? 'none'}; not eligible: ${
            waiting.map((n) => `${n.id} (${n.reasons.join('; ')})`).join(', ') || 'none'
          }`;
          if (!leader || !active?.producing || active.term !== leader.term || waiting.length > 0 || !v.supervisor) return undefined;
          return { leader: leader.nodeId, term: BigInt(leader.term), supervisor: v.supervisor, lastChange: v.lastFailover };
        },
        timeoutMs,
        200,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; last seen: ${last}`);
    }
  }

  /** The first replica log line matching `match`, at or after `sinceMs`. */
  event(match: (e: BatonEvent) => boolean, sinceMs: number): BatonEvent | undefined {
    return this.events.find((e) => e.time >= sinceMs && match(e));
  }

  /** Every replica log line matching `match` in [fromMs, toMs]. */
  eventsBetween(match: (e: BatonEvent) => boolean, fromMs: number, toMs: number): BatonEvent[] {
    return this.events.filter((e) => e.time >= fromMs && e.time <= toMs && match(e));
  }

  /** `lease-expired` entries of the chain's nodes in [fromMs, toMs]: an active whose lease lapsed. */
  leaseLapses(chain: string, fromMs: number, toMs: number): number {
    let n = 0;
    for (const s of this.nodesOf(chain)) {
      for (const e of readActivityLog(s.logFile)) if (e.ev === 'lease-expired' && e.t >= fromMs && e.t <= toMs) n++;
    }
    return n;
  }

  /** Wall clock times of every distinct block of the chain, from all its nodes' logs. */
  blockTimes(chain: string): number[] {
    const seen = new Map<string, number>();
    for (const s of this.nodesOf(chain)) {
      for (const e of readActivityLog(s.logFile)) if (e.ev === 'block') seen.set(`${e.number}:${e.hash}`, e.t);
    }
    return [...seen.values()];
  }

  /** Every activity log (a restarted node appends to its old one). */
  logFiles(): string[] {
    return [...this.slots.values()].map((s) => s.logFile);
  }

  replicaLogs(): string[] {
    return Array.from({ length: this.opts.replicas }, (_, i) => join(this.opts.dir, `r${i + 1}.out.log`));
  }

  /** Stops everything this fleet started, once; safe to call again and from a signal handler. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all([...this.slots.values()].map((s) => s.process.stop(3000).catch(() => undefined)));
      await this.stack?.stop();
    })();
    return this.stopping;
  }

  private async putSpec(chain: string): Promise<void> {
    const nodes = this.nodesOf(chain).map((n) => ({ id: n.node, endpoint: n.address, zone: `z-${n.node}` }));
    const res = await this.devStack.api().putChain(chain, { nodes, policy: this.opts.policy });
    if (res.status >= 300) throw new Error(`PUT /v1/chains/${chain}: ${res.status} ${JSON.stringify(res.body)}`);
  }

  private handleOf(s: NodeSlot): SimNodeHandle {
    return s.process.node(s.chain, s.node);
  }

  private onBatonLine(replica: string, line: string): void {
    if (!EVENT_MESSAGES.some((m) => line.includes(m))) return;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      const msg = String(o.msg);
      const waiting = WAITING.exec(msg);
      this.events.push({
        replica,
        msg: waiting ? 'waiting for old leases' : msg,
        time: Number(o.time),
        chain: typeof o.chain === 'string' ? o.chain : undefined,
        term: typeof o.term === 'string' ? o.term : undefined,
        to: typeof o.to === 'string' ? o.to : undefined,
        node: typeof o.node === 'string' ? o.node : undefined,
        waitMs: waiting ? Number(waiting[1]) : undefined,
      });
    } catch {
      // not a pino line
    }
  }
}

function key(chain: string, node: string): string {
  return `${chain}/${node}`;
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), Number(address.slice(i + 1))];
}
