// A seeded simulated world: chains of simulated sequencers, several Baton replicas running the real
// core over MemoryEtcd, a network with latency, loss and partitions, and a fault scheduler, all on
// virtual time and all driven by one seed. The invariants are checked after every step; once
// faults stop, every chain must get a producing leader (liveness). The same seed replays the same
// world exactly, so a violation comes with the trace that led to it.
import { EtcdChainStore } from '../adapters/etcd/chain-store.js';
import { EtcdKeys } from '../adapters/etcd/keys.js';
import { EtcdOperationStore } from '../adapters/etcd/operation-store.js';
import { MemoryEtcd } from '../adapters/memory/memory-etcd.js';
import type { ChainPolicy, ChainSpec } from '../core/chain.js';
import { isBatonError } from '../core/errors.js';
import { isFinal } from '../core/operation.js';
import type { FleetSettings, NodeControl } from '../core/ports.js';
import { WorldChecker, type Violation } from './checker.js';
import { EtcdLink } from './etcd-link.js';
import { Proc, SimLoop } from './loop.js';
import { Network } from './network.js';
import { SimNodeControl } from './node-control.js';
import { Rng } from './random.js';
import { SimReplica } from './replica.js';
import { SimSequencer, type Block } from './sequencer.js';

/**
 * Deliberately broken variants, for tests that prove the simulator catches real bugs. Each is
 * injected from outside the production code (a wrapper or a sim-node option):
 * - skip-lease-wait: the supervisors' NodeControl reports a deadline of −TTL, so the lease book
 *   believes old leases end the moment they are granted (a supervisor that does not wait them out);
 * - no-supervisor-compare: txns that write a leader key reach etcd without the supervisor-key compares;
 * - accept-lower-term: nodes obey commands whose term is below the highest they have seen;
 * - promote-lagging: starts reach the node without the recorded head, so a standby that lacks it
 *   is made active anyway;
 * - ignore-proof-deadline: grants go out with the adapter's deadline, not one bounded by the
 *   sender's proof (core/proof-bound.ts), so a grant frozen on its way outlives its sender's lease.
 */
export type BrokenVariant = 'skip-lease-wait' | 'no-supervisor-compare' | 'accept-lower-term' | 'promote-lagging' | 'ignore-proof-deadline';

export interface WorldOptions {
  seed: number;
  /** Events to run while faults are injected (the quiet period after it is not counted). */
  steps: number;
  chains?: number;
  nodesPerChain?: number;
  replicas?: number;
  /** Mean virtual ms between two faults (default 1500). */
  faultEveryMs?: number;
  /** Share of node faults aimed at the chain's recorded leader (default 0.5). */
  leaderBias?: number;
  /** Multiplies every fault's duration (default 1); short faults make failovers come faster. */
  faultScale?: number;
  /**
   * `mixed` (default): every kind of fault, on any node or replica. `storm`: mostly short faults of
   * the current leader, so failovers come one after another (the CI run for failover volume).
   */
  profile?: 'mixed' | 'storm';
  /**
   * Liveness bound: once the last fault has ended (partitions healed, nodes restarted, the last
   * pause over), every chain must have a producing leader within this many virtual ms (default
   * 20 s: replica lease expiry 3 s + restart and grace 2 s + resync 3 s + old lease 2.5 s +
   * detection 1 s + first block 1 s, with room for lost messages).
   */
  livenessBoundMs?: number;
  /** One broken variant, or several at once (a comma-separated list on the command line). */
  variant?: BrokenVariant | readonly BrokenVariant[];
  /**
   * Also freeze replicas right before a node start (default off). This finds a known gap of lease
   * mode (see the report in docs/benchmarks.md): a start decided before a freeze and sent after it
   * reaches a node that never learned the newer term, which then obeys the stale term.
   */
  freezeBeforeStart?: boolean;
  /** Stop at the first violation (default true). */
  stopOnViolation?: boolean;
  /** Lines of trace kept (the tail that led to a violation). */
  traceLines?: number;
}

export interface WorldOutcome {
  seed: number;
  steps: number;
  simMs: number;
  failovers: number;
  elections: number;
  operations: { submitted: number; finished: number };
  violations: Violation[];
  livenessFailures: number;
  trace: string[];
}

export const SIM_POLICY: ChainPolicy = Object.freeze({
  blockTimeMs: 1000,
  probeIntervalMs: 500,
  failureThreshold: 2,
  stallFactor: 5,
  leaseTtlMs: 2000,
  maxLagBlocks: 2,
  antiFlapMs: 1000,
  fencingMode: 'lease',
});

