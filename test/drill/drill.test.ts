// The short drill CI runs (issue 8): a real stack (3-member etcd, 2 replicas, 2 chains: one lease
// mode, one commit mode) under a fixed seed's random fault schedule for about a minute, then the
// checker, the etcd history scan and the operations check. Needs `npm run build` first.
import t from 'tap';
import { runDrill } from './run-drill.js';

const SEED = '20261126';

t.test('short drill: faults of many kinds, no violation, no lost operation', async (t) => {
  const r = await runDrill(t, ['--chains', '2', '--minutes', '1', '--seed', SEED]);
  const faults = Object.values(r.json.faults).reduce((s, n) => s + n, 0);
  t.comment(`seed ${SEED}: ${faults} faults ${JSON.stringify(r.json.faults)}; failovers ${r.json.failovers} p50 ${r.json.failover_p50_ms} ms p99 ${r.json.failover_p99_ms} ms; wall ${Math.round(r.wallMs / 1000)} s`);
  if (r.json.violations > 0 || r.code !== 0) t.comment(r.stderr.slice(-6000));
  t.equal(r.json.seed, Number(SEED), 'the final line names the seed (replay with --seed)');
  t.ok(faults >= 5, `${faults} faults injected`);
  t.ok(Object.keys(r.json.faults).length >= 4, 'of several kinds');
  t.equal(r.json.violations, 0, 'checker, etcd history scan and drill checks: no violation');
  t.equal(r.json.lost_operations, 0, 'every accepted operation reached a final state');
  t.same(r.json.liveness_failures, {}, 'every chain produced again after every fault');
  t.equal(r.code, 0, 'exit status 0');
});

t.test('the overlapping-ticks control schedule on the safe build: no command out of order', async (t) => {
  const r = await runDrill(t, ['--chains', '1', '--seed', '9', '--kinds', 'switchover,failover-op,kill-active', '--steps', '8']);
  t.comment(`wall ${Math.round(r.wallMs / 1000)} s; node refusals ${JSON.stringify(r.json.node_refusals)}`);
  if (r.code !== 0) t.comment(r.stderr.slice(-6000));
  t.equal(r.json.violations, 0, 'no violation');
  t.equal(r.json.node_refusals.STALE_TERM ?? 0, 0, 'no command of the supervisor refused as older than one the node had');
  t.equal(r.code, 0, 'exit status 0');
});
