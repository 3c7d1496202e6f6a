// Idempotency-Key on the plain mutations: PUT/DELETE of a chain and PUT of the fleet settings.
import t from 'tap';
import type { InjectOptions } from 'fastify';
import type { Test } from 'tap';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { buildHarness, call as callApp, idleSpec } from './harness.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());
const client = createEtcdClient({ endpoints: cluster.endpoints });
t.teardown(() => client.close());
const h = await buildHarness({ client, prefix: `/baton-idem-${process.pid}/` });
t.teardown(() => h.app.close());

const call = (t: Test, opts: InjectOptions & { method: string; url: string }) => callApp(t, h, opts);
const json = { 'content-type': 'application/json' };

t.test('PUT chain: a replay answers the first response and writes nothing', async (t) => {
  const headers = { ...json, 'idempotency-key': 'put-1' };
  const first = await call(t, { method: 'PUT', url: '/v1/chains/idem-a', payload: idleSpec(), headers });
  t.equal(first.status, 201);
  const before = await h.snapshot();
  const replay = await call(t, { method: 'PUT', url: '/v1/chains/idem-a', payload: idleSpec(), headers });
  t.equal(replay.status, 201, 'the recorded 201, not a fresh 200');
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.same(replay.body, first.body);
  t.same(await h.snapshot(), before, 'nothing written by the replay');

  const other = await call(t, { method: 'PUT', url: '/v1/chains/idem-b', payload: idleSpec(), headers });
  t.equal(other.status, 422, 'the same key for another request');
  t.equal(other.body.code, 'IDEMPOTENCY_MISMATCH');
  t.equal(await h.store.getSpec('idem-b'), undefined, 'and that request did not run');
});

t.test('DELETE chain: the replay answers 204 again instead of 404', async (t) => {
  await call(t, { method: 'PUT', url: '/v1/chains/idem-del', payload: idleSpec(), headers: json });
  const headers = { 'idempotency-key': 'del-1' };
  t.equal((await call(t, { method: 'DELETE', url: '/v1/chains/idem-del', headers })).status, 204);
  t.equal((await call(t, { method: 'DELETE', url: '/v1/chains/idem-del', headers })).status, 204, 'replayed');
  t.equal((await call(t, { method: 'DELETE', url: '/v1/chains/idem-del' })).status, 404, 'without the key it is a new request');
});

t.test('PUT fleet settings: replay and mismatch', async (t) => {
  const headers = { ...json, 'idempotency-key': 'fleet-1' };
  const body = { autoFailover: false, maxConcurrentFailovers: 3 };
  t.equal((await call(t, { method: 'PUT', url: '/v1/fleet/settings', payload: body, headers })).status, 200);
  await h.store.putFleetSettings({ autoFailover: true, maxConcurrentFailovers: 2 });
  const replay = await call(t, { method: 'PUT', url: '/v1/fleet/settings', payload: body, headers });
  t.same(replay.body, body, 'the recorded answer');
  t.same(await h.store.getFleetSettings(), { autoFailover: true, maxConcurrentFailovers: 2 }, 'and the write did not run again');
  const mismatch = await call(t, { method: 'PUT', url: '/v1/fleet/settings', payload: { ...body, maxConcurrentFailovers: 4 }, headers });
  t.equal(mismatch.status, 422);
});

t.test('a key used for an operation is not reused for a plain write', async (t) => {
  await call(t, { method: 'PUT', url: '/v1/chains/idem-op', payload: idleSpec(), headers: json });
  const headers = { ...json, 'idempotency-key': 'op-1' };
  const op = await call(t, { method: 'POST', url: '/v1/chains/idem-op/pause', payload: { reason: 'test' }, headers });
  t.equal(op.status, 202);
  const put = await call(t, { method: 'PUT', url: '/v1/chains/idem-op', payload: idleSpec(), headers });
  t.equal(put.status, 422);
});
