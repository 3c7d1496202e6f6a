// The negative controls' switches are off unless named, named ones are validated, and the
// environment variable reaches both the replica config and `baton sim`.
import t from 'tap';
import { loadConfig, parseConfig } from '../../src/config/config.js';
import { unsafeSimFaults } from '../../src/cli/sim.js';
import { refuseStale } from '../../src/sim/rules.js';

t.test('replica config: no unsafe switch by default; names validated; BATON_UNSAFE_FAULTS read', async (t) => {
  t.same(parseConfig({}).unsafe, []);
  t.same(parseConfig({ unsafe: ['no-deadlines', 'no-deadlines'] }).unsafe, ['no-deadlines']);
  t.throws(() => parseConfig({ unsafe: ['fast-and-loose'] }), /unsafe: must be a list of/);
  t.same(loadConfig({ env: { BATON_UNSAFE_FAULTS: 'no-fence-compare,overlapping-ticks' } }).unsafe, ['no-fence-compare', 'overlapping-ticks']);
});

t.test('sim: accept-lower-terms only when named; refuseStale honours it', async (t) => {
  t.same(unsafeSimFaults(undefined), { acceptLowerTerms: false });
  t.same(unsafeSimFaults('no-deadlines,accept-lower-terms'), { acceptLowerTerms: true });
  t.throws(() => refuseStale(4n, 5n), /stale term 4 < highest 5/);
  t.doesNotThrow(() => refuseStale(4n, 5n, true));
});
