// A seeded simulated world: chains of simulated sequencers, several Baton replicas running the real
// core over MemoryEtcd, a network with latency, loss and partitions, and a fault scheduler, all on
// virtual time and all driven by one seed. Chains run in lease or commit mode (commit mode: every
// block committed through a replica's commit service before it is published, commit-service.ts),
// and the operator switches chains between the modes as the world runs (faults.ts). The
// invariants, commit mode's included, are checked after every step; once
// faults stop, every chain must get a producing leader (liveness). The same seed replays the same
// world exactly, so a violation comes with the trace that led to it.
import { EtcdChainStore } from '../adapters/etcd/chain-store.js';
import { EtcdKeys } from '../adapters/etcd/keys.js';
import { EtcdOperationStore } from '../adapters/etcd/operation-store.js';
import { MemoryEtcd } from '../adapters/memory/memory-etcd.js';
import type { ChainPolicy, ChainSpec, FencingMode } from '../core/chain.js';
import { isBatonError } from '../core/errors.js';
import { isFinal } from '../core/operation.js';
import type { FleetSettings, NodeControl } from '../core/ports.js';
import { WorldChecker, type Writer } from './checker.js';
import { commitService, SimHeadCommitter, type CommitService } from './commit-service.js';
import { EtcdLink } from './etcd-link.js';
import { FaultScheduler } from './faults.js';
import { Proc, SimLoop } from './loop.js';
import { Network } from './network.js';
import { SimNodeControl } from './node-control.js';
import { Rng } from './random.js';
import { SimReplica } from './replica.js';
import { SimSequencer, type Block } from './sequencer.js';
import type { BrokenVariant, WorldOptions, WorldOutcome } from './options.js';

export type { BrokenVariant, Fencing, WorldOptions, WorldOutcome } from './options.js';

