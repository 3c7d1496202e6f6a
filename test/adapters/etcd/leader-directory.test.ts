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

t.test('indexes nodes by id and endpoint, and follows spec edits and deletes', async (t) => {
  const dir = new LeaderDirectory(client, keys, 2000);
  await dir.start();
  t.teardown(() => dir.close());
  await store.putSpec(specOf('chain-idx'));
  await waitFor('chain-idx to be indexed', () => dir.chainOfNode('n1', '127.0.0.1:9000') === 'chain-idx' || undefined, 5000, 10);
  t.equal(dir.chainOfNode('n2', '127.0.0.1:9001'), 'chain-idx');
  t.equal(dir.chainOfNode('n1', '127.0.0.1:9001'), undefined, 'a node is found by its id and its endpoint together');

  // n2 moves to another endpoint: the old pair is no longer this chain's.
  const moved = { ...specOf('chain-idx'), nodes: specOf('chain-idx').nodes.map((n) => (n.id === 'n2' ? { ...n, endpoint: '127.0.0.1:9100' } : n)) };
  await store.putSpec(moved);
  await waitFor('n2 to move', () => dir.chainOfNode('n2', '127.0.0.1:9100') === 'chain-idx' || undefined, 5000, 10);
  t.equal(dir.chainOfNode('n2', '127.0.0.1:9001'), undefined, 'the old endpoint is forgotten');
  t.equal(dir.chainOfNode('n1', '127.0.0.1:9000'), 'chain-idx', 'the unchanged node stays');

  await store.deleteChain('chain-idx');
  await waitFor('chain-idx to go', () => (dir.chainOfNode('n1', '127.0.0.1:9000') === undefined ? true : undefined), 5000, 10);
  t.pass('a deleted chain names no node');
});

t.test('lists specs from the watch and tells subscribers only after applying a change', async (t) => {
  const dir = new LeaderDirectory(client, keys, 2000);
  t.equal(dir.chainSpecs(), undefined, 'no list before the first load: callers read etcd');
  await store.putSpec(specOf('chain-feed-1'));
  await dir.start();
  t.teardown(() => dir.close());
  t.ok(dir.chainSpecs()?.some((s) => s.id === 'chain-feed-1'), 'the first load lists what etcd holds');

  // What a subscriber sees when it is told: the spec list already includes the change.
  const seen: { key: string; listed: boolean }[] = [];
  const unsubscribe = dir.subscribe({
    onKey: (key) => seen.push({ key, listed: dir.chainSpecs()?.some((s) => s.id === 'chain-feed-2') ?? false }),
    onResync: () => undefined,
  });
  await store.putSpec(specOf('chain-feed-2'));
  await waitFor('the put of chain-feed-2 to be told', () => seen.find((e) => e.key === keys.spec('chain-feed-2')), 5000, 10);
  t.same(seen.find((e) => e.key === keys.spec('chain-feed-2')), { key: keys.spec('chain-feed-2'), listed: true }, 'listed by the time the subscriber hears of it');
  t.same(dir.chainSpecs()?.find((s) => s.id === 'chain-feed-2'), specOf('chain-feed-2'), 'the spec as stored');

  await store.deleteChain('chain-feed-2');
  await waitFor('chain-feed-2 to leave the list', () => (dir.chainSpecs()?.some((s) => s.id === 'chain-feed-2') ? undefined : true), 5000, 10);
  unsubscribe();
  const told = seen.length;
  await store.putSpec(specOf('chain-feed-3'));
  await waitFor('chain-feed-3 to be listed', () => dir.chainSpecs()?.some((s) => s.id === 'chain-feed-3') || undefined, 5000, 10);
  t.equal(seen.length, told, 'an unsubscribed listener hears nothing more');
});

t.test('keeps each chain recorded head as etcd moves it (commits), including a head already there at load', async (t) => {
  await store.putSpec(specOf('chain-head'));
  const fence = await session.acquire('chain-head');
  if (!fence) throw new Error('could not supervise chain-head');
  const next = { nodeId: 'n1', reason: 'test', fromHead: 0, mode: 'commit' as const };
  const term = await store.writeLeader(fence, undefined, next, { ...next, previousNodeId: undefined, previousTerm: undefined, atMs: 0, supervisor: 'replica-dir', durationMs: undefined });
  const hash = (n: number) => n.toString(16).padStart(64, '0');
  const head = (n: number) => ({ number: n, hash: hash(n), parentHash: n === 1 ? '' : hash(n - 1), term, nodeId: 'n1', l1Origin: `l1-${n}`, timestamp: 1_700_000_000 + n });
  const first = await store.commitHead({ chainId: 'chain-head', nodeId: 'n1', term, head: head(1) });

  const dir = new LeaderDirectory(client, keys, 2000);
  t.equal(dir.headOf('chain-head'), undefined, 'nothing before the first load');
  await dir.start();
  t.teardown(() => dir.close());
  t.same(dir.headOf('chain-head'), { number: 1, timestamp: 1_700_000_001, revision: first.revision }, 'loaded: number, timestamp and the head key revision');

  let last = first;
  for (let n = 2; n <= 5; n++) last = await store.commitHead({ chainId: 'chain-head', nodeId: 'n1', term, head: head(n) });
  await waitFor('head 5 from the watch', () => (dir.headOf('chain-head')?.number === 5 ? true : undefined), 5000, 10);
  t.same(dir.headOf('chain-head'), { number: 5, timestamp: 1_700_000_005, revision: last.revision }, 'each commit arrives through the watch, with no read');

  await store.deleteChain('chain-head');
  await waitFor('the head to go with the chain', () => (dir.headOf('chain-head') === undefined ? true : undefined), 5000, 10);
  t.pass('a deleted chain has no head here');
});
