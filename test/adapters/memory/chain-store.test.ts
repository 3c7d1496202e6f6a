// The ChainStore contract on MemoryEtcd: the real EtcdChainStore over the in-memory etcd, with the
// same harness as test/adapters/etcd/chain-store.test.ts (real ReplicaSessions for the fences).
import t from 'tap';
import { EtcdChainStore } from '../../../src/adapters/etcd/chain-store.js';
import { op } from '../../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../../src/adapters/etcd/keys.js';
import { ReplicaSession } from '../../../src/adapters/etcd/replica-session.js';
import { MemoryEtcd } from '../../../src/adapters/memory/memory-etcd.js';
import { chainStoreContract, specOf, type ContractHarness } from '../../contract/chain-store.contract.js';
import { commitContract } from '../../contract/commit.contract.js';

const harness = async (): Promise<ContractHarness> => {
  const etcd = new MemoryEtcd();
  const keys = new EtcdKeys('/baton-contract/');
  const [a, b] = await Promise.all(['replica-a', 'replica-b'].map((replicaId) => ReplicaSession.start({ client: etcd, keys, replicaId })));
  return {
    store: new EtcdChainStore(etcd, keys),
    async acquire(chainId) {
      const fence = await a!.acquire(chainId);
      if (!fence) throw new Error(`replica-a could not acquire ${chainId}`);
      return fence;
    },
    async steal(chainId) {
      etcd.txnNow({ success: [op.del(keys.supervisor(chainId))] });
      if (!(await b!.acquire(chainId))) throw new Error(`replica-b could not take ${chainId}`);
    },
    another: (options) => new EtcdChainStore(etcd, keys, options),
    async close() {
      await Promise.all([a!.close(), b!.close()]);
    },
  };
};
chainStoreContract(t, harness);
commitContract(t, harness);

t.test('listSpecs reads more chains than etcd allows ops in one txn (128)', async (t) => {
  const store = new EtcdChainStore(new MemoryEtcd(), new EtcdKeys('/baton-many/'));
  const ids = Array.from({ length: 150 }, (_, i) => `chain-${String(i).padStart(3, '0')}`);
  await Promise.all(ids.map((id) => store.putSpec(specOf(id))));
  t.same((await store.listSpecs()).map((s) => s.id).sort(), ids);
});