/** Every chain's policy; its fencing mode is drawn per chain (options.ts, Fencing). */
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
  private readonly modeRng: Rng;
  private readonly faults: FaultScheduler;
  private readonly net: Network;
  private readonly keys = new EtcdKeys('/baton/');
  private readonly etcd: MemoryEtcd;
  private readonly etcdProc: Proc;
  private readonly blocks = new Map<string, Block>();
  private readonly chains = new Map<string, SimSequencer[]>();
  private readonly endpoints = new Map<string, SimSequencer>();
  private readonly replicas: SimReplica[] = [];
  /** The commit service of each replica's current incarnation. */
  private readonly commitServices: CommitService[] = [];
  private readonly checker: WorldChecker;
  private readonly traceBuf: string[] = [];
  private readonly operations: { chainId: string; id: string }[] = [];
  private readonly fleet: FleetSettings;
  private hashes = 0;
  private opIds = 0;
  private applying: Writer | undefined;

  constructor(private readonly opts: WorldOptions) {
    this.rng = new Rng(opts.seed);
    this.faultRng = this.rng.fork();
    this.net = new Network(this.loop, this.rng.fork(), { minLatencyMs: 1, maxLatencyMs: 40, loss: 0.01 });
    this.modeRng = this.rng.fork();
    const storm = opts.profile === 'storm';
    const fencing = opts.fencing ?? 'mixed';
    const world = {
      chains: this.chains,
      replicas: this.replicas,
      net: this.net,
      leaderOf: (chainId: string) => this.leaderOf(chainId),
      submitOperation: (chainId: string, kind: 'failover' | 'switchover') => this.submitOperation(chainId, kind),
      switchMode: (chainId: string) => this.switchMode(chainId),
      trace: (line: string) => this.trace(line),
    };
    this.faults = new FaultScheduler(this.loop, this.faultRng, this.modeRng.fork(), world, {
      profile: storm ? 'storm' : 'mixed',
      everyMs: opts.faultEveryMs ?? (storm ? 1300 : 1500),
      leaderBias: opts.leaderBias ?? 0.5,
      scale: opts.faultScale ?? (storm ? 0.4 : 1),
      freezeBeforeStart: opts.freezeBeforeStart ?? false,
      modeSwitchEveryMs: fencing === 'mixed' ? (opts.modeSwitchEveryMs ?? 30_000) : undefined,
    });
    this.etcd = new MemoryEtcd({ nowMs: () => this.loop.now(), after: (ms, fn) => void this.loop.at(ms, fn), retainRevisions: 2000 });
    this.etcdProc = new Proc('etcd', this.loop);
    this.fleet = { autoFailover: true, maxConcurrentFailovers: opts.chains ?? 3 };
    this.checker = new WorldChecker(this.etcd, this.keys, this.blocks, () => this.loop.now(), (l) => this.trace(l));
    this.etcd.onCommit = (rev, _req, ran) => this.checker.committed(rev, ran, this.applying);
    this.checker.ignored = new Set(opts.ignoreViolations ?? []);
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
    this.faults.start();
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
      failovers: this.checker.failovers.lease + this.checker.failovers.commit,
      failoversByMode: { ...this.checker.failovers },
      modeSwitches: this.checker.modeSwitches,
      commits: this.checker.commits,
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
    const genesis: Block = { chainId: '', number: 0, hash: '0'.repeat(64), parent: '', term: 0n, nodeId: '', atMs: 0, mode: 'lease' };
    this.blocks.set(genesis.hash, genesis);
    const recorder = {
      accepted: (n: SimSequencer, rpc: string, term: bigint) => this.checker.accepted(n, rpc, term),
      activated: (n: SimSequencer, term: bigint, mode: FencingMode) => this.checker.activated(n, term, mode),
      made: (b: Block) => void this.blocks.set(b.hash, b),
      published: (n: SimSequencer, b: Block, how: 'produced' | 'adopted') => this.checker.published(n, b, how),
      known: (hash: string) => this.blocks.get(hash),
      refused: (n: SimSequencer, b: Block, code: string) => this.trace(`${n.chainId}/${n.nodeId} commit of block ${b.number} under term ${b.term} refused: ${code}; stops`),
      newHash: () => this.newHash(),
    };
    const fencing = this.opts.fencing ?? 'mixed';
    const firstMode = this.modeRng.int(0, 1);
    const modeOf = (c: number): FencingMode => (fencing === 'mixed' ? ((c + firstMode) % 2 === 0 ? 'lease' : 'commit') : fencing);
    for (let c = 0; c < (this.opts.chains ?? 3); c++) {
      const chainId = `chain-${String.fromCharCode(97 + c)}`;
      const nodes: SimSequencer[] = [];
      const n = this.opts.nodesPerChain ?? 3;
      for (let i = 1; i <= n; i++) {
        const proc = new Proc(`${chainId}/n${i}`, this.loop);
        const committer = new SimHeadCommitter(proc, this.net, () => this.commitServices);
        const node = new SimSequencer(chainId, `n${i}`, proc, genesis, this.loop, this.net, recorder, {
          blockTimeMs: SIM_POLICY.blockTimeMs,
          followIntervalMs: 1000,
          acceptLowerTerms: this.broken('accept-lower-term'),
          publishBeforeCommit: this.broken('publish-before-commit'),
          commit: (block, deadlineMs) => committer.commit(block, deadlineMs),
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
        policy: { ...SIM_POLICY, fencingMode: modeOf(c) },
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
        pauseBeforeLeaderWrite: () => this.faults.takeArmedPause(replicaId, 'leader-write'),
      },
      (writer) => {
        this.applying = writer;
      },
    );
    // The replica's commit service: its own store (and commit batcher) on its own link, same process.
    const commitLink = new EtcdLink(
      this.etcd,
      this.etcdProc,
      proc,
      this.net,
      this.keys,
      { callTimeoutMs: ETCD_TIMEOUT_MS, commits: true, dropCommitTermCompare: this.broken('commit-no-term-compare') },
      (writer) => {
        this.applying = writer;
      },
    );
    this.commitServices[slot] = commitService(proc, new EtcdChainStore(commitLink, this.keys));
    const nodes = this.nodeControl(
      new SimNodeControl(NODE_DEADLINE_MS, proc, this.net, this.endpoints, (rpc) => (rpc === 'StartSequencer' ? this.faults.takeArmedPause(replicaId, 'node-start') : undefined)),
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
      const delay = this.faults.on ? this.faultRng.int(500, 4000) : 0;
      this.loop.at(delay, () => {
        this.restartScheduled.delete(slot);
        this.startReplica(slot, r.replicaId);
      });
    }
  }

  private readonly restartScheduled = new Set<number>();

  private leaderOf(chainId: string): SimSequencer | undefined {
    const kv = this.etcd.peek(this.keys.leader(chainId));
    if (!kv) return undefined;
    const nodeId = (JSON.parse(kv.value.toString()) as { nodeId: string }).nodeId;
    return this.chains.get(chainId)!.find((n) => n.nodeId === nodeId);
  }

  /** The operator flips a chain's fencing mode: a spec change, written like the API does. */
  private async switchMode(chainId: string): Promise<void> {
    const store = new EtcdChainStore(this.etcd, this.keys);
    const spec = await store.getSpec(chainId);
    if (!spec) return;
    const mode: FencingMode = spec.policy.fencingMode === 'lease' ? 'commit' : 'lease';
    this.trace(`operator: ${chainId} fencing mode ${spec.policy.fencingMode} -> ${mode}`);
    await store.putSpec({ ...spec, policy: { ...spec.policy, fencingMode: mode } });
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
    this.faults.on = false;
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
