// bench:commit end to end, briefly: the real entry (its own etcd, ControlPlane.commitHead over
// EtcdChainStore), batched and not, ending with the JSON line the docs quote.
import t from 'tap';
import { resultLine, runBench } from './run-bench.js';

for (const batch of [true, false]) {
  t.test(`commits on 5 chains for a second (batching ${batch ? 'on' : 'off'}) and ends with one JSON line`, async (t) => {
    const out = await runBench('commit', ['--chains', '5', '--seconds', '1', ...(batch ? [] : ['--no-batch'])]);
    t.equal(out.code, 0, 'exit 0', { stderr: out.stderr });
    const r = resultLine(out);
    for (const k of ['chains', 'commits_per_s', 'p50_ms', 'p99_ms', 'raw_put_per_s', 'ratio', 'lost_commits']) t.type(r[k], 'number', `${k} is a number`);
    t.equal(r.chains, 5);
    t.equal(r.batch, batch);
    t.equal(r.lost_commits, 0, 'every chain recorded its last acknowledged commit');
    t.ok((r.commits_per_s as number) > 0, `${r.commits_per_s} commits/s`);
    t.ok((r.raw_put_per_s as number) > 0, `${r.raw_put_per_s} raw puts/s`);
    t.ok((r.p50_ms as number) <= (r.p99_ms as number), 'p50 <= p99');
  });
}

t.test('a bad option is a usage error (exit 2) and starts nothing', async (t) => {
  const out = await runBench('commit', ['--chains', '0']);
  t.equal(out.code, 2);
  t.match(out.stderr, /--chains: must be an integer in 1\.\.10000, got 0/);
});
