// Commit mode's broken variants (options.ts, BrokenVariant), each caught within a bounded number of
// seeds of worlds whose chains all run in commit mode, with the failing seed replaying exactly; the
// correct build is clean over the same seeds. And the check behind the direct one: with
// UNCOMMITTED_PUBLISH not recorded, a block published before its commit still shows up as a
// STALE_PUBLISH once a newer term begins below it.
import t from 'tap';
import type { ViolationKind } from '../../src/simworld/checker.js';
import { runWorld, type BrokenVariant, type WorldOptions } from '../../src/simworld/world.js';

Error.stackTraceLimit = 0; // errors are values in the world; their stacks are pure cost

const MAX_SEEDS = 4;
const WORLD = { steps: 60_000, fencing: 'commit' } as const;

const cases: [BrokenVariant, ViolationKind, string][] = [
  ['commit-no-term-compare', 'UNFENCED', 'a head commit without the leader-term compare'],
  ['publish-before-commit', 'UNCOMMITTED_PUBLISH', 'a node that publishes a block before committing it'],
];

for (const [variant, kind, what] of cases) {
  t.test(`${variant}: ${what} is caught as ${kind} within ${MAX_SEEDS} seeds`, async (t) => {
    let found: { seed: number; trace: string[]; kinds: ViolationKind[] } | undefined;
    for (let seed = 1; seed <= MAX_SEEDS && !found; seed++) {
      const out = await runWorld({ seed, ...WORLD, variant });
      if (out.violations.some((v) => v.kind === kind)) found = { seed, trace: out.trace, kinds: out.violations.map((v) => v.kind) };
    }
    t.ok(found, `found ${kind}`, { found: found && { seed: found.seed, kinds: found.kinds } });
    if (!found) return;
    t.ok(found.trace.some((l) => l.includes(`VIOLATION ${kind}`)), 'the trace ends in the violation');
    const again = await runWorld({ seed: found.seed, ...WORLD, variant });
    t.same(again.trace, found.trace, 'the same seed replays the same trace');
  });
}

t.test(`the correct build: no violation over the same ${MAX_SEEDS} seeds`, async (t) => {
  for (let seed = 1; seed <= MAX_SEEDS; seed++) {
    const out = await runWorld({ seed, ...WORLD });
    t.same(out.violations.map((v) => `${v.kind}: ${v.message}`), [], `seed ${seed}: clean (${out.failoversByMode.commit} commit-mode failovers, ${out.commits} head commits)`);
    t.ok(out.failoversByMode.commit > 0 && out.commits > 0, `seed ${seed}: commit-mode failovers and commits happened`);
  }
});

t.test('publish-before-commit without the direct check: STALE_PUBLISH (seed 16)', async (t) => {
  const opts: WorldOptions = { seed: 16, ...WORLD, variant: 'publish-before-commit', ignoreViolations: ['UNCOMMITTED_PUBLISH'] };
  const out = await runWorld(opts);
  t.equal(out.violations[0]?.kind, 'STALE_PUBLISH', 'a newer commit-mode term began below the published block', { violations: out.violations });
});
