// Property-based fuzzing of every request body the API takes, against the real app and a real
// etcd (no supervisor, so nothing else writes): thousands of generated requests, a mix of
// valid-looking bodies with wrong, missing, extra and borderline fields, arbitrary JSON and plain
// garbage, with and without Idempotency-Keys (a few shared keys, so replays and mismatches happen).
// For each: never a 5xx, the response conforms to openapi.yaml, and a refusal changes nothing:
// the etcd revision and every key with its mod revision under the prefix are as before.
// With BATON_FUZZ_MTLS=1 (test/security/fuzz-mtls.test.ts) the same requests go over HTTPS with a
// client certificate, through the access layer; every request then writes exactly one audit
// record, and a refusal changes nothing else.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { prefixEnd } from '../../../src/adapters/etcd/keys.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { buildHarness, idleSpec } from './harness.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());
const client = createEtcdClient({ endpoints: cluster.endpoints });
t.teardown(() => client.close());
const prefix = `/baton-fuzz-${process.pid}/`;
const MTLS = process.env.BATON_FUZZ_MTLS === '1';
const certDir = MTLS ? mkdtempSync(join(tmpdir(), 'baton-fuzz-')) : undefined;
if (certDir) t.teardown(() => rmSync(certDir, { recursive: true, force: true }));
const h = await buildHarness({ client, prefix, ...(certDir ? { mtls: { dir: certDir } } : {}) });
t.teardown(() => h.app.close());
// One chain per route, so that one route's accepted failover (which holds its chain's leadership
// lock) does not turn every later request of another route into a 409.
const CHAINS = ['chain-fo', 'chain-sw', 'chain-cx', 'chain-pa', 'chain-re', 'chain-p'];
for (const id of CHAINS) {
  const res = await h.send({ method: 'PUT', url: `/v1/chains/${id}`, payload: idleSpec(), headers: { 'content-type': 'application/json' } });
  if (res.statusCode !== 201) throw new Error(`PUT ${id}: ${res.body}`);
}

/**
 * The revision of the store and every key under the prefix with its mod revision. In mTLS mode
 * without the audit trail (and so without the revision, which an audit record moves), which
 * auditCount follows instead.
 */
async function state(): Promise<string> {
  const res = await client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), keys_only: true });
  const kvs = MTLS ? res.kvs.filter((kv) => !kv.key.toString().startsWith(`${prefix}audit/`)) : res.kvs;
  return [...(MTLS ? [] : [`revision ${res.header.revision}`]), ...kvs.map((kv) => `${kv.key.toString()} @${kv.mod_revision}`)].join('\n');
}

async function auditCount(): Promise<number> {
  const res = await client.kv.range({ key: Buffer.from(`${prefix}audit/`), range_end: prefixEnd(`${prefix}audit/`), count_only: true });
  return Number(res.count);
}

const HOUR = 3600_000;
const CODES = new Set(['INVALID_ARGUMENT', 'NOT_FOUND', 'CONFLICT', 'IDEMPOTENCY_MISMATCH', 'UNSUPPORTED_MEDIA_TYPE', 'PAYLOAD_TOO_LARGE']);

// ---- values: mostly plausible, often wrong ----

const junk = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
);
const someString = fc.string({ maxLength: 40, unit: 'binary' });
const reason = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('maintenance', 'r', 'n1 is slow') },
  { weight: 2, arbitrary: someString },
  { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(1000), 'x'.repeat(1001)) },
  { weight: 2, arbitrary: junk },
);
const nodeRef = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('n1', 'n2', 'n3', 'n9', 'N1', '-n1', 'n1/x', 'n'.repeat(64)) },
  { weight: 2, arbitrary: someString },
  { weight: 1, arbitrary: junk },
);
const time = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: -2 * HOUR, max: 9 * 24 * HOUR }).map((d) => new Date(Date.now() + d).toISOString()) },
  { weight: 2, arbitrary: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '2999-02-30T00:00:00Z', '2999-01-01T24:00:00Z', '2999-01-01T00:00:00', '2999-01-01 00:00:00Z', '2999-01-01T00:00:00+24:00',
      '2999-13-01T00:00:00Z', 'tomorrow', '', '2000-01-01T00:00:00Z', '2999-01-01T00:00:00.123456789+05:30', '2999-01-01t00:00:00z',
    ),
  },
  { weight: 1, arbitrary: someString },
  { weight: 2, arbitrary: junk },
);

