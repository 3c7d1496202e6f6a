// serve(config) in-process against a real etcd: chains declared in a file at startup are applied
// like PUT /v1/chains/{id} and listed over real HTTP; a bad chains file refuses to start, names
// what is wrong and writes nothing.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createEtcdClient } from '../src/adapters/etcd/client.js';
import { parseConfig } from '../src/config/config.js';
import { EtcdCluster } from '../src/devstack/etcd.js';
import { serve } from '../src/main.js';
import { OpenApiContract } from './helpers/openapi.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());
const client = createEtcdClient({ endpoints: cluster.endpoints });
t.teardown(() => client.close());
const contract = new OpenApiContract();

let n = 0;
function configFor(chainsFile: string) {
  const prefix = `/baton-main-${process.pid}-${++n}/`;
  const config = parseConfig({
    replicaId: `replica-main-${n}`,
    logLevel: 'error',
    etcd: { endpoints: cluster.endpoints, prefix },
    http: { host: '127.0.0.1', port: 0 },
    grpc: { host: '127.0.0.1', port: 0 },
    chainsFile,
    security: { insecureDev: true },
  });
  return { config, prefix };
}

async function keysUnder(prefix: string): Promise<string[]> {
  return client.getAll().prefix(prefix).keys();
}

// Nothing listens on these ports: node probing is not under test, the chains stay leaderless.
const chainSpec = (id: string, base: number, over: Record<string, unknown> = {}) => ({
  id,
  nodes: [
    { id: `${id}-1`, endpoint: `127.0.0.1:${base + 1}` },
    { id: `${id}-2`, endpoint: `127.0.0.1:${base + 2}`, priority: 1 },
  ],
  policy: { leaseTtlMs: 8000 },
  ...over,
});

t.test('a chains file of two specs: both are listed over HTTP', async (t) => {
  const file = join(t.testdir(), 'chains.json');
  writeFileSync(file, JSON.stringify([chainSpec('chain-x', 1100), chainSpec('chain-y', 1200)]));
  const { config } = configFor(file);
  const service = await serve(config);
  t.teardown(() => service.close());

  const res = await fetch(`${service.address}/v1/chains`);
  const text = await res.text();
  t.same(contract.check('GET', '/v1/chains', { statusCode: res.status, headers: Object.fromEntries(res.headers), body: text }), [], 'conforms to openapi.yaml');
  const body = JSON.parse(text) as { chains: { id: string; nodes: number; fencingMode: string }[]; count: number };
  t.equal(res.status, 200);
  t.equal(body.count, 2);
  t.same(body.chains.map((c) => [c.id, c.nodes, c.fencingMode]).sort(), [['chain-x', 2, 'lease'], ['chain-y', 2, 'lease']]);

  const one = await fetch(`${service.address}/v1/chains/chain-y`);
  const view = (await one.json()) as { spec: { policy: { leaseTtlMs: number }; nodes: { priority: number }[] } };
  t.equal(one.status, 200);
  t.equal(view.spec.policy.leaseTtlMs, 8000, 'the declared policy, defaults filled in');
  t.same(view.spec.nodes.map((x) => x.priority), [0, 1]);
});

t.test('declaring again replaces (PUT semantics) and keeps chains not in the file', async (t) => {
  const dir = t.testdir();
  const first = join(dir, 'first.json');
  writeFileSync(first, JSON.stringify([chainSpec('chain-x', 1100), chainSpec('chain-y', 1200)]));
  const { config, prefix } = configFor(first);
  await (await serve(config)).close();

  const second = join(dir, 'second.json');
  writeFileSync(second, JSON.stringify([chainSpec('chain-x', 1300, { policy: { leaseTtlMs: 9000 } })]));
  const service = await serve(parseConfig({ ...JSON.parse(JSON.stringify(config)), chainsFile: second, replicaId: 'replica-main-again' }));
  t.teardown(() => service.close());
  const body = (await (await fetch(`${service.address}/v1/chains/chain-x`)).json()) as { spec: { policy: { leaseTtlMs: number }; nodes: { endpoint: string }[] } };
  t.equal(body.spec.policy.leaseTtlMs, 9000);
  t.equal(body.spec.nodes[0]!.endpoint, '127.0.0.1:1301');
  t.equal(((await (await fetch(`${service.address}/v1/chains`)).json()) as { count: number }).count, 2, 'chain-y is still there');
  t.ok((await keysUnder(prefix)).length > 0);
});

/** Each bad chains file: its content and what the error must name. */
const BAD_FILES: [string, string, RegExp][] = [
  ['an invalid spec (duplicate endpoint)', JSON.stringify([chainSpec('chain-x', 1100), chainSpec('chain-y', 1200, { nodes: [{ id: 'a', endpoint: 'h:1' }, { id: 'b', endpoint: 'h:1' }] })]), /nodes\[1\]\.endpoint/],
  ['an invalid spec (lease below the minimum)', JSON.stringify([chainSpec('chain-x', 1100, { policy: { leaseTtlMs: 1000 } })]), /policy\.leaseTtlMs/],
  ['an unknown fencingMode', JSON.stringify([chainSpec('chain-x', 1100, { policy: { leaseTtlMs: 8000, fencingMode: 'raft' } })]), /policy\.fencingMode/],
  ['a bad chain id', JSON.stringify([chainSpec('Chain_X', 1100)]), /\bid\b/],
  ['an unknown field (a typo)', JSON.stringify([chainSpec('chain-x', 1100, { polcy: { leaseTtlMs: 8000 } })]), /polcy/],
  ['an unknown node field', JSON.stringify([chainSpec('chain-x', 1100, { nodes: [{ id: 'a', endpoint: 'h:1', weight: 2 }] })]), /nodes\[0\]\.weight/],
  ['an unknown policy field', JSON.stringify([chainSpec('chain-x', 1100, { policy: { leaseTtlMs: 8000, leaseTTL: 1 } })]), /policy\.leaseTTL/],
  ['a wrong type', JSON.stringify([chainSpec('chain-x', 1100, { genesisHash: 1234 })]), /genesisHash/],
  ['a spec that is not an object', JSON.stringify([chainSpec('chain-x', 1100), 'chain-y']), /chains\[1\]/],
  ['the same chain twice', JSON.stringify([chainSpec('chain-x', 1100), chainSpec('chain-x', 1200)]), /chain-x/],
  ['not a list', JSON.stringify(chainSpec('chain-x', 1100)), /array/],
  ['not JSON', '[{"id": "chain-x",', /JSON/],
];

t.test('a bad chains file refuses to start, names the problem and writes nothing', async (t) => {
  const dir = t.testdir();
  for (const [name, content, names] of BAD_FILES) {
    const file = join(dir, `${n}.json`);
    writeFileSync(file, content);
    const { config, prefix } = configFor(file);
    await t.rejects(serve(config), { code: 'INVALID_ARGUMENT', message: names }, name);
    t.same(await keysUnder(prefix), [], `${name}: nothing written`);
  }
  const { config, prefix } = configFor(join(dir, 'does-not-exist.json'));
  await t.rejects(serve(config), { code: 'INVALID_ARGUMENT', message: /does-not-exist\.json/ }, 'a missing file');
  t.same(await keysUnder(prefix), []);
});
