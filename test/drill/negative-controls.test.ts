// Negative controls (issue 8, part 2): the drill must see a violation when the build is broken on
// purpose. Each case runs a short targeted drill with one BATON_UNSAFE_FAULTS switch (test-only,
// off by default) and asserts the drill reports the breakage and exits non-zero. Needs
// `npm run build` first.
import t from 'tap';
import { runDrill } from './run-drill.js';

t.test('node accepting lower terms: a delayed stale command is accepted, and the drill says so', async (t) => {
  const r = await runDrill(t, ['--chains', '1', '--seed', '11', '--kinds', 'stale-command', '--steps', '3', '--unsafe', 'accept-lower-terms']);
  t.comment(`wall ${Math.round(r.wallMs / 1000)} s; ${JSON.stringify(r.json.violations_by_kind)}`);
  t.ok((r.json.violations_by_kind.STALE_ACCEPTED ?? 0) > 0, 'STALE_ACCEPTED reported');
  t.ok(r.json.violations > 0, `${r.json.violations} violations`);
  t.equal(r.code, 1, 'exit status 1');
});

t.test('no call deadlines: an active cut off from Baton is never replaced while the cut lasts', async (t) => {
  const r = await runDrill(t, ['--chains', '1', '--seed', '3', '--kinds', 'cut-active', '--steps', '1', '--hold', '15000', '--unsafe', 'no-deadlines']);
  t.comment(`wall ${Math.round(r.wallMs / 1000)} s; liveness ${JSON.stringify(r.json.liveness_failures)}`);
  t.ok((r.json.liveness_failures.NO_FAILOVER ?? 0) > 0, 'NO_FAILOVER reported');
  t.equal(r.code, 1, 'exit status 1');
});

t.test('overlapping loop ticks: nodes refuse a single supervisor\'s commands as older than ones they had', async (t) => {
  const r = await runDrill(t, ['--chains', '1', '--seed', '9', '--kinds', 'switchover,failover-op,kill-active', '--steps', '8', '--unsafe', 'overlapping-ticks']);
  t.comment(`wall ${Math.round(r.wallMs / 1000)} s; ${JSON.stringify(r.json.violations_by_kind)}; node refusals ${JSON.stringify(r.json.node_refusals)}`);
  t.ok((r.json.violations_by_kind.COMMANDS_REORDERED ?? 0) > 0, 'COMMANDS_REORDERED reported');
  t.equal(r.code, 1, 'exit status 1');
});
