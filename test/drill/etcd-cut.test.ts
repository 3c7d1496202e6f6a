// A replica cut off from etcd while it keeps running, and a supervisor whose etcd traffic is held
// back past its lease while its active dies (issue 8: "supervisor cut off from etcd"). The cut
// replica must say it stopped acting; the delayed writes must not land (the etcd history scan);
// every chain fails over or keeps producing. Needs `npm run build` first.
import t from 'tap';
import { runDrill } from './run-drill.js';

t.test('replica cut off from etcd, supervisor delayed on the way to etcd: fenced, no violation', async (t) => {
  const r = await runDrill(t, ['--chains', '2', '--seed', '5', '--kinds', 'cut-replica-etcd,delay-supervisor-etcd', '--steps', '4']);
  t.comment(`wall ${Math.round(r.wallMs / 1000)} s; faults ${JSON.stringify(r.json.faults)}; failovers ${r.json.failovers}`);
  if (r.code !== 0) t.comment(r.stderr.slice(-6000));
  t.equal(r.json.faults['cut-replica-etcd'], 1, 'one replica cut off from etcd');
  t.equal(r.json.faults['delay-supervisor-etcd'], 3, 'three supervisors delayed on the way to etcd while their active died');
  t.equal(r.json.self_fenced_on_cut, 1, 'the cut replica said it stopped acting');
  t.equal(r.json.failovers, 3, 'each dead active was replaced (by the other replica)');
  t.equal(r.json.violations, 0, 'checker, etcd history scan and drill checks: no violation');
  t.same(r.json.liveness_failures, {}, 'every chain produced again after every fault');
  t.equal(r.code, 0, 'exit status 0');
});
