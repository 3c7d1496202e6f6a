// The two drills of the failover benchmark. A failover drill kills -9 the active node of a chain
// and times, from the simulators' own logs, the kill to the first block of the new active. A
// replica drill kills -9 a supervising Baton replica and counts the heights its chains missed
// while another replica took over (measure.ts defines the count).
import type { ActivityEntry } from '../sim/activity.js';
import { rendezvousOwner } from '../core/rendezvous.js';
import { waitFor } from '../devstack/process.js';
import { readActivityLog } from '../devstack/sim.js';
import type { TermJson } from '../devstack/baton.js';
import type { BenchFleet } from './fleet.js';
import { LogTail } from './log-tail.js';
import { missedHeights } from './measure.js';

/** Every wait of a drill ends within this long (default timings fail over in about 5 s). */
const WAIT_MS = 30_000;
/** Blocks the active must have made under its term before it is killed. */
const STRIDE_BLOCKS = 3;

export interface FailoverResult {
  readonly chain: string;
  readonly killed: string;
  readonly oldTerm: bigint;
  readonly next: string;
  readonly newTerm: bigint;
  readonly firstHeight: number;
  /** Kill → first block of the new active: the benchmark's figure. */
  readonly ms: number;
  /** Kill → the new term written in etcd (detection + choice + txn), from the supervisor's log. */
  readonly decidedMs: number | undefined;
  /** Renewals the supervisor sent the killed node after the kill (each failed, each counted as a possible grant). */
  readonly renewalsAfterKill: number;
  /** Kill → the supervisor's bound on the old lease (last grant sent + node RPC deadline + node lease TTL). */
  readonly boundMs: number | undefined;
  /** Kill → end of the killed node's lease, from its last grant or renewal before the kill. */
  readonly oldLeaseEndMs: number | undefined;
  /** Kill → lease granted to the new active (it started producing). */
  readonly startedMs: number | undefined;
  /** Wall clock ms of the first block of the new term. */
  readonly firstBlockAt: number;
}

export async function failoverDrill(fleet: BenchFleet, chain: string, note: (line: string) => void): Promise<FailoverResult> {
  let before = await fleet.waitSteady(chain, WAIT_MS);
  // Anti-flap: the supervisor refuses an automatic failover this soon after the chain's last
  // leader change (a drill's, or one Baton made by itself), so that wait must not be timed.
  const antiFlapMs = fleet.opts.policy.antiFlapMs;
  const last = before.lastChange;
  const left = last && last.previousNodeId !== null && antiFlapMs > 0 ? last.atMs + antiFlapMs + 1000 - Date.now() : 0;
  if (left > 0) {
    note(`  waiting ${left} ms: anti-flap of ${chain} (last leader change to ${last!.nodeId}, term ${last!.term})`);
    await new Promise((r) => setTimeout(r, left));
    before = await fleet.waitSteady(chain, WAIT_MS);
  }
  const killed = before.leader;
  const oldTerm = before.term;
  // Kill a leader in its stride, not one that was just started (the first drills of a run).
  await waitFor(
    `${killed} to make ${STRIDE_BLOCKS} blocks under term ${oldTerm}`,
    () => {
      const n = readActivityLog(fleet.slot(chain, killed).logFile).filter((e) => e.ev === 'block' && BigInt(e.term) === oldTerm).length;
      return n >= STRIDE_BLOCKS ? true : undefined;
    },
    WAIT_MS,
    100,
  );
  const others = fleet.nodesOf(chain).filter((s) => s.node !== killed);
  const tails = others.map((s) => new LogTail(s.logFile));

  const killAt = await fleet.killNode(chain, killed);
  const first = await waitFor(
    `the first block of a term above ${oldTerm} on ${chain} after killing ${killed}`,
    () => {
      for (const tail of tails) {
        const b = tail.read().find((e): e is Extract<ActivityEntry, { ev: 'block' }> => e.ev === 'block' && BigInt(e.term) > oldTerm);
        if (b) return b;
      }
      return undefined;
    },
    WAIT_MS,
    25,
  );
  const newTerm = BigInt(first.term);

  // The break-down, read after the fact so that it costs nothing while the failover runs.
  const oldLease = lastLease(readActivityLog(fleet.slot(chain, killed).logFile), oldTerm, killAt);
  const granted = readActivityLog(fleet.slot(chain, first.node).logFile).find(
    (e) => e.ev === 'lease-granted' && BigInt(e.term) === newTerm,
  );
  const decided = fleet.event((e) => e.msg === 'leader changed' && e.chain === chain && e.term === first.term, killAt);
  const renewals = fleet.eventsBetween((e) => e.msg === 'renewal failed' && e.chain === chain && e.node === killed, killAt, decided?.time ?? first.t);
  const waiting = decided && fleet.event((e) => e.msg === 'waiting for old leases' && e.chain === chain, decided.time);
  return {
    chain,
    killed,
    oldTerm,
    next: first.node,
    newTerm,
    firstHeight: first.number,
    ms: first.t - killAt,
    decidedMs: decided ? decided.time - killAt : undefined,
    renewalsAfterKill: renewals.length,
    boundMs: waiting && waiting.time < first.t ? waiting.time + waiting.waitMs! - killAt : undefined,
    oldLeaseEndMs: oldLease !== undefined ? oldLease - killAt : undefined,
    startedMs: granted ? granted.t - killAt : undefined,
    firstBlockAt: first.t,
  };
}

