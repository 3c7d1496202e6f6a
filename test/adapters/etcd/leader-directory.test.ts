// The watch-fed leader directory on a real etcd: what it answers follows etcd (put, new term,
// delete), a chain it does not know is left to etcd, and it answers nothing before its first load.
import t from 'tap';
import { EtcdChainStore } from '../../../src/adapters/etcd/chain-store.js';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../../src/adapters/etcd/keys.js';
import { LeaderDirectory } from '../../../src/adapters/etcd/leader-directory.js';
import { ReplicaSession } from '../../../src/adapters/etcd/replica-session.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { waitFor } from '../../../src/devstack/process.js';
import { specOf } from '../../contract/chain-store.contract.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());
const client = createEtcdClient({ endpoints: cluster.endpoints });
t.teardown(() => client.close());
const keys = new EtcdKeys(`/baton-dir-${process.pid}/`);
const store = new EtcdChainStore(client, keys);
const session = await ReplicaSession.start({ client, keys, replicaId: 'replica-dir' });
t.teardown(() => session.close());

t.test('follows leaders as etcd changes them', async (t) => {
  await store.putSpec(specOf('chain-a'));
  const fence = await session.acquire('chain-a');
  if (!fence) throw new Error('could not supervise chain-a');
  const write = (nodeId: string, expected: bigint | undefined) => {
    const next = { nodeId, reason: 'test', fromHead: 0, mode: 'lease' as const };
    return store.writeLeader(fence, expected, next, { ...next, previousNodeId: undefined, previousTerm: expected, atMs: 0, supervisor: 'replica-dir', durationMs: undefined });
  };
  const term1 = await write('n1', undefined);

  const dir = new LeaderDirectory(client, keys, 2000);
  t.equal(dir.leaderOf('chain-a'), undefined, 'nothing before the first load');
  await dir.start();
  t.teardown(() => dir.close());
  t.same(dir.leaderOf('chain-a'), { nodeId: 'n1', term: term1, endpoint: '127.0.0.1:9000' }, 'loaded: leader, term (its revision) and endpoint');
  t.equal(dir.leaderOf('chain-zz'), undefined, 'an unknown chain is not answered here');

  await store.putSpec(specOf('chain-b'));
  await waitFor('chain-b to appear', () => (dir.leaderOf('chain-b') ? true : undefined), 5000, 10);
  t.same(dir.leaderOf('chain-b'), { nodeId: null, term: null, endpoint: null }, 'a chain without a leader');

  const term2 = await write('n2', term1);
  await waitFor('the new term', () => (dir.leaderOf('chain-a')?.term === term2 ? true : undefined), 5000, 10);
  t.same(dir.leaderOf('chain-a'), { nodeId: 'n2', term: term2, endpoint: '127.0.0.1:9001' });

  await store.deleteChain('chain-a');
  await waitFor('chain-a to go', () => (dir.leaderOf('chain-a') === undefined ? true : undefined), 5000, 10);
  t.pass('a deleted chain is no longer answered');
});
