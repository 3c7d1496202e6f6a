// The REST app built in-process over a real etcd (one member, its own key prefix), called with
// inject. Every response is checked against openapi.yaml; every bad input must get a clear 4xx
// with a stable code and leave etcd exactly as it was (same keys, values and mod revisions).
import { readFileSync } from 'node:fs';
import type { InjectOptions } from 'fastify';
import { Validator } from '@seriousme/openapi-schema-validator';
import t, { type Test } from 'tap';
import { DEFAULT_FLEET_SETTINGS } from '../../../src/adapters/etcd/chain-store.js';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../../src/adapters/etcd/keys.js';
import { ReplicaSession } from '../../../src/adapters/etcd/replica-session.js';
import { BODY_LIMIT_BYTES } from '../../../src/adapters/http/app.js';
import { DOCS_PREFIX } from '../../../src/adapters/http/docs.js';
import { DEFAULT_POLICY } from '../../../src/core/chain.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { OPENAPI_FILE } from '../../helpers/openapi.js';
import { buildHarness, call as callApp, type Reply } from './harness.js';

type Assert = Test;

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());
const client = createEtcdClient({ endpoints: cluster.endpoints });
t.teardown(() => client.close());
const prefix = `/baton-http-${process.pid}/`;
const keys = new EtcdKeys(prefix);
let readiness = { ready: true, why: 'etcd lease proven' };

const harness = await buildHarness({ client, prefix, ready: () => readiness });
const { app, store, contract } = harness;
t.teardown(() => app.close());

/** Injects a request and checks the response against openapi.yaml for its path, method and status. */
const call = (t: Assert, opts: InjectOptions & { method: string; url: string }): Promise<Reply> => callApp(t, harness, opts);

const put = (t: Assert, id: string, payload: unknown) => call(t, { method: 'PUT', url: `/v1/chains/${id}`, payload: payload as object });
const get = (t: Assert, url: string) => call(t, { method: 'GET', url });

/** Every key under the test prefix with its value and mod revision: "changes nothing" means this stays equal. */
async function snapshot(): Promise<string[]> {
  const res = await client.getAll().prefix(prefix).exec();
  return res.kvs.map((kv) => `${kv.key.toString()} @${kv.mod_revision} ${kv.value.toString()}`).sort();
}

function validSpec(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    genesisHash: '0xAB12',
    nodes: [
      { id: 'n1', endpoint: '127.0.0.1:7001', zone: 'a' },
      { id: 'n2', endpoint: '127.0.0.1:7002', priority: 5, zone: 'b' },
    ],
    policy: { blockTimeMs: 500, probeIntervalMs: 250, leaseTtlMs: 6000 },
    ...over,
  };
}

t.test('liveness, readiness and the served contract', async (t) => {
  const live = await get(t, '/livez');
  t.equal(live.status, 200);
  t.same(live.body, { status: 'ok', replica: 'replica-http-test' });

  readiness = { ready: true, why: 'etcd lease proven' };
  const ready = await get(t, '/readyz');
  t.equal(ready.status, 200);
  t.same(ready.body, { status: 'ready', why: 'etcd lease proven', replica: 'replica-http-test' });

  readiness = { ready: false, why: 'etcd unreachable' };
  const notReady = await get(t, '/readyz');
  t.equal(notReady.status, 503);
  t.same(notReady.body, { status: 'not ready', why: 'etcd unreachable', replica: 'replica-http-test' });
  readiness = { ready: true, why: 'etcd lease proven' };

  const doc = await get(t, '/openapi.yaml');
  t.equal(doc.status, 200);
  t.match(String(doc.headers['content-type']), /^application\/yaml/);
  t.equal(doc.text, readFileSync(OPENAPI_FILE, 'utf8'), 'serves openapi.yaml byte for byte');

  const missing = await app.inject({ method: 'GET', url: '/v1/nothing-here' });
  t.equal(missing.statusCode, 404);
  t.equal(missing.json().code, 'NOT_FOUND');
  t.type(missing.json().requestId, 'string');
  t.equal(missing.headers['x-request-id'], missing.json().requestId, 'error carries the request id of the header');
});