/** A body with any subset of the route's fields, sometimes with unknown fields added. */
function body(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<unknown> {
  const extra = fc.dictionary(fc.oneof(fc.constantFrom('force', 'kind', '__proto__', 'constructor', 'dryrun'), fc.string({ maxLength: 8 })), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 });
  return fc.tuple(fc.record(fields, { requiredKeys: [] }), fc.option(extra, { freq: 4 })).map(([b, x]) => (x ? { ...x, ...b } : b));
}

interface Route {
  readonly name: string;
  readonly method: 'POST' | 'PUT';
  readonly url: (chain: string) => string;
  readonly chains: string[];
  readonly body: fc.Arbitrary<unknown>;
  readonly runs: number;
  /** A body the route accepts, tried first, so "some requests were accepted" never rests on luck. */
  readonly valid?: unknown;
}

const int = (min: number, max: number) => fc.oneof({ weight: 4, arbitrary: fc.integer({ min, max }) }, { weight: 1, arbitrary: junk });
const nodeSpec = body({
  id: nodeRef,
  endpoint: fc.oneof(fc.constantFrom('127.0.0.1:7201', '127.0.0.1:7202', 'host:1', 'localhost', 'h:99999', 'http://h:1'), someString, junk),
  priority: int(-1100, 1100),
  zone: fc.oneof(fc.constantFrom('a', 'b'), someString, junk),
});
const policy = body({
  blockTimeMs: int(0, 700_000),
  probeIntervalMs: int(0, 70_000),
  failureThreshold: int(0, 110),
  stallFactor: int(0, 1100),
  leaseTtlMs: int(0, 700_000),
  maxLagBlocks: int(-1, 1_100_000),
  antiFlapMs: int(-1, 90_000_000),
  fencingMode: fc.oneof(fc.constantFrom('lease', 'commit', 'raft'), junk),
});

/** Mostly the route's own chain; sometimes an unknown one, or an invalid id. */
const P = (c: string) => [c, c, c, c, 'chain-zz', 'Chain_F'];
const validNodes = [1, 2, 3, 4].map((i) => ({ id: `n${i}`, endpoint: `127.0.0.1:${7300 + i}`, zone: `z${i}` }));
const ROUTES: Route[] = [
  { name: 'failover', method: 'POST', url: (c) => `/v1/chains/${c}/failover`, chains: P('chain-fo'), runs: 800, body: body({ candidate: nodeRef, reason, dryRun: fc.oneof(fc.boolean(), junk) }), valid: { reason: 'maintenance', dryRun: true } },
  { name: 'switchover', method: 'POST', url: (c) => `/v1/chains/${c}/switchover`, chains: P('chain-sw'), runs: 800, body: body({ target: nodeRef, scheduledAt: time, reason }), valid: { reason: 'maintenance' } },
  { name: 'switchover/cancel', method: 'POST', url: (c) => `/v1/chains/${c}/switchover/cancel`, chains: P('chain-cx'), runs: 400, body: body({ reason }) },
  { name: 'pause', method: 'POST', url: (c) => `/v1/chains/${c}/pause`, chains: P('chain-pa'), runs: 800, body: body({ until: time, reason }), valid: { reason: 'maintenance' } },
  { name: 'resume', method: 'POST', url: (c) => `/v1/chains/${c}/resume`, chains: P('chain-re'), runs: 400, body: body({ reason }) },
  {
    name: 'chain spec',
    method: 'PUT',
    url: (c) => `/v1/chains/${c}`,
    chains: ['chain-p', 'chain-p', 'chain-p', 'Chain_P'],
    runs: 700,
    body: body({
      id: fc.oneof(fc.constantFrom('chain-p', 'chain-q'), junk),
      genesisHash: fc.oneof(fc.constantFrom('0xab12', 'ab', 'xyz', ''), junk),
      nodes: fc.oneof(
        { weight: 4, arbitrary: fc.subarray(validNodes, { minLength: 1 }) },
        { weight: 3, arbitrary: fc.array(nodeSpec, { minLength: 0, maxLength: 4 }) },
        { weight: 1, arbitrary: junk },
      ),
      policy: fc.oneof(
        { weight: 3, arbitrary: fc.constant(undefined) },
        { weight: 2, arbitrary: fc.constant({ blockTimeMs: 500, probeIntervalMs: 250, leaseTtlMs: 6000 }) },
        { weight: 3, arbitrary: policy },
        { weight: 1, arbitrary: junk },
      ),
    }),
  },
  {
    name: 'fleet settings',
    method: 'PUT',
    url: () => '/v1/fleet/settings',
    chains: [''],
    runs: 400,
    body: body({ autoFailover: fc.oneof(fc.boolean(), junk), maxConcurrentFailovers: int(-2, 1002) }),
  },
];

