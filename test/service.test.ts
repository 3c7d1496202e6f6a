// The replica runtime fed by the leader directory (as `baton serve` wires it) on a real etcd: it
// holds no chain watch of its own, yet a chain put in etcd is taken at once and a deleted one is
// let go, because the directory tells it of every change after applying it to the spec list the
// coordinator reads.
import { pino } from 'pino';
import t from 'tap';
import { EtcdChainStore } from '../src/adapters/etcd/chain-store.js';
import { createEtcdClient } from '../src/adapters/etcd/client.js';
import { EtcdKeys } from '../src/adapters/etcd/keys.js';
import { LeaderDirectory } from '../src/adapters/etcd/leader-directory.js';
import { EtcdOperationStore } from '../src/adapters/etcd/operation-store.js';
import { systemClock, systemScheduler } from '../src/adapters/system-clock.js';
import { parseConfig } from '../src/config/config.js';
import { BatonError } from '../src/core/errors.js';
import type { NodeControl } from '../src/core/ports.js';
import { EtcdCluster } from '../src/devstack/etcd.js';
import { waitFor } from '../src/devstack/process.js';
import { ReplicaRuntime } from '../src/service.js';
import { specOf } from './contract/chain-store.contract.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());
const client = createEtcdClient({ endpoints: cluster.endpoints });
t.teardown(() => client.close());
const keys = new EtcdKeys(`/baton-rt-${process.pid}/`);
const store = new EtcdChainStore(client, keys);

// Nodes that answer nothing: the supervisors only probe them, which is all this test needs.
const unreachable = (): Promise<never> => Promise.reject(new BatonError('NODE_UNREACHABLE', 'no node in this test'));
const nodes: NodeControl = {
  deadlineMs: 100,
  health: unreachable,
  start: unreachable,
  renew: unreachable,
  stop: unreachable,
  prepareHandoff: unreachable,
  completeHandoff: unreachable,
};

t.test('a runtime on the directory feed takes new chains and lets deleted ones go', async (t) => {
  const config = parseConfig({ replicaId: 'rt-1', etcd: { endpoints: cluster.endpoints, prefix: keys.prefix, callDeadlineMs: 1000 }, replica: { leaseTtlS: 2, fenceMarginMs: 500, takeoverGraceMs: 0, resyncMs: 60_000 } });
  const log = pino({ level: 'silent' });
  const dir = new LeaderDirectory(client, keys, 2000);
  await dir.start();
  t.teardown(() => dir.close());
  const rt = new ReplicaRuntime({
    config, client, keys, store, ops: new EtcdOperationStore(client, keys), nodes, clock: systemClock, scheduler: systemScheduler, log, chainFeed: dir,
  });
  await rt.start();
  t.teardown(() => rt.close());
  await waitFor('the runtime to be ready', () => rt.ready().ready || undefined, 10_000, 20);

  // The resync is a minute away: only the feed can wake the coordinator in time.
  await store.putSpec(specOf('feed-a'));
  await waitFor('feed-a to be supervised', () => rt.supervisedChains().includes('feed-a') || undefined, 5000, 20);
  await store.putSpec(specOf('feed-b'));
  await waitFor('feed-b to be supervised', () => rt.supervisedChains().includes('feed-b') || undefined, 5000, 20);
  t.same(rt.supervisedChains(), ['feed-a', 'feed-b']);

  await store.deleteChain('feed-a');
  await waitFor('feed-a to be let go', () => (rt.supervisedChains().includes('feed-a') ? undefined : true), 5000, 20);
  t.same(rt.supervisedChains(), ['feed-b'], 'a deleted chain is no longer supervised');
});