const NODE_DEADLINE_MS = 500;
const ETCD_TIMEOUT_MS = 1000;

export async function runWorld(opts: WorldOptions): Promise<WorldOutcome> {
  return new World(opts).run();
}

class World {
  private readonly loop = new SimLoop();
  private readonly rng: Rng;
  private readonly faultRng: Rng;
  private readonly net: Network;
  private readonly keys = new EtcdKeys('/baton/');
  private readonly etcd: MemoryEtcd;
  private readonly etcdProc: Proc;
  private readonly blocks = new Map<string, Block>();
  private readonly chains = new Map<string, SimSequencer[]>();
  private readonly endpoints = new Map<string, SimSequencer>();
  private readonly replicas: SimReplica[] = [];
  private readonly checker: WorldChecker;
  private readonly traceBuf: string[] = [];
  private readonly operations: { chainId: string; id: string }[] = [];
  private readonly fleet: FleetSettings;
  private hashes = 0;
  private opIds = 0;
  private applying: string | undefined;
  private faultsOn = true;

  constructor(private readonly opts: WorldOptions) {
    this.rng = new Rng(opts.seed);
    this.faultRng = this.rng.fork();
    this.net = new Network(this.loop, this.rng.fork(), { minLatencyMs: 1, maxLatencyMs: 40, loss: 0.01 });
    this.etcd = new MemoryEtcd({ nowMs: () => this.loop.now(), after: (ms, fn) => void this.loop.at(ms, fn), retainRevisions: 2000 });
    this.etcdProc = new Proc('etcd', this.loop);
    this.fleet = { autoFailover: true, maxConcurrentFailovers: opts.chains ?? 3 };
    this.checker = new WorldChecker(this.etcd, this.keys, this.blocks, () => this.loop.now(), (l) => this.trace(l));
    this.etcd.onCommit = (rev, req) => this.checker.committed(rev, req, this.applying);
  }

  private trace(line: string): void {
    this.traceBuf.push(`[${(this.loop.now() / 1000).toFixed(3)}s] ${line}`);
    const max = this.opts.traceLines ?? 400;
    if (this.traceBuf.length > max * 2) this.traceBuf.splice(0, this.traceBuf.length - max);
  }

  private newHash(): string {
    return (++this.hashes).toString(16).padStart(64, '0');
  }

  async run(): Promise<WorldOutcome> {
    await this.build();
    const stop = this.opts.stopOnViolation ?? true;
    const onStep = () => {
      this.checker.checkProducers(this.chains);
      return !(stop && this.checker.violations.length > 0);
    };
    this.scheduleFault();
    this.loop.at(1000, () => this.monitorReplicas());
    await this.loop.run(Infinity, this.opts.steps, onStep);
    const steps = this.loop.steps;
    let livenessFailures = 0;
    if (this.checker.violations.length === 0) {
      const clearAt = this.quiesce();
      const boundMs = this.opts.livenessBoundMs ?? 20_000;
      // Watching starts when the last fault ends: a leader producing during a pause does not count.
      const watch = () => {
        if (this.loop.now() >= clearAt) this.checker.noteLiveness(this.chains, SIM_POLICY.blockTimeMs);
        return onStep();
      };
      await this.loop.run(clearAt + boundMs, Number.MAX_SAFE_INTEGER, watch);
      if (this.checker.violations.length === 0) {
        livenessFailures = this.checker.checkLiveness(this.chains);
        if (livenessFailures > 0) this.describeState();
        await this.checkOperations();
      }
    }
    const lines = this.opts.traceLines ?? 400;
    return {
      seed: this.opts.seed,
      steps,
      simMs: this.loop.now(),
      failovers: this.checker.failovers,
      elections: this.checker.elections,
      operations: { submitted: this.operations.length, finished: this.finished },
      violations: this.checker.violations,
      livenessFailures,
      trace: this.traceBuf.slice(-lines),
    };
  }

  private describeState(): void {
    for (const r of this.replicas) for (const line of r.describe()) this.trace(line);
    for (const [chainId, nodes] of this.chains) {
      const sup = this.etcd.peek(this.keys.supervisor(chainId))?.value.toString();
      this.trace(`${chainId}: supervisor ${sup ?? 'none'}; ` + nodes.map((n) => `${n.nodeId} alive=${n.proc.alive} head=${n.head.number} highest=${n.highestTerm} lease=${n.lease ? `${n.lease.term}@${n.lease.expiresAt}` : '-'}`).join('; '));
    }
  }

