// `npm run bench:scale -- [--chains 1000]`: a fleet of chains × nodes (hosted by a few simulator
// processes) supervised by N replicas on this machine. Measures, over a window in which the fleet
// runs and then nodes are killed one by one: each replica's CPU % and peak RSS, the probe rate
// Baton achieved against the rate its policy asks for, etcd requests per second (etcd's own
// /metrics), and the failover time of each kill (kill → first block of the next term, from the
// nodes' activity logs). Ends with the invariant checker over every activity log. Progress on
// stderr; the last line on stdout is the result as JSON. docs/benchmarks.md explains the figures.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { minNodeLeaseTtlMs, parseConfig } from '../config/config.js';
import { DEFAULT_POLICY, type ChainPolicy, type FencingMode } from '../core/chain.js';
import { steadyProbesPerS } from '../core/probe-plan.js';
import { waitFor } from '../devstack/process.js';
import { readActivityLog } from '../devstack/sim.js';
import type { ActivityEntry } from '../sim/activity.js';
import { checkActivity } from '../sim/checker.js';
import { LogTail } from './log-tail.js';
import { intOption, runBenchmark, say } from './main.js';
import { percentile } from './measure.js';
import { etcdUnaryByMethod, ProcWatch, scrape, sumOf, type PromSample } from './proc-stats.js';
import { ScaleFleet } from './scale-fleet.js';

const USAGE = `usage: npm run bench:scale -- [options]

  --chains N      chains (default 1000)
  --nodes N       simulated nodes per chain (default 3)
  --replicas N    Baton replicas (default 2)
  --sims N        simulator processes hosting the nodes, a whole chain per process (default 4)
  --kills N       nodes killed one after the other while the fleet runs, each the active of a
                  different chain (default 20)
  --mode M        fencing mode: commit (default; failover need not wait out the old node lease)
                  or lease (a failover waits out the old lease, ~4.5 s by design)
  --block-ms MS   block time of the nodes (default ${DEFAULT_POLICY.blockTimeMs}, Baton's default policy)
  --probe-ms MS   probe interval of the chains' policy (default ${DEFAULT_POLICY.probeIntervalMs}, Baton's default policy):
                  a failed active is seen after 3 of these, and the node calls a chain costs follow it
  --settle-s S    how long the fleet may take to settle after registration (default 600); the
                  chains not steady by then are reported, not waited for
  --window-s S    seconds of steady running measured before the kills start (default 30)
  --cpu-prof      write V8 CPU profiles of the replicas to DIR/prof (when they stop)
  --dir DIR       where logs go (default a new directory under ${tmpdir()}); kept afterwards`;

interface Options {
  chains: number;
  nodes: number;
  replicas: number;
  sims: number;
  kills: number;
  mode: FencingMode;
  blockMs: number;
  probeMs: number;
  windowS: number;
  settleS: number;
  cpuProf: boolean;
  dir: string;
}

/** A kill whose chain shows no new term within this long counts this long (a lower bound). */
const KILL_WAIT_MS = 30_000;
/**
 * Baton's defaults except the per-principal REST rate limit: the benchmark is one client that
 * registers and polls a thousand chains, which the default 50 requests/s would stretch into minutes
 * of setup (the limit protects the API; it is not what this benchmark measures).
 */
