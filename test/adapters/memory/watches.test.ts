// The etcd adapters' watches over MemoryEtcd: ReplicaSession's supervisor watch (PrefixWatch) and
// the EventFeed resuming from an event id, both unchanged code over the in-memory etcd.
import t from 'tap';
import { EtcdChainStore } from '../../../src/adapters/etcd/chain-store.js';
import { EventFeed, type BatonEvent } from '../../../src/adapters/etcd/event-feed.js';
import { EtcdKeys } from '../../../src/adapters/etcd/keys.js';
import { ReplicaSession, type SupervisorChange } from '../../../src/adapters/etcd/replica-session.js';
import { MemoryEtcd } from '../../../src/adapters/memory/memory-etcd.js';
import { specOf } from '../../contract/chain-store.contract.js';

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  if (!cond()) throw new Error('condition not reached');
}

t.test('supervisor keys appear and vanish on a session watch', async (t) => {
  const etcd = new MemoryEtcd();
  const keys = new EtcdKeys('/w/');
  await new EtcdChainStore(etcd, keys).putSpec(specOf('chain-a'));
  const a = await ReplicaSession.start({ client: etcd, keys, replicaId: 'replica-a' });
  const b = await ReplicaSession.start({ client: etcd, keys, replicaId: 'replica-b' });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const changes: SupervisorChange[] = [];
  const sub = await b.watchSupervisors((c) => changes.push(c));
  const fence = await a.acquire('chain-a');
  t.ok(fence);
  await until(() => changes.length === 1);
  t.same(changes[0], { kind: 'held', chainId: 'chain-a', holder: 'replica-a' });
  await a.release(fence!);
  await until(() => changes.length === 2);
  t.same(changes[1], { kind: 'free', chainId: 'chain-a' });
  await sub.close();
});

t.test('the event feed resumes after an event id', async (t) => {
  const etcd = new MemoryEtcd();
  const keys = new EtcdKeys('/e/');
  const store = new EtcdChainStore(etcd, keys);
  const feed = new EventFeed(etcd, keys);
  await store.putSpec(specOf('chain-a'));
  const first: BatonEvent[] = [];
  const sub = await feed.subscribe(undefined, (e) => first.push(e));
  await store.putSpec(specOf('chain-b'));
  await store.putSpec({ ...specOf('chain-b'), genesisHash: '' });
  await until(() => first.length === 2);
  await sub.close();
  t.same(first.map((e) => [e.type, e.chainId]), [['chain-registered', 'chain-b'], ['chain-updated', 'chain-b']]);
  const resumed: BatonEvent[] = [];
  const again = await feed.subscribe(first[0]!.id, (e) => resumed.push(e));
  await until(() => resumed.length === 1);
  await again.close();
  t.same(resumed.map((e) => e.id), [first[1]!.id], 'only what came after the given id');
});