  // ---- building ----

  private async build(): Promise<void> {
    const store = new EtcdChainStore(this.etcd, this.keys);
    await store.putFleetSettings(this.fleet);
    const genesis: Block = { chainId: '', number: 0, hash: '0'.repeat(64), parent: '', term: 0n, nodeId: '', atMs: 0 };
    this.blocks.set(genesis.hash, genesis);
    const recorder = {
      accepted: (n: SimSequencer, rpc: string, term: bigint) => this.checker.accepted(n, rpc, term),
      activated: (n: SimSequencer, term: bigint) => this.checker.activated(n, term),
      produced: (_n: SimSequencer, b: Block) => void this.blocks.set(b.hash, b),
      newHash: () => this.newHash(),
    };
    for (let c = 0; c < (this.opts.chains ?? 3); c++) {
      const chainId = `chain-${String.fromCharCode(97 + c)}`;
      const nodes: SimSequencer[] = [];
      const n = this.opts.nodesPerChain ?? 3;
      for (let i = 1; i <= n; i++) {
        const proc = new Proc(`${chainId}/n${i}`, this.loop);
        const node = new SimSequencer(chainId, `n${i}`, proc, genesis, this.loop, this.net, recorder, {
          blockTimeMs: SIM_POLICY.blockTimeMs,
          followIntervalMs: 1000,
          acceptLowerTerms: this.broken('accept-lower-term'),
        });
        nodes.push(node);
        this.endpoints.set(proc.name, node);
      }
      for (const node of nodes) node.peers = nodes.filter((p) => p !== node);
      this.chains.set(chainId, nodes);
      const spec: ChainSpec = {
        id: chainId,
        genesisHash: '',
        nodes: nodes.map((node, i) => ({ id: node.nodeId, endpoint: node.proc.name, priority: i % 2, zone: `z${i}` })),
        policy: SIM_POLICY,
      };
      await store.putSpec(spec);
    }
    for (let r = 1; r <= (this.opts.replicas ?? 2); r++) this.startReplica(r - 1, `r${r}`);
  }

  private startReplica(slot: number, replicaId: string): void {
    const proc = new Proc(replicaId, this.loop);
    const link = new EtcdLink(
      this.etcd,
      this.etcdProc,
      proc,
      this.net,
      this.keys,
      {
        callTimeoutMs: ETCD_TIMEOUT_MS,
        dropSupervisorCompare: this.broken('no-supervisor-compare'),
        pauseBeforeLeaderWrite: () => this.takeArmedPause(replicaId, 'leader-write'),
      },
      (id) => {
        this.applying = id;
      },
    );
    const nodes = this.nodeControl(
      new SimNodeControl(NODE_DEADLINE_MS, proc, this.net, this.endpoints, (rpc) => (rpc === 'StartSequencer' ? this.takeArmedPause(replicaId, 'node-start') : undefined)),
    );
    const replica = new SimReplica(
      { replicaId, ttlSeconds: 3, marginMs: 500, keepaliveIntervalMs: 1000, graceMs: 1000, resyncMs: 3000, fleet: this.fleet },
      proc,
      this.loop,
      link,
      this.keys,
      nodes,
      () => undefined,
      (wallMs) => `op-${wallMs}-${(++this.opIds).toString(36).padStart(8, '0')}`,
    );
    this.replicas[slot] = replica;
    this.trace(`replica ${replicaId} starts`);
    replica.start();
  }

  private broken(variant: BrokenVariant): boolean {
    const v = this.opts.variant;
    return v === variant || (Array.isArray(v) && v.includes(variant));
  }

  /** The broken variants that live in the node channel (wrappers; the real calls are unchanged). */
  private nodeControl(real: NodeControl): NodeControl {
    if (!this.broken('skip-lease-wait') && !this.broken('promote-lagging') && !this.broken('ignore-proof-deadline')) return real;
    // Every wrapper below forwards calls without their per-call options: ignore-proof-deadline is
    // exactly that; the others did not depend on them when they were written.
    return {
      // skip-lease-wait: a deadline of −TTL makes every lease bound "now", so nothing is waited out.
      deadlineMs: this.broken('skip-lease-wait') ? -SIM_POLICY.leaseTtlMs : real.deadlineMs,
      health: (node) => real.health(node),
      // promote-lagging: the node is not told which head it must hold, so it cannot refuse.
      start: (node, grant) => real.start(node, this.broken('promote-lagging') ? { ...grant, head: undefined } : grant),
      renew: (node, term, ttlMs) => real.renew(node, term, ttlMs),
      stop: (node, term, reason) => real.stop(node, term, reason),
      prepareHandoff: (node, term, targetId, reason) => real.prepareHandoff(node, term, targetId, reason),
      completeHandoff: (...args: Parameters<NodeControl['completeHandoff']>) => real.completeHandoff(...args),
    };
  }