const BENCH_CONFIG = { limits: { ratePerSecond: 2000, burst: 2000 } };

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      chains: { type: 'string', default: '1000' },
      nodes: { type: 'string', default: '3' },
      replicas: { type: 'string', default: '2' },
      sims: { type: 'string', default: '4' },
      kills: { type: 'string', default: '20' },
      mode: { type: 'string', default: 'commit' },
      'block-ms': { type: 'string', default: String(DEFAULT_POLICY.blockTimeMs) },
      'probe-ms': { type: 'string', default: String(DEFAULT_POLICY.probeIntervalMs) },
      'window-s': { type: 'string', default: '30' },
      'settle-s': { type: 'string', default: '600' },
      'cpu-prof': { type: 'boolean', default: false },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const mode = values.mode;
  if (mode !== 'lease' && mode !== 'commit') throw new Error(`--mode: "${mode}" is not one of lease, commit`);
  const chains = intOption('chains', values.chains, 1, 10_000);
  const kills = intOption('kills', values.kills, 0, 10_000);
  if (kills > chains) throw new Error(`--kills: each kill takes a different chain, so at most --chains (${chains})`);
  const nodes = intOption('nodes', values.nodes, 2, 9);
  const dir = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'baton-scale-'));
  mkdirSync(dir, { recursive: true });
  return {
    chains,
    nodes,
    replicas: intOption('replicas', values.replicas, 1, 5),
    sims: intOption('sims', values.sims, 1, 64),
    kills,
    mode,
    blockMs: intOption('block-ms', values['block-ms'], 50, 10_000),
    probeMs: intOption('probe-ms', values['probe-ms'], 50, 10_000),
    windowS: intOption('window-s', values['window-s'], 1, 3600),
    settleS: intOption('settle-s', values['settle-s'], 1, 7200),
    cpuProf: values['cpu-prof'],
    dir,
  };
}

interface KillResult {
  readonly chain: string;
  readonly killed: string;
  readonly next: string;
  readonly ms: number;
  readonly timedOut: boolean;
}

/**
 * The next chain to kill the active of, from `from` on: steady now, not killed before, and not
 * within anti-flap of its last leader change (Baton would rightly refuse to fail it over).
 */
async function nextVictim(fleet: ScaleFleet, from: number, taken: Set<string>, antiFlapMs: number, steadyIds: readonly string[]): Promise<{ chain: string; skipped: number }> {
  // The chains found steady at the end of the settling come first (each is checked again), so a
  // fleet of mostly unsettled chains is not scanned one GET at a time for every kill.
  const all = fleet.chainIds();
  const first = new Set(steadyIds);
  const rotate = (xs: string[]): string[] => {
    const at = xs.findIndex((c) => all.indexOf(c) >= from);
    return at <= 0 ? xs : [...xs.slice(at), ...xs.slice(0, at)];
  };
  const ids = [...rotate(all.filter((c) => first.has(c))), ...rotate(all.filter((c) => !first.has(c)))];
  for (let i = 0; i < ids.length; i++) {
    const chain = ids[i]!;
    if (taken.has(chain)) continue;
    const s = await fleet.steady(chain).catch(() => undefined);
    if (s && (s.lastChangeAtMs === null || Date.now() - s.lastChangeAtMs > antiFlapMs + 1000)) return { chain, skipped: i };
  }
  throw new Error('no chain left that is steady and out of its anti-flap period');
}

/** Crashes the chain's active node and times kill → the first block of a later term on another node. */
async function killActive(fleet: ScaleFleet, chain: string): Promise<KillResult> {
  const before = await waitFor(`${chain} to be steady`, () => fleet.steady(chain), KILL_WAIT_MS, 200);
  const tails = fleet.nodeIds().filter((n) => n !== before.leader).map((n) => new LogTail(fleet.node(chain, n).logFile));
  const killAt = await fleet.crashNode(chain, before.leader);
  const first = await waitFor(
    `the first block of a term above ${before.term} on ${chain} after killing ${before.leader}`,
    () => {
      for (const tail of tails) {
        const b = tail.read().find((e): e is Extract<ActivityEntry, { ev: 'block' }> => e.ev === 'block' && BigInt(e.term) > before.term);
        if (b) return b;
      }
      return undefined;
    },
    KILL_WAIT_MS,
    25,
  ).catch(() => undefined);
  // No new term within the wait: counted at the wait, a lower bound of that failover's time.
  if (!first) return { chain, killed: before.leader, next: 'none', ms: KILL_WAIT_MS, timedOut: true };
  return { chain, killed: before.leader, next: first.node, ms: first.t - killAt, timedOut: false };
}

async function scrapeAll(fleet: ScaleFleet): Promise<{ baton: PromSample[][]; etcd: PromSample[] }> {
  const [baton, etcd] = await Promise.all([
    Promise.all(fleet.replicas.map((r) => scrape(`${r.opsUrl}/metrics`))),
    scrape(`${fleet.etcd.endpoints[0]}/metrics`),
  ]);
  return { baton, etcd };
}

