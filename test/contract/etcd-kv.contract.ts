// The etcd KV contract at the level the adapters use (raw txns, compares, ranges, leases, watches):
// run against a real etcd 3.4 and against MemoryEtcd, it shows the fake keeps etcd's semantics,
// including the sharp edges Baton's fencing depends on.
import { EtcdLeaseInvalidError, type IKeyValue } from 'etcd3';
import type { Test } from 'tap';
import { compare, firstKv, op, rangeKvs, toRevision, type EtcdClient } from '../../src/adapters/etcd/client.js';

export interface KvHarness {
  client: EtcdClient;
  /** A key prefix no other subtest uses. */
  prefix: string;
  close(): Promise<void>;
}

const rev = (res: { header: { revision: string } }) => toRevision(res.header.revision);

async function rejects(t: Test, p: Promise<unknown>, check: (err: unknown) => boolean, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected a rejection`);
  } catch (err) {
    t.ok(check(err), what, { got: String(err) });
  }
}

export function etcdKvContract(t: Test, make: () => Promise<KvHarness>): void {
  const withKv = (name: string, fn: (t: Test, h: KvHarness, k: (s: string) => string) => Promise<void>) =>
    t.test(name, async (t) => {
      const h = await make();
      try {
        await fn(t, h, (s) => `${h.prefix}${s}`);
      } finally {
        await h.close();
      }
    });

  withKv('a write bumps the revision once; reads and no-op deletes do not', async (t, { client }, k) => {
    const r0 = rev(await client.kv.txn({ success: [op.get(k('a'))] }));
    const put = await client.kv.txn({ success: [op.put(k('a'), '1'), op.put(k('b'), '2')] });
    t.equal(rev(put), r0 + 1n, 'two puts in one txn: one revision');
    t.equal(rev(await client.kv.txn({ success: [op.get(k('a'))] })), r0 + 1n, 'a read does not bump');
    t.equal(rev(await client.kv.txn({ success: [op.del(k('missing'))] })), r0 + 1n, 'deleting nothing does not bump');
    const got = await client.kv.txn({ success: [op.put(k('a'), '3'), op.get(k('a'))] });
    const kv = firstKv(got.responses[1])!;
    t.equal(kv.value.toString(), '3', 'a read later in the txn sees the put');
    t.equal(kv.create_revision, String(r0 + 1n), 'create revision kept');
    t.equal(kv.mod_revision, String(r0 + 2n), 'mod revision is the txn revision');
    t.equal(kv.version, '2', 'version counts puts');
    const del = await client.kv.txn({ success: [op.del(k('a'))] });
    t.equal(del.responses[0]!.response_delete_range.deleted, '1');
    const again = await client.kv.txn({ success: [op.put(k('a'), '4'), op.get(k('a'))] });
    const kv2 = firstKv(again.responses[1])!;
    t.equal(kv2.version, '1', 'version restarts after a delete');
    t.equal(kv2.create_revision, kv2.mod_revision, 'a re-created key has a new create revision');
  });

  withKv('compares: an absent key is revision 0, but never equal by value', async (t, { client }, k) => {
    const ok = async (c: Parameters<typeof client.kv.txn>[0]['compare']) => (await client.kv.txn({ compare: c, success: [] })).succeeded;
    t.ok(await ok([compare.absent(k('x'))]), 'create == 0 on an absent key');
    t.ok(await ok([{ key: Buffer.from(k('x')), target: 'Mod', result: 'Equal', mod_revision: '0' }]), 'mod == 0 on an absent key: the trap');
    t.ok(await ok([{ key: Buffer.from(k('x')), target: 'Version', result: 'Equal', version: '0' }]), 'version == 0 on an absent key');
    t.notOk(await ok([compare.value(k('x'), '')]), 'value compare on an absent key is false, even against ""');
    t.notOk(await ok([{ key: Buffer.from(k('x')), target: 'Value', result: 'NotEqual', value: Buffer.from('z') }]), 'value != on an absent key is false too');
    t.notOk(await ok([compare.exists(k('x'))]), 'exists is false');
    const put = await client.kv.txn({ success: [op.put(k('x'), 'v')] });
    const r = rev(put);
    t.ok(await ok([compare.exists(k('x')), compare.createRevision(k('x'), r), compare.modRevision(k('x'), r), compare.value(k('x'), 'v')]), 'all hold');
    t.notOk(await ok([compare.modRevision(k('x'), r + 1n)]), 'a wrong mod revision fails');
    t.ok(await ok([{ key: Buffer.from(k('x')), target: 'Mod', result: 'Less', mod_revision: String(r + 1n) }]), 'mod < r+1');
    t.ok(await ok([{ key: Buffer.from(k('x')), target: 'Value', result: 'Greater', value: Buffer.from('a') }]), 'value > "a" (bytes)');
    t.throws(() => compare.modRevision(k('x'), 0n), 'a revision of 0 is refused before a txn is built');
    const res = await client.kv.txn({ compare: [compare.absent(k('x'))], success: [op.put(k('y'), 'no')], failure: [op.get(k('x'))] });
    t.notOk(res.succeeded, 'failed compare');
    t.equal(firstKv(res.responses[0])!.value.toString(), 'v', 'the failure branch ran');
    t.equal(rangeKvs((await client.kv.txn({ success: [op.get(k('y'))] })).responses[0]).length, 0, 'the success branch did not');
  });

  withKv('nested txns (a batch of commits): one revision for all, compares judged before any write', async (t, { client }, k) => {
    await client.kv.txn({ success: [op.put(k('taken'), 'x')] });
    const res = await client.kv.txn({
      success: [
        { request_txn: { compare: [compare.absent(k('a'))], success: [op.put(k('a'), '1')], failure: [op.get(k('a'))] } },
        // Judged on the state before the outer txn: the put of `a` above does not make it fail.
        { request_txn: { compare: [compare.absent(k('a'))], success: [op.put(k('b'), '2')], failure: [op.get(k('b'))] } },
        { request_txn: { compare: [compare.absent(k('taken'))], success: [op.put(k('c'), '3')], failure: [op.get(k('taken'))] } },
      ],
    });
    const inner = res.responses.map((r) => r.response_txn);
    t.same(inner.map((r) => r.succeeded), [true, true, false], 'each nested txn has its own outcome');
    t.equal(firstKv(inner[2]!.responses[0])?.value.toString(), 'x', 'a failed one ran its failure branch');
    const read = await client.kv.txn({ success: [op.get(k('a')), op.get(k('b')), op.get(k('c'))] });
    const [a, b, c] = read.responses.map((r) => firstKv(r));
    t.equal(a?.mod_revision, res.header.revision, 'the first write is at the txn revision');
    t.equal(b?.mod_revision, res.header.revision, 'and so is the second: one revision for the whole batch');
    t.equal(c, undefined, 'the failed one wrote nothing');
  });

  withKv('ranges: prefix, limit, keys only, descending, at an older revision', async (t, { client }, k) => {
    await client.kv.txn({ success: ['c', 'a', 'b'].map((n) => op.put(k(`p/${n}`), n)) });
    const first = rev(await client.kv.txn({ success: [op.put(k('q'), 'outside')] }));
    await client.kv.txn({ success: [op.put(k('p/a'), 'A'), op.del(k('p/b'))] });
    const all = await client.kv.txn({ success: [op.getPrefix(k('p/'))] });
    t.same(rangeKvs(all.responses[0]).map((kv) => kv.value.toString()), ['A', 'c'], 'prefix, key order, current values');
    const lim = (await client.kv.txn({ success: [op.getPrefix(k('p/'), { limit: 1, descending: true })] })).responses[0]!.response_range;
    t.same(lim.kvs.map((kv: IKeyValue) => kv.key.toString()), [k('p/c')], 'descending, limited');
    t.equal(lim.more, true, 'more');
    t.equal(lim.count, '2', 'count is before the limit');
    const keysOnly = await client.kv.txn({ success: [op.getPrefix(k('p/'), { keysOnly: true })] });
    t.ok(rangeKvs(keysOnly.responses[0]).every((kv) => kv.value.length === 0), 'keys only carry no values');
    const old = await client.kv.txn({ success: [op.get(k('p/a'), first), op.get(k('p/b'), first)] });
    t.same(old.responses.map((r) => firstKv(r)?.value.toString()), ['a', 'b'], 'reads as of an older revision');
  });

  withKv('leases: keys under a lease go with it; an unknown lease fails the txn', async (t, { client }, k) => {
    const lease = client.lease(10, { autoKeepAlive: false });
    lease.on('lost', () => undefined);
    const id = await lease.grant();
    t.equal(Number((await lease.keepaliveOnce()).TTL), 10, 'keepalive answers the TTL');
    const put = await client.kv.txn({ success: [op.put(k('l1'), 'a', id), op.put(k('l2'), 'b', id), op.put(k('keep'), 'c')] });
    t.equal(firstKv((await client.kv.txn({ success: [op.get(k('l1'))] })).responses[0])!.lease, id, 'the key names its lease');
    await lease.revoke();
    const after = await client.kv.txn({ success: [op.getPrefix(k(''))] });
    t.same(rangeKvs(after.responses[0]).map((kv) => kv.key.toString()), [k('keep')], 'leased keys deleted');
    t.equal(rev(after), rev(put) + 1n, 'revoking deletes them in one revision');
    await rejects(t, lease.keepaliveOnce(), (e) => e instanceof EtcdLeaseInvalidError, 'keepalive of a revoked lease: lease invalid');
    await rejects(t, client.kv.txn({ success: [op.put(k('z'), 'x'), op.put(k('l3'), 'y', id)] }), (e) => e instanceof EtcdLeaseInvalidError, 'put under a gone lease');
    t.equal(rangeKvs((await client.kv.txn({ success: [op.get(k('z'))] })).responses[0]).length, 0, 'nothing of that txn applied');
  });

  withKv('watches replay from a start revision, in order, with deletes', async (t, { client }, k) => {
    const start = rev(await client.kv.txn({ success: [op.put(k('w/a'), '1')] }));
    await client.kv.txn({ success: [op.put(k('w/b'), '2'), op.put(k('other'), 'x')] });
    await client.kv.txn({ success: [op.del(k('w/a'))] });
    const seen: string[] = [];
    const w = client.watch().prefix(k('w/')).startRevision(String(start)).watcher();
    const done = new Promise<void>((resolve, reject) => {
      const note = (type: string, kv: IKeyValue) => {
        seen.push(`${type} ${kv.key.toString().slice(k('').length)} mod=${BigInt(kv.mod_revision) - start} create=${kv.create_revision === '0' ? 0 : 'set'}`);
        if (seen.length === 4) resolve();
      };
      w.on('put', (kv) => note('put', kv));
      w.on('delete', (kv) => note('delete', kv));
      w.on('error', reject);
    });
    await new Promise<void>((resolve, reject) => {
      w.once('connected', () => resolve());
      w.once('error', reject);
    });
    await client.kv.txn({ success: [op.put(k('w/c'), '3')] });
    await done;
    await w.cancel();
    t.same(seen, ['put w/a mod=0 create=set', 'put w/b mod=1 create=set', 'delete w/a mod=2 create=0', 'put w/c mod=3 create=set']);
  });
}
