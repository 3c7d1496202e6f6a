// A supervisor that takes a chain over may skip waiting out its predecessor's node leases only when
// no lease-mode grant can still be valid: the chain's current term and the one before it are both
// commit mode (a commit-mode grant cannot publish once a newer term exists), and the record's writer
// knew of no live lease-mode grant of an older term. Otherwise it waits until any such lease must
// have run out. The real ChainSupervisor on MemoryEtcd and virtual time; one node is unreachable,
// so it can never be confirmed stopped and only the lease bound lets the new leader start.
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
const DEADLINE_MS = 500;

function specIn(fencingMode: FencingMode): ChainSpec {
  return {
    id: 'chain-a',
    genesisHash: '',
    nodes: [
      { id: 'n1', endpoint: 'n1', priority: 1, zone: 'z1' },
      { id: 'n2', endpoint: 'n2', priority: 0, zone: 'z2' },
    ],
    // A long block time: the heads stand still without the active being taken for stalled.
    policy: { blockTimeMs: 10_000, probeIntervalMs: 500, failureThreshold: 2, stallFactor: 5, leaseTtlMs: 3000, maxLagBlocks: 2, antiFlapMs: 0, fencingMode },
  };
}
const TTL_MS = specIn('commit').policy.leaseTtlMs;
const LEASE_BOUND_MS = DEADLINE_MS + TTL_MS;

/** Nodes that do what they are told; `down` ones do not answer. `startedAt`: first start per node. */
class FakeNodes {
  readonly down = new Set<string>();
  readonly startedAt = new Map<string, number>();
  private readonly state = new Map<string, { producing: boolean; term: bigint; highest: bigint }>();

  constructor(private readonly now: () => number) {}

  report(id: string): NodeReport {
    const s = this.of(id);
    return {
      healthy: true, headNumber: 0, headHash: '', producing: s.producing, term: s.producing ? s.term : 0n, highestTerm: s.highest,
      leaseRemainingMs: s.producing ? TTL_MS : 0, chainId: 'chain-a', genesisHash: '', version: 'sim', peerCount: 1, lastError: '',
    };
  }

  sawTerm(id: string, term: bigint): void {
    const s = this.of(id);
    s.highest = term > s.highest ? term : s.highest;
  }

  control(): NodeControl {
    const reach = (id: string) => {
      if (this.down.has(id)) throw new Error(`${id} unreachable`);
      return this.of(id);
    };
    return {
      deadlineMs: DEADLINE_MS,
      health: async (node) => (reach(node.id), this.report(node.id)),
      start: async (node, grant) => {
        Object.assign(reach(node.id), { producing: true, term: grant.term });
        this.sawTerm(node.id, grant.term);
        if (!this.startedAt.has(node.id)) this.startedAt.set(node.id, this.now());
      },
      renew: async (node, term) => (reach(node.id), this.sawTerm(node.id, term)),
      stop: async (node, term) => {
        reach(node.id).producing = false;
        this.sawTerm(node.id, term);
      },
      prepareHandoff: async () => {
        throw new Error('no handoff here');
      },
      completeHandoff: async () => undefined,
    };
  }

  private of(id: string) {
    let s = this.state.get(id);
    if (!s) this.state.set(id, (s = { producing: false, term: 0n, highest: 0n }));
    return s;
  }
}

class World {
  readonly loop = new SimLoop();
  readonly etcd = new MemoryEtcd({ nowMs: () => this.loop.now(), after: (ms, fn) => void this.loop.at(ms, fn) });
  readonly keys = new EtcdKeys('/t/');
  readonly store = new EtcdChainStore(this.etcd, this.keys, { batchCommits: false });

  /** `replicaId` takes the chain's supervisor key (whoever held it is gone) and starts supervising. */
  async supervise(replicaId: string, spec: ChainSpec, nodes: NodeControl): Promise<{ supervisor: ChainSupervisor; fence: SupervisionFence }> {
    const key = this.keys.supervisor('chain-a');
    const acquired = await this.etcd.kv.txn({ success: [op.del(key), op.put(key, replicaId)] });
    const fence: SupervisionFence = { chainId: 'chain-a', replicaId, key, createRevision: BigInt(acquired.header.revision) };
    const supervisor = new ChainSupervisor(spec, {
      fence,
      store: this.store,
      ops: new EtcdOperationStore(this.etcd, this.keys, { clock: this.loop }),
      nodes,
      clock: this.loop,
      maxClockSkewMs: 0,
      scheduler: this.loop.scheduler(),
      proof: { provenUntilMs: () => Infinity },
      slots: { acquire: async () => async () => undefined },
      fleet: () => ({ autoFailover: true, maxConcurrentFailovers: 1 }),
      log: silent,
    });
    supervisor.start();
    return { supervisor, fence };
  }

  /** Runs virtual time in steps of 100 ms until `done` (checked between steps) or `forMs` passed. */
  async runUntil(forMs: number, done: () => Promise<boolean> | boolean): Promise<void> {
    const end = this.loop.now() + forMs;
    while (this.loop.now() < end && !(await done())) await this.loop.run(this.loop.now() + 100, 100_000, () => true);
  }
}

/**
 * The chain's last two terms: n2 under `previousMode`, then n1 in commit mode (written by a
 * supervisor that is gone). A new supervisor takes over; returns how long after it started n1.
 */
