// bench:failover in commit mode, as small as it runs: one chain, one kill -9 of its active, no
// replica kill, the scenario tests' fast timings. Real etcd, two `baton serve` replicas and three
// `baton sim` nodes; the activity logs are checked for violations by the bench itself.
import t from 'tap';
import { resultLine, runBench } from './run-bench.js';

// The keys of the result line (src/bench/failover.ts), the same in both modes.
const KEYS = ['mode', 'drills', 'p50_ms', 'p95_ms', 'p99_ms', 'max_ms', 'violations', 'replica_kill_missed_heights', 'profile', 'block_time_ms', 'node_lease_ttl_ms', 'replica_kills', 'unplanned_failovers'];

t.test('one commit-mode failover drill: no violation, the lease-mode result keys', async (t) => {
  const out = await runBench('failover', ['--mode', 'commit', '--drills', '1', '--replica-kills', '0', '--chains', '1', '--profile', 'fast'], 90_000);
  t.equal(out.code, 0, 'exit 0', { stderr: out.stderr.slice(-4000) });
  const r = resultLine(out);
  t.same(Object.keys(r).sort(), [...KEYS].sort(), 'the key set of a lease-mode line');
  t.equal(r.mode, 'commit');
  t.equal(r.drills, 1);
  t.equal(r.replica_kills, 0);
  t.equal(r.violations, 0, 'the activity logs hold no violation');
  t.ok((r.p50_ms as number) > 0, `first block of the new active ${r.p50_ms} ms after the kill`);
  t.ok((r.p50_ms as number) < (r.node_lease_ttl_ms as number), 'commit mode did not wait out the old node lease');
});