t.test('openapi.yaml is a valid OpenAPI 3.0 document', async (t) => {
  const validator = new Validator();
  const res = await validator.validate(OPENAPI_FILE);
  t.same(res.errors ?? [], [], 'no errors');
  t.equal(res.valid, true, 'the independent validator accepts openapi.yaml');
  t.equal(validator.version, '3.0');
});

t.test('every route the app serves is documented, and every documented operation is served', async (t) => {
  // Swagger UI's own assets and its copies of the spec (/docs/static/*, /docs/json, /docs/yaml...)
  // are not API routes; the page itself, GET /docs, is documented.
  const all = servedRoutes();
  const served = all.filter((r) => !r.url.startsWith(`${DOCS_PREFIX}/`));
  t.ok(all.length - served.length >= 3, `left out ${all.length - served.length} Swagger UI asset routes`);
  t.ok(served.length >= 20, `found ${served.length} served routes`);
  for (const r of served) {
    const template = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    t.ok(contract.methods(template).includes(r.method.toLowerCase()), `${r.method} ${r.url} is documented as ${r.method} ${template}`);
  }
  for (const path of contract.paths()) {
    for (const method of contract.methods(path)) {
      const url = path.replace(/\{([^}]+)\}/g, ':$1');
      t.ok(app.hasRoute({ method: method.toUpperCase() as 'GET', url }), `documented ${method.toUpperCase()} ${path} is served`);
    }
  }
});

/**
 * The (method, url) pairs registered in the app, read from Fastify's route tree. HEAD routes that
 * Fastify adds for every GET are left out: they answer like the GET without a body.
 */
