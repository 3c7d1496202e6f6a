// The world's fault scheduler: one fault at a time, at exponentially distributed intervals, all
// drawn from the world's fault stream, so a seed replays the same faults. It also holds the
// freezes it armed (taken by the next matching action of that replica), and, on a stream of its
// own, the operator's spec changes that flip a chain's fencing mode.
import type { Network } from './network.js';
import type { SimLoop } from './loop.js';
import type { Rng } from './random.js';
import type { SimReplica } from './replica.js';
import type { SimSequencer } from './sequencer.js';

export type FaultProfile = 'mixed' | 'storm';
export type FreezePoint = 'leader-write' | 'node-start';

/** What the scheduler acts on: the world's current processes, and the operator's requests. */
export interface FaultTargets {
  readonly chains: ReadonlyMap<string, readonly SimSequencer[]>;
  readonly replicas: readonly SimReplica[];
  readonly net: Network;
  leaderOf(chainId: string): SimSequencer | undefined;
  submitOperation(chainId: string, kind: 'failover' | 'switchover'): Promise<void>;
  /** The operator flips the chain's fencing mode (a spec change). */
  switchMode(chainId: string): Promise<void>;
  trace(line: string): void;
}

export interface FaultOptions {
  profile: FaultProfile;
  /** Mean virtual ms between two faults. */
  everyMs: number;
  /** Share of node faults aimed at the chain's recorded leader. */
  leaderBias: number;
  /** Multiplies every fault's duration. */
  scale: number;
  freezeBeforeStart: boolean;
  /** Mean virtual ms between two fencing-mode switches (undefined: none). */
  modeSwitchEveryMs: number | undefined;
}

export class FaultScheduler {
  /** False once faults stop (the liveness phase). */
  on = true;
  /** Freezes armed by the scheduler, taken by the next matching action of that replica. */
  private readonly armed = new Map<string, { where: FreezePoint; ms: number }>();

  constructor(
    private readonly loop: SimLoop,
    private readonly rng: Rng,
    private readonly modeRng: Rng,
    private readonly world: FaultTargets,
    private readonly opts: FaultOptions,
  ) {}

  start(): void {
    this.scheduleFault();
    if (this.opts.modeSwitchEveryMs !== undefined) this.scheduleModeSwitch(this.opts.modeSwitchEveryMs);
  }

  /** The freeze armed for `replicaId` at `where`, if any (taken: it happens once). */
  takeArmedPause(replicaId: string, where: FreezePoint): number | undefined {
    const a = this.armed.get(replicaId);
    if (!a || a.where !== where || !this.on) return undefined;
    this.armed.delete(replicaId);
    this.world.trace(`fault: replica ${replicaId} freezes for ${a.ms} ms right before its ${where}`);
    return a.ms;
  }

  private scheduleFault(): void {
    const wait = Math.max(1, Math.round(-Math.log(1 - this.rng.next()) * this.opts.everyMs));
    this.loop.at(wait, () => {
      if (!this.on) return;
      this.injectFault();
      this.scheduleFault();
    });
  }

  private scheduleModeSwitch(meanMs: number): void {
    const wait = Math.max(1, Math.round(-Math.log(1 - this.modeRng.next()) * meanMs));
    this.loop.at(wait, () => {
      if (!this.on) return;
      void this.world.switchMode(this.modeRng.pick([...this.world.chains.keys()]));
      this.scheduleModeSwitch(meanMs);
    });
  }

  private injectFault(): void {
    const { rng, world } = this;
    const chainId = rng.pick([...world.chains.keys()]);
    const nodes = world.chains.get(chainId)!;
    // Half the node faults hit the recorded leader: that is what makes failovers.
    const storm = this.opts.profile === 'storm';
    const node = (rng.chance(storm ? 0.95 : this.opts.leaderBias) ? world.leaderOf(chainId) : undefined) ?? rng.pick(nodes);
    const replica = rng.pick(world.replicas);
    const scale = this.opts.scale;
    const ms = (lo: number, hi: number) => Math.max(1, Math.round(rng.int(lo, hi) * scale));
    const kind = storm ? stormKind(rng.int(0, 99)) : rng.int(0, 99);
    const trace = (line: string) => world.trace(line);
    if (kind < 25) {
      if (!node.proc.alive) return;
      const down = ms(1000, 8000);
      trace(`fault: crash ${node.proc.name} for ${down} ms`);
      node.crash();
      this.loop.at(down, () => node.restart());
    } else if (kind < 40) {
      const d = ms(300, 6000);
      trace(`fault: pause ${node.proc.name} for ${d} ms`);
      node.proc.pausedUntil = Math.max(node.proc.pausedUntil, this.loop.now() + d);
    } else if (kind < 55) {
      const d = ms(500, 8000);
      trace(`fault: partition ${node.proc.name} from every replica for ${d} ms`);
      for (const r of world.replicas) world.net.partition(node.proc.name, r.proc.name, d);
    } else if (kind < 60) {
      const d = ms(500, 6000);
      const peer = rng.pick(nodes.filter((n) => n !== node));
      trace(`fault: partition ${node.proc.name} from ${peer.proc.name} for ${d} ms`);
      world.net.partition(node.proc.name, peer.proc.name, d);
    } else if (kind < 68) {
      const d = ms(500, 6000);
      trace(`fault: ${node.proc.name} unhealthy for ${d} ms`);
      node.unhealthy = true;
      this.loop.at(d, () => {
        node.unhealthy = false;
      });
    } else if (kind < 76) {
      const d = ms(1000, 10_000);
      trace(`fault: ${node.proc.name} stops following for ${d} ms`);
      node.lagging = true;
      this.loop.at(d, () => {
        node.lagging = false;
      });
    } else if (kind < 79) {
      const d = ms(500, 4000);
      trace(`fault: degraded network for ${d} ms`);
      world.net.degrade(d);
    } else if (kind < 83) {
      void world.submitOperation(chainId, rng.chance(0.5) ? 'failover' : 'switchover');
    } else if (kind < 87) {
      // A process freeze at the worst moment: after deciding, before the write or the start leaves.
      const where = rng.chance(0.5) && this.opts.freezeBeforeStart ? 'node-start' : 'leader-write';
      this.armed.set(replica.replicaId, { where, ms: ms(2000, 9000) });
    } else if (kind < 90) {
      const d = ms(300, 8000);
      trace(`fault: pause replica ${replica.proc.name} for ${d} ms`);
      replica.proc.pausedUntil = Math.max(replica.proc.pausedUntil, this.loop.now() + d);
    } else if (kind < 93) {
      if (!replica.alive) return;
      trace(`fault: crash replica ${replica.proc.name}`);
      replica.crash();
    } else {
      const d = ms(500, 6000);
      trace(`fault: partition replica ${replica.proc.name} from etcd for ${d} ms`);
      world.net.partition(replica.proc.name, 'etcd', d);
    }
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
