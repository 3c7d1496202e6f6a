// The simulator must catch real bugs: each deliberately broken variant (options.ts, BrokenVariant)
// is found within a bounded number of seeds, as the violation of the invariant it breaks, and a
// failing seed replays exactly. The commit-mode variants are in commit-variants.test.ts.
import t from 'tap';
import type { ViolationKind } from '../../src/simworld/checker.js';
import { runWorld, type BrokenVariant, type WorldOptions } from '../../src/simworld/world.js';

Error.stackTraceLimit = 0; // errors are values in the world; their stacks are pure cost

const MAX_SEEDS = 12;
const STEPS = 60_000;

// accept-lower-term needs stale commands to reach nodes: freezes right before a start make them,
// but a grant bounded by its sender's proof (core/proof-bound.ts) no longer arrives stale. The
// node's own check is the second line of defence; to see it fail, the first is broken too.
const cases: [BrokenVariant[], ViolationKind, string, Partial<WorldOptions>][] = [
  [['skip-lease-wait'], 'ONE_PRODUCER', 'a supervisor that does not wait out the old lease', {}],
  [['no-supervisor-compare'], 'UNFENCED', 'a leader write without the supervisor-key compare', {}],
  [['accept-lower-term', 'ignore-proof-deadline'], 'TERM_ORDER', 'a node that obeys a lower term (with grants not bounded by the proof)', { freezeBeforeStart: true }],
  [['promote-lagging'], 'CONTINUITY', 'a standby made active without the recorded head', {}],
];

for (const [variant, kind, what, extra] of cases) {
  t.test(`${variant.join('+')}: ${what} is caught as ${kind} within ${MAX_SEEDS} seeds`, async (t) => {
    let found: { seed: number; trace: string[]; kinds: ViolationKind[] } | undefined;
    for (let seed = 1; seed <= MAX_SEEDS && !found; seed++) {
      const out = await runWorld({ seed, steps: STEPS, variant, ...extra });
      if (out.violations.some((v) => v.kind === kind)) found = { seed, trace: out.trace, kinds: out.violations.map((v) => v.kind) };
    }
    t.ok(found, `found ${kind}`, { found: found && { seed: found.seed, kinds: found.kinds } });
    if (!found) return;
    t.ok(found.trace.some((l) => l.includes(`VIOLATION ${kind}`)), 'the trace ends in the violation');
    const again = await runWorld({ seed: found.seed, steps: STEPS, variant, ...extra });
    t.same(again.trace, found.trace, 'the same seed replays the same trace');
  });
}
