// The etcd KV contract on a real etcd 3.4 (one member): what MemoryEtcd must match.
import t from 'tap';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { etcdKvContract } from '../../contract/etcd-kv.contract.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());

let n = 0;
etcdKvContract(t, async () => {
  const client = createEtcdClient({ endpoints: cluster.endpoints });
  return { client, prefix: `/kv-contract-${process.pid}-${++n}/`, close: async () => client.close() };
});