  /** Restarts lost or crashed replicas (a process supervisor would), as new incarnations. */
  private monitorReplicas(): void {
    this.loop.at(1000, () => this.monitorReplicas());
    for (const [slot, r] of this.replicas.entries()) {
      if (r.alive || this.restartScheduled.has(slot)) continue;
      this.restartScheduled.add(slot);
      // A lost replica's in-flight work plays out for a while; then its process is gone for good.
      this.loop.at(10_000, () => {
        r.proc.alive = false;
      });
      const delay = this.faultsOn ? this.faultRng.int(500, 4000) : 0;
      this.loop.at(delay, () => {
        this.restartScheduled.delete(slot);
        this.startReplica(slot, r.replicaId);
      });
    }
  }

  private readonly restartScheduled = new Set<number>();

  /** Freezes armed by the fault scheduler, taken by the next matching action of that replica. */
  private readonly armed = new Map<string, { where: 'leader-write' | 'node-start'; ms: number }>();

  private takeArmedPause(replicaId: string, where: 'leader-write' | 'node-start'): number | undefined {
    const a = this.armed.get(replicaId);
    if (!a || a.where !== where || !this.faultsOn) return undefined;
    this.armed.delete(replicaId);
    this.trace(`fault: replica ${replicaId} freezes for ${a.ms} ms right before its ${where}`);
    return a.ms;
  }

  // ---- faults ----

  private scheduleFault(): void {
    const mean = this.opts.faultEveryMs ?? (this.opts.profile === 'storm' ? 1300 : 1500);
    const wait = Math.max(1, Math.round(-Math.log(1 - this.faultRng.next()) * mean));
    this.loop.at(wait, () => {
      if (!this.faultsOn) return;
      this.injectFault();
      this.scheduleFault();
    });
  }

  private leaderOf(chainId: string): SimSequencer | undefined {
    const kv = this.etcd.peek(this.keys.leader(chainId));
    if (!kv) return undefined;
    const nodeId = (JSON.parse(kv.value.toString()) as { nodeId: string }).nodeId;
    return this.chains.get(chainId)!.find((n) => n.nodeId === nodeId);
  }

  private injectFault(): void {
    const rng = this.faultRng;
    const chainId = rng.pick([...this.chains.keys()]);
    const nodes = this.chains.get(chainId)!;
    // Half the node faults hit the recorded leader: that is what makes failovers.
    const storm = this.opts.profile === 'storm';
    const node = (rng.chance(storm ? 0.95 : (this.opts.leaderBias ?? 0.5)) ? this.leaderOf(chainId) : undefined) ?? rng.pick(nodes);
    const replica = rng.pick(this.replicas);
    const scale = this.opts.faultScale ?? (storm ? 0.4 : 1);
    const ms = (lo: number, hi: number) => Math.max(1, Math.round(rng.int(lo, hi) * scale));
    const kind = storm ? stormKind(rng.int(0, 99)) : rng.int(0, 99);
    if (kind < 25) {
      if (!node.proc.alive) return;
      const down = ms(1000, 8000);
      this.trace(`fault: crash ${node.proc.name} for ${down} ms`);
      node.crash();
      this.loop.at(down, () => node.restart());
    } else if (kind < 40) {
      const d = ms(300, 6000);
      this.trace(`fault: pause ${node.proc.name} for ${d} ms`);
      node.proc.pausedUntil = Math.max(node.proc.pausedUntil, this.loop.now() + d);
    } else if (kind < 55) {
      const d = ms(500, 8000);
      this.trace(`fault: partition ${node.proc.name} from every replica for ${d} ms`);
      for (const r of this.replicas) this.net.partition(node.proc.name, r.proc.name, d);
    } else if (kind < 60) {
      const d = ms(500, 6000);
      const peer = rng.pick(nodes.filter((n) => n !== node));
      this.trace(`fault: partition ${node.proc.name} from ${peer.proc.name} for ${d} ms`);
      this.net.partition(node.proc.name, peer.proc.name, d);
    } else if (kind < 68) {
      const d = ms(500, 6000);
      this.trace(`fault: ${node.proc.name} unhealthy for ${d} ms`);
      node.unhealthy = true;
      this.loop.at(d, () => {
        node.unhealthy = false;
      });
    } else if (kind < 76) {
      const d = ms(1000, 10_000);
      this.trace(`fault: ${node.proc.name} stops following for ${d} ms`);
      node.lagging = true;
      this.loop.at(d, () => {
        node.lagging = false;
      });
    } else if (kind < 79) {
      const d = ms(500, 4000);
      this.trace(`fault: degraded network for ${d} ms`);
      this.net.degrade(d);
    } else if (kind < 83) {
      void this.submitOperation(chainId, rng.chance(0.5) ? 'failover' : 'switchover');
    } else if (kind < 87) {
      // A process freeze at the worst moment: after deciding, before the write or the start leaves.
      const where = rng.chance(0.5) && this.opts.freezeBeforeStart ? 'node-start' : 'leader-write';
      this.armed.set(replica.replicaId, { where, ms: ms(2000, 9000) });
    } else if (kind < 90) {
      const d = ms(300, 8000);
      this.trace(`fault: pause replica ${replica.proc.name} for ${d} ms`);
      replica.proc.pausedUntil = Math.max(replica.proc.pausedUntil, this.loop.now() + d);
    } else if (kind < 93) {
      if (!replica.alive) return;
      this.trace(`fault: crash replica ${replica.proc.name}`);
      replica.crash();
    } else {
      const d = ms(500, 6000);
      this.trace(`fault: partition replica ${replica.proc.name} from etcd for ${d} ms`);
      this.net.partition(replica.proc.name, 'etcd', d);
    }
  }

