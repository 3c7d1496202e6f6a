// Commit mode: a restart of the active under its own term carries the head as committed at the
// start, not as this supervisor last read it. The active commits its blocks without the supervisor
// reading them; when its lease ran out while a commit was on its way, it dropped a block that was
// committed anyway, and only a start carrying that head lets it adopt the block (a stale head made
// its next commit HEAD_MISMATCH, over and over until the next full re-read). Found by the simulated
// world (test/simworld); here the real ChainSupervisor runs on MemoryEtcd and virtual time.
import t from 'tap';
import { EtcdChainStore } from '../../src/adapters/etcd/chain-store.js';
import { op } from '../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../src/adapters/etcd/keys.js';
import { EtcdOperationStore } from '../../src/adapters/etcd/operation-store.js';
import { MemoryEtcd } from '../../src/adapters/memory/memory-etcd.js';
import type { ChainSpec, UnsafeHead } from '../../src/core/chain.js';
import type { NodeReport } from '../../src/core/observation.js';
import type { NodeControl, StartGrant, SupervisionFence } from '../../src/core/ports.js';
import { ChainSupervisor } from '../../src/core/supervisor.js';
import { SimLoop } from '../../src/simworld/loop.js';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

const hash = (n: number) => n.toString(16).padStart(64, '0');
const headAt = (n: number, term: bigint): UnsafeHead => ({ number: n, hash: hash(n), parentHash: hash(n - 1), term, nodeId: 'n1', l1Origin: '', timestamp: n });

t.test('a commit-mode restart under the same term carries the head committed since the last read', async (t) => {
  const loop = new SimLoop();
  const etcd = new MemoryEtcd({ nowMs: () => loop.now(), after: (ms, fn) => void loop.at(ms, fn) });
  const keys = new EtcdKeys('/t/');
  const store = new EtcdChainStore(etcd, keys, { batchCommits: false });
  const commits = new EtcdChainStore(etcd, keys, { batchCommits: false }); // the API's store, where nodes commit
  const spec: ChainSpec = {
    id: 'chain-a',
    genesisHash: '',
    nodes: [
      { id: 'n1', endpoint: 'n1', priority: 1, zone: 'z1' },
      { id: 'n2', endpoint: 'n2', priority: 0, zone: 'z2' },
    ],
    policy: { blockTimeMs: 1000, probeIntervalMs: 500, failureThreshold: 2, stallFactor: 5, leaseTtlMs: 2000, maxLagBlocks: 2, antiFlapMs: 1000, fencingMode: 'commit' },
  };
  await store.putSpec(spec);
  const key = keys.supervisor('chain-a');
  const acquired = await etcd.kv.txn({ success: [op.put(key, 'r1')] });
  const fence: SupervisionFence = { chainId: 'chain-a', replicaId: 'r1', key, createRevision: BigInt(acquired.header.revision) };
  const next = { nodeId: 'n1', reason: 'test', fromHead: 0, mode: 'commit' as const };
  const term = await store.writeLeader(fence, undefined, next, { ...next, previousNodeId: undefined, previousTerm: undefined, atMs: 0, supervisor: 'r1', durationMs: undefined });
  for (let n = 1; n <= 5; n++) await commits.commitHead({ chainId: 'chain-a', nodeId: 'n1', term, head: headAt(n, term) });

  // n1 is active at head 5; n2 a standby that saw the term.
  const report = (over: Partial<NodeReport>): NodeReport => ({
    healthy: true, headNumber: 5, headHash: hash(5), producing: false, term: 0n, highestTerm: term, leaseRemainingMs: 0,
    chainId: 'chain-a', genesisHash: '', version: 'sim', peerCount: 1, lastError: '', ...over,
  });
  const reports = new Map([
    ['n1', report({ producing: true, term, leaseRemainingMs: 2000 })],
    ['n2', report({})],
  ]);
  const starts: StartGrant[] = [];
  const nodes: NodeControl = {
    deadlineMs: 500,
    health: async (node) => reports.get(node.id)!,
    start: async (_node, grant) => void starts.push(grant),
    renew: async () => undefined,
    stop: async () => undefined,
    prepareHandoff: async () => {
      throw new Error('no handoff here');
    },
    completeHandoff: async () => undefined,
  };
  const supervisor = new ChainSupervisor(spec, {
    fence,
    store,
    ops: new EtcdOperationStore(etcd, keys, { clock: loop }),
    nodes,
    clock: loop,
    maxClockSkewMs: 0,
    scheduler: loop.scheduler(),
    proof: { provenUntilMs: () => Infinity },
    slots: { acquire: async () => async () => undefined },
    fleet: () => ({ autoFailover: true, maxConcurrentFailovers: 1 }),
    log: silent,
  });
  supervisor.start();
  await loop.run(1200, 10_000, () => true);
  t.equal(starts.length, 0, 'n1 is left producing');

  // n1 commits block 6, and its lease runs out before the answer: it drops the block (head 5, idle).
  await commits.commitHead({ chainId: 'chain-a', nodeId: 'n1', term, head: headAt(6, term) });
  reports.set('n1', report({}));
  await loop.run(2600, 10_000, () => true);
  await supervisor.stop('test over');
  t.ok(starts.length > 0, 'n1 is started again under its term');
  t.equal(starts[0]!.term, term, 'the same term');
  t.equal(starts[0]!.head?.number, 6, 'from the committed head 6, which the node adopts, not the head 5 read before');
});
