// The ChainStore contract on a real etcd (one member), each subtest under its own key prefix.
import t from 'tap';
import { EtcdChainStore } from '../../../src/adapters/etcd/chain-store.js';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../../src/adapters/etcd/keys.js';
import { ReplicaSession } from '../../../src/adapters/etcd/replica-session.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { chainStoreContract, specOf } from '../../contract/chain-store.contract.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());

let n = 0;
chainStoreContract(t, async () => {
  const client = createEtcdClient({ endpoints: cluster.endpoints });
  const keys = new EtcdKeys(`/baton-contract-${process.pid}-${++n}/`);
  const [a, b] = await Promise.all(
    ['replica-a', 'replica-b'].map((replicaId) => ReplicaSession.start({ client, keys, replicaId })),
  );
  return {
    store: new EtcdChainStore(client, keys),
    async acquire(chainId) {
      const fence = await a!.acquire(chainId);
      if (!fence) throw new Error(`replica-a could not acquire ${chainId}`);
      return fence;
    },
    async steal(chainId) {
      await client.delete().key(keys.supervisor(chainId));
      if (!(await b!.acquire(chainId))) throw new Error(`replica-b could not take ${chainId}`);
    },
    async close() {
      await Promise.all([a!.close(), b!.close()]);
      client.close();
    },
  };
});

t.test('listSpecs reads more chains than etcd allows ops in one txn (128)', async (t) => {
  const client = createEtcdClient({ endpoints: cluster.endpoints });
  t.teardown(() => client.close());
  const store = new EtcdChainStore(client, new EtcdKeys(`/baton-many-${process.pid}/`));
  const ids = Array.from({ length: 150 }, (_, i) => `chain-${String(i).padStart(3, '0')}`);
  await Promise.all(ids.map((id) => store.putSpec(specOf(id))));
  t.same((await store.listSpecs()).map((s) => s.id).sort(), ids);
});
