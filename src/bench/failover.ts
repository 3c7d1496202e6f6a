// `npm run bench:failover -- [--drills N] [--mode lease|commit]`: failover time and the cost of losing a
// supervising replica, measured on a real local deployment (etcd, `baton serve` replicas, one
// `baton sim` process per node). One progress line per drill goes to stderr; the last line on
// stdout is the result as JSON. docs/benchmarks.md explains the figures and the timings behind them.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { minNodeLeaseTtlMs, parseConfig } from '../config/config.js';
import { DEFAULT_POLICY, type ChainPolicy, type FencingMode } from '../core/chain.js';
import { readActivityLog } from '../devstack/sim.js';
import { FAST_BATON_CONFIG, FAST_POLICY } from '../devstack/stack.js';
import { checkActivity } from '../sim/checker.js';
import { failoverDrill, replicaKillDrill, unplannedChanges, type FailoverResult, type ReplicaKillResult } from './drills.js';
import { BenchFleet } from './fleet.js';
import { median, percentile } from './measure.js';
import { intOption, runBenchmark, say } from './main.js';

const USAGE = `usage: npm run bench:failover -- [options]

  --drills N          failover drills: kill -9 of a chain's active node (default 30)
  --replica-kills N   kill -9 of a supervising Baton replica (default 2)
  --chains N          chains of 3 nodes, drilled in turn (default 6; with the default 30 s
                      anti-flap, a chain is drilled again only 30 s after its last failover)
  --profile P         default: Baton's default settings (node lease TTL = the minimum they allow)
                      fast: the scenario tests' shorter timings (FAST_BATON_CONFIG, FAST_POLICY)
  --mode M            fencing mode of the chains: lease (default; a failover waits out the old
                      node lease) or commit (every block is committed to Baton first; no wait)
  --block-time MS     block time of the simulated nodes (default 250)
  --dir DIR           where logs go (default a new directory under ${tmpdir()}); kept afterwards`;

type ProfileName = 'default' | 'fast';

interface Options {
  drills: number;
  replicaKills: number;
  chains: number;
  profile: ProfileName;
  mode: FencingMode;
  blockTimeMs: number;
  dir: string;
}

interface Profile {
  batonConfig: Record<string, unknown> | undefined;
  policy: ChainPolicy;
}

/** The replica settings (defaults, or the tests' fast ones) and a chain policy they accept. */
function profileOf(name: ProfileName, blockTimeMs: number, fencingMode: FencingMode): Profile {
  const batonConfig = name === 'fast' ? (FAST_BATON_CONFIG as Record<string, unknown>) : undefined;
  const minLeaseTtlMs = minNodeLeaseTtlMs(parseConfig({ ...batonConfig }));
  const overrides: Partial<ChainPolicy> = name === 'fast' ? FAST_POLICY : { leaseTtlMs: minLeaseTtlMs };
  const policy: ChainPolicy = { ...DEFAULT_POLICY, ...overrides, blockTimeMs, fencingMode };
  if (policy.leaseTtlMs < minLeaseTtlMs) throw new Error(`profile ${name}: node lease TTL ${policy.leaseTtlMs} ms is below the minimum ${minLeaseTtlMs} ms`);
  return { batonConfig, policy };
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      drills: { type: 'string', default: '30' },
      'replica-kills': { type: 'string', default: '2' },
      chains: { type: 'string', default: '6' },
      profile: { type: 'string', default: 'default' },
      mode: { type: 'string', default: 'lease' },
      'block-time': { type: 'string', default: '250' },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const int = intOption;
  const profile = values.profile;
  if (profile !== 'default' && profile !== 'fast') throw new Error(`--profile: "${profile}" is not one of default, fast`);
  const mode = values.mode;
  if (mode !== 'lease' && mode !== 'commit') throw new Error(`--mode: "${mode}" is not one of lease, commit`);
  const checked: Omit<Options, 'dir'> = {
    mode,
    drills: int('drills', values.drills, 1, 10_000),
    replicaKills: int('replica-kills', values['replica-kills'], 0, 100),
    chains: int('chains', values.chains, 1, 50),
    profile,
    blockTimeMs: int('block-time', values['block-time'], 50, 10_000),
  };
  const dir = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'baton-bench-'));
  mkdirSync(dir, { recursive: true });
  return { ...checked, dir };
}

function describeDrill(i: number, total: number, r: FailoverResult): string {
  const at = (ms: number | undefined) => (ms === undefined ? '?' : `+${ms}`);
  return (
    `drill ${i}/${total} ${r.chain}: killed ${r.killed} (term ${r.oldTerm}) -> ${r.next} (term ${r.newTerm}) ` +
    `first block #${r.firstHeight} after ${r.ms} ms [new term written ${at(r.decidedMs)} (renewals sent after the kill: ${r.renewalsAfterKill}), ` +
    `old lease ended ${at(r.oldLeaseEndMs)}, Baton's bound on it ${at(r.boundMs)}, new active started ${at(r.startedMs)}]`
  );
}

function describeReplicaKill(i: number, total: number, r: ReplicaKillResult): string {
  return (
    `replica kill ${i}/${total}: killed ${r.victim} (supervising ${r.chains.join(', ') || 'nothing'}); taken over after ${r.takeoverMs} ms; ` +
    `missed heights over ${r.windowMs} ms: ${r.missedHeights}; node leases that ran out: ${r.leaseLapses}; ` +
    `leader changes: ${r.leaderChanges.join(', ') || 'none'}; ` +
    `missed heights while it rejoined: ${r.rejoinMissedHeights}`
  );
}

