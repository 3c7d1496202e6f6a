// The OperationStore contract on MemoryEtcd, with the same harness as the real-etcd run.
import t from 'tap';
import { EtcdChainStore } from '../../../src/adapters/etcd/chain-store.js';
import { op } from '../../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../../src/adapters/etcd/keys.js';
import { EtcdOperationStore } from '../../../src/adapters/etcd/operation-store.js';
import { ReplicaSession } from '../../../src/adapters/etcd/replica-session.js';
import { MemoryEtcd } from '../../../src/adapters/memory/memory-etcd.js';
import { systemClock } from '../../../src/adapters/system-clock.js';
import type { Clock } from '../../../src/core/ports.js';
import { START_MS, operationStoreContract } from '../../contract/operation-store.contract.js';

const TTL_MS = 60_000;
operationStoreContract(t, async () => {
  const etcd = new MemoryEtcd();
  const keys = new EtcdKeys('/baton-ops-contract/');
  let wall = START_MS;
  const clock: Clock = { monoMs: () => systemClock.monoMs(), wallMs: () => wall };
  const [a, b] = await Promise.all(['replica-a', 'replica-b'].map((replicaId) => ReplicaSession.start({ client: etcd, keys, replicaId })));
  return {
    store: new EtcdOperationStore(etcd, keys, { clock, idempotencyTtlMs: TTL_MS }),
    chains: new EtcdChainStore(etcd, keys),
    advance(ms) {
      wall += ms;
    },
    idempotencyTtlMs: TTL_MS,
    async acquire(chainId) {
      const fence = await a!.acquire(chainId);
      if (!fence) throw new Error(`replica-a could not acquire ${chainId}`);
      return fence;
    },
    async steal(chainId) {
      etcd.txnNow({ success: [op.del(keys.supervisor(chainId))] });
      if (!(await b!.acquire(chainId))) throw new Error(`replica-b could not take ${chainId}`);
    },
    async revision() {
      return etcd.currentRevision();
    },
    async close() {
      await Promise.all([a!.close(), b!.close()]);
    },
  };
});