for (const route of ROUTES) {
  // Over the network each request costs a TLS round trip and two more etcd reads: a quarter as many
  // (all for chain specs, whose valid bodies are rare), for the file's time budget on a busy machine.
  const runs = MTLS && route.name !== 'chain spec' ? Math.ceil(route.runs / 4) : route.runs;
  t.test(`${route.method} ${route.name}: ${runs} generated requests, never a 5xx, a refusal changes nothing`, async (t) => {
    const statuses: Record<number, number> = {};
    const request = fc.record({
      chain: fc.constantFrom(...route.chains),
      key: fc.option(fc.oneof(fc.constantFrom('k1', 'k2', 'k3'), fc.string({ minLength: 1, maxLength: 300, unit: 'grapheme-ascii' })), { freq: 2 }),
      payload: fc.oneof(
        { weight: 8, arbitrary: route.body.map((b) => JSON.stringify(b)) },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
        { weight: 1, arbitrary: fc.string({ maxLength: 60, unit: 'binary' }) },
      ),
      contentType: fc.oneof(
        { weight: 10, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8') },
        { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/jsonx', undefined) },
      ),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = {};
        if (r.contentType !== undefined) headers['content-type'] = r.contentType;
        if (r.key !== null) headers['idempotency-key'] = r.key;
        const url = route.url(r.chain);
        const before = await state();
        const auditBefore = MTLS ? await auditCount() : 0;
        const res = await h.send({ method: route.method, url, payload: r.payload, headers });
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        const what = `${route.method} ${url} ${JSON.stringify(headers)} ${r.payload.slice(0, 300)} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
        if (res.statusCode >= 500) throw new Error(`a 5xx: ${what}`);
        const problems = h.contract.check(route.method, h.contract.templateOf(url) ?? url, res);
        if (problems.length > 0) throw new Error(`not as documented: ${problems.join('; ')}: ${what}`);
        if (res.statusCode >= 400) {
          const code = (res.json() as { code?: string }).code;
          if (!code || !CODES.has(code)) throw new Error(`unexpected code ${code}: ${what}`);
        }
        const dryRun = route.name === 'failover' && res.statusCode === 200;
        if ((res.statusCode >= 400 || dryRun) && (await state()) !== before) throw new Error(`changed etcd: ${what}`);
        if (MTLS && (await auditCount()) !== auditBefore + 1) throw new Error(`not exactly one audit record: ${what}`);
      }),
      {
        numRuns: runs,
        ...(route.valid === undefined
          ? {}
          : { examples: [[{ chain: route.chains[0]!, key: null, payload: JSON.stringify(route.valid), contentType: 'application/json' }]] }),
      },
    );
    t.comment(`statuses: ${JSON.stringify(statuses)}`);
    const ok = Object.entries(statuses).filter(([s]) => Number(s) < 300).reduce((n, [, c]) => n + c, 0);
    const refused = Object.entries(statuses).filter(([s]) => Number(s) >= 400).reduce((n, [, c]) => n + c, 0);
    t.ok(ok > 0, `some requests were accepted (${ok})`);
    t.ok(refused > runs / 4, `many were refused (${refused})`);
    t.notOk(Object.keys(statuses).some((s) => Number(s) >= 500), 'never a 5xx');
  });
}