async function run(opts: Options): Promise<number> {
  const config = parseConfig(BENCH_CONFIG);
  const policy: ChainPolicy = { ...DEFAULT_POLICY, leaseTtlMs: minNodeLeaseTtlMs(config), blockTimeMs: opts.blockMs, probeIntervalMs: opts.probeMs, fencingMode: opts.mode };
  // What the probe plan asks of a steady fleet: the active every round, each quiet standby every
  // QUIET_STANDBY_EVERY rounds (core/probe-plan.ts).
  const probeTarget = opts.chains * steadyProbesPerS(policy, opts.nodes);
  say(
    `bench:scale chains=${opts.chains}x${opts.nodes} replicas=${opts.replicas} sims=${opts.sims} kills=${opts.kills} mode=${opts.mode} ` +
      `block=${policy.blockTimeMs}ms probe=${policy.probeIntervalMs}ms x${policy.failureThreshold} nodeLease=${policy.leaseTtlMs}ms ` +
      `cpus=${cpus().length} load=${loadavg().map((l) => l.toFixed(2)).join(' ')} dir=${opts.dir}`,
  );
  const t0 = Date.now();
  const fleet = await ScaleFleet.start({
    dir: opts.dir,
    chains: opts.chains,
    nodesPerChain: opts.nodes,
    replicas: opts.replicas,
    simProcesses: opts.sims,
    policy,
    batonConfig: BENCH_CONFIG,
    say,
    batonNodeArgs: opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${join(opts.dir, 'prof')}`] : undefined,
  });
  const onSignal = (sig: NodeJS.Signals): void => {
    say(`${sig}: stopping the fleet`);
    void fleet.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);

  const kills: KillResult[] = [];
  let registerMs: number, steady: { ms: number; steady: number; steadyIds: string[] }, windowS: number, skipped = 0, unplanned: number;
  let killError: string | undefined;
  let cpu: { replicas: ReturnType<ProcWatch['finish']>; sims: ReturnType<ProcWatch['finish']>; etcd: ReturnType<ProcWatch['finish']> };
  let probeRate: number, etcdOps: number, etcdByMethod: [string, number][];
  try {
    registerMs = await fleet.registerChains();
    say(`  ${opts.chains} chains registered in ${registerMs} ms (${fleet.registerRetries} PUTs retried)`);
    steady = await fleet.waitAllSteady(opts.settleS * 1000);
    say(`  ${steady.steady}/${opts.chains} chains steady ${steady.ms} ms after the last was registered (${Date.now() - t0} ms after the start)`);
    // A supervisor that just took a chain waits out any lease a predecessor might have granted
    // before it starts a new active; let that bound pass so the kills measure plain failovers.
    await sleep(policy.leaseTtlMs + 1000);

    const replicaWatch = new ProcWatch(fleet.replicas.map((r) => r.pid));
    const simWatch = new ProcWatch(fleet.sims.map((s) => s.pid));
    const etcdWatch = new ProcWatch(fleet.etcd.members.map((m) => m.pid));
    const watches = [replicaWatch, simWatch, etcdWatch];
    const before = await scrapeAll(fleet);
    const windowStart = Date.now();
    for (const w of watches) w.start();
    const sampler = setInterval(() => watches.forEach((w) => w.sample()), 2000);
    try {
      say(`  measuring: ${opts.windowS} s of steady running, then ${opts.kills} kills`);
      await sleep(opts.windowS * 1000);
      const taken = new Set<string>();
      for (let k = 0; k < opts.kills; k++) {
        // A fleet that cannot keep its chains steady is a result: the kills stop, the figures of
        // the window are still reported, with what stopped them.
        try {
          const v = await nextVictim(fleet, Math.floor((k * opts.chains) / opts.kills), taken, policy.antiFlapMs, steady.steadyIds);
          taken.add(v.chain);
          skipped += v.skipped;
          const r = await killActive(fleet, v.chain);
          kills.push(r);
          say(`  kill ${k + 1}/${opts.kills} ${v.chain}${v.skipped > 0 ? ` (${v.skipped} chains skipped: not steady or in anti-flap)` : ''}: ${r.killed} -> ${r.next}, first block of the new term after ${r.ms} ms`);
        } catch (err) {
          killError = err instanceof Error ? err.message : String(err);
          say(`  kill ${k + 1}/${opts.kills} failed, no more kills: ${killError}`);
          break;
        }
      }
    } finally {
      clearInterval(sampler);
    }
    const after = await scrapeAll(fleet);
    windowS = (Date.now() - windowStart) / 1000;
    cpu = { replicas: replicaWatch.finish(), sims: simWatch.finish(), etcd: etcdWatch.finish() };
    const probes = (s: PromSample[][]) => s.reduce((sum, m) => sum + sumOf(m, 'baton_node_probes_total'), 0);
    probeRate = (probes(after.baton) - probes(before.baton)) / windowS;
    // Leader changes in the window that no kill caused: Baton replacing a leader by itself
    // (a stall or failed probes under load), which the benchmark reports rather than hides.
    const changes = (s: PromSample[][]) => s.reduce((sum, m) => sum + sumOf(m, 'baton_leader_changes_total', { trigger: 'auto' }), 0);
    unplanned = changes(after.baton) - changes(before.baton) - kills.length;
    const b = etcdUnaryByMethod(before.etcd);
    etcdByMethod = [...etcdUnaryByMethod(after.etcd)].map(([m, n]): [string, number] => [m, (n - (b.get(m) ?? 0)) / windowS]).filter(([, r]) => r > 0);
    etcdOps = etcdByMethod.reduce((s, [, r]) => s + r, 0);
  } catch (err) {
    say(`bench:scale failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    say(`logs: ${opts.dir}`);
    await fleet.stop();
    return 1;
  }
  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  await fleet.stop();

  const report = checkActivity(fleet.logFiles().map((file) => ({ file, entries: readActivityLog(file) })));
  for (const v of report.violations.slice(0, 20)) say(`${v.kind} ${v.chain}: ${v.message}`);
  say(`  etcd requests/s by method: ${etcdByMethod.map(([m, r]) => `${m} ${r.toFixed(1)}`).join(', ')}`);
  say(`  etcd CPU ${cpu.etcd.cpuPct.join(', ')} %, RSS ${cpu.etcd.rssMb.join(', ')} MiB; window ${windowS.toFixed(1)} s; load average at the end ${load}`);
  say(`checker: ${report.blocks} blocks in ${report.logs} logs, ${report.violations.length} violations; logs in ${opts.dir}`);
  const ms = kills.map((k) => k.ms);
  const result = {
    chains: opts.chains,
    nodes: opts.chains * opts.nodes,
    replicas: opts.replicas,
    sim_processes: fleet.sims.length,
    mode: opts.mode,
    block_ms: policy.blockTimeMs,
    probe_ms: policy.probeIntervalMs,
    register_ms: registerMs,
    register_retries: fleet.registerRetries,
    steady_ms: steady.ms,
    steady_chains: steady.steady,
    window_s: Math.round(windowS),
    replica_cpu_pct: cpu.replicas.cpuPct,
    replica_rss_mb: cpu.replicas.rssMb,
    sim_cpu_pct: cpu.sims.cpuPct,
    etcd_cpu_pct: cpu.etcd.cpuPct[0] ?? 0,
    probe_rate_per_s: Math.round(probeRate),
    probe_rate_target_per_s: Math.round(probeTarget),
    etcd_ops_per_s: Math.round(etcdOps),
    kills: kills.length,
    kills_timed_out: kills.filter((k) => k.timedOut).length,
    kill_candidates_skipped: skipped,
    unplanned_failovers: unplanned,
    failover_p50_ms: ms.length > 0 ? percentile(ms, 50) : null,
    failover_p99_ms: ms.length > 0 ? percentile(ms, 99) : null,
    failover_max_ms: ms.length > 0 ? Math.max(...ms) : null,
    violations: report.violations.length,
    ...(killError ? { kills_stopped_by: killError } : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return report.violations.length > 0 || killError ? 1 : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

runBenchmark('bench:scale', USAGE, parseOptions, run);
