// `npm run sim -- --seed S --steps N` / `--seeds K`: runs seeded simulated worlds (see world.ts),
// prints one line per seed and a final JSON summary (failovers split by the fencing mode of the new
// term); on a violation prints the seed and the trace that led to it (rerun that seed to replay it
// exactly). Exit code 1 on any violation.
import { parseArgs } from 'node:util';
import { runWorld, type BrokenVariant, type Fencing } from './world.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string' },
    steps: { type: 'string', default: '20000' },
    chains: { type: 'string' },
    replicas: { type: 'string' },
    variant: { type: 'string' },
    'fault-every-ms': { type: 'string' },
    'leader-bias': { type: 'string' },
    'fault-scale': { type: 'string' },
    profile: { type: 'string' },
    fencing: { type: 'string', default: 'mixed' },
    'mode-switch-every-ms': { type: 'string' },
    quiet: { type: 'boolean', default: false },
    trace: { type: 'boolean', default: false },
    'freeze-before-start': { type: 'boolean', default: false },
  },
});

const first = values.seed !== undefined ? Number(values.seed) : 1;
const count = values.seeds !== undefined ? Number(values.seeds) : 1;
const steps = Number(values.steps);
const fencing = values.fencing as Fencing;
if (!Number.isInteger(first) || !Number.isInteger(count) || count < 1 || !Number.isInteger(steps) || steps < 1 || !['mixed', 'lease', 'commit'].includes(fencing)) {
  console.error(
    'usage: npm run sim -- [--seed S] [--seeds K] [--steps N] [--chains C] [--replicas R] [--profile mixed|storm]\n' +
      '         [--fencing mixed|lease|commit] [--mode-switch-every-ms MS]\n' +
      '         [--fault-every-ms MS] [--leader-bias P] [--fault-scale X] [--freeze-before-start] [--variant V] [--quiet] [--trace]',
  );
  process.exit(2);
}

// Errors are values in the world (timeouts, refusals); their stack traces are pure cost here.
Error.stackTraceLimit = 0;
const started = process.hrtime.bigint();
let totalSteps = 0;
let failovers = 0;
const byMode = { lease: 0, commit: 0 };
let modeSwitches = 0;
let commits = 0;
let violations = 0;
let livenessFailures = 0;
let simMs = 0;
for (let seed = first; seed < first + count; seed++) {
  const out = await runWorld({
    seed,
    steps,
    chains: values.chains ? Number(values.chains) : undefined,
    replicas: values.replicas ? Number(values.replicas) : undefined,
    variant: values.variant === undefined ? undefined : (values.variant.split(',') as BrokenVariant[]),
    faultEveryMs: values['fault-every-ms'] ? Number(values['fault-every-ms']) : undefined,
    leaderBias: values['leader-bias'] ? Number(values['leader-bias']) : undefined,
    freezeBeforeStart: values['freeze-before-start'],
    faultScale: values['fault-scale'] ? Number(values['fault-scale']) : undefined,
    profile: values.profile === 'storm' ? 'storm' : undefined,
    fencing,
    modeSwitchEveryMs: values['mode-switch-every-ms'] ? Number(values['mode-switch-every-ms']) : undefined,
  });
  totalSteps += out.steps;
  failovers += out.failovers;
  byMode.lease += out.failoversByMode.lease;
  byMode.commit += out.failoversByMode.commit;
  modeSwitches += out.modeSwitches;
  commits += out.commits;
  simMs += out.simMs;
  const bad = out.violations.filter((v) => v.kind !== 'LIVENESS');
  violations += bad.length;
  livenessFailures += out.livenessFailures;
  const ok = out.violations.length === 0;
  if (!values.quiet || !ok) {
    console.log(
      `seed ${seed}: ${ok ? 'ok' : 'FAILED'} steps=${out.steps} sim=${(out.simMs / 1000).toFixed(0)}s failovers=${out.failovers} (lease ${out.failoversByMode.lease}, commit ${out.failoversByMode.commit}) mode-switches=${out.modeSwitches} commits=${out.commits} ops=${out.operations.finished}/${out.operations.submitted}` +
        (ok ? '' : ` violations=${out.violations.map((v) => v.kind).join(',')}`),
    );
  }
  if (values.trace && ok) for (const line of out.trace) console.log(line);
  if (!ok) {
    console.log(`--- seed ${seed}: trace leading to ${out.violations[0]!.kind} (rerun: npm run sim -- --seed ${seed} --steps ${steps}${values.variant ? ` --variant ${values.variant}` : ''}${values['freeze-before-start'] ? ' --freeze-before-start' : ''}${values['fault-every-ms'] ? ` --fault-every-ms ${values['fault-every-ms']}` : ''}${values['leader-bias'] ? ` --leader-bias ${values['leader-bias']}` : ''}${values['fault-scale'] ? ` --fault-scale ${values['fault-scale']}` : ''}${values.profile ? ` --profile ${values.profile}` : ''}${fencing !== 'mixed' ? ` --fencing ${fencing}` : ''}${values['mode-switch-every-ms'] ? ` --mode-switch-every-ms ${values['mode-switch-every-ms']}` : ''}) ---`);
    for (const line of out.trace) console.log(line);
    for (const v of out.violations) console.log(`${v.kind} at ${(v.atMs / 1000).toFixed(3)}s on ${v.chainId}: ${v.message}`);
    console.log('---');
  }
}
const wallS = Number(process.hrtime.bigint() - started) / 1e9;
console.log(
  JSON.stringify({
    seeds: count,
    steps: totalSteps,
    failovers,
    violations,
    liveness_failures: livenessFailures,
    sim_hours: Number((simMs / 3_600_000).toFixed(3)),
    wall_s: Number(wallS.toFixed(2)),
    // Failovers by the fencing mode of the new term; mode switches of an active are not failovers.
    failovers_lease: byMode.lease,
    failovers_commit: byMode.commit,
    mode_switches: modeSwitches,
    head_commits: commits,
  }),
);
process.exitCode = violations > 0 || livenessFailures > 0 ? 1 : 0;
