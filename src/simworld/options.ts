// What a simulated world is asked to do (world.ts runWorld) and what it reports.
import type { Violation, ViolationKind } from './checker.js';

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
 *   sender's proof (core/proof-bound.ts), so a grant frozen on its way outlives its sender's lease;
 * - commit-no-term-compare: the replicas' commit txns reach etcd without the leader-term compare,
 *   so a commit judged on a cached base lands after a newer term was written;
 * - publish-before-commit: commit-mode nodes publish a block first and commit it afterwards.
 */
export type BrokenVariant =
  | 'skip-lease-wait'
  | 'no-supervisor-compare'
  | 'accept-lower-term'
  | 'promote-lagging'
  | 'ignore-proof-deadline'
  | 'commit-no-term-compare'
  | 'publish-before-commit';

/**
 * How chains are fenced. `mixed` (default): the chains start alternately in lease and commit mode
 * (which comes first is drawn from the seed) and the operator flips a chain's mode now and then (a
 * spec change); `lease` / `commit`: every chain in that mode, never switched.
 */
export type Fencing = 'mixed' | 'lease' | 'commit';

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
  /** How chains are fenced (default mixed). */
  fencing?: Fencing;
  /** Mixed fencing: mean virtual ms between two fencing-mode switches of some chain (default 30 s). */
  modeSwitchEveryMs?: number;
  /** Violation kinds not recorded (tests only: to see a check behind a more direct one at work). */
  ignoreViolations?: readonly ViolationKind[];
  /** Stop at the first violation (default true). */
  stopOnViolation?: boolean;
  /** Lines of trace kept (the tail that led to a violation). */
  traceLines?: number;
}

export interface WorldOutcome {
  seed: number;
  steps: number;
  simMs: number;
  /** New terms after a chain's first (automatic and operator failovers, switchovers, rollbacks). */
  failovers: number;
  /** The same, by the fencing mode of the new term. */
  failoversByMode: { lease: number; commit: number };
  /** New terms that only switched a chain's fencing mode under the same active. */
  modeSwitches: number;
  /** Head commits etcd applied. */
  commits: number;
  elections: number;
  operations: { submitted: number; finished: number };
  violations: Violation[];
  livenessFailures: number;
  trace: string[];
}
