// The etcd KV contract on MemoryEtcd, plus what only the fake can show quickly (expiry on its clock).
import { EtcdLeaseInvalidError } from 'etcd3';
import t from 'tap';
import { firstKv, op } from '../../../src/adapters/etcd/client.js';
import { MemoryEtcd } from '../../../src/adapters/memory/memory-etcd.js';
import { etcdKvContract } from '../../contract/etcd-kv.contract.js';

etcdKvContract(t, async () => ({ client: new MemoryEtcd(), prefix: '/kv/', close: async () => undefined }));

t.test('a lease expires on the injected clock; a keepalive restarts its TTL', async (t) => {
  let now = 0;
  const timers: { at: number; fn: () => void }[] = [];
  const etcd = new MemoryEtcd({ nowMs: () => now, after: (ms, fn) => void timers.push({ at: now + ms, fn }) });
  const advance = (ms: number) => {
    now += ms;
    for (const tm of timers.splice(0).sort((a, b) => a.at - b.at)) if (tm.at <= now) tm.fn();
      else timers.push(tm);
  };
  const lease = etcd.lease(3, { autoKeepAlive: false });
  const id = await lease.grant();
  etcd.txnNow({ success: [op.put('/k', 'v', id)] });
  advance(2000);
  await lease.keepaliveOnce();
  advance(2500);
  t.ok(firstKv(etcd.txnNow({ success: [op.get('/k')] }).responses[0]), 'alive 4.5 s after the grant: the keepalive restarted the TTL');
  const seen: string[] = [];
  const w = etcd.watch().key('/k').watcher();
  w.on('delete', (kv) => seen.push(kv.mod_revision));
  advance(0);
  const before = etcd.currentRevision();
  advance(600);
  t.equal(firstKv(etcd.txnNow({ success: [op.get('/k')] }).responses[0]), undefined, 'gone at TTL after the last keepalive');
  advance(0);
  t.same(seen, [String(before + 1n)], 'the expiry is a delete event at its own revision');
  const err = await lease.keepaliveOnce().then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof EtcdLeaseInvalidError, 'a keepalive after expiry: lease invalid');
});

t.test('compaction: older reads and watches fail like etcd', async (t) => {
  const etcd = new MemoryEtcd();
  etcd.txnNow({ success: [op.put('/a', '1')] });
  const r = etcd.currentRevision();
  etcd.txnNow({ success: [op.put('/a', '2')] });
  etcd.txnNow({ success: [op.put('/a', '3')] });
  etcd.compact(Number(r) + 1);
  t.throws(() => etcd.txnNow({ success: [op.get('/a', r)] }), /compacted/);
  t.equal(firstKv(etcd.txnNow({ success: [op.get('/a', r + 1n)] }).responses[0])!.value.toString(), '2', 'the compact revision itself is readable');
  const err = await new Promise<Error>((resolve) => etcd.watch().prefix('/').startRevision(String(r)).watcher().on('error', resolve));
  t.match(err.message, /compacted/);
});
