// The correct control plane in the simulated world: no violation, every chain producing once faults
// stop, every accepted operation finished; and a world is a pure function of its seed. Worlds mix
// lease-mode and commit-mode chains and switch chains between the modes (spec changes) as they run.
import t from 'tap';
import { runWorld } from '../../src/simworld/world.js';

Error.stackTraceLimit = 0;

t.test('a seed replays exactly', async (t) => {
  const a = await runWorld({ seed: 7, steps: 20_000 });
  const b = await runWorld({ seed: 7, steps: 20_000 });
  t.same({ ...b, trace: b.trace }, { ...a, trace: a.trace });
  t.ok(a.failovers > 0, 'the faults caused failovers');
  t.ok(a.trace.length > 0, 'with a trace');
});

t.test('seeds with several replicas, chains and faults stay safe and live', async (t) => {
  for (const [seed, replicas, chains] of [
    [11, 2, 3],
    [12, 3, 2],
    [13, 3, 4],
  ] as const) {
    const out = await runWorld({ seed, steps: 40_000, replicas, chains });
    t.same(out.violations, [], `seed ${seed}: no violation (${out.failovers} failovers, ${out.operations.submitted} operations)`);
    t.equal(out.livenessFailures, 0, `seed ${seed}: every chain producing after the faults`);
    t.equal(out.operations.finished, out.operations.submitted, `seed ${seed}: nothing lost`);
  }
});

t.test('mixed fencing: failovers in both modes, mode switches both ways, head commits, and still safe and live', async (t) => {
  const lines: string[] = [];
  let lease = 0;
  let commit = 0;
  let switches = 0;
  for (const seed of [21, 22]) {
    const out = await runWorld({ seed, steps: 60_000, modeSwitchEveryMs: 15_000 });
    t.same(out.violations, [], `seed ${seed}: no violation`);
    t.equal(out.livenessFailures, 0, `seed ${seed}: every chain producing after the faults`);
    lease += out.failoversByMode.lease;
    commit += out.failoversByMode.commit;
    switches += out.modeSwitches;
    t.ok(out.commits > 0, `seed ${seed}: ${out.commits} head commits`);
    lines.push(...out.trace);
  }
  t.ok(lease > 0 && commit > 0, `failovers under lease-mode terms (${lease}) and commit-mode terms (${commit})`);
  t.ok(switches > 0, `${switches} mode switches of an active`);
  t.ok(lines.some((l) => l.includes('fencing mode lease -> commit')) && lines.some((l) => l.includes('fencing mode commit -> lease')), 'the operator switched chains both ways');
});
