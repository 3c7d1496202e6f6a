// The audit trail: the record of a change is written by the same etcd txn as the change (same mod
// revision), carries who/what/why and the leadership before and after, is queryable over REST and
// gRPC by chain, principal and time range, cannot be deleted through the API, and is swept by
// count and age.
import { Metadata } from '@grpc/grpc-js';
import t from 'tap';
import { Etcd3 } from 'etcd3';
import { EtcdAuditLog } from '../../src/adapters/etcd/audit-log.js';
import { EtcdKeys } from '../../src/adapters/etcd/keys.js';
import { assertOneAuditRecord, auditRecords } from './audit-assert.js';
import { call, startSecureService } from './harness.js';

const h = await startSecureService(t, 'audit');
const etcd = new Etcd3({ hosts: h.cluster.endpoints });
t.teardown(() => etcd.close());
const root = h.identity('root');
const operator = h.identity('operator');
const spec = { nodes: [{ id: 'n1', endpoint: '127.0.0.1:1' }, { id: 'n2', endpoint: '127.0.0.1:2' }], policy: { leaseTtlMs: 8000 } };
const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

t.test('a change and its record share one txn; the record says who, what, why and how it ended', async (t) => {
  const put = await h.rest(root, 'PUT', '/v1/chains/chain-a', spec, { traceparent });
  t.equal(put.status, 201);
  const rec = await assertOneAuditRecord(t, etcd, h.prefix, put.headers['x-request-id'] as string, { principal: 'root', action: 'PutChain', outcome: 'applied' });
  t.match(rec, { chainId: 'chain-a', traceId: '0af7651916cd43dd8448eb211c80319c', status: '201', before: { leader: null, term: null, head: null } });
  t.ok(['viewer', 'operator', 'admin', 'breakglass'].includes(rec!.role) && rec!.role === 'admin', `the role that allowed it: ${rec?.role}`);
  const specRev = (await etcd.get(`${h.prefix}chains/chain-a/spec`).exec()).kvs[0]!.mod_revision;
  const auditRev = (await etcd.get(`${h.prefix}audit/${rec!.id}`).exec()).kvs[0]!.mod_revision;
  t.equal(auditRev, specRev, 'written by the same txn as the spec');

  const failover = await h.rest(operator, 'POST', '/v1/chains/chain-a/failover', { reason: 'drill 7' }, { 'idempotency-key': 'audit-k1' });
  t.equal(failover.status, 202);
  const frec = await assertOneAuditRecord(t, etcd, h.prefix, failover.headers['x-request-id'] as string, { principal: 'operator', action: 'Failover', outcome: 'accepted' });
  t.match(frec, { role: 'operator', reason: 'drill 7', idempotencyKey: 'audit-k1', operationId: failover.body.id, chainId: 'chain-a', status: '202' });
  const opRev = (await etcd.get(`${h.prefix}operations/${failover.body.id}`).exec()).kvs[0]!.create_revision;
  const frev = (await etcd.get(`${h.prefix}audit/${frec!.id}`).exec()).kvs[0]!.mod_revision;
  t.equal(frev, opRev, 'written by the same txn as the intent');

  const conflict = await h.rest(operator, 'POST', '/v1/chains/chain-a/failover', { reason: 'again' });
  if (conflict.status === 409) {
    await assertOneAuditRecord(t, etcd, h.prefix, conflict.headers['x-request-id'] as string, { outcome: 'refused' });
  }
  const bad = await h.rest(root, 'PUT', '/v1/chains/chain-a', { nodes: [] });
  t.equal(bad.status, 400);
  const brec = await assertOneAuditRecord(t, etcd, h.prefix, bad.headers['x-request-id'] as string, { outcome: 'refused' });
  t.equal(brec?.error?.code, 'INVALID_ARGUMENT', 'the refusal is recorded with its code');
  const denied = await h.rest(operator, 'DELETE', '/v1/chains/chain-a');
  t.equal(denied.status, 403);
  await assertOneAuditRecord(t, etcd, h.prefix, denied.headers['x-request-id'] as string, { principal: 'operator', action: 'DeleteChain', denied: true });
});

t.test('queryable by chain, principal and time range over REST and gRPC; no API deletes it', async (t) => {
  const all = await h.rest(root, 'GET', '/v1/audit?limit=1000');
  t.equal(all.status, 200);
  t.ok(all.body.records.length >= 4);
  const ids = all.body.records.map((r: { id: string }) => r.id);
  t.same(ids, [...ids].sort().reverse(), 'newest first');
  const byPrincipal = await h.rest(root, 'GET', '/v1/audit?principal=operator');
  t.ok(byPrincipal.body.records.length >= 2 && byPrincipal.body.records.every((r: { principal: string }) => r.principal === 'operator'));
  const byChain = await h.rest(root, 'GET', '/v1/audit?chain=chain-a');
  t.ok(byChain.body.records.every((r: { chainId: string }) => r.chainId === 'chain-a'));
  const oldest = all.body.records[all.body.records.length - 1];
  const until = new Date(oldest.atMs).toISOString();
  const early = await h.rest(root, 'GET', `/v1/audit?to=${encodeURIComponent(until)}`);
  t.ok(early.body.records.every((r: { atMs: number }) => r.atMs <= oldest.atMs) && early.body.records.some((r: { id: string }) => r.id === oldest.id), 'to is inclusive');
  const future = await h.rest(root, 'GET', `/v1/audit?from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
  t.same(future.body.records, [], 'nothing from the future');
  t.equal((await h.rest(root, 'GET', '/v1/audit?from=yesterday')).status, 400);

  const c = h.grpc(root);
  const md = new Metadata();
  const res = await call(c.queryAudit.bind(c), { chainId: 'chain-a', principal: 'operator', from: undefined, to: undefined, limit: 10 }, { metadata: md });
  t.ok(res.records.length >= 1 && res.records.every((r) => r.principal === 'operator' && r.chainId === 'chain-a'));
  t.equal((await h.rest(root, 'DELETE', '/v1/audit')).status, 404, 'no route deletes records');
  t.equal((await h.rest(h.identity('viewer'), 'GET', '/v1/audit')).status, 403, 'a viewer may not read it');
});

t.test('retention: the sweep drops the oldest beyond the count and everything beyond the age', async (t) => {
  let now = 2_000_000_000_000;
  const clock = { wallMs: () => now, monoMs: () => now };
  const keys = new EtcdKeys(`${h.prefix}retention/`);
  const log = new EtcdAuditLog(etcd, keys, clock, { maxRecords: 3, maxAgeMs: 10_000 });
  const base = { principal: 'p', role: 'admin', action: 'PutChain', chainId: null, reason: null, requestId: 'r', traceId: null, idempotencyKey: null, before: null, after: null, outcome: 'applied' as const, error: null, operationId: null, status: '200' };
  for (let i = 0; i < 5; i++) {
    now += 1000;
    await log.append({ ...base, requestId: `r${i}` });
  }
  t.equal(await log.sweep(), 2, 'two beyond the count');
  t.same((await auditRecords(etcd, keys.prefix)).map((r) => r.requestId), ['r2', 'r3', 'r4'], 'the newest three are kept');
  now += 8500; // r2 is now 10.5 s old, r3 9.5 s
  t.equal(await log.sweep(), 1, 'one beyond the age');
  t.same((await auditRecords(etcd, keys.prefix)).map((r) => r.requestId), ['r3', 'r4']);
  t.equal(await log.sweep(), 0, 'a second sweep finds nothing (idempotent)');
});

h.assertEveryMutationAudited(t);
