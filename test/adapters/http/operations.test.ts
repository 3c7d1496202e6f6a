// Operator requests over REST, against the real app and a real etcd, with no supervisor running:
// what the API itself does. A request is answered 202 only once its intent is durable; a replay
// with the same Idempotency-Key returns the first operation and writes nothing; every refusal has
// a stable code and leaves etcd exactly as it was (keys, values, mod revisions). Execution by a
// real supervisor over real nodes is in operator-e2e.test.ts.
import { readFileSync } from 'node:fs';
import type { InjectOptions } from 'fastify';
import t, { type Test } from 'tap';
import { parse } from 'yaml';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { ReplicaSession } from '../../../src/adapters/etcd/replica-session.js';
import { BODY_LIMIT_BYTES } from '../../../src/adapters/http/app.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { OPENAPI_FILE } from '../../helpers/openapi.js';
import { buildHarness, call as callApp, idleSpec, type Reply } from './harness.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());
const client = createEtcdClient({ endpoints: cluster.endpoints });
t.teardown(() => client.close());
const prefix = `/baton-ops-${process.pid}/`;
const h = await buildHarness({ client, prefix });
t.teardown(() => h.app.close());

const call = (t: Test, opts: InjectOptions & { method: string; url: string }) => callApp(t, h, opts);
const get = (t: Test, url: string) => call(t, { method: 'GET', url });
const post = (t: Test, url: string, body: unknown, headers: Record<string, string> = {}) =>
  call(t, { method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

async function putChain(t: Test, id: string, spec = idleSpec()): Promise<void> {
  const res = await call(t, { method: 'PUT', url: `/v1/chains/${id}`, payload: spec });
  t.equal(res.status, 201, `chain ${id} registered`);
}

const inMs = (ms: number) => new Date(Date.now() + ms).toISOString();
const HOUR = 3600_000;

/** An operation answered with 202: its record and intent are in etcd already. */
async function assertDurable(t: Test, res: Reply, chainId: string): Promise<void> {
  t.equal(res.status, 202, `202: ${res.text.slice(0, 200)}`);
  t.equal(res.headers.location, `/v1/operations/${res.body.id}`, 'Location names the operation');
  const stored = await client.get(h.keys.operation(res.body.id)).string();
  t.ok(stored, 'the operation is in etcd when the answer arrives');
  t.equal(await client.get(h.keys.intent(chainId, res.body.id)).string(), res.body.id, 'and so is its intent');
}

t.test('every operator request: 202 once durable, the operation view, and the reads', async (t) => {
  await putChain(t, 'chain-a');
  const until = inMs(2 * HOUR);
  const pause = await post(t, '/v1/chains/chain-a/pause', { reason: 'investigating', until });
  await assertDurable(t, pause, 'chain-a');
  t.match(pause.body, {
    chainId: 'chain-a',
    params: { kind: 'pause', reason: 'investigating', until },
    state: 'pending',
    steps: [],
    result: null,
    error: null,
    executor: null,
    idempotencyKey: null,
  });
  t.equal(pause.body.requestId, pause.headers['x-request-id'], 'the operation names the request that made it');
  t.equal(new Date(pause.body.createdAt).getTime(), pause.body.createdAtMs, 'times as RFC 3339 and as ms agree');
  t.notOk(pause.headers['idempotent-replayed'], 'not a replay');

  const resume = await post(t, '/v1/chains/chain-a/resume', { reason: 'done' });
  await assertDurable(t, resume, 'chain-a');
  t.same(resume.body.params, { kind: 'resume', reason: 'done' });

  const at = inMs(HOUR);
  const switchover = await post(t, '/v1/chains/chain-a/switchover', { target: 'n2', scheduledAt: at, reason: 'upgrade n1' });
  await assertDurable(t, switchover, 'chain-a');
  t.equal(switchover.body.state, 'scheduled', 'a future switchover is scheduled');
  t.same(switchover.body.params, { kind: 'switchover', reason: 'upgrade n1', target: 'n2', scheduledAt: at });

  const offset = await post(t, '/v1/chains/chain-a/switchover', { scheduledAt: '2999-01-01T00:00:00+02:00', reason: 'x' });
  t.equal(offset.status, 400, 'more than 7 days ahead is refused');

  const cancel = await post(t, '/v1/chains/chain-a/switchover/cancel', { reason: 'window moved' });
  await assertDurable(t, cancel, 'chain-a');
  t.same(cancel.body.params, { kind: 'cancel-switchover', reason: 'window moved' });

  const before = await h.snapshot();
  const failover = await post(t, '/v1/chains/chain-a/failover', { reason: 'n1 slow' });
  t.equal(failover.status, 409, 'a failover while the switchover is unfinished');
  t.equal(failover.body.code, 'CONFLICT');
  t.equal(failover.body.details.operationId, switchover.body.id, 'names the unfinished operation');
  t.same(await h.snapshot(), before, 'nothing changed');

  const one = await get(t, `/v1/operations/${pause.body.id}`);
  t.equal(one.status, 200);
  t.same(one.body, pause.body, 'GET returns the operation as accepted');

  const started = Date.now();
  const waited = await get(t, `/v1/operations/${pause.body.id}?wait=300`);
  t.equal(waited.body.state, 'pending');
  t.ok(Date.now() - started >= 250, `?wait waits for a final state, then answers as it is (${Date.now() - started} ms)`);

  const list = await get(t, '/v1/operations?chain=chain-a');
  t.same(list.body.operations.map((o: { id: string }) => o.id), [cancel, switchover, resume, pause].map((r) => r.body.id), 'newest first');
  t.equal((await get(t, '/v1/operations?limit=2')).body.operations.length, 2);
  t.same((await get(t, '/v1/operations?chain=chain-nobody')).body, { operations: [] });

  const missing = await get(t, '/v1/operations/op-0000000000000-00000000');
  t.equal(missing.status, 404);
  t.equal(missing.body.code, 'NOT_FOUND');

  const chains = await get(t, '/v1/chains?filter=leaderless');
  t.same(chains.body.chains.map((c: { id: string }) => c.id), ['chain-a']);
  t.same(chains.body.chains[0].states, ['leaderless'], 'no leader: not failing over, whatever is pending');
  t.same(chains.body.counts, { total: 1, leaderless: 1, paused: 0, degraded: 0, 'failing-over': 0 });
  t.same((await get(t, '/v1/chains?filter=paused')).body.chains, [], 'pending is not paused: the supervisor pauses');
});

t.test('a failover dry run writes nothing and says why each node is or is not eligible', async (t) => {
  await putChain(t, 'chain-b');
  const before = await h.snapshot();
  const revision = await h.revision();
  const res = await post(t, '/v1/chains/chain-b/failover', { reason: 'what if', dryRun: true }, { 'idempotency-key': 'dry-1' });
  t.equal(res.status, 200);
  t.equal(res.body.plan.from, null, 'no leader');
  t.equal(res.body.plan.to, null, 'nobody could take over');
  t.match(res.body.plan.reason, /no eligible standby: not n1: never reported; not n2: never reported; not n3: never reported/);
  t.same(res.body.plan.nodes.map((n: { id: string; eligible: boolean; reasons: string[] }) => [n.id, n.eligible, n.reasons]), [
    ['n1', false, ['not probed yet']],
    ['n2', false, ['not probed yet']],
    ['n3', false, ['not probed yet']],
  ]);
  const named = await post(t, '/v1/chains/chain-b/failover', { candidate: 'n3', reason: 'what if', dryRun: true });
  t.equal(named.status, 200);
  t.match(named.body.plan.reason, /n3 is not eligible: never reported/);
  const unknown = await post(t, '/v1/chains/chain-b/failover', { candidate: 'n9', reason: 'what if', dryRun: true });
  t.equal(unknown.status, 404);
  t.equal(unknown.body.code, 'NOT_FOUND');
  t.equal(await h.revision(), revision, 'etcd revision unchanged: not one write');
  t.same(await h.snapshot(), before);
  t.same((await get(t, '/v1/operations?chain=chain-b')).body.operations, []);
});

t.test('Idempotency-Key: a replay returns the first operation and writes nothing; another request with the key is refused', async (t) => {
  await putChain(t, 'chain-c');
  const key = { 'idempotency-key': 'pause-chain-c-0001' };
  const first = await post(t, '/v1/chains/chain-c/pause', { reason: 'maintenance', until: '2999-01-01T00:00:00Z' }, key);
  await assertDurable(t, first, 'chain-c');
  t.equal(first.body.idempotencyKey, 'pause-chain-c-0001');

  const before = await h.snapshot();
  // The same request with its fields in another order and other whitespace: the same canonical form.
  const replay = await call(t, {
    method: 'POST',
    url: '/v1/chains/chain-c/pause',
    payload: '{ "until": "2999-01-01T00:00:00Z",\n  "reason": "maintenance" }',
    headers: { 'content-type': 'application/json', ...key },
  });
  t.equal(replay.status, 202);
  t.equal(replay.headers['idempotent-replayed'], 'true');
  t.equal(replay.body.id, first.body.id, 'the same operation');
  t.same(replay.body, first.body);
  t.same(await h.snapshot(), before, 'a replay writes nothing');

  const others: [string, string, unknown][] = [
    ['another body', '/v1/chains/chain-c/pause', { reason: 'maintenance', until: '2999-01-02T00:00:00Z' }],
    ['another route', '/v1/chains/chain-c/resume', { reason: 'maintenance' }],
    ['another chain', '/v1/chains/chain-a/pause', { reason: 'maintenance', until: '2999-01-01T00:00:00Z' }],
  ];
  for (const [name, url, body] of others) {
    const res = await post(t, url, body, key);
    t.equal(res.status, 422, `${name}: 422`);
    t.equal(res.body.code, 'IDEMPOTENCY_MISMATCH');
    t.equal(res.body.details.operationId, first.body.id);
    t.same(await h.snapshot(), before, `${name}: nothing changed`);
  }

  // A replay of an accepted failover is answered although that failover holds the chain's lock.
  const failKey = { 'idempotency-key': 'failover-chain-c' };
  const failover = await post(t, '/v1/chains/chain-c/failover', { reason: 'n1 slow', candidate: 'n2' }, failKey);
  await assertDurable(t, failover, 'chain-c');
  const again = await post(t, '/v1/chains/chain-c/failover', { candidate: 'n2', reason: 'n1 slow' }, failKey);
  t.equal(again.status, 202);
  t.equal(again.headers['idempotent-replayed'], 'true');
  t.equal(again.body.id, failover.body.id);
  const fresh = await post(t, '/v1/chains/chain-c/failover', { candidate: 'n2', reason: 'n1 slow' }, { 'idempotency-key': 'failover-chain-c-2' });
  t.equal(fresh.status, 409, 'a new key is a new request: the lock refuses it');
});

t.test('two leadership operations at once on one chain: exactly one is accepted, the others get 409', async (t) => {
  await putChain(t, 'chain-d');
  const results = await Promise.all([
    post(t, '/v1/chains/chain-d/failover', { reason: 'a' }),
    post(t, '/v1/chains/chain-d/switchover', { reason: 'b' }),
    post(t, '/v1/chains/chain-d/failover', { candidate: 'n2', reason: 'c' }),
    post(t, '/v1/chains/chain-d/switchover', { target: 'n3', reason: 'd' }),
  ]);
  t.same(results.map((r) => r.status).sort(), [202, 409, 409, 409]);
  t.same(results.filter((r) => r.status === 409).map((r) => r.body.code), ['CONFLICT', 'CONFLICT', 'CONFLICT']);
  const accepted = results.find((r) => r.status === 202)!;
  t.same(await client.getAll().prefix(`${prefix}chains/chain-d/intents/`).keys(), [h.keys.intent('chain-d', accepted.body.id)], 'one intent');
  t.equal(await client.get(h.keys.leadershipLock('chain-d')).string(), accepted.body.id, 'the lock names it');
  // Pause and resume do not take the lock.
  t.equal((await post(t, '/v1/chains/chain-d/pause', { reason: 'x' })).status, 202);
});

t.test('set-fencing-mode: 202 once durable, takes the leadership lock, refused at once under an override', async (t) => {
  await putChain(t, 'chain-m');
  const res = await post(t, '/v1/chains/chain-m/fencing-mode', { mode: 'commit', reason: 'CHG-42' });
  await assertDurable(t, res, 'chain-m');
  t.match(res.body, { chainId: 'chain-m', params: { kind: 'set-fencing-mode', mode: 'commit', reason: 'CHG-42' }, state: 'pending', result: null });
  t.equal(await client.get(h.keys.leadershipLock('chain-m')).string(), res.body.id, 'the lock names it');
  t.equal((await client.get(h.keys.spec('chain-m')).json() as { policy: { fencingMode: string } }).policy.fencingMode, 'lease', 'the API writes no spec: the supervisor does');
  const before = await h.snapshot();
  const failover = await post(t, '/v1/chains/chain-m/failover', { reason: 'x' });
  t.equal(failover.status, 409, 'a failover while the mode switch is unfinished');
  t.equal(failover.body.details.operationId, res.body.id);
  const again = await post(t, '/v1/chains/chain-m/fencing-mode', { mode: 'lease', reason: 'x' });
  t.equal(again.status, 409, 'and another mode switch');
  t.equal(again.body.code, 'CONFLICT');
  t.same(await h.snapshot(), before, 'nothing changed');

  await putChain(t, 'chain-o');
  // The record a break-glass override leaves (written by the supervisor in the txn of its term).
  await client.put(h.keys.override('chain-o')).value(JSON.stringify({ nodeId: 'n2', reason: 'INC-1', sinceMs: Date.now(), operationId: 'op-0000000000000-00000001' }));
  const beforeOverride = await h.snapshot();
  const refused = await post(t, '/v1/chains/chain-o/fencing-mode', { mode: 'commit', reason: 'x' });
  t.equal(refused.status, 409, 'refused while overridden');
  t.equal(refused.body.code, 'OVERRIDDEN');
  t.same(await h.snapshot(), beforeOverride, 'nothing changed');
  t.same((await get(t, '/v1/operations?chain=chain-o')).body.operations, [], 'no operation record');
});

t.test('leader: at once, long-poll until the term changes, or until the timeout', async (t) => {
  await putChain(t, 'chain-e');
  t.same((await get(t, '/v1/chains/chain-e/leader')).body, { nodeId: null, term: null, endpoint: null, changed: false });

  let started = Date.now();
  const timedOut = await get(t, '/v1/chains/chain-e/leader?waitForChangeFrom=0&timeout=300');
  t.same(timedOut.body, { nodeId: null, term: null, endpoint: null, changed: false }, 'no change within the timeout');
  t.ok(Date.now() - started >= 250, `waited ${Date.now() - started} ms`);

  const session = await ReplicaSession.start({ client, keys: h.keys, replicaId: 'replica-lp' });
  t.teardown(() => session.close());
  const fence = await session.acquire('chain-e');
  if (!fence) throw new Error('could not supervise chain-e');

  started = Date.now();
  const polling = get(t, '/v1/chains/chain-e/leader?waitForChangeFrom=0&timeout=20000');
  await new Promise((r) => setTimeout(r, 300));
  const term = await h.store.writeLeader(fence, undefined, { nodeId: 'n2', reason: 'first', fromHead: 0, mode: 'lease' }, {
    nodeId: 'n2', previousNodeId: undefined, previousTerm: undefined, fromHead: 0, reason: 'first', atMs: Date.now(), supervisor: 'replica-lp', durationMs: undefined,
  });
  const changed = await polling;
  t.same(changed.body, { nodeId: 'n2', term: term.toString(), endpoint: '127.0.0.1:7101', changed: true }, 'answered with the new leader');
  t.ok(Date.now() - started < 5000, `answered on the change (${Date.now() - started} ms), not at the timeout`);

  const same = await get(t, `/v1/chains/chain-e/leader?waitForChangeFrom=${term}&timeout=200`);
  t.same(same.body, { nodeId: 'n2', term: term.toString(), endpoint: '127.0.0.1:7101', changed: false });
  started = Date.now();
  const stale = await get(t, `/v1/chains/chain-e/leader?waitForChangeFrom=${term - 1n}&timeout=20000`);
  t.equal(stale.body.changed, true, 'an older term: answered at once');
  t.ok(Date.now() - started < 2000);

  const unknown = await get(t, '/v1/chains/chain-zz/leader?waitForChangeFrom=5&timeout=100');
  t.equal(unknown.status, 404);
  t.equal(unknown.body.code, 'NOT_FOUND');
});

interface BadCase {
  name: string;
  method?: 'POST' | 'GET';
  url: string;
  body?: unknown;
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
  status: number;
  code: string;
  names?: string | RegExp;
}

const PAST = '2001-01-01T00:00:00Z';
const bad = (name: string, url: string, body: unknown, status: number, code: string, names?: string | RegExp): BadCase => ({ name, url, body, status, code, names });
const P = '/v1/chains/chain-f';

const BAD: BadCase[] = [
  // wrong types, missing and unknown fields
  bad('reason as a number', `${P}/pause`, { reason: 5 }, 400, 'INVALID_ARGUMENT', 'reason'),
  bad('reason missing', `${P}/resume`, {}, 400, 'INVALID_ARGUMENT', 'reason'),
  bad('reason empty', `${P}/resume`, { reason: '' }, 400, 'INVALID_ARGUMENT', 'reason'),
  bad('reason too long', `${P}/resume`, { reason: 'x'.repeat(1001) }, 400, 'INVALID_ARGUMENT', 'reason'),
  bad('reason null', `${P}/switchover/cancel`, { reason: null }, 400, 'INVALID_ARGUMENT', 'reason'),
  bad('candidate as a number', `${P}/failover`, { candidate: 2, reason: 'r' }, 400, 'INVALID_ARGUMENT', 'candidate'),
  bad('candidate not a node id', `${P}/failover`, { candidate: '../n1', reason: 'r' }, 400, 'INVALID_ARGUMENT', 'candidate'),
  bad('dryRun as a string', `${P}/failover`, { reason: 'r', dryRun: 'true' }, 400, 'INVALID_ARGUMENT', 'dryRun'),
  bad('target as a list', `${P}/switchover`, { target: ['n2'], reason: 'r' }, 400, 'INVALID_ARGUMENT', 'target'),
  bad('until as ms', `${P}/pause`, { until: Date.now() + HOUR, reason: 'r' }, 400, 'INVALID_ARGUMENT', 'until'),
  bad('scheduledAt as a boolean', `${P}/switchover`, { scheduledAt: true, reason: 'r' }, 400, 'INVALID_ARGUMENT', 'scheduledAt'),
  bad('unknown field', `${P}/failover`, { reason: 'r', force: true }, 400, 'INVALID_ARGUMENT', 'force'),
  bad('unknown field on resume', `${P}/resume`, { reason: 'r', until: inMs(HOUR) }, 400, 'INVALID_ARGUMENT', 'until'),
  bad('body a list', `${P}/pause`, [{ reason: 'r' }], 400, 'INVALID_ARGUMENT'),
  bad('body a string', `${P}/pause`, 'r', 400, 'INVALID_ARGUMENT'),
  { name: 'no body', url: `${P}/resume`, status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'invalid JSON', url: `${P}/pause`, raw: '{"reason": ', status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'text/plain', url: `${P}/pause`, raw: '{"reason":"r"}', contentType: 'text/plain', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'oversized body', url: `${P}/pause`, raw: JSON.stringify({ reason: 'x'.repeat(BODY_LIMIT_BYTES) }), status: 413, code: 'PAYLOAD_TOO_LARGE' },
  { name: 'a query string on a mutation', url: `${P}/pause?force=1`, body: { reason: 'r' }, status: 400, code: 'INVALID_ARGUMENT', names: 'force' },
  // bad and past times
  bad('until not a time', `${P}/pause`, { until: 'tomorrow', reason: 'r' }, 400, 'INVALID_ARGUMENT', 'until'),
  bad('until 30 February', `${P}/pause`, { until: '2999-02-30T00:00:00Z', reason: 'r' }, 400, 'INVALID_ARGUMENT', 'until'),
  bad('until without an offset', `${P}/pause`, { until: '2999-01-01T00:00:00', reason: 'r' }, 400, 'INVALID_ARGUMENT', 'until'),
  bad('until with a space', `${P}/pause`, { until: '2999-01-01 00:00:00Z', reason: 'r' }, 400, 'INVALID_ARGUMENT', 'until'),
  bad('until hour 24', `${P}/pause`, { until: '2999-01-01T24:00:00Z', reason: 'r' }, 400, 'INVALID_ARGUMENT', 'until'),
  bad('until in the past', `${P}/pause`, { until: PAST, reason: 'r' }, 400, 'INVALID_ARGUMENT', /until.*past/),
  bad('scheduledAt in the past', `${P}/switchover`, { scheduledAt: PAST, reason: 'r' }, 400, 'INVALID_ARGUMENT', /scheduledAt.*past/),
  bad('scheduledAt 8 days ahead', `${P}/switchover`, { scheduledAt: inMs(8 * 24 * HOUR), reason: 'r' }, 400, 'INVALID_ARGUMENT', /scheduledAt.*7 days/),
  // fencing mode
  bad('fencing mode unknown', `${P}/fencing-mode`, { mode: 'raft', reason: 'r' }, 400, 'INVALID_ARGUMENT', 'mode'),
  bad('fencing mode missing', `${P}/fencing-mode`, { reason: 'r' }, 400, 'INVALID_ARGUMENT', 'mode'),
  bad('fencing mode upper case', `${P}/fencing-mode`, { mode: 'COMMIT', reason: 'r' }, 400, 'INVALID_ARGUMENT', 'mode'),
  bad('fencing mode without a reason', `${P}/fencing-mode`, { mode: 'commit' }, 400, 'INVALID_ARGUMENT', 'reason'),
  bad('unknown field on fencing-mode', `${P}/fencing-mode`, { mode: 'commit', reason: 'r', force: true }, 400, 'INVALID_ARGUMENT', 'force'),
  bad('unknown chain (fencing-mode)', '/v1/chains/chain-zz/fencing-mode', { mode: 'commit', reason: 'r' }, 404, 'NOT_FOUND', 'chain-zz'),
  // unknown chain, unknown node, bad ids
  ...['failover', 'switchover', 'switchover/cancel', 'pause', 'resume'].map((op) => bad(`unknown chain (${op})`, `/v1/chains/chain-zz/${op}`, { reason: 'r' }, 404, 'NOT_FOUND', 'chain-zz')),
  bad('unknown candidate', `${P}/failover`, { candidate: 'n9', reason: 'r' }, 404, 'NOT_FOUND', 'n9'),
  bad('unknown target', `${P}/switchover`, { target: 'n9', reason: 'r' }, 404, 'NOT_FOUND', 'n9'),
  bad('bad chain id', '/v1/chains/Chain_F/pause', { reason: 'r' }, 400, 'INVALID_ARGUMENT', 'id'),
  { name: 'Idempotency-Key too long', url: `${P}/pause`, body: { reason: 'r' }, headers: { 'idempotency-key': 'k'.repeat(256) }, status: 400, code: 'INVALID_ARGUMENT', names: 'idempotency-key' },
  { name: 'Idempotency-Key not ASCII', url: `${P}/pause`, body: { reason: 'r' }, headers: { 'idempotency-key': 'schlüssel' }, status: 400, code: 'INVALID_ARGUMENT', names: 'idempotency-key' },
  // bad reads
  ...([
    ['wait negative', '/v1/operations/op-1?wait=-1', 'wait'],
    ['wait above 60 s', '/v1/operations/op-1?wait=60001', 'wait'],
    ['wait not a number', '/v1/operations/op-1?wait=soon', 'wait'],
    ['bad operation id', '/v1/operations/op%2F1', 'id'],
    ['operations limit 0', '/v1/operations?limit=0', 'limit'],
    ['operations bad chain', '/v1/operations?chain=Chain_F', 'chain'],
    ['operations unknown parameter', '/v1/operations?chian=chain-f', 'chian'],
    ['timeout above 60 s', `${P}/leader?waitForChangeFrom=1&timeout=60001`, 'timeout'],
    ['timeout negative', `${P}/leader?waitForChangeFrom=1&timeout=-5`, 'timeout'],
    ['waitForChangeFrom not a term', `${P}/leader?waitForChangeFrom=abc`, 'waitForChangeFrom'],
    ['waitForChangeFrom negative', `${P}/leader?waitForChangeFrom=-1`, 'waitForChangeFrom'],
    ['waitForChangeFrom too long', `${P}/leader?waitForChangeFrom=${'9'.repeat(21)}`, 'waitForChangeFrom'],
    ['unknown chain filter', '/v1/chains?filter=broken', 'filter'],
    ['events: bad lastEventId', '/v1/events?lastEventId=yesterday', 'lastEventId'],
    ['events: bad chain', '/v1/events?chain=Chain_F', 'chain'],
  ] as const).map(([name, url, names]): BadCase => ({ name, method: 'GET', url, status: 400, code: 'INVALID_ARGUMENT', names })),
  { name: 'events: bad Last-Event-ID', method: 'GET', url: '/v1/events', headers: { 'last-event-id': 'x' }, status: 400, code: 'INVALID_ARGUMENT', names: 'last-event-id' },
];

t.test('bad input gets a clear 4xx with a stable code and changes nothing', async (t) => {
  await putChain(t, 'chain-f');
  for (const c of BAD) {
    await t.test(c.name, async (t) => {
      const before = await h.snapshot();
      const opts: InjectOptions & { method: string; url: string } = { method: c.method ?? 'POST', url: c.url, headers: { ...c.headers } };
      if (c.raw !== undefined || c.body !== undefined) {
        opts.payload = c.raw ?? JSON.stringify(c.body);
        opts.headers = { 'content-type': c.contentType ?? 'application/json', ...c.headers };
      }
      const res = await call(t, opts);
      t.equal(res.status, c.status, `status (${res.text.slice(0, 200)})`);
      t.equal(res.body?.code, c.code, 'code');
      t.equal(res.body?.requestId, res.headers['x-request-id']);
      if (c.names !== undefined) t.match(res.body?.message, c.names, 'the message names what is wrong');
      t.same(await h.snapshot(), before, 'etcd unchanged');
    });
  }
  t.same((await get(t, '/v1/operations?chain=chain-f')).body.operations, [], 'no operation was created');
});

t.test('GET /docs: Swagger UI over openapi.yaml, every asset served locally', async (t) => {
  const page = await call(t, { method: 'GET', url: '/docs' });
  t.equal(page.status, 200);
  t.match(String(page.headers['content-type']), /^text\/html/);
  t.match(page.text, /swagger-ui/);
  const refs = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  t.ok(refs.length >= 4, `the page loads ${refs.length} assets`);
  for (const ref of refs) {
    t.notMatch(ref, /^(https?:)?\/\//, `${ref} is local`);
    const asset = await h.app.inject({ method: 'GET', url: ref.startsWith('/') ? ref : `/docs/${ref}` });
    t.equal(asset.statusCode, 200, `${ref} is served`);
  }
  const spec = await h.app.inject({ method: 'GET', url: '/docs/json' });
  t.same(spec.json(), parse(readFileSync(OPENAPI_FILE, 'utf8')), 'the page shows openapi.yaml as it is');
  t.notMatch(String(page.headers['content-security-policy']), /upgrade-insecure-requests/, 'usable over plain http in dev mode');
});
