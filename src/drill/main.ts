// `npm run drill -- --chains C --minutes M --seed S`: a real stack on this machine (3-member etcd,
// 2-3 Baton replicas, C chains of three simulated nodes, half of them in commit mode) and a seeded
// schedule of faults (schedule.ts), executed one step at a time (faults.ts); then the end checks
// (verify.ts). Progress goes to stderr; the last line on stdout is the result as JSON. The same
// seed replays the same schedule (printed at the start); real processes make the interleaving differ.
import { mkdirSync, mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { missedHeights, percentile } from '../bench/measure.js';
import { runBenchmark, say } from '../bench/main.js';
import { readActivityLog } from '../devstack/sim.js';
import { newRecord, runStep } from './faults.js';
import { describeStep, FAULT_KINDS, parseKinds, schedule, type FaultKind } from './schedule.js';
import { DRILL_POLICY, DrillStack, type DrillChain } from './stack.js';
import { checkEtcdHistory, checkLogs, checkOperations, nodeRefusals, readEtcdHistory } from './verify.js';

const USAGE = `usage: npm run drill -- [options]

  --chains C        chains of 3 simulated nodes (default 3)
  --modes M         fencing modes of the chains: mixed (default: every second chain in commit
                    mode), lease or commit
  --minutes M       how long faults are injected (default 3; decimals allowed)
  --seed S          schedule seed (default: random, printed); the same seed replays the same schedule
  --replicas N      Baton replicas, 2 or 3 (default 2)
  --kinds K,K       only these fault kinds (default: all: ${FAULT_KINDS.join(', ')})
  --steps N         stop after N steps even if time is left
  --focus I         every fault on chain I (1-based); the other chains must stay untouched
  --gap MS          pause between steps (default 500)
  --hold MS         hold every fault this long instead of the schedule's draw (targeted drills)
  --block-time MS   block time (default 200)
  --unsafe LIST     NEGATIVE CONTROLS ONLY: deliberately broken behaviour (BATON_UNSAFE_FAULTS for
                    every replica and node), e.g. accept-lower-terms, no-fence-compare
  --print-schedule  print the first --steps (default 50) steps of the seed's schedule and exit
  --dir DIR         where logs go (default a new directory under ${tmpdir()}); kept afterwards`;

interface Options {
  chains: number;
  minutes: number;
  seed: number;
  replicas: number;
  kinds: FaultKind[];
  steps: number | undefined;
  focus: number | undefined;
  gapMs: number;
  holdMs: number | undefined;
  blockTimeMs: number;
  unsafe: string | undefined;
  modes: 'mixed' | 'lease' | 'commit';
  printSchedule: boolean;
  dir: string;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      chains: { type: 'string', default: '3' },
      minutes: { type: 'string', default: '3' },
      seed: { type: 'string' },
      replicas: { type: 'string', default: '2' },
      kinds: { type: 'string', default: '' },
      steps: { type: 'string' },
      focus: { type: 'string' },
      gap: { type: 'string', default: '500' },
      hold: { type: 'string' },
      'block-time': { type: 'string', default: '200' },
      unsafe: { type: 'string' },
      modes: { type: 'string', default: 'mixed' },
      'print-schedule': { type: 'boolean', default: false },
      dir: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const num = (name: string, v: string, min: number, max: number, integer = true): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
      throw new Error(`--${name}: must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}, got ${v}`);
    }
    return n;
  };
  const chains = num('chains', values.chains, 1, 50);
  const modes = values.modes;
  if (modes !== 'mixed' && modes !== 'lease' && modes !== 'commit') throw new Error(`--modes: must be mixed, lease or commit, got ${modes}`);
  const focus = values.focus === undefined ? undefined : num('focus', values.focus, 1, chains) - 1;
  const opts: Omit<Options, 'dir'> = {
    chains,
    minutes: num('minutes', values.minutes, 0.1, 24 * 60, false),
    seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : num('seed', values.seed, 0, 2 ** 32 - 1),
    replicas: num('replicas', values.replicas, 2, 3),
    kinds: parseKinds(values.kinds),
    steps: values.steps === undefined ? undefined : num('steps', values.steps, 1, 1_000_000),
    focus,
    gapMs: num('gap', values.gap, 0, 600_000),
    holdMs: values.hold === undefined ? undefined : num('hold', values.hold, 0, 600_000),
    blockTimeMs: num('block-time', values['block-time'], 50, 5000),
    unsafe: values.unsafe,
    modes,
    printSchedule: values['print-schedule'],
  };
  if (opts.printSchedule) return { ...opts, dir: '' };
  const dir = values.dir ? resolve(values.dir) : mkdtempSync(join(tmpdir(), 'baton-drill-'));
  mkdirSync(dir, { recursive: true });
  return { ...opts, dir };
}

function chainsOf(opts: Options): DrillChain[] {
  return Array.from({ length: opts.chains }, (_, i) => ({ id: `drill-${i + 1}`, mode: opts.modes === 'mixed' ? (i % 2 === 1 ? 'commit' : 'lease') : opts.modes }));
}