/**
 * Leader changes that no drill asked for: every term after a chain's first election other than
 * those a drill's new active produced under. Each one is Baton replacing a leader by itself
 * (a false stall, a slow probe), which the benchmark reports rather than hides.
 */
export async function unplannedChanges(fleet: BenchFleet, drills: readonly FailoverResult[]): Promise<(TermJson & { chain: string })[]> {
  const out: (TermJson & { chain: string })[] = [];
  for (const chain of fleet.chainIds()) {
    const planned = new Set(drills.filter((d) => d.chain === chain).map((d) => d.newTerm.toString()));
    for (const t of await fleet.history(chain)) {
      if (t.previousNodeId !== null && !planned.has(t.term)) out.push({ ...t, chain });
    }
  }
  return out.sort((a, b) => a.atMs - b.atMs);
}

/** expiresAt of the node's last grant or renewal of `term` before `beforeMs`. */
function lastLease(entries: ActivityEntry[], term: bigint, beforeMs: number): number | undefined {
  let expiresAt: number | undefined;
  for (const e of entries) {
    if ((e.ev === 'lease-granted' || e.ev === 'lease-renewed') && BigInt(e.term) === term && e.t <= beforeMs) expiresAt = e.expiresAt;
  }
  return expiresAt;
}

export interface ReplicaKillResult {
  readonly victim: string;
  /** Chains the victim supervised when it was killed. */
  readonly chains: string[];
  /** Kill → the last of those chains supervised by a surviving replica. */
  readonly takeoverMs: number;
  readonly windowMs: number;
  /** Summed over every chain of the fleet, in the window after the kill. */
  readonly missedHeights: number;
  /** Active nodes whose lease ran out in the window: a takeover too slow to renew in time. */
  readonly leaseLapses: number;
  /** Chains whose leader changed in the window (the kill should change none). */
  readonly leaderChanges: string[];
  /** The same count while the restarted victim takes its chains back. */
  readonly rejoinMissedHeights: number;
}

/**
 * Kills -9 the replica `want` if it supervises any chain (else whichever supervises the first
 * chain), waits until the survivors supervise all its chains, and counts missed heights over
 * [kill, takeover + 2 × node lease TTL]: long enough that a renewal the new supervisor failed to
 * send in time would have let the lease run out, and the chain restart, inside the window. Then
 * restarts the victim and waits until every chain is back with its rendezvous owner.
 */
export async function replicaKillDrill(fleet: BenchFleet, want: string): Promise<ReplicaKillResult> {
  const { blockTimeMs, policy } = fleet.opts;
  const chains = fleet.chainIds();
  const before = new Map<string, { leader: string; term: bigint; supervisor: string }>();
  for (const c of chains) before.set(c, await fleet.waitSteady(c, WAIT_MS));
  const supervisors = new Set([...before.values()].map((b) => b.supervisor));
  const victim = supervisors.has(want) ? want : before.get(chains[0]!)!.supervisor;
  const affected = chains.filter((c) => before.get(c)!.supervisor === victim);

  const killAt = Date.now();
  await fleet.devStack.replica(victim).kill();
  const taken = await waitFor(
    `replicas other than ${victim} to supervise ${affected.join(', ')}`,
    async () => {
      const views = await Promise.all(affected.map((c) => fleet.view(c)));
      return views.every((v) => v.supervisor !== null && v.supervisor !== victim) ? Date.now() : undefined;
    },
    WAIT_MS,
    100,
  );
  // The survivors log when they took each chain; the poll above only bounds it.
  const takeoverAt = Math.max(
    ...affected.map((c) => fleet.event((e) => e.msg === 'supervising chain' && e.chain === c && e.replica !== victim, killAt)?.time ?? taken),
  );
  const windowEnd = takeoverAt + 2 * policy.leaseTtlMs;
  await sleepUntil(windowEnd + 2 * blockTimeMs);
  const missed = chains.reduce((sum, c) => sum + missedHeights(fleet.blockTimes(c), killAt, windowEnd, blockTimeMs), 0);
  const leaseLapses = chains.reduce((sum, c) => sum + fleet.leaseLapses(c, killAt, windowEnd), 0);
  const leaderChanges: string[] = [];
  for (const c of chains) {
    const v = await fleet.view(c);
    if (v.leader?.nodeId !== before.get(c)!.leader || BigInt(v.leader.term) !== before.get(c)!.term) leaderChanges.push(c);
  }

  const rejoinAt = Date.now();
  await fleet.devStack.startReplica(victim);
  const live = fleet.devStack.replicas.map((r) => r.replicaId);
  const settled = await waitFor(
    `every chain to be supervised by its rendezvous owner after ${victim} rejoined`,
    async () => {
      const views = await Promise.all(chains.map((c) => fleet.view(c)));
      return views.every((v) => v.supervisor === rendezvousOwner(v.id, live)) ? Date.now() : undefined;
    },
    WAIT_MS,
    100,
  );
  const rejoinEnd = settled + 2 * policy.leaseTtlMs;
  await sleepUntil(rejoinEnd + 2 * blockTimeMs);
  const rejoinMissed = chains.reduce((sum, c) => sum + missedHeights(fleet.blockTimes(c), rejoinAt, rejoinEnd, blockTimeMs), 0);
  return {
    victim,
    chains: affected,
    takeoverMs: takeoverAt - killAt,
    windowMs: windowEnd - killAt,
    missedHeights: missed,
    leaseLapses,
    leaderChanges,
    rejoinMissedHeights: rejoinMissed,
  };
}

async function sleepUntil(wallMs: number): Promise<void> {
  const ms = wallMs - Date.now();
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}
