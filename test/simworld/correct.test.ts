// The correct control plane in the simulated world: no violation, every chain producing once faults
// stop, every accepted operation finished; and a world is a pure function of its seed.
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
