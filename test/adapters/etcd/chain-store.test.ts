// The ChainStore contract on a real etcd (one member), each subtest under its own key prefix.
import t from 'tap';
import { EtcdChainStore } from '../../../src/adapters/etcd/chain-store.js';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../../src/adapters/etcd/keys.js';
import { ReplicaSession } from '../../../src/adapters/etcd/replica-session.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { chainStoreContract, specOf, type ContractHarness } from '../../contract/chain-store.contract.js';
import { commitContract } from '../../contract/commit.contract.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());

let n = 0;
const harness = async (): Promise<ContractHarness> => {
  const client = createEtcdClient({ endpoints: cluster.endpoints });
  const others: ReturnType<typeof createEtcdClient>[] = [];
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
    another(options) {
      const other = createEtcdClient({ endpoints: cluster.endpoints });
      others.push(other);
      return new EtcdChainStore(other, keys, options);
    },
    async close() {
      await Promise.all([a!.close(), b!.close()]);
      for (const c of [client, ...others]) c.close();
    },
  };
};
chainStoreContract(t, harness);
commitContract(t, harness);

t.test('listSpecs reads more chains than etcd allows ops in one txn (128)', async (t) => {
  const client = createEtcdClient({ endpoints: cluster.endpoints });
  t.teardown(() => client.close());
  const store = new EtcdChainStore(client, new EtcdKeys(`/baton-many-${process.pid}/`));
  const ids = Array.from({ length: 150 }, (_, i) => `chain-${String(i).padStart(3, '0')}`);
  await Promise.all(ids.map((id) => store.putSpec(specOf(id))));
  t.same((await store.listSpecs()).map((s) => s.id).sort(), ids);
});

t.test('head commits of many chains share etcd requests; each keeps its own compares and outcome', async (t) => {
  const client = createEtcdClient({ endpoints: cluster.endpoints });
  const keys = new EtcdKeys(`/baton-batch-${process.pid}/`);
  const session = await ReplicaSession.start({ client, keys, replicaId: 'replica-batch' });
  t.teardown(async () => {
    await session.close();
    client.close();
  });
  let requests = 0;
  let biggest = 0;
  const counting = {
    ...client,
    kv: {
      txn: (req: Parameters<typeof client.kv.txn>[0]) => {
        requests++;
        biggest = Math.max(biggest, req.success?.filter((o) => 'request_txn' in o).length ?? 0);
        return client.kv.txn(req);
      },
    },
  } as unknown as typeof client;
  const store = new EtcdChainStore(counting, keys);
  const ids = Array.from({ length: 24 }, (_, i) => `chain-${String(i).padStart(2, '0')}`);
  const terms = new Map<string, bigint>();
  for (const id of ids) {
    await store.putSpec(specOf(id));
    const fence = await session.acquire(id);
    if (!fence) throw new Error(`could not supervise ${id}`);
    const next = { nodeId: 'n1', reason: 'test', fromHead: 0, mode: 'commit' as const };
    terms.set(id, await store.writeLeader(fence, undefined, next, { ...next, previousNodeId: undefined, previousTerm: undefined, atMs: 0, supervisor: 'replica-batch', durationMs: undefined }));
    await store.commitHead({ chainId: id, nodeId: 'n1', term: terms.get(id)!, head: headAt(1, terms.get(id)!) });
  }
  requests = 0;
  // Odd chains offer a stale term, even ones their next block: all at once.
  const outcomes = await Promise.allSettled(
    ids.map((id, i) => store.commitHead({ chainId: id, nodeId: 'n1', term: i % 2 ? terms.get(id)! + 1n : terms.get(id)!, head: headAt(2, i % 2 ? terms.get(id)! + 1n : terms.get(id)!) })),
  );
  t.ok(requests < ids.length, `${ids.length} concurrent commits took ${requests} etcd requests (largest batch ${biggest})`);
  t.ok(biggest > 1, 'some commits went out together');
  for (const [i, id] of ids.entries()) {
    const o = outcomes[i]!;
    if (i % 2) t.ok(o.status === 'rejected' && (o.reason as { code?: string }).code === 'STALE_TERM', `${id}: stale term refused`);
    else t.ok(o.status === 'fulfilled', `${id}: committed`);
    t.equal((await store.read(id))?.head?.number, i % 2 ? 1 : 2, `${id}: recorded head as its own outcome says`);
  }
});

function headAt(number: number, term: bigint) {
  const h = (n: number) => n.toString(16).padStart(64, '0');
  return { number, hash: h(number), parentHash: h(number - 1), term, nodeId: 'n1', l1Origin: '', timestamp: 1_700_000_000 };
}

t.test('two replicas taking turns on one chain: each stale cache costs a retry, never a wrong answer', async (t) => {
  const clients = [createEtcdClient({ endpoints: cluster.endpoints }), createEtcdClient({ endpoints: cluster.endpoints })];
  const keys = new EtcdKeys(`/baton-turns-${process.pid}/`);
  const session = await ReplicaSession.start({ client: clients[0]!, keys, replicaId: 'replica-turns' });
  t.teardown(async () => {
    await session.close();
    for (const c of clients) c.close();
  });
  const [a, b] = clients.map((c) => new EtcdChainStore(c, keys)) as [EtcdChainStore, EtcdChainStore];
  await a.putSpec(specOf('chain-t'));
  const fence = await session.acquire('chain-t');
  if (!fence) throw new Error('could not supervise chain-t');
  const next = { nodeId: 'n1', reason: 'test', fromHead: 0, mode: 'commit' as const };
  const term = await a.writeLeader(fence, undefined, next, { ...next, previousNodeId: undefined, previousTerm: undefined, atMs: 0, supervisor: 'replica-turns', durationMs: undefined });
  for (let n = 1; n <= 10; n++) {
    const store = n % 2 ? a : b;
    const r = await store.commitHead({ chainId: 'chain-t', nodeId: 'n1', term, head: headAt(n, term) });
    t.equal(r.duplicate, false, `block ${n} via replica ${n % 2 ? 'a' : 'b'}`);
  }
  const replay = await a.commitHead({ chainId: 'chain-t', nodeId: 'n1', term, head: headAt(10, term) });
  t.equal(replay.duplicate, true, 'a replay through the other replica is still a duplicate');
  t.equal((await b.read('chain-t'))?.head?.number, 10);
});