  /** An operator failover or switchover, written like the API does (durable before the 202). */
  private async submitOperation(chainId: string, kind: 'failover' | 'switchover'): Promise<void> {
    const ops = new EtcdOperationStore(this.etcd, this.keys, {
      clock: this.loop,
      newId: (wallMs) => `op-${wallMs}-${(++this.opIds).toString(36).padStart(8, '0')}`,
    });
    try {
      const params = kind === 'failover' ? { kind, reason: 'sim drill' } : { kind, reason: 'sim handoff' };
      const { operation } = await ops.submit({ chainId, params, requestId: `req-${this.opIds}` }, undefined);
      this.operations.push({ chainId, id: operation.id });
      this.trace(`operator: ${kind} ${operation.id} on ${chainId} accepted`);
    } catch (err) {
      if (!isBatonError(err, 'CONFLICT')) throw err;
    }
  }

  private finished = 0;

  private async checkOperations(): Promise<void> {
    const ops = new EtcdOperationStore(this.etcd, this.keys, { clock: this.loop });
    for (const { chainId, id } of this.operations) {
      const op = await ops.get(id);
      if (op && isFinal(op.state)) this.finished++;
      else this.checker.lostOperation(chainId, id, op?.state ?? 'missing');
    }
  }

  /** Faults stop: partitions heal, crashed nodes restart, flags clear; pauses run out by themselves. */
  /** Faults stop: partitions heal, crashed nodes restart, flags clear. Returns when the last pause ends. */
  private quiesce(): number {
    this.faultsOn = false;
    this.net.healAll();
    let clearAt = this.loop.now();
    for (const nodes of this.chains.values()) {
      for (const n of nodes) {
        n.unhealthy = false;
        n.lagging = false;
        n.restart();
        clearAt = Math.max(clearAt, n.proc.pausedUntil);
      }
    }
    for (const r of this.replicas) clearAt = Math.max(clearAt, r.proc.pausedUntil);
    this.trace(`faults stop; the last pause ends at ${(clearAt / 1000).toFixed(3)}s`);
    return clearAt;
  }
}

/**
 * The storm profile's fault mix, as the mixed profile's kind numbers: leader crashes, pauses,
 * partitions and health faults dominate; replica faults (freezes before a leader write included)
 * stay in so supervision changes hands during failovers too.
 */
function stormKind(roll: number): number {
  const table: [number, number][] = [
    [35, 0], // crash
    [15, 25], // pause
    [20, 40], // partition from the replicas
    [12, 60], // unhealthy
    [3, 68], // stops following
    [5, 79], // operator failover
    [4, 83], // replica freeze before a leader write
    [3, 87], // replica pause
    [1, 90], // replica crash
    [2, 93], // replica partitioned from etcd
  ];
  for (const [weight, kind] of table) {
    if (roll < weight) return kind;
    roll -= weight;
  }
  return 0;
}