/** Faults that hit every chain at once (replicas, etcd). */
const SHARED_KINDS = /replica|supervisor|etcd|rolling/;
/** Node and operator kinds only: with --focus, faults that hit every chain at once are left out. */
const CHAIN_LOCAL: readonly FaultKind[] = FAULT_KINDS.filter((k) => !SHARED_KINDS.test(k));

async function run(opts: Options): Promise<number> {
  const chains = chainsOf(opts);
  const ids = chains.map((c) => c.id);
  const kinds = opts.kinds.length > 0 ? opts.kinds : opts.focus !== undefined ? [...CHAIN_LOCAL] : [...FAULT_KINDS];
  const plan = { seed: opts.seed, chains: opts.chains, kinds, focusChain: opts.focus };
  if (opts.printSchedule) {
    for (const s of schedule(plan, opts.steps ?? 50)) process.stdout.write(`${describeStep(s, ids)}\n`);
    return 0;
  }
  say(
    `drill seed=${opts.seed} chains=${opts.chains} (${chains.map((c) => `${c.id}:${c.mode}`).join(' ')}) minutes=${opts.minutes} replicas=${opts.replicas} ` +
      `etcd=3 block=${opts.blockTimeMs}ms nodeLease=${DRILL_POLICY.leaseTtlMs}ms cpus=${cpus().length} load=${loadavg()[0]!.toFixed(2)} dir=${opts.dir}` +
      (opts.unsafe ? ` UNSAFE=${opts.unsafe} (negative control: violations are expected)` : ''),
  );
  say(`replay: npm run drill -- ${replayArgs(opts)}`);
  const startedAt = Date.now();
  // Nodes (and nodes restarted later) inherit this process's environment; replicas get it explicitly.
  if (opts.unsafe) process.env.BATON_UNSAFE_FAULTS = opts.unsafe;
  else delete process.env.BATON_UNSAFE_FAULTS;
  const stack = await DrillStack.start({
    dir: opts.dir,
    chains,
    replicas: opts.replicas,
    blockTimeMs: opts.blockTimeMs,
    env: opts.unsafe ? { BATON_UNSAFE_FAULTS: opts.unsafe } : undefined,
  });
  const onSignal = (sig: NodeJS.Signals): void => {
    say(`${sig}: stopping the stack`);
    void stack.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);

  const record = newRecord();
  const note = (line: string) => say(line);
  const ctx = { stack, chainIds: ids, record, recoverMs: 60_000, note };
  let steps = 0;
  const initialTerms = new Map<string, bigint>();
  let faultsFrom = 0;
  let faultsTo = 0;
  let etcdReport: ReturnType<typeof checkEtcdHistory> | undefined;
  let opsReport: Awaited<ReturnType<typeof checkOperations>> | undefined;
  let error: unknown;
  try {
    for (const id of ids) initialTerms.set(id, (await stack.waitProducing(id, 60_000)).term);
    faultsFrom = Date.now();
    const until = faultsFrom + opts.minutes * 60_000;
    // The schedule is drawn in batches: the same seed gives the same sequence however far a run gets.
    let batch = schedule(plan, 64);
    while (Date.now() < until && (opts.steps === undefined || steps < opts.steps)) {
      if (steps >= batch.length) batch = schedule(plan, batch.length * 2);
      const drawn = batch[steps]!;
      const step = opts.holdMs === undefined ? drawn : { ...drawn, holdMs: opts.holdMs };
      const t0 = Date.now();
      await runStep(ctx, step);
      say(`${describeStep(step, ids)} done in ${Date.now() - t0} ms (+${((Date.now() - faultsFrom) / 1000).toFixed(0)}s)`);
      steps++;
      if (opts.gapMs > 0) await new Promise((r) => setTimeout(r, opts.gapMs));
    }
    faultsTo = Date.now();
    for (const id of ids) {
      const end = await stack.waitProducing(id, 60_000).catch((err: Error) => say(`at the end: ${err.message}`));
      // Many chains, faults on one: the others keep the leader and term they started with.
      if (opts.focus !== undefined && id !== ids[opts.focus] && end && end.term !== initialTerms.get(id)) {
        record.findings.push({ kind: 'BLAST_RADIUS', chain: id, message: `term ${initialTerms.get(id)} -> ${end.term} although every fault hit ${ids[opts.focus]}` });
      }
    }
    // While the stack still runs: every accepted operation final, and etcd's whole history.
    opsReport = await checkOperations(() => stack.dev.api(), record.operations);
    etcdReport = checkEtcdHistory(await readEtcdHistory(stack.dev.etcd.endpoints));
  } catch (err) {
    error = err;
  }
  await stack.stop();
  if (error) {
    say(`drill failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    say(`logs: ${opts.dir}; replay: --seed ${opts.seed}`);
    return 1;
  }

  const checker = checkLogs(stack.logFiles());
  for (const v of checker.violations.slice(0, 20)) say(`checker ${v.kind} ${v.chain}: ${v.message}`);
  for (const v of etcdReport!.violations.slice(0, 20)) say(`etcd ${v.kind} ${v.chain}: ${v.message}`);
  for (const f of record.findings) say(`drill ${f.kind} ${f.chain}: ${f.message}`);
  for (const l of opsReport!.lost) say(`operation ${l.id} never finished (state ${l.state})`);
  const liveness = new Set(['NOT_RECOVERED', 'NO_FAILOVER']);
  const safety = record.findings.filter((f) => !liveness.has(f.kind));
  const refusals = nodeRefusals(stack.logFiles(), record.ownStale);
  // With no replica or etcd fault, one supervisor drives each chain from start to end: a command
  // the node refuses as older than one it already got is the supervisor breaking its own order
  // (overlapping ticks). With replica faults, a woken replica makes some. A start refused as
  // ALREADY_ACTIVE under the term the node is already active in is not counted: it is also the
  // retry of a start whose reply was lost (its deadline fired on a loaded machine), which is
  // allowed and harmless.
  const singleSupervisor = !kinds.some((k) => SHARED_KINDS.test(k));
  const reordered = singleSupervisor ? (refusals.STALE_TERM ?? 0) : 0;
  if (reordered > 0) say(`drill COMMANDS_REORDERED: nodes refused ${reordered} commands of a single supervisor as older than one they had: ${JSON.stringify(refusals)}`);
  const violations = checker.violations.length + etcdReport!.violations.length + safety.length + reordered;
  const missed = ids.reduce((sum, id) => {
    const seen = new Map<string, number>();
    for (const s of stack.nodesOf(id)) for (const e of readActivityLog(s.logFile)) if (e.ev === 'block') seen.set(`${e.number}:${e.hash}`, e.t);
    return sum + missedHeights([...seen.values()], faultsFrom, faultsTo, opts.blockTimeMs);
  }, 0);
  const ms = record.failovers.map((f) => f.ms);
  const byKind = (xs: { kind: string }[]) => xs.reduce<Record<string, number>>((o, x) => ({ ...o, [x.kind]: (o[x.kind] ?? 0) + 1 }), {});
  say(
    `checker: ${checker.blocks} blocks in ${checker.logs} logs; etcd: ${etcdReport!.revisions} revisions, ${etcdReport!.terms} terms, ${etcdReport!.heads} head writes; ` +
      `operations: ${opsReport!.accepted} accepted, ${opsReport!.final} final; stale commands refused: ${record.staleRefused}; ` +
      `fencing lines after replica pauses: ${record.fencedAfterPause}; replicas cut off from etcd that stopped acting: ${record.fencedAfterCut}; skipped steps: ${record.skipped}; wall ${((Date.now() - startedAt) / 1000).toFixed(0)} s; logs in ${opts.dir}`,
  );
  const result = {
    seed: opts.seed,
    chains: opts.chains,
    modes: opts.modes,
    minutes: opts.minutes,
    steps,
    faults: record.faults,
    failovers: ms.length,
    failover_p50_ms: ms.length ? percentile(ms, 50) : null,
    failover_p99_ms: ms.length ? percentile(ms, 99) : null,
    violations,
    violations_by_kind: {
      ...nonZero(checker.byKind),
      ...byKind(etcdReport!.violations),
      ...byKind(safety),
      ...(reordered > 0 ? { COMMANDS_REORDERED: reordered } : {}),
    },
    liveness_failures: byKind(record.findings.filter((f) => liveness.has(f.kind))),
    missed_heights: missed,
    operations: opsReport!.accepted,
    lost_operations: opsReport!.lost.length,
    stale_refused: record.staleRefused,
    fenced_after_pause: record.fencedAfterPause,
    self_fenced_on_cut: record.fencedAfterCut,
    node_refusals: refusals,
    ...(opts.unsafe ? { unsafe: opts.unsafe } : {}),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return violations > 0 || opsReport!.lost.length > 0 || safety.length < record.findings.length ? 1 : 0;
}

/** The options that shape the schedule and the stack, as flags: the same run again. */
function replayArgs(o: Options): string {
  const parts = [`--chains ${o.chains}`, `--minutes ${o.minutes}`, `--seed ${o.seed}`, `--replicas ${o.replicas}`];
  if (o.kinds.length > 0) parts.push(`--kinds ${o.kinds.join(',')}`);
  if (o.steps !== undefined) parts.push(`--steps ${o.steps}`);
  if (o.focus !== undefined) parts.push(`--focus ${o.focus + 1}`);
  if (o.holdMs !== undefined) parts.push(`--hold ${o.holdMs}`);
  if (o.unsafe) parts.push(`--unsafe ${o.unsafe}`);
  if (o.modes !== 'mixed') parts.push(`--modes ${o.modes}`);
  parts.push(`--gap ${o.gapMs}`, `--block-time ${o.blockTimeMs}`);
  return parts.join(' ');
}

function nonZero(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).filter(([, n]) => n > 0));
}

runBenchmark('drill', USAGE, parseOptions, run);
