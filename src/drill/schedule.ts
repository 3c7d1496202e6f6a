// The drill's fault schedule: a pure function of the seed. A small PRNG (mulberry32) draws each
// step's fault kind, target chain, a pick (which node/replica/member, resolved against the stack's
// state when the step runs) and how long the fault is held. The same seed always gives the same
// sequence of steps; how many of them a run gets through depends on the wall clock of the real
// processes, so a replay reproduces the schedule, not the exact interleaving.

export const FAULT_KINDS = [
  'kill-active', // kill -9 of the active node (restarted afterwards)
  'kill-standby',
  'pause-active', // SIGSTOP … SIGCONT of the active node
  'pause-standby',
  'stall-active', // active keeps its lease, reports healthy, makes no blocks
  'unhealthy-active', // active reports unhealthy
  'slow-active', // every ControlService call of the active delayed (slow RPCs)
  'cut-active', // the active's admin endpoint blackholed between Baton and the node; peers still reach it
  'delay-node', // the node channel of one node delayed by the proxy
  'lag-standby', // a standby falls behind the recorded head (never promoted), then the active dies
  'stale-command', // an old-term command delivered late to a node (must be refused)
  'kill-replica', // kill -9 of a Baton replica (restarted afterwards)
  'pause-replica', // SIGSTOP of a replica for longer than its etcd lease: its writes must be fenced
  'kill-etcd-follower',
  'pause-etcd-follower',
  'kill-etcd-leader',
  'pause-etcd-leader',
  'pause-replica-kill-etcd-leader', // supervisor pause together with an etcd leader kill
  'pause-supervisor-kill-active', // the chain's supervisor paused past its lease while its active dies
  'pause-supervisor-mid-failover', // the supervisor paused right as it decides a failover: its write must be fenced
  'etcd-quorum-loss', // two members of three paused: no promotion, no head write while it lasts
  'switchover', // operator: planned handoff through the API
  'failover-op', // operator: failover through the API
  'pause-chain', // operator: pause, then resume, through the API
  'rolling-restart', // every replica restarted in turn
  'cut-replica-etcd', // a replica blackholed from every etcd member: it must stop acting
  'delay-supervisor-etcd', // the supervisor's etcd traffic held back past its lease while its active dies
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Step {
  readonly index: number;
  readonly kind: FaultKind;
  /** Index into the drill's chains; with `--focus`, always the focus chain. */
  readonly chain: number;
  /** A uniform draw in [0, 1) that picks the node, replica or member when the step runs. */
  readonly pick: number;
  /** How long the fault is held before it is healed (ms). */
  readonly holdMs: number;
}

/** Relative weights: node faults dominate, as in production; rare heavy faults stay rare. */
const WEIGHTS: Record<FaultKind, number> = {
  'kill-active': 8,
  'kill-standby': 4,
  'pause-active': 5,
  'pause-standby': 3,
  'stall-active': 4,
  'unhealthy-active': 4,
  'slow-active': 3,
  'cut-active': 5,
  'delay-node': 3,
  'lag-standby': 3,
  'stale-command': 5,
  'kill-replica': 3,
  'pause-replica': 3,
  'kill-etcd-follower': 2,
  'pause-etcd-follower': 2,
  'kill-etcd-leader': 2,
  'pause-etcd-leader': 2,
  'pause-replica-kill-etcd-leader': 1,
  'pause-supervisor-kill-active': 2,
  'pause-supervisor-mid-failover': 2,
  'etcd-quorum-loss': 1,
  switchover: 4,
  'failover-op': 3,
  'pause-chain': 3,
  'rolling-restart': 1,
  'cut-replica-etcd': 2,
  'delay-supervisor-etcd': 2,
};

/** How long each kind is held: [min, max) ms. */
const HOLD_MS: Record<FaultKind, [number, number]> = {
  'kill-active': [0, 1],
  'kill-standby': [500, 3000],
  'pause-active': [500, 6000],
  'pause-standby': [500, 4000],
  'stall-active': [1000, 4000],
  'unhealthy-active': [1000, 4000],
  'slow-active': [1000, 4000],
  'cut-active': [1000, 6000],
  'delay-node': [1000, 4000],
  'lag-standby': [1000, 3000],
  'stale-command': [0, 1],
  'kill-replica': [500, 3000],
  'pause-replica': [3000, 6000],
  'kill-etcd-follower': [500, 3000],
  'pause-etcd-follower': [500, 4000],
  'kill-etcd-leader': [500, 3000],
  'pause-etcd-leader': [500, 3000],
  'pause-replica-kill-etcd-leader': [3000, 5000],
  'pause-supervisor-kill-active': [3000, 6000],
  'pause-supervisor-mid-failover': [3000, 6000],
  'etcd-quorum-loss': [1000, 4000],
  switchover: [0, 1],
  'failover-op': [0, 1],
  'pause-chain': [500, 3000],
  'rolling-restart': [0, 1],
  'cut-replica-etcd': [2000, 7000],
  'delay-supervisor-etcd': [5000, 8000],
};

/** mulberry32: 32-bit state, good enough to spread faults, and trivially replayable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ScheduleOptions {
  readonly seed: number;
  readonly chains: number;
  /** Only these kinds (default: all). */
  readonly kinds?: readonly FaultKind[];
  /** Every step on this chain (the others run untouched: "many chains, faults on one"). */
  readonly focusChain?: number;
}

/** The first `count` steps of the seed's schedule. */
export function schedule(opts: ScheduleOptions, count: number): Step[] {
  const kinds = opts.kinds && opts.kinds.length > 0 ? opts.kinds : FAULT_KINDS;
  const total = kinds.reduce((s, k) => s + WEIGHTS[k], 0);
  const rnd = prng(opts.seed);
  const steps: Step[] = [];
  for (let index = 0; index < count; index++) {
    let x = rnd() * total;
    let kind = kinds[kinds.length - 1]!;
    for (const k of kinds) {
      x -= WEIGHTS[k];
      if (x < 0) {
        kind = k;
        break;
      }
    }
    const chain = Math.floor(rnd() * opts.chains);
    const pick = rnd();
    const [lo, hi] = HOLD_MS[kind];
    const holdMs = Math.floor(lo + rnd() * (hi - lo));
    steps.push({ index, kind, chain: opts.focusChain ?? chain, pick, holdMs });
  }
  return steps;
}

/** One line per step, for the log of a run and for comparing replays. */
export function describeStep(s: Step, chainIds: readonly string[]): string {
  return `#${s.index} ${s.kind} chain=${chainIds[s.chain] ?? s.chain} pick=${s.pick.toFixed(3)} hold=${s.holdMs}ms`;
}

export function parseKinds(text: string): FaultKind[] {
  const out: FaultKind[] = [];
  for (const k of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`unknown fault kind "${k}" (one of ${FAULT_KINDS.join(', ')})`);
    out.push(k as FaultKind);
  }
  return out;
}
