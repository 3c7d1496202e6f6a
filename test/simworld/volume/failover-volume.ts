// The CI failover-volume run, split over 24 test files (tap runs two at a time, each file has
// its own timeout): seeds from `firstSeed` on, storm profile, until `target` simulated failovers.
// Worlds mix lease-mode and commit-mode chains and switch modes as they run, so the failovers are of
// both kinds. Every world must end without a violation and with every chain producing after the
// faults stop.
import type { Test } from 'tap';
import { runWorld } from '../../../src/simworld/world.js';

export const STORM = { profile: 'storm', faultEveryMs: 300, steps: 100_000 } as const;

export async function failoverVolume(t: Test, firstSeed: number, target: number): Promise<void> {
  Error.stackTraceLimit = 0; // errors are values in the world; their stacks are pure cost
  const started = process.hrtime.bigint();
  let failovers = 0;
  const byMode = { lease: 0, commit: 0 };
  let modeSwitches = 0;
  let commits = 0;
  let seeds = 0;
  let steps = 0;
  let simMs = 0;
  const bad: { seed: number; kinds: string[]; trace: string[] }[] = [];
  for (let seed = firstSeed; failovers < target; seed++) {
    const out = await runWorld({ seed, ...STORM });
    seeds++;
    failovers += out.failovers;
    byMode.lease += out.failoversByMode.lease;
    byMode.commit += out.failoversByMode.commit;
    modeSwitches += out.modeSwitches;
    commits += out.commits;
    steps += out.steps;
    simMs += out.simMs;
    if (out.violations.length > 0) bad.push({ seed, kinds: out.violations.map((v) => `${v.kind}: ${v.message}`), trace: out.trace.slice(-60) });
  }
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  t.same(
    bad.map((b) => ({ seed: b.seed, kinds: b.kinds })),
    [],
    `no violation and no liveness failure in ${seeds} seeds (rerun one: npm run sim -- --seed S --steps ${STORM.steps} --profile storm --fault-every-ms ${STORM.faultEveryMs})`,
    { trace: bad[0]?.trace },
  );
  t.ok(failovers >= target, `${failovers} simulated failovers`);
  t.ok(byMode.lease > 0 && byMode.commit > 0, `of them ${byMode.lease} under lease-mode terms and ${byMode.commit} under commit-mode terms`);
  t.comment(
    JSON.stringify({
      seeds,
      steps,
      failovers,
      failovers_lease: byMode.lease,
      failovers_commit: byMode.commit,
      mode_switches: modeSwitches,
      head_commits: commits,
      sim_hours: Number((simMs / 3_600_000).toFixed(2)),
      wall_s: Number(wallS.toFixed(1)),
    }),
  );
}
