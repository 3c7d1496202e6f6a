// Negative control for "fenced compare removed" (issue 8), on a real etcd. A live drill does not
// get such a build to send a stale leader write: the replica's self-fencing and its lease-bound
// failover slot stop it first (docs/benchmarks.md). So the write is made here directly, by the
// real store, with the fence of a supervisor that has since been replaced, and the drill's etcd
// history scan must flag it. The same write through the safe store is refused and the history
// stays clean.
import t, { type Test } from 'tap';
import { EtcdChainStore } from '../../src/adapters/etcd/chain-store.js';
import { createEtcdClient } from '../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../src/adapters/etcd/keys.js';
import { ReplicaSession } from '../../src/adapters/etcd/replica-session.js';
import { isBatonError } from '../../src/core/errors.js';
import { EtcdCluster } from '../../src/devstack/etcd.js';
import { checkEtcdHistory, readEtcdHistory } from '../../src/drill/verify.js';
import { specOf } from '../contract/chain-store.contract.js';

const C = 'chain-u';
const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());

const leader = (nodeId: string, supervisor: string) => {
  const next = { nodeId, reason: `make ${nodeId} active`, fromHead: 0, mode: 'lease' as const };
  return [next, { ...next, previousNodeId: undefined, previousTerm: undefined, atMs: Date.now(), supervisor, durationMs: undefined }] as const;
};

let runs = 0;
/** Replica a supervises and writes a term; b takes over and writes the next; then a writes again with its old fence. */
async function staleWrite(t: Test, unsafeNoFenceCompare: boolean) {
  const prefix = `/baton-unfenced-${process.pid}-${++runs}/`;
  const client = createEtcdClient({ endpoints: cluster.endpoints });
  t.teardown(() => client.close());
  const keys = new EtcdKeys(prefix);
  const store = new EtcdChainStore(client, keys, { unsafeNoFenceCompare });
  await store.putSpec(specOf(C));
  const a = await ReplicaSession.start({ client, keys, replicaId: 'replica-a' });
  const aFence = await a.acquire(C);
  if (!aFence) throw new Error('replica-a could not supervise');
  const term1 = await store.writeLeader(aFence, undefined, ...leader('n1', 'replica-a'));
  await a.close(); // a's key goes with its session
  const b = await ReplicaSession.start({ client, keys, replicaId: 'replica-b' });
  t.teardown(() => b.close());
  const bFence = await b.acquire(C);
  if (!bFence) throw new Error('replica-b could not take over');
  const term2 = await store.writeLeader(bFence, term1, ...leader('n2', 'replica-b'));
  let refused: unknown;
  try {
    await store.writeLeader(aFence, term2, ...leader('n3', 'replica-a'));
  } catch (err) {
    refused = err;
  }
  const report = checkEtcdHistory(await readEtcdHistory(cluster.endpoints, prefix), prefix);
  return { refused, report };
}

t.test('the safe store refuses the deposed supervisor\'s write, and the scan finds nothing', async (t) => {
  const { refused, report } = await staleWrite(t, false);
  t.ok(isBatonError(refused, 'FENCED'), 'refused as FENCED', { got: String(refused) });
  t.same(report.violations, [], 'the etcd history is clean');
  t.equal(report.terms, 2, 'two terms written');
});

t.test('with the fenced compare removed, the write lands and the scan flags it', async (t) => {
  const { refused, report } = await staleWrite(t, true);
  t.equal(refused, undefined, 'the broken store let the write through');
  const kinds = report.violations.map((v) => v.kind);
  t.ok(kinds.includes('UNFENCED_WRITE'), `UNFENCED_WRITE reported: ${JSON.stringify(report.violations)}`);
  t.equal(report.terms, 3, 'three terms written');
});