async function takeover(previousMode: FencingMode): Promise<{ startedAfterMs: number | undefined; startedTerm: bigint | undefined; term: bigint }> {
  const w = new World();
  const spec = specIn('commit');
  await w.store.putSpec(spec);
  const nodes = new FakeNodes(() => w.loop.now());
  nodes.down.add('n2');
  const key = w.keys.supervisor('chain-a');
  const acquired = await w.etcd.kv.txn({ success: [op.put(key, 'r1')] });
  const fence: SupervisionFence = { chainId: 'chain-a', replicaId: 'r1', key, createRevision: BigInt(acquired.header.revision) };
  const history = (nodeId: string, previousTerm: bigint | undefined) =>
    ({ nodeId, reason: 'test', fromHead: 0, previousNodeId: undefined, previousTerm, atMs: 0, supervisor: 'r1', durationMs: undefined });
  const first = await w.store.writeLeader(fence, undefined, { nodeId: 'n2', reason: 'test', fromHead: 0, mode: previousMode }, history('n2', undefined));
  const term = await w.store.writeLeader(fence, first, { nodeId: 'n1', reason: 'test', fromHead: 0, mode: 'commit', previousMode }, history('n1', first));
  nodes.sawTerm('n1', term);

  const tookOverAtMs = w.loop.now();
  const { supervisor } = await w.supervise('r2', spec, nodes.control());
  await w.runUntil(LEASE_BOUND_MS + 2000, () => nodes.startedAt.has('n1'));
  await supervisor.stop('test over');
  const at = nodes.startedAt.get('n1');
  return { startedAfterMs: at === undefined ? undefined : at - tookOverAtMs, startedTerm: nodes.report('n1').term, term };
}

t.test('commit then commit: the new supervisor starts the leader at once', async (t) => {
  const { startedAfterMs, startedTerm, term } = await takeover('commit');
  t.equal(startedTerm, term, 'n1 is started under its term');
  t.ok(startedAfterMs !== undefined && startedAfterMs < TTL_MS, `started ${startedAfterMs} ms after the takeover, before any lease could have run out (bound ${LEASE_BOUND_MS} ms)`);
});

t.test('lease then commit: the new supervisor waits out the lease bound of its predecessor', async (t) => {
  const { startedAfterMs, startedTerm, term } = await takeover('lease');
  t.equal(startedTerm, term, 'n1 is started under its term');
  t.ok(startedAfterMs !== undefined && startedAfterMs >= LEASE_BOUND_MS, `started ${startedAfterMs} ms after the takeover: not before deadline + TTL = ${LEASE_BOUND_MS} ms`);
});

t.test('lease -> commit -> commit within one lease TTL: the successor still waits out the lease-mode grant two terms back', async (t) => {
  const w = new World();
  await w.store.putSpec(specIn('lease'));
  const nodes = new FakeNodes(() => w.loop.now());
  const leader = async () => (await w.store.read('chain-a'))?.leader;

  // r1 elects n1 in lease mode and renews its lease well past its own takeover bound.
  const r1 = await w.supervise('r1', specIn('lease'), nodes.control());
  await w.runUntil(10_000, () => nodes.startedAt.has('n1'));
  await w.runUntil(LEASE_BOUND_MS + 1000, () => false);
  const t1 = (await leader())!;
  t.match(t1, { nodeId: 'n1', mode: 'lease' }, 'term 1: n1 in lease mode');

  // The chain switches to commit mode (term 2, same node); right after, n1 becomes unreachable with
  // its last lease-mode renewal still valid, and r1 fails over to n2 (term 3).
  await w.store.putSpec(specIn('commit'));
  r1.supervisor.storeChanged();
  await w.runUntil(5000, async () => (await leader())?.mode === 'commit');
  const t2 = (await leader())!;
  t.match(t2, { nodeId: 'n1', mode: 'commit' }, 'term 2: n1 in commit mode');
  nodes.down.add('n1');
  await w.runUntil(5000, async () => (await leader())?.nodeId === 'n2');
  const t3 = (await w.store.read('chain-a'))!;
  t.match(t3.leader, { nodeId: 'n2', mode: 'commit' }, 'term 3: n2 in commit mode');
  t.equal(t3.previousMode, 'commit', 'term 3 replaced a commit-mode term');
  t.equal(t3.leaseGrantsLive, true, "but n1's lease-mode grant of term 1 may still be valid, and the record says so");
  // r1 dies before it starts n2.
  await r1.supervisor.stop('replica lost');
  t.notOk(nodes.startedAt.has('n2'), 'n2 was not started by r1');

  const tookOverAtMs = w.loop.now();
  const r2 = await w.supervise('r2', specIn('commit'), nodes.control());
  await w.runUntil(LEASE_BOUND_MS + 2000, () => nodes.startedAt.has('n2'));
  await r2.supervisor.stop('test over');
  const startedAfterMs = (nodes.startedAt.get('n2') ?? Infinity) - tookOverAtMs;
  t.ok(startedAfterMs >= LEASE_BOUND_MS && startedAfterMs < Infinity, `r2 started n2 ${startedAfterMs} ms after taking over: not before deadline + TTL = ${LEASE_BOUND_MS} ms`);
});
