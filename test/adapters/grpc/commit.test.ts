// CommitUnsafeHead over real gRPC against serve(config) and a real etcd: a commit by the term's
// holder extends the head; a duplicate is idempotent; a stale term, another node and a wrong parent
// are refused with FAILED_PRECONDITION and distinct Baton codes, and change nothing.
import { status } from '@grpc/grpc-js';
import t from 'tap';
import { EtcdChainStore } from '../../../src/adapters/etcd/chain-store.js';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../../src/adapters/etcd/keys.js';
import { ReplicaSession } from '../../../src/adapters/etcd/replica-session.js';
import { waitFor } from '../../../src/devstack/process.js';
import type { SupervisionFence } from '../../../src/core/ports.js';
import { batonCode, call, chainSpec, failure, startService } from './harness.js';

const svc = await startService(t, 'grpc-commit');
const c = svc.baton;
const client = createEtcdClient({ endpoints: svc.etcdEndpoints });
t.teardown(() => client.close());
const keys = new EtcdKeys(svc.prefix);
const store = new EtcdChainStore(client, keys);
const session = await ReplicaSession.start({ client, keys, replicaId: 'test-supervisor' });
t.teardown(() => session.close());

const hash = (n: number) => Buffer.from(n.toString(16).padStart(64, '0'), 'hex');
const headOf = (n: number, parent = hash(n - 1)) => ({ number: BigInt(n), hash: hash(n), parentHash: parent, l1Origin: `l1:${n}`, timestamp: 1_700_000_000n + BigInt(n), term: 0n, nodeId: '' });

/** Takes the chain's supervisor key from the service (its nodes are unreachable: it writes nothing). */
async function supervise(chainId: string): Promise<SupervisionFence> {
  return waitFor(`the supervisor key of ${chainId}`, async () => {
    const fence = await session.acquire(chainId);
    if (fence) return fence;
    await client.delete().key(keys.supervisor(chainId));
    return undefined;
  }, 10_000, 20);
}

t.test('commits over gRPC: extend, replay, refuse', async (t) => {
  await call(c.putChain.bind(c), { spec: { ...chainSpec('chain-c', 21_900) } });
  const fence = await supervise('chain-c');
  const leader = (nodeId: string, expected: bigint | undefined) =>
    store.writeLeader(fence, expected, { nodeId, reason: 'test', fromHead: 0, mode: 'commit' }, {
      nodeId, previousNodeId: undefined, previousTerm: expected, fromHead: 0, reason: 'test', atMs: Date.now(), supervisor: 'test-supervisor', durationMs: undefined,
    });
  const term1 = await leader('chain-c-1', undefined);
  const commit = (nodeId: string, term: bigint, head: ReturnType<typeof headOf>) => call(c.commitUnsafeHead.bind(c), { chainId: 'chain-c', nodeId, term, head });

  const first = await commit('chain-c-1', term1, headOf(1));
  t.match(first, { duplicate: false, head: { number: 1n, term: term1, nodeId: 'chain-c-1' } }, 'the first block is committed, stamped with term and node');
  const second = await commit('chain-c-1', term1, headOf(2));
  t.ok(second.revision > first.revision, 'a new head revision');
  const replay = await commit('chain-c-1', term1, headOf(2));
  t.match(replay, { duplicate: true, revision: second.revision }, 'a retried commit is idempotent');

  const before = await store.read('chain-c');
  for (const [what, p, code] of [
    ['wrong parent', () => commit('chain-c-1', term1, headOf(3, hash(99))), 'HEAD_MISMATCH'],
    ['a gap', () => commit('chain-c-1', term1, headOf(5)), 'HEAD_MISMATCH'],
    ['another node', () => commit('chain-c-2', term1, headOf(3)), 'NOT_LEADER'],
    ['a term that is not the current one', () => commit('chain-c-1', term1 + 1n, headOf(3)), 'STALE_TERM'],
  ] as const) {
    const err = await failure(p());
    t.equal(err.code, status.FAILED_PRECONDITION, `${what}: FAILED_PRECONDITION`);
    t.equal(batonCode(err), code, `${what}: ${code} (${err.details}; ${JSON.stringify(err.metadata?.getMap())})`);
  }
  const badHead = await failure(call(c.commitUnsafeHead.bind(c), { chainId: 'chain-c', nodeId: 'chain-c-1', term: term1, head: { ...headOf(3), term: term1 + 5n } }));
  t.equal(badHead.code, status.INVALID_ARGUMENT, 'a head naming another term is INVALID_ARGUMENT');
  t.same(await store.read('chain-c'), before, 'refusals changed nothing');

  const term2 = await leader('chain-c-2', term1);
  const stale = await failure(commit('chain-c-1', term1, headOf(3)));
  t.equal(batonCode(stale), 'STALE_TERM', 'once the term moved on, the deposed node is told STALE_TERM');
  const next = await commit('chain-c-2', term2, headOf(3));
  t.equal(next.head?.number, 3n, 'the new term continues from the committed head');
});
