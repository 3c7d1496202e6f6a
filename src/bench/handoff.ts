// `npm run bench:handoff -- [--runs N]`: planned switchovers (two-phase handoff) between healthy
// nodes of one chain, on a real local deployment (etcd, 2 `baton serve` replicas, one `baton sim`
// process per node). Each run asks the chain's supervisor for a switchover to the next target
// (round the chain's nodes, so the target alternates) and reads from the simulators' own activity logs the gap
// between the old active's last block and the new active's first one, and whether a height was
// skipped. After all runs the independent checker counts forks. One line per run goes to stderr;
// the last line on stdout is the result as JSON. docs/benchmarks.md explains the figures.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createEtcdClient } from '../adapters/etcd/client.js';
import { EtcdKeys } from '../adapters/etcd/keys.js';
import { EtcdOperationStore } from '../adapters/etcd/operation-store.js';
import { minNodeLeaseTtlMs, parseConfig } from '../config/config.js';
import { DEFAULT_POLICY, type ChainPolicy } from '../core/chain.js';
import { isFinal, type Operation } from '../core/operation.js';
import { waitFor } from '../devstack/process.js';
import { readActivityLog } from '../devstack/sim.js';
import { FAST_BATON_CONFIG, FAST_POLICY } from '../devstack/stack.js';
import type { ActivityEntry } from '../sim/activity.js';
import { checkActivity } from '../sim/checker.js';
import { BenchFleet } from './fleet.js';
import { percentile } from './measure.js';
import { intOption, runBenchmark, say } from './main.js';

const USAGE = `usage: npm run bench:handoff -- [options]

  --runs N            planned switchovers, each to the next node (default 20)
  --profile P         default: Baton's default settings (node lease TTL = the minimum they allow)
                      fast: the scenario tests' shorter timings (FAST_BATON_CONFIG, FAST_POLICY)
  --block-time MS     block time of the simulated nodes (default 250)
  --dir DIR           where logs go (default a new directory under ${tmpdir()}); kept afterwards`;

/** Every wait of a run ends within this long. */
const WAIT_MS = 30_000;
/** Blocks the active must have made under its term before it hands over (a leader in its stride). */
const STRIDE_BLOCKS = 3;
const CHAIN = 'bench-1';

type ProfileName = 'default' | 'fast';
type Block = Extract<ActivityEntry, { ev: 'block' }>;

interface Options {
  runs: number;
  profile: ProfileName;
  blockTimeMs: number;
  dir: string;
}

interface RunResult {
  readonly from: string;
  readonly to: string;
  readonly term: bigint;
  /** Height of the old active's last block (the ticket's h). */
  readonly h: number;
  /** Last block of the old active → first block of the new one (ms, activity log times). */
  readonly gapMs: number;
  /** Heights between the two blocks that nobody made (0 when the new one is h+1). */
  readonly missed: number;
  /** The new active's first block does not sit on the old active's last one. */
  readonly badParent: boolean;
  /** Last old block → PrepareHandoff answered (where in the slot the handoff began). */
  readonly preparedMs: number;
  /** PrepareHandoff answered → CompleteHandoff answered (the handoff itself, supervisor clock). */
  readonly handoffMs: number;
}

function profileOf(name: ProfileName, blockTimeMs: number): { batonConfig: Record<string, unknown> | undefined; policy: ChainPolicy } {
  const batonConfig = name === 'fast' ? (FAST_BATON_CONFIG as Record<string, unknown>) : undefined;
  const minLeaseTtlMs = minNodeLeaseTtlMs(parseConfig({ ...batonConfig }));
  const overrides: Partial<ChainPolicy> = name === 'fast' ? FAST_POLICY : { leaseTtlMs: Math.max(DEFAULT_POLICY.leaseTtlMs, minLeaseTtlMs) };
  const policy: ChainPolicy = { ...DEFAULT_POLICY, ...overrides, blockTimeMs };
  if (policy.leaseTtlMs < minLeaseTtlMs) throw new Error(`profile ${name}: node lease TTL ${policy.leaseTtlMs} ms is below the minimum ${minLeaseTtlMs} ms`);
  return { batonConfig, policy };
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '20' },
      profile: { type: 'string', default: 'default' },
      'block-time': { type: 'string', default: '250' },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const int = intOption;
  if (values.profile !== 'default' && values.profile !== 'fast') throw new Error(`--profile: "${values.profile}" is not one of default, fast`);
  const dir = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'baton-bench-handoff-'));
  mkdirSync(dir, { recursive: true });
  return {
    runs: int('runs', values.runs, 1, 10_000),
    profile: values.profile,
    blockTimeMs: int('block-time', values['block-time'], 50, 10_000),
    dir,
  };
}

function blocksOf(file: string): Block[] {
  return readActivityLog(file).filter((e): e is Block => e.ev === 'block');
}

/** Waits until the leader made STRIDE_BLOCKS blocks under its term and every standby is eligible. */
async function ready(fleet: BenchFleet): Promise<{ leader: string; term: bigint }> {
  const steady = await fleet.waitSteady(CHAIN, WAIT_MS);
  await waitFor(
    `${steady.leader} to make ${STRIDE_BLOCKS} blocks under term ${steady.term}`,
    () => (blocksOf(fleet.slot(CHAIN, steady.leader).logFile).filter((b) => BigInt(b.term) === steady.term).length >= STRIDE_BLOCKS ? true : undefined),
    WAIT_MS,
    50,
  );
  return fleet.waitSteady(CHAIN, WAIT_MS);
}