function servedRoutes(): { method: string; url: string }[] {
  const tree = app.printRoutes({ commonPrefix: false });
  const out: { method: string; url: string }[] = [];
  const stack: { depth: number; path: string }[] = [];
  for (const line of tree.split('\n')) {
    const m = /^([\s│]*)(?:[└├]──\s)?(\S+?)\s\(([A-Z, ]+)\)$/.exec(line) ?? /^([\s│]*)(?:[└├]──\s)?(\S+)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length;
    while (stack.length > 0 && stack[stack.length - 1]!.depth >= depth) stack.pop();
    const path = (stack[stack.length - 1]?.path ?? '') + m[2]!;
    stack.push({ depth, path });
    for (const method of (m[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
      if (method !== 'HEAD') out.push({ method, url: path });
    }
  }
  return out;
}

t.test('chain lifecycle: create, replace, list, get, history, delete', async (t) => {
  const created = await put(t, 'chain-a', validSpec());
  t.equal(created.status, 201, 'PUT of a new chain creates it');
  t.same(created.body, {
    id: 'chain-a',
    genesisHash: 'ab12',
    nodes: [
      { id: 'n1', endpoint: '127.0.0.1:7001', priority: 0, zone: 'a' },
      { id: 'n2', endpoint: '127.0.0.1:7002', priority: 5, zone: 'b' },
    ],
    policy: { ...DEFAULT_POLICY, blockTimeMs: 500, probeIntervalMs: 250, leaseTtlMs: 6000 },
  }, 'defaults filled in, hash normalised');

  const replaced = await put(t, 'chain-a', validSpec({ id: 'chain-a', policy: { leaseTtlMs: 7000 } }));
  t.equal(replaced.status, 200, 'PUT of an existing chain replaces it');
  t.equal(replaced.body.policy.leaseTtlMs, 7000);
  t.equal(replaced.body.policy.blockTimeMs, DEFAULT_POLICY.blockTimeMs, 'replace, not merge');

  const list = await get(t, '/v1/chains');
  t.equal(list.status, 200);
  t.same(list.body, {
    chains: [{ id: 'chain-a', leader: null, term: null, headNumber: null, supervisor: null, nodes: 2, fencingMode: 'lease', paused: false, states: ['leaderless'] }],
    count: 1,
    counts: { total: 1, leaderless: 1, paused: 0, degraded: 0, 'failing-over': 0 },
  });

  const one = await get(t, '/v1/chains/chain-a');
  t.equal(one.status, 200);
  t.same(one.body.spec, replaced.body, 'GET returns the stored spec');
  t.equal(one.body.leader, null);
  t.equal(one.body.unsafeHead, null);
  t.equal(one.body.lastFailover, null);
  t.same(one.body.nodes.map((n: { id: string; role: string }) => [n.id, n.role]), [['n1', 'standby'], ['n2', 'standby']]);

  const history = await get(t, '/v1/chains/chain-a/history');
  t.equal(history.status, 200);
  t.same(history.body, { terms: [] }, 'no term yet');
  const limited = await get(t, '/v1/chains/chain-a/history?limit=5');
  t.equal(limited.status, 200);

  for (const url of ['/v1/chains/chain-zz', '/v1/chains/chain-zz/history']) {
    const r = await get(t, url);
    t.equal(r.status, 404, `${url} of an unknown chain`);
    t.equal(r.body.code, 'NOT_FOUND');
  }

  const before = await snapshot();
  const del = await call(t, { method: 'DELETE', url: '/v1/chains/chain-a' });
  t.equal(del.status, 204);
  t.equal(del.text, '');
  t.not(await snapshot(), before);
  const again = await call(t, { method: 'DELETE', url: '/v1/chains/chain-a' });
  t.equal(again.status, 404);
  t.equal(again.body.code, 'NOT_FOUND');
  t.equal((await get(t, '/v1/chains/chain-a')).status, 404);
  t.same((await get(t, '/v1/chains')).body, { chains: [], count: 0, counts: { total: 0, leaderless: 0, paused: 0, degraded: 0, 'failing-over': 0 } });
});

t.test('a commit-mode chain spec: PUT and GET conform to openapi.yaml and keep the mode', async (t) => {
  const created = await put(t, 'chain-commit', validSpec({ policy: { leaseTtlMs: 6000, fencingMode: 'commit' } }));
  t.equal(created.status, 201, `PUT of a commit-mode chain (${JSON.stringify(created.body).slice(0, 200)})`);
  t.equal(created.body.policy.fencingMode, 'commit', 'the answer has the mode');
  const one = await get(t, '/v1/chains/chain-commit');
  t.equal(one.status, 200);
  t.equal(one.body.spec.policy.fencingMode, 'commit', 'GET returns it');
  const list = await get(t, '/v1/chains');
  t.equal(list.body.chains.find((c: { id: string }) => c.id === 'chain-commit')?.fencingMode, 'commit', 'and the fleet list');
  t.equal((await store.getSpec('chain-commit'))?.policy.fencingMode, 'commit', 'stored in commit mode');
  t.equal((await call(t, { method: 'DELETE', url: '/v1/chains/chain-commit' })).status, 204);
});

t.test('a chain with a leader, a head and history conforms too (non-null terms and records)', async (t) => {
  t.equal((await put(t, 'chain-led', validSpec())).status, 201);
  const session = await ReplicaSession.start({ client, keys, replicaId: 'replica-x' });
  t.teardown(() => session.close());
  const fence = await session.acquire('chain-led');
  if (!fence) throw new Error('could not supervise chain-led');
  const history = { previousNodeId: undefined, previousTerm: undefined, atMs: 1_700_000_000_000, supervisor: 'replica-x', durationMs: undefined };
  const first = await store.writeLeader(fence, undefined, { nodeId: 'n1', reason: 'first leader', fromHead: 0, mode: 'lease' }, {
    ...history, nodeId: 'n1', fromHead: 0, reason: 'first leader',
  });
  const second = await store.writeLeader(fence, first, { nodeId: 'n2', reason: 'n1 unhealthy', fromHead: 0, mode: 'lease' }, {
    ...history, nodeId: 'n2', previousNodeId: 'n1', previousTerm: first, fromHead: 0, reason: 'n1 unhealthy', durationMs: 840,
  });
  await store.recordHead(fence, second, { revision: 0n, head: undefined }, {
    number: 12, hash: 'ab'.repeat(32), parentHash: 'cd'.repeat(32), term: second, nodeId: 'n2', l1Origin: '0xl1', timestamp: 1_700_000_000,
  });

  const list = await get(t, '/v1/chains');
  t.same(list.body.chains.find((c: { id: string }) => c.id === 'chain-led'), {
    id: 'chain-led', leader: 'n2', term: second.toString(), headNumber: 12, supervisor: 'replica-x', nodes: 2, fencingMode: 'lease', paused: false, states: [],
  });
  const view = await get(t, '/v1/chains/chain-led');
  t.equal(view.body.leader.term, second.toString(), 'terms travel as decimal strings');
  t.equal(view.body.unsafeHead.number, 12);
  t.equal(view.body.lastFailover.previousTerm, first.toString());
  t.equal(view.body.nodes.find((n: { id: string }) => n.id === 'n2').role, 'active');
  const terms = await get(t, '/v1/chains/chain-led/history');
  t.same(terms.body.terms.map((r: { term: string; previousTerm: string | null }) => [r.term, r.previousTerm]), [
    [second.toString(), first.toString()],
    [first.toString(), null],
  ], 'newest first');
  t.equal((await get(t, '/v1/chains/chain-led/history?limit=1')).body.terms.length, 1);

  t.equal((await call(t, { method: 'DELETE', url: '/v1/chains/chain-led' })).status, 204);
  t.same(await client.getAll().prefix(`${prefix}chains/chain-led/`).keys(), [], 'every key of the chain is gone');
});

t.test('the contract check is not vacuous', async (t) => {
  const res = (statusCode: number, body: unknown) => ({ statusCode, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) });
  const summary = { id: 'c', leader: null, term: null, headNumber: null, supervisor: null, nodes: 1, fencingMode: 'lease', paused: false, states: ['leaderless'] };
  const counts = { total: 1, leaderless: 1, paused: 0, degraded: 0, 'failing-over': 0 };
  t.same(contract.check('GET', '/v1/chains', res(200, { chains: [summary], count: 1, counts })), []);
  t.not(contract.check('GET', '/v1/chains', res(200, { chains: [{ ...summary, term: '0' }], count: 1, counts })), [], 'term 0 is not a term');
  t.not(contract.check('GET', '/v1/chains', res(200, { chains: [{ ...summary, term: 5 }], count: 1, counts })), [], 'a term is a string');
  t.not(contract.check('GET', '/v1/chains', res(200, { chains: [{ ...summary, nodes: null }], count: 1, counts })), [], 'null only where nullable');
  t.not(contract.check('GET', '/v1/chains', res(200, { chains: [{ ...summary, states: ['stuck'] }], count: 1, counts })), [], 'only documented states');
  t.not(contract.check('GET', '/v1/chains', res(200, { chains: [], count: 0 })), [], 'counts are required');
  t.not(contract.check('GET', '/v1/chains', res(200, { chains: [], count: 0, counts, extra: 1 })), [], 'no undocumented fields');
  t.not(contract.check('GET', '/v1/chains', res(418, { chains: [], count: 0, counts })), [], 'undocumented status');
  t.not(contract.check('GET', '/livez', { statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' }), [], 'undocumented media type');
  t.not(contract.check('DELETE', '/v1/chains/{id}', { statusCode: 204, headers: {}, body: 'x' }), [], 'a body where none is documented');
  t.not(contract.check('GET', '/v1/chains/{id}/history', res(400, { code: 'X', message: 'm', details: {} })), [], 'error without requestId');
});

t.test('fleet settings: default, then a roundtrip', async (t) => {
  const def = await get(t, '/v1/fleet/settings');
  t.equal(def.status, 200);
  t.same(def.body, DEFAULT_FLEET_SETTINGS);
  const set = await call(t, { method: 'PUT', url: '/v1/fleet/settings', payload: { autoFailover: false, maxConcurrentFailovers: 7 } });
  t.equal(set.status, 200);
  t.same(set.body, { autoFailover: false, maxConcurrentFailovers: 7 });
  t.same((await get(t, '/v1/fleet/settings')).body, { autoFailover: false, maxConcurrentFailovers: 7 });
});

interface BadCase {
  name: string;
  method?: 'PUT' | 'GET' | 'DELETE';
  url?: string;
  payload?: unknown;
  rawBody?: string;
  contentType?: string;
  status: number;
  code: string;
  /** Text the message must contain: the field (or problem) it names. */
  names?: string | RegExp;
}

const node = (i: number, over: Record<string, unknown> = {}) => ({ id: `n${i}`, endpoint: `127.0.0.1:${7000 + i}`, ...over });
const withPolicy = (policy: Record<string, unknown>) => validSpec({ policy });

const RANGES: Record<string, [number, number]> = {
  blockTimeMs: [50, 600_000],
  probeIntervalMs: [50, 60_000],
  failureThreshold: [1, 100],
  stallFactor: [2, 1000],
  leaseTtlMs: [500, 600_000],
  maxLagBlocks: [0, 1_000_000],
  antiFlapMs: [0, 86_400_000],
};

const BAD_SPECS: BadCase[] = [
  { name: 'unknown top-level field', payload: validSpec({ colour: 'red' }), status: 400, code: 'INVALID_ARGUMENT', names: 'colour' },
  { name: 'unknown field inside a node', payload: validSpec({ nodes: [node(1, { weight: 3 }), node(2)] }), status: 400, code: 'INVALID_ARGUMENT', names: 'weight' },
  { name: 'unknown field inside policy', payload: withPolicy({ leaseTTL: 9000 }), status: 400, code: 'INVALID_ARGUMENT', names: 'leaseTTL' },
  { name: 'duplicate node ids', payload: validSpec({ nodes: [node(1), node(2, { id: 'n1' })] }), status: 400, code: 'INVALID_ARGUMENT', names: 'nodes[1].id' },
  { name: 'duplicate endpoints', payload: validSpec({ nodes: [node(1), node(2, { endpoint: '127.0.0.1:7001' })] }), status: 400, code: 'INVALID_ARGUMENT', names: 'nodes[1].endpoint' },
  { name: 'endpoint without port', payload: validSpec({ nodes: [node(1, { endpoint: 'localhost' })] }), status: 400, code: 'INVALID_ARGUMENT', names: 'nodes[0].endpoint' },
  { name: 'endpoint port out of range', payload: validSpec({ nodes: [node(1, { endpoint: 'host:99999' })] }), status: 400, code: 'INVALID_ARGUMENT', names: 'nodes[0].endpoint' },
  { name: 'endpoint as a URL', payload: validSpec({ nodes: [node(1, { endpoint: 'http://host:7001' })] }), status: 400, code: 'INVALID_ARGUMENT', names: 'nodes[0].endpoint' },
  { name: 'bad node id', payload: validSpec({ nodes: [node(1, { id: '-bad id' })] }), status: 400, code: 'INVALID_ARGUMENT', names: 'nodes[0].id' },
  { name: 'priority out of range', payload: validSpec({ nodes: [node(1, { priority: 5000 })] }), status: 400, code: 'INVALID_ARGUMENT', names: 'priority' },
  { name: 'genesisHash not hex', payload: validSpec({ genesisHash: 'xyz' }), status: 400, code: 'INVALID_ARGUMENT', names: 'genesisHash' },
  { name: 'body id differs from path id', payload: validSpec({ id: 'chain-b' }), status: 400, code: 'INVALID_ARGUMENT', names: 'chain-b' },
  ...Object.entries(RANGES).flatMap(([field, [min, max]]): BadCase[] => [
    { name: `${field} below ${min}`, payload: withPolicy({ [field]: min - 1 }), status: 400, code: 'INVALID_ARGUMENT', names: field },
    { name: `${field} above ${max}`, payload: withPolicy({ [field]: max + 1 }), status: 400, code: 'INVALID_ARGUMENT', names: field },
    { name: `${field} not an integer`, payload: withPolicy({ [field]: min + 0.5 }), status: 400, code: 'INVALID_ARGUMENT', names: field },
  ]),
  { name: 'lease shorter than 5 probe intervals', payload: withPolicy({ probeIntervalMs: 1000, leaseTtlMs: 4999 }), status: 400, code: 'INVALID_ARGUMENT', names: /leaseTtlMs.*5 × probeIntervalMs/ },
  { name: 'probe interval below the node deadline', payload: withPolicy({ probeIntervalMs: 200, leaseTtlMs: 6000 }), status: 400, code: 'INVALID_ARGUMENT', names: /probeIntervalMs.*deadline/ },
  { name: 'lease below the supervisor-takeover minimum', payload: withPolicy({ probeIntervalMs: 250, leaseTtlMs: 4000 }), status: 400, code: 'INVALID_ARGUMENT', names: /leaseTtlMs.*4500/ },
  { name: 'stall window shorter than two probes', payload: withPolicy({ blockTimeMs: 100, stallFactor: 2 }), status: 400, code: 'INVALID_ARGUMENT', names: 'stallFactor' },
  { name: 'fencingMode unknown', payload: withPolicy({ fencingMode: 'raft' }), status: 400, code: 'INVALID_ARGUMENT', names: 'fencingMode' },
  { name: 'empty nodes', payload: validSpec({ nodes: [] }), status: 400, code: 'INVALID_ARGUMENT', names: 'nodes' },
  { name: 'no nodes', payload: { policy: {} }, status: 400, code: 'INVALID_ARGUMENT', names: 'nodes' },
  { name: 'too many nodes', payload: validSpec({ nodes: Array.from({ length: 65 }, (_, i) => node(i + 1)) }), status: 400, code: 'INVALID_ARGUMENT', names: 'nodes' },
  { name: 'nodes as a string', payload: validSpec({ nodes: 'n1' }), status: 400, code: 'INVALID_ARGUMENT', names: 'nodes' },
  { name: 'nodes as one object, not a list', payload: validSpec({ nodes: node(1) }), status: 400, code: 'INVALID_ARGUMENT', names: 'nodes' },
  { name: 'node as a string', payload: validSpec({ nodes: ['127.0.0.1:7001'] }), status: 400, code: 'INVALID_ARGUMENT', names: 'nodes/0' },
  { name: 'priority as a string', payload: validSpec({ nodes: [node(1, { priority: '5' })] }), status: 400, code: 'INVALID_ARGUMENT', names: 'priority' },
  { name: 'zone as a number', payload: validSpec({ nodes: [node(1, { zone: 3 })] }), status: 400, code: 'INVALID_ARGUMENT', names: 'zone' },
  { name: 'timing as a string', payload: withPolicy({ blockTimeMs: '1000' }), status: 400, code: 'INVALID_ARGUMENT', names: 'blockTimeMs' },
  { name: 'genesisHash as a number', payload: validSpec({ genesisHash: 1234 }), status: 400, code: 'INVALID_ARGUMENT', names: 'genesisHash' },
  { name: 'id as a number', payload: validSpec({ id: 7 }), status: 400, code: 'INVALID_ARGUMENT', names: 'id' },
  { name: 'policy as a list', payload: validSpec({ policy: [] }), status: 400, code: 'INVALID_ARGUMENT', names: 'policy' },
  { name: 'policy null', payload: validSpec({ policy: null }), status: 400, code: 'INVALID_ARGUMENT', names: 'policy' },
  { name: 'body a list', payload: [validSpec()], status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'body null', rawBody: 'null', status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'body a string', rawBody: '"chain"', status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'empty body', rawBody: '', status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'invalid JSON', rawBody: '{"nodes": [', status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'prototype pollution', rawBody: '{"nodes":[{"id":"n1","endpoint":"h:1"}],"__proto__":{"x":1}}', status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'text/plain body', rawBody: JSON.stringify(validSpec()), contentType: 'text/plain', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', names: 'application/json' },
  { name: 'form body', rawBody: 'nodes=n1', contentType: 'application/x-www-form-urlencoded', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', names: 'application/json' },
  { name: 'xml body', rawBody: '<chain/>', contentType: 'application/xml', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', names: 'application/json' },
  {
    name: 'body over the size limit',
    payload: validSpec({ genesisHash: '', nodes: [node(1, { zone: 'x'.repeat(BODY_LIMIT_BYTES) })] }),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
  { name: 'bad chain id in the path (upper case)', url: '/v1/chains/Chain-A', payload: validSpec(), status: 400, code: 'INVALID_ARGUMENT', names: 'id' },
  { name: 'bad chain id in the path (underscore)', url: '/v1/chains/chain_a', payload: validSpec(), status: 400, code: 'INVALID_ARGUMENT', names: 'id' },
  { name: 'bad chain id in the path (too long)', url: `/v1/chains/${'c'.repeat(64)}`, payload: validSpec(), status: 400, code: 'INVALID_ARGUMENT', names: 'id' },
  { name: 'bad chain id in the path (slash)', url: '/v1/chains/a%2Fb', payload: validSpec(), status: 400, code: 'INVALID_ARGUMENT', names: 'id' },
  { name: 'GET bad chain id', method: 'GET', url: '/v1/chains/Chain-A', status: 400, code: 'INVALID_ARGUMENT', names: 'id' },
  { name: 'DELETE bad chain id', method: 'DELETE', url: '/v1/chains/Chain-A', status: 400, code: 'INVALID_ARGUMENT', names: 'id' },
  { name: 'history of a bad chain id', method: 'GET', url: '/v1/chains/Chain-A/history', status: 400, code: 'INVALID_ARGUMENT', names: 'id' },
  { name: 'history limit 0', method: 'GET', url: '/v1/chains/chain-a/history?limit=0', status: 400, code: 'INVALID_ARGUMENT', names: 'limit' },
  { name: 'history limit too large', method: 'GET', url: '/v1/chains/chain-a/history?limit=1001', status: 400, code: 'INVALID_ARGUMENT', names: 'limit' },
  { name: 'history limit not a number', method: 'GET', url: '/v1/chains/chain-a/history?limit=ten', status: 400, code: 'INVALID_ARGUMENT', names: 'limit' },
  { name: 'history unknown query parameter', method: 'GET', url: '/v1/chains/chain-a/history?limt=5', status: 400, code: 'INVALID_ARGUMENT', names: 'limt' },
  { name: 'DELETE of an unknown chain', method: 'DELETE', url: '/v1/chains/chain-zz', status: 404, code: 'NOT_FOUND' },
];

const BAD_SETTINGS: BadCase[] = [
  { name: 'cap 0', payload: { autoFailover: true, maxConcurrentFailovers: 0 }, status: 400, code: 'INVALID_ARGUMENT', names: 'maxConcurrentFailovers' },
  { name: 'cap above 1000', payload: { autoFailover: true, maxConcurrentFailovers: 1001 }, status: 400, code: 'INVALID_ARGUMENT', names: 'maxConcurrentFailovers' },
  { name: 'cap not an integer', payload: { autoFailover: true, maxConcurrentFailovers: 1.5 }, status: 400, code: 'INVALID_ARGUMENT', names: 'maxConcurrentFailovers' },
  { name: 'cap as a string', payload: { autoFailover: true, maxConcurrentFailovers: '3' }, status: 400, code: 'INVALID_ARGUMENT', names: 'maxConcurrentFailovers' },
  { name: 'switch as a string', payload: { autoFailover: 'false', maxConcurrentFailovers: 3 }, status: 400, code: 'INVALID_ARGUMENT', names: 'autoFailover' },
  { name: 'switch as a number', payload: { autoFailover: 0, maxConcurrentFailovers: 3 }, status: 400, code: 'INVALID_ARGUMENT', names: 'autoFailover' },
  { name: 'missing switch', payload: { maxConcurrentFailovers: 3 }, status: 400, code: 'INVALID_ARGUMENT', names: 'autoFailover' },
  { name: 'unknown field', payload: { autoFailover: true, maxConcurrentFailovers: 3, paused: true }, status: 400, code: 'INVALID_ARGUMENT', names: 'paused' },
  { name: 'invalid JSON', rawBody: '{', status: 400, code: 'INVALID_ARGUMENT' },
  { name: 'text/plain body', rawBody: '{"autoFailover":true,"maxConcurrentFailovers":3}', contentType: 'text/plain', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', names: 'application/json' },
  {
    name: 'body over the size limit',
    rawBody: JSON.stringify({ autoFailover: true, maxConcurrentFailovers: 3, pad: 'x'.repeat(BODY_LIMIT_BYTES) }),
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
];

async function expectRefused(t: Assert, c: BadCase, defaultUrl: string): Promise<void> {
  const method = c.method ?? 'PUT';
  const url = c.url ?? defaultUrl;
  const before = await snapshot();
  const opts: InjectOptions & { method: string; url: string } = { method, url };
  if (c.rawBody !== undefined) {
    opts.payload = c.rawBody;
    opts.headers = { 'content-type': c.contentType ?? 'application/json' };
  } else if (c.payload !== undefined) {
    opts.payload = JSON.stringify(c.payload);
    opts.headers = { 'content-type': c.contentType ?? 'application/json' };
  }
  const res = await call(t, opts);
  t.equal(res.status, c.status, 'status');
  t.equal(res.body?.code, c.code, `code ${c.code}: ${res.body?.message}`);
  t.type(res.body?.message, 'string');
  t.equal(res.body?.requestId, res.headers['x-request-id'], 'requestId');
  if (c.names !== undefined) t.match(res.body?.message, c.names, 'the message names what is wrong');
  t.same(await snapshot(), before, 'etcd unchanged');
}

t.test('bad chain input is refused with a clear 4xx and changes nothing', async (t) => {
  const original = await put(t, 'chain-a', validSpec());
  t.equal(original.status, 201);
  for (const c of BAD_SPECS) {
    await t.test(c.name, async (t) => {
      await expectRefused(t, c, '/v1/chains/chain-a');
      t.same((await get(t, '/v1/chains/chain-a')).body.spec, original.body, 'existing chain unchanged');
    });
  }
  await t.test('refused PUTs of a new chain create nothing', async (t) => {
    for (const c of BAD_SPECS.filter((b) => b.url === undefined && b.method === undefined)) {
      const before = await snapshot();
      const res = await app.inject({
        method: 'PUT',
        url: '/v1/chains/chain-new',
        payload: c.rawBody ?? JSON.stringify(c.payload),
        headers: { 'content-type': c.contentType ?? 'application/json' },
      });
      t.equal(res.statusCode, c.status, `${c.name}: ${res.statusCode}`);
      t.same(await snapshot(), before, `${c.name}: etcd unchanged`);
    }
    t.equal((await get(t, '/v1/chains/chain-new')).status, 404);
    t.same((await get(t, '/v1/chains')).body.count, 1);
  });
});

t.test('bad fleet settings are refused with a clear 4xx and change nothing', async (t) => {
  const current = (await get(t, '/v1/fleet/settings')).body;
  for (const c of BAD_SETTINGS) {
    await t.test(c.name, async (t) => {
      await expectRefused(t, c, '/v1/fleet/settings');
      t.same((await get(t, '/v1/fleet/settings')).body, current, 'settings unchanged');
    });
  }
});
