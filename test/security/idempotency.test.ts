// Idempotency keys, hardened: one effect per key; a concurrent retry with the same key gets 409
// while the first runs; the same key with a different body gets 422; a key used by one principal
// never returns another principal's response; keys expire. Every mutation leaves one audit record.
import t from 'tap';
import { Etcd3 } from 'etcd3';
import { EtcdIdempotencyRecords } from '../../src/adapters/etcd/idempotency-records.js';
import { EtcdKeys } from '../../src/adapters/etcd/keys.js';
import { isBatonError } from '../../src/core/errors.js';
import { assertOneAuditRecord } from './audit-assert.js';
import { rejection, startSecureService } from './harness.js';

const h = await startSecureService(t, 'idem');
const etcd = new Etcd3({ hosts: h.cluster.endpoints });
t.teardown(() => etcd.close());
const root = h.identity('root');
const op1 = h.identity('operator');
const op2 = h.identity('operator-2');
const spec = { nodes: [{ id: 'n1', endpoint: '127.0.0.1:1' }, { id: 'n2', endpoint: '127.0.0.1:2' }], policy: { leaseTtlMs: 8000 } };
t.equal((await h.rest(root, 'PUT', '/v1/chains/chain-a', spec)).status, 201);

t.test('one effect per key; the replay answers the first response and is audited as a replay', async (t) => {
  const key = { 'idempotency-key': 'settings-1' };
  const first = await h.rest(root, 'PUT', '/v1/fleet/settings', { autoFailover: false, maxConcurrentFailovers: 3 }, key);
  t.equal(first.status, 200);
  const rev1 = (await etcd.get(`${h.prefix}fleet/settings`).exec()).kvs[0]!.mod_revision;
  const again = await h.rest(root, 'PUT', '/v1/fleet/settings', { autoFailover: false, maxConcurrentFailovers: 3 }, key);
  t.equal(again.status, 200);
  t.equal(again.headers['idempotent-replayed'], 'true');
  const rev2 = (await etcd.get(`${h.prefix}fleet/settings`).exec()).kvs[0]!.mod_revision;
  t.equal(rev2, rev1, 'the replay wrote nothing');
  await assertOneAuditRecord(t, etcd, h.prefix, first.headers['x-request-id'] as string, { principal: 'root', action: 'PutFleetSettings', outcome: 'applied' });
  await assertOneAuditRecord(t, etcd, h.prefix, again.headers['x-request-id'] as string, { principal: 'root', action: 'PutFleetSettings', outcome: 'replayed' });

  const body = { reason: 'idem' };
  const pause = await h.rest(op1, 'POST', '/v1/chains/chain-a/pause', body, { 'idempotency-key': 'pause-1' });
  t.equal(pause.status, 202);
  const replay = await h.rest(op1, 'POST', '/v1/chains/chain-a/pause', body, { 'idempotency-key': 'pause-1' });
  t.equal(replay.status, 202);
  t.equal(replay.body.id, pause.body.id, 'the same operation');
  await assertOneAuditRecord(t, etcd, h.prefix, pause.headers['x-request-id'] as string, { outcome: 'accepted' });
  await assertOneAuditRecord(t, etcd, h.prefix, replay.headers['x-request-id'] as string, { outcome: 'replayed' });
});

t.test('the same key with a different body is 422', async (t) => {
  const key = { 'idempotency-key': 'pause-2' };
  t.equal((await h.rest(op1, 'POST', '/v1/chains/chain-a/pause', { reason: 'one' }, key)).status, 202);
  const other = await h.rest(op1, 'POST', '/v1/chains/chain-a/pause', { reason: 'two' }, key);
  t.equal(other.status, 422);
  t.equal(other.body.code, 'IDEMPOTENCY_MISMATCH');
  await assertOneAuditRecord(t, etcd, h.prefix, other.headers['x-request-id'] as string, { outcome: 'refused' });
  const put = await h.rest(root, 'PUT', '/v1/fleet/settings', { autoFailover: true, maxConcurrentFailovers: 2 }, { 'idempotency-key': 'settings-1' });
  t.equal(put.status, 422, 'a plain write too');
});

t.test("a key used by one principal never returns another principal's response", async (t) => {
  const key = { 'idempotency-key': 'shared-key' };
  const mine = await h.rest(op1, 'POST', '/v1/chains/chain-a/resume', { reason: 'same body' }, key);
  t.equal(mine.status, 202);
  const theirs = await h.rest(op2, 'POST', '/v1/chains/chain-a/resume', { reason: 'same body' }, key);
  t.equal(theirs.status, 202);
  t.not(theirs.body.id, mine.body.id, 'another principal gets its own operation');
  t.notOk(theirs.headers['idempotent-replayed'], 'not a replay');
  const mineAgain = await h.rest(op1, 'POST', '/v1/chains/chain-a/resume', { reason: 'same body' }, key);
  t.equal(mineAgain.body.id, mine.body.id, 'the first principal still gets its own');
});

t.test('a concurrent retry with the same key gets 409 while the first runs; keys expire', async (t) => {
  let now = 1_000_000;
  const clock = { wallMs: () => now, monoMs: () => now };
  const records = new EtcdIdempotencyRecords(etcd, new EtcdKeys(`${h.prefix}unit/`), clock, 60_000);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let effects = 0;
  const slow = records.once('k1', 'hash-a', async () => {
    await gate;
    effects++;
    return { status: 200, body: { n: effects } };
  });
  // The claim is written before apply runs; wait until it is there.
  for (let i = 0; i < 100 && (await etcd.getAll().prefix(`${h.prefix}unit/idempotency/`).keys()).length === 0; i++) await new Promise((r) => setImmediate(r));
  const concurrent = await rejection(records.once('k1', 'hash-a', async () => ({ status: 200, body: {} })));
  t.ok(isBatonError(concurrent, 'CONFLICT'), `concurrent retry: ${concurrent.message}`);
  const mismatch = await rejection(records.once('k1', 'hash-b', async () => ({ status: 200, body: {} })));
  t.ok(isBatonError(mismatch, 'IDEMPOTENCY_MISMATCH'), 'another request under a running key');
  release();
  t.same(await slow, { status: 200, body: { n: 1 }, replayed: false });
  t.same(await records.once('k1', 'hash-a', async () => ({ status: 500, body: {} })), { status: 200, body: { n: 1 }, replayed: true }, 'replay after it ended');
  t.equal(effects, 1, 'one effect');

  now += 60_001;
  const fresh = await records.once('k1', 'hash-b', async () => ({ status: 201, body: { n: 2 } }));
  t.same(fresh, { status: 201, body: { n: 2 }, replayed: false }, 'after the TTL the key is free again');

  // A failed request frees its key for a retry.
  await rejection(records.once('k2', 'hash-a', async () => Promise.reject(new Error('boom'))));
  t.same(await records.once('k2', 'hash-a', async () => ({ status: 200, body: {} })), { status: 200, body: {}, replayed: false }, 'a failed first attempt leaves the key free');
});

h.assertEveryMutationAudited(t);