/** p50 of a break-down figure over the drills that have it. */
function p50(results: FailoverResult[], pick: (r: FailoverResult) => number | undefined): string {
  const xs = results.map(pick).filter((x): x is number => x !== undefined);
  return xs.length > 0 ? `${median(xs)} ms` : 'n/a';
}

async function run(opts: Options): Promise<number> {
  const profile = profileOf(opts.profile, opts.blockTimeMs, opts.mode);
  const { policy } = profile;
  say(
    `bench:failover mode=${opts.mode} profile=${opts.profile} drills=${opts.drills} replica-kills=${opts.replicaKills} chains=${opts.chains}x3 replicas=2 ` +
      `block=${policy.blockTimeMs}ms probe=${policy.probeIntervalMs}ms x${policy.failureThreshold} nodeLease=${policy.leaseTtlMs}ms ` +
      `antiFlap=${policy.antiFlapMs}ms cpus=${cpus().length} load=${loadavg()[0]!.toFixed(2)} dir=${opts.dir}`,
  );
  const fleet = await BenchFleet.start({
    dir: opts.dir,
    chains: opts.chains,
    nodesPerChain: 3,
    replicas: 2,
    blockTimeMs: opts.blockTimeMs,
    policy,
    batonConfig: profile.batonConfig,
  });
  const onSignal = (sig: NodeJS.Signals): void => {
    say(`${sig}: stopping the stack`);
    void fleet.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);

  const drills: FailoverResult[] = [];
  const kills: ReplicaKillResult[] = [];
  let unplanned: Awaited<ReturnType<typeof unplannedChanges>>;
  try {
    // A supervisor that just took a chain over waits out any lease its predecessor might have
    // granted (send + deadline + TTL) before it starts a new active; right after the fleet starts,
    // that bound would stand in every first drill. Failovers after a takeover are what the
    // replica-kill drills measure, so the failover drills begin once the bound has passed.
    const settleMs = policy.leaseTtlMs + 1000;
    say(`  letting the fleet settle for ${settleMs} ms (the supervisors' takeover bound)`);
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const chains = fleet.chainIds();
    for (let i = 0; i < opts.drills; i++) {
      const chain = chains[i % chains.length]!;
      const r = await failoverDrill(fleet, chain, say);
      drills.push(r);
      say(describeDrill(i + 1, opts.drills, r));
      await fleet.restartNode(chain, r.killed);
    }
    for (let k = 0; k < opts.replicaKills; k++) {
      const r = await replicaKillDrill(fleet, `r${(k % 2) + 1}`);
      kills.push(r);
      say(describeReplicaKill(k + 1, opts.replicaKills, r));
    }
    unplanned = await unplannedChanges(fleet, drills);
  } catch (err) {
    say(`bench:failover failed: ${err instanceof Error ? err.message : String(err)}`);
    say(`logs: ${opts.dir} (replicas: ${fleet.replicaLogs().join(', ')}; nodes: ${join(opts.dir, 'sim')})`);
    await fleet.stop();
    return 1;
  }
  const load = loadavg()[0]!.toFixed(2);
  await fleet.stop();

  const report = checkActivity(fleet.logFiles().map((file) => ({ file, entries: readActivityLog(file) })));
  for (const v of report.violations) say(`${v.kind} ${v.chain}: ${v.message}`);
  for (const u of unplanned) {
    say(`unplanned leader change: ${u.chain} ${u.previousNodeId} -> ${u.nodeId} term ${u.term} at ${new Date(u.atMs).toISOString()}: ${u.reason}`);
  }
  const ms = drills.map((d) => d.ms);
  say(
    `break-down (p50 after the kill): new term written ${p50(drills, (d) => d.decidedMs)}, old lease ended ${p50(drills, (d) => d.oldLeaseEndMs)}, ` +
      `Baton's bound on it ${p50(drills, (d) => d.boundMs)}, new active started ${p50(drills, (d) => d.startedMs)}, first block ${median(ms)} ms; ` +
      `min ${Math.min(...ms)} ms; drills with a renewal sent after the kill: ${drills.filter((d) => d.renewalsAfterKill > 0).length}`,
  );
  say(`checker: ${report.blocks} blocks in ${report.logs} logs, ${report.violations.length} violations; 1-min load average at the end ${load}; logs in ${opts.dir}`);
  const result = {
    mode: opts.mode,
    drills: drills.length,
    p50_ms: percentile(ms, 50),
    p95_ms: percentile(ms, 95),
    p99_ms: percentile(ms, 99),
    max_ms: Math.max(...ms),
    violations: report.violations.length,
    replica_kill_missed_heights: kills.reduce((s, k) => s + k.missedHeights, 0),
    profile: opts.profile,
    block_time_ms: policy.blockTimeMs,
    node_lease_ttl_ms: policy.leaseTtlMs,
    replica_kills: kills.length,
    unplanned_failovers: unplanned.length,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return report.violations.length > 0 ? 1 : 0;
}

runBenchmark('bench:failover', USAGE, parseOptions, run);
