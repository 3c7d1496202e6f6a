// An operator's failover or switchover chooses on current reports. While a chain is steady its
// standbys are probed only every few rounds (probe-plan.ts), so a standby's last report can be
// most of a second old; at fast blocks it then looks several blocks behind the recorded head and
// a caught-up standby was refused as "behind" (seen in CI: `ctl failover --to` at 250 ms blocks).
// The real ChainSupervisor on MemoryEtcd and virtual time; the nodes follow one chain whose height
// grows with the clock, so every node is always caught up and only a report's age can lag.
import t from 'tap';
import { EtcdChainStore } from '../../src/adapters/etcd/chain-store.js';
import { op } from '../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../src/adapters/etcd/keys.js';
import { EtcdOperationStore } from '../../src/adapters/etcd/operation-store.js';
import { MemoryEtcd } from '../../src/adapters/memory/memory-etcd.js';
import type { ChainSpec } from '../../src/core/chain.js';
import { isFinal } from '../../src/core/operation.js';
import type { NodeReport } from '../../src/core/observation.js';
import type { NodeControl, SupervisionFence } from '../../src/core/ports.js';
import { ChainSupervisor } from '../../src/core/supervisor.js';
import { SimLoop } from '../../src/simworld/loop.js';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const BLOCK_MS = 250;
const spec: ChainSpec = {
  id: 'chain-a',
  genesisHash: '',
  nodes: [
    { id: 'n1', endpoint: 'n1', priority: 1, zone: 'z1' },
    { id: 'n2', endpoint: 'n2', priority: 0, zone: 'z2' },
  ],
  policy: { blockTimeMs: BLOCK_MS, probeIntervalMs: 250, failureThreshold: 3, stallFactor: 5, leaseTtlMs: 3000, maxLagBlocks: 2, antiFlapMs: 0, fencingMode: 'lease' },
};

t.test('failover --to a caught-up standby whose last report is old: chosen after a fresh probe, not refused as behind', async (t) => {
  const loop = new SimLoop();
  const etcd = new MemoryEtcd({ nowMs: () => loop.now(), after: (ms, fn) => void loop.at(ms, fn) });
  const keys = new EtcdKeys('/t/');
  const store = new EtcdChainStore(etcd, keys, { batchCommits: false });
  const ops = new EtcdOperationStore(etcd, keys, { clock: loop });
  await store.putSpec(spec);
  const key = keys.supervisor('chain-a');
  const acquired = await etcd.kv.txn({ success: [op.put(key, 'r1')] });
  const fence: SupervisionFence = { chainId: 'chain-a', replicaId: 'r1', key, createRevision: BigInt(acquired.header.revision) };

  // One chain, as every node sees it: height = virtual time / block time.
  const height = () => Math.floor(loop.now() / BLOCK_MS);
  const hash = (n: number) => n.toString(16).padStart(64, '0');
  const nodes = new Map([['n1', { producing: false, term: 0n, highest: 0n }], ['n2', { producing: false, term: 0n, highest: 0n }]]);
  const report = (id: string): NodeReport => {
    const s = nodes.get(id)!;
    const n = height();
    return {
      healthy: true, headNumber: n, headHash: hash(n), producing: s.producing, term: s.producing ? s.term : 0n, highestTerm: s.highest,
      leaseRemainingMs: s.producing ? 3000 : 0, chainId: 'chain-a', genesisHash: '', version: 'sim', peerCount: 1, lastError: '',
    };
  };
  const saw = (id: string, term: bigint) => {
    const s = nodes.get(id)!;
    if (term > s.highest) s.highest = term;
  };
  const control: NodeControl = {
    deadlineMs: 100,
    health: async (node) => report(node.id),
    start: async (node, grant) => {
      Object.assign(nodes.get(node.id)!, { producing: true, term: grant.term });
      saw(node.id, grant.term);
    },
    renew: async (node, term) => saw(node.id, term),
    stop: async (node, term) => {
      nodes.get(node.id)!.producing = false;
      saw(node.id, term);
    },
    prepareHandoff: async () => {
      throw new Error('no handoff here');
    },
    completeHandoff: async () => undefined,
  };
  const supervisor = new ChainSupervisor(spec, {
    fence, store, ops, nodes: control, clock: loop, maxClockSkewMs: 0, scheduler: loop.scheduler(),
    proof: { provenUntilMs: () => Infinity },
    slots: { acquire: async () => async () => undefined },
    fleet: () => ({ autoFailover: true, maxConcurrentFailovers: 1 }),
    log: silent,
  });
  supervisor.start();
  t.teardown(() => supervisor.stop('test over'));
  const run = async (forMs: number, done: () => boolean | Promise<boolean>) => {
    const end = loop.now() + forMs;
    while (loop.now() < end && !(await done())) await loop.run(loop.now() + 10, 100_000, () => true);
  };

  // n1 is elected and produces; the chain settles, and n2 is then a quiet standby.
  await run(8000, () => supervisor.status().state?.leader?.nodeId === 'n1' && nodes.get('n1')!.producing && loop.now() > 6000);
  const leader = supervisor.status().state!.leader!;
  t.equal(leader.nodeId, 'n1', 'n1 leads and produces');
  const n2Age = () => loop.now() - supervisor.status().nodes.get('n2')!.reportAtMs;
  await run(3000, () => n2Age() >= 800);
  t.ok(n2Age() >= 800, `n2's last report is ${n2Age()} ms old (quiet standbys are probed every few rounds)`);

  const { operation } = await ops.submit({ chainId: 'chain-a', params: { kind: 'failover', candidate: 'n2', reason: 'test' }, requestId: 'req-1' }, undefined);
  supervisor.storeChanged();
  let ended = operation;
  await run(5000, async () => {
    ended = (await ops.get(operation.id)) ?? ended;
    return isFinal(ended.state);
  });
  t.equal(ended.state, 'succeeded', `the failover succeeded (${ended.error?.code ?? ''} ${ended.error?.message ?? ''})`);
  t.equal(supervisor.status().state?.leader?.nodeId, 'n2', 'n2 leads now');
});
