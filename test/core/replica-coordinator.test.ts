// ReplicaCoordinator adopts a supervisor key that etcd says is its own but that it does not
// supervise: what an acquire leaves behind when etcd applied it and the reply was lost. Found by
// the deterministic simulator (seed 2, 50,000 steps, before the fix): the chain stayed without a
// supervisor for the life of the replica, since nobody else may take a key held under a live lease.
import t from 'tap';
import type { ChainSpec } from '../../src/core/chain.js';
import type { ChainStore, SupervisionFence } from '../../src/core/ports.js';
import { ReplicaCoordinator, type SupervisorHandle } from '../../src/core/replica.js';
import { specOf } from '../contract/chain-store.contract.js';

t.test('a key held under our own name is adopted, not skipped', async (t) => {
  const spec = specOf('chain-a');
  const acquired: string[] = [];
  const started: string[] = [];
  const coordinator = new ReplicaCoordinator({
    supervision: {
      replicaId: 'r1',
      acquire: async (chainId) => {
        acquired.push(chainId);
        return { chainId, replicaId: 'r1', key: `/baton/supervisors/${chainId}`, createRevision: 7n } satisfies SupervisionFence;
      },
      release: async () => undefined,
      liveReplicas: async () => ['r1', 'r2'],
      holders: async () => new Map([['chain-a', 'r1']]),
    },
    store: { listSpecs: async () => [spec] } as unknown as ChainStore,
    proof: { provenUntilMs: () => Infinity },
    clock: { monoMs: () => 0, wallMs: () => 0 },
    scheduler: { after: () => () => undefined },
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    makeSupervisor: (s: ChainSpec) =>
      ({ start: () => void started.push(s.id), stop: async () => undefined, storeChanged: () => undefined, status: () => undefined }) as unknown as SupervisorHandle,
    graceMs: 60_000,
    resyncMs: 60_000,
  });
  coordinator.start();
  for (let i = 0; i < 10 && started.length === 0; i++) await new Promise((r) => setImmediate(r));
  t.same(acquired, ['chain-a'], 'acquire was asked (it adopts a key held under our lease)');
  t.same(started, ['chain-a'], 'and the chain is supervised');
  t.same(coordinator.supervisedChains(), ['chain-a']);
});
