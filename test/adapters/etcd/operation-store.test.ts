// The OperationStore contract on a real etcd (one member), each subtest under its own key prefix,
// with a wall clock the test moves.
import t from 'tap';
import { EtcdChainStore } from '../../../src/adapters/etcd/chain-store.js';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../../src/adapters/etcd/keys.js';
import { EtcdOperationStore, newOperationId } from '../../../src/adapters/etcd/operation-store.js';
import { ReplicaSession } from '../../../src/adapters/etcd/replica-session.js';
import { systemClock } from '../../../src/adapters/system-clock.js';
import type { Clock } from '../../../src/core/ports.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { specOf } from '../../contract/chain-store.contract.js';
import { START_MS, operationStoreContract } from '../../contract/operation-store.contract.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());

const TTL_MS = 60_000;
let n = 0;
operationStoreContract(t, async () => {
  const client = createEtcdClient({ endpoints: cluster.endpoints });
  const keys = new EtcdKeys(`/baton-ops-contract-${process.pid}-${++n}/`);
  let wall = START_MS;
  const clock: Clock = { monoMs: () => systemClock.monoMs(), wallMs: () => wall };
  // ReplicaSession keeps real time (its proof is checked against timers); only the store's wall moves.
  const [a, b] = await Promise.all(['replica-a', 'replica-b'].map((replicaId) => ReplicaSession.start({ client, keys, replicaId })));
  return {
    store: new EtcdOperationStore(client, keys, { clock, idempotencyTtlMs: TTL_MS }),
    chains: new EtcdChainStore(client, keys),
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
      await client.delete().key(keys.supervisor(chainId));
      if (!(await b!.acquire(chainId))) throw new Error(`replica-b could not take ${chainId}`);
    },
    async revision() {
      const res = await client.kv.range({ key: Buffer.from(keys.prefix) });
      return BigInt(res.header.revision);
    },
    async close() {
      await Promise.all([a!.close(), b!.close()]);
      client.close();
    },
  };
});

t.test('default ids: time prefix, unique within one millisecond', async (t) => {
  const ids = Array.from({ length: 100 }, () => newOperationId(START_MS));
  t.ok(ids.every((id) => id.startsWith(`op-${START_MS}-`)), 'wall ms prefix');
  t.equal(new Set(ids).size, ids.length, 'unique');
  t.ok(newOperationId(5) < newOperationId(40), 'zero-padded: numeric order is lexical order');
});

t.test('listOperations by chain pages past etcd limits', async (t) => {
  const client = createEtcdClient({ endpoints: cluster.endpoints });
  t.teardown(() => client.close());
  const keys = new EtcdKeys(`/baton-ops-many-${process.pid}/`);
  let wall = START_MS;
  const store = new EtcdOperationStore(client, keys, { clock: { monoMs: () => 0, wallMs: () => wall } });
  const chains = new EtcdChainStore(client, keys);
  await chains.putSpec(specOf('chain-a'));
  await chains.putSpec(specOf('chain-b'));
  const ids: string[] = [];
  for (let i = 0; i < 250; i++) {
    wall += 1;
    const chainId = i < 10 ? 'chain-a' : 'chain-b'; // the chain-a ones are the oldest: several pages down
    ids.push((await store.submit({ chainId, params: { kind: 'pause', reason: `p${i}` }, requestId: `r${i}` }, undefined)).operation.id);
  }
  t.same((await store.listOperations({ chainId: 'chain-a', limit: 50 })).map((o) => o.id), ids.slice(0, 10).reverse());
  t.equal((await store.pending('chain-b')).length, 240, 'pending reads more operations than one txn holds');
});