async function switchover(store: EtcdOperationStore, to: string, run: number): Promise<Operation> {
  const { operation } = await store.submit({ chainId: CHAIN, params: { kind: 'switchover', target: to, reason: `bench run ${run}` }, requestId: `bench-handoff-${process.pid}-${run}` }, undefined);
  return waitFor(
    `switchover ${operation.id} to ${to} to end`,
    async () => {
      const op = await store.get(operation.id);
      return op && isFinal(op.state) ? op : undefined;
    },
    WAIT_MS,
    25,
  );
}

async function oneRun(fleet: BenchFleet, store: EtcdOperationStore, run: number): Promise<RunResult> {
  const { leader: from } = await ready(fleet);
  const nodes = fleet.nodesOf(CHAIN).map((s) => s.node);
  // Round the chain: every node hands over to the next, so each run has another target.
  const to = nodes[(nodes.indexOf(from) + 1) % nodes.length]!;
  // An operator asks at any moment of a slot, not just after a block (which is when `ready` returns).
  await new Promise((r) => setTimeout(r, Math.random() * fleet.opts.blockTimeMs));
  const op = await switchover(store, to, run);
  if (op.state !== 'succeeded') throw new Error(`run ${run}: switchover ${from} -> ${to} ${op.state}: ${op.error?.code} ${op.error?.message}`);
  const term = BigInt(op.result!.term!);
  const first = await waitFor(
    `the first block of ${to} under term ${term}`,
    () => blocksOf(fleet.slot(CHAIN, to).logFile).find((b) => BigInt(b.term) === term),
    WAIT_MS,
    25,
  );
  const last = blocksOf(fleet.slot(CHAIN, from).logFile).filter((b) => b.t <= first.t).at(-1);
  if (!last) throw new Error(`run ${run}: ${from} made no block before ${to}'s first`);
  const at = (name: string) => op.steps.find((s) => s.name === name)?.atMs;
  const prepared = at('prepare') ?? NaN;
  return {
    from,
    to,
    term,
    h: last.number,
    gapMs: first.t - last.t,
    missed: Math.max(0, first.number - last.number - 1),
    badParent: first.number === last.number + 1 && first.parent !== last.hash,
    preparedMs: prepared - last.t,
    handoffMs: (at('complete') ?? NaN) - prepared,
  };
}

async function run(opts: Options): Promise<number> {
  const { batonConfig, policy } = profileOf(opts.profile, opts.blockTimeMs);
  say(
    `bench:handoff profile=${opts.profile} runs=${opts.runs} chain=1x3 replicas=2 block=${policy.blockTimeMs}ms ` +
      `probe=${policy.probeIntervalMs}ms nodeLease=${policy.leaseTtlMs}ms cpus=${cpus().length} load=${loadavg()[0]!.toFixed(2)} dir=${opts.dir}`,
  );
  const fleet = await BenchFleet.start({ dir: opts.dir, chains: 1, nodesPerChain: 3, replicas: 2, blockTimeMs: opts.blockTimeMs, policy, batonConfig });
  const client = createEtcdClient({ endpoints: fleet.devStack.etcd.endpoints });
  const store = new EtcdOperationStore(client, new EtcdKeys());
  const onSignal = (sig: NodeJS.Signals): void => {
    say(`${sig}: stopping the stack`);
    client.close();
    void fleet.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);

  const results: RunResult[] = [];
  try {
    for (let i = 0; i < opts.runs; i++) {
      const r = await oneRun(fleet, store, i);
      results.push(r);
      say(
        `run ${i + 1}/${opts.runs}: ${r.from} -> ${r.to} (term ${r.term}) at h=${r.h}: gap ${r.gapMs} ms, missed ${r.missed}` +
          `${r.badParent ? ', NOT ON ITS PARENT' : ''} [prepared ${r.preparedMs} ms after the last old block; handoff ${r.handoffMs} ms]`,
      );
    }
  } catch (err) {
    say(`bench:handoff failed: ${err instanceof Error ? err.message : String(err)}`);
    say(`logs: ${opts.dir} (replicas: ${fleet.replicaLogs().join(', ')}; nodes: ${join(opts.dir, 'sim')})`);
    client.close();
    await fleet.stop();
    return 1;
  }
  const load = loadavg()[0]!.toFixed(2);
  client.close();
  await fleet.stop();

  const report = checkActivity(fleet.logFiles().map((file) => ({ file, entries: readActivityLog(file) })));
  for (const v of report.violations) say(`${v.kind} ${v.chain}: ${v.message}`);
  const gaps = results.map((r) => r.gapMs);
  const handoffs = results.map((r) => r.handoffMs).filter((x) => Number.isFinite(x));
  const limit = policy.blockTimeMs + 100;
  say(
    `gap p50 ${percentile(gaps, 50)} ms, p95 ${percentile(gaps, 95)} ms, max ${Math.max(...gaps)} ms (target <= ${limit} ms; runs over it: ${gaps.filter((g) => g > limit).length}); ` +
      `handoff itself (prepare answered -> complete answered) p50 ${handoffs.length ? percentile(handoffs, 50) : 'n/a'} ms, max ${handoffs.length ? Math.max(...handoffs) : 'n/a'} ms`,
  );
  say(`checker: ${report.blocks} blocks in ${report.logs} logs, ${report.violations.length} violations; 1-min load average at the end ${load}; logs in ${opts.dir}`);
  const result = {
    runs: results.length,
    block_time_ms: policy.blockTimeMs,
    gap_p50_ms: percentile(gaps, 50),
    gap_max_ms: Math.max(...gaps),
    missed_heights: results.reduce((s, r) => s + r.missed, 0),
    forks: report.byKind.FORK,
    violations: report.violations.length,
    profile: opts.profile,
    node_lease_ttl_ms: policy.leaseTtlMs,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  const bad = report.violations.length > 0 || result.missed_heights > 0 || results.some((r) => r.badParent);
  return bad ? 1 : 0;
}

runBenchmark('bench:handoff', USAGE, parseOptions, run);
