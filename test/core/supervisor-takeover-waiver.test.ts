// A supervisor that takes a chain over may skip waiting out its predecessor's node leases only when
// the chain's current term and the one before it are both commit mode (a commit-mode grant cannot
// publish once a newer term exists). If the term before was lease mode, a node may still hold a
// lease its old supervisor granted, and the new supervisor waits until it must have run out. The
// real ChainSupervisor on MemoryEtcd and virtual time; the standby n2 is unreachable, so it can
// never be confirmed stopped and only the lease bound lets the leader start.
import t from 'tap';
import { EtcdChainStore } from '../../src/adapters/etcd/chain-store.js';
import { op } from '../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../src/adapters/etcd/keys.js';
import { EtcdOperationStore } from '../../src/adapters/etcd/operation-store.js';
import { MemoryEtcd } from '../../src/adapters/memory/memory-etcd.js';
import type { ChainSpec, FencingMode } from '../../src/core/chain.js';
import type { NodeReport } from '../../src/core/observation.js';
import type { NodeControl, SupervisionFence } from '../../src/core/ports.js';
import { ChainSupervisor } from '../../src/core/supervisor.js';
import { SimLoop } from '../../src/simworld/loop.js';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

const spec: ChainSpec = {
  id: 'chain-a',
  genesisHash: '',
  nodes: [
    { id: 'n1', endpoint: 'n1', priority: 1, zone: 'z1' },
    { id: 'n2', endpoint: 'n2', priority: 0, zone: 'z2' },
  ],
  policy: { blockTimeMs: 1000, probeIntervalMs: 500, failureThreshold: 2, stallFactor: 5, leaseTtlMs: 3000, maxLagBlocks: 2, antiFlapMs: 1000, fencingMode: 'commit' },
};
const DEADLINE_MS = 500;

/**
 * The chain's last two terms: n2 under `previousMode`, then n1 in commit mode (written by a
 * supervisor that is gone). A new supervisor takes over; returns when, after taking over, it
 * started n1 (undefined: not within the run) and the term.
 */
async function takeover(previousMode: FencingMode): Promise<{ startedAfterMs: number | undefined; startedTerm: bigint | undefined; term: bigint }> {
  const loop = new SimLoop();
  const etcd = new MemoryEtcd({ nowMs: () => loop.now(), after: (ms, fn) => void loop.at(ms, fn) });
  const keys = new EtcdKeys('/t/');
  const store = new EtcdChainStore(etcd, keys, { batchCommits: false });
  await store.putSpec(spec);
  const key = keys.supervisor('chain-a');
  const acquired = await etcd.kv.txn({ success: [op.put(key, 'r2')] });
  const fence: SupervisionFence = { chainId: 'chain-a', replicaId: 'r2', key, createRevision: BigInt(acquired.header.revision) };
  const history = (nodeId: string, previousTerm: bigint | undefined) =>
    ({ nodeId, reason: 'test', fromHead: 0, previousNodeId: undefined, previousTerm, atMs: 0, supervisor: 'r1', durationMs: undefined });
  const first = await store.writeLeader(fence, undefined, { nodeId: 'n2', reason: 'test', fromHead: 0, mode: previousMode }, history('n2', undefined));
  const term = await store.writeLeader(fence, first, { nodeId: 'n1', reason: 'test', fromHead: 0, mode: 'commit', previousMode }, history('n1', first));

  const n1: NodeReport = {
    healthy: true, headNumber: 0, headHash: '', producing: false, term: 0n, highestTerm: term, leaseRemainingMs: 0,
    chainId: 'chain-a', genesisHash: '', version: 'sim', peerCount: 1, lastError: '',
  };
  let started: { atMs: number; term: bigint } | undefined;
  const nodes: NodeControl = {
    deadlineMs: DEADLINE_MS,
    health: async (node) => {
      if (node.id === 'n2') throw new Error('n2 unreachable');
      return started ? { ...n1, producing: true, term: started.term, leaseRemainingMs: spec.policy.leaseTtlMs } : n1;
    },
    start: async (node, grant) => {
      if (node.id === 'n1') started ??= { atMs: loop.now(), term: grant.term };
    },
    renew: async () => undefined,
    stop: async () => undefined,
    prepareHandoff: async () => {
      throw new Error('no handoff here');
    },
    completeHandoff: async () => undefined,
  };
  const tookOverAtMs = loop.now();
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
  await loop.run(tookOverAtMs + DEADLINE_MS + spec.policy.leaseTtlMs + 2000, 20_000, () => started === undefined);
  await supervisor.stop('test over');
  return { startedAfterMs: started && started.atMs - tookOverAtMs, startedTerm: started?.term, term };
}

const leaseBoundMs = DEADLINE_MS + spec.policy.leaseTtlMs;

t.test('commit then commit: the new supervisor starts the leader at once', async (t) => {
  const { startedAfterMs, startedTerm, term } = await takeover('commit');
  t.equal(startedTerm, term, 'n1 is started under its term');
  t.ok(startedAfterMs !== undefined && startedAfterMs < spec.policy.leaseTtlMs, `started ${startedAfterMs} ms after the takeover, before any lease could have run out (bound ${leaseBoundMs} ms)`);
});

t.test('lease then commit: the new supervisor waits out the lease bound of its predecessor', async (t) => {
  const { startedAfterMs, startedTerm, term } = await takeover('lease');
  t.equal(startedTerm, term, 'n1 is started under its term');
  t.ok(startedAfterMs !== undefined && startedAfterMs >= leaseBoundMs, `started ${startedAfterMs} ms after the takeover: not before deadline + TTL = ${leaseBoundMs} ms`);
});
