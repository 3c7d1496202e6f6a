// POST /v1/chains/{id}/head over the real app and a real etcd: the term holder's next block is
// committed, a retry is idempotent, every refusal is a 409 with its own code (or a 400 for a bad
// body) and changes nothing. Every response is checked against openapi.yaml.
import t, { type Test } from 'tap';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { ReplicaSession } from '../../../src/adapters/etcd/replica-session.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import type { SupervisionFence } from '../../../src/core/ports.js';
import type { Term } from '../../../src/core/term.js';
import { buildHarness, call as callApp, idleSpec } from './harness.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());
const client = createEtcdClient({ endpoints: cluster.endpoints });
t.teardown(() => client.close());
const harness = await buildHarness({ client, prefix: `/baton-heads-${process.pid}/` });
t.teardown(() => harness.app.close());
const session = await ReplicaSession.start({ client, keys: harness.keys, replicaId: 'test-supervisor' });
t.teardown(() => session.close());

const hash = (n: number) => n.toString(16).padStart(64, '0');
const head = (n: number, parent = hash(n - 1)) => ({ number: n, hash: hash(n), parentHash: parent, l1Origin: `l1:${n}`, timestamp: 1_700_000_000 + n });
const commit = (t: Test, body: unknown, chain = 'chain-h') =>
  callApp(t, harness, { method: 'POST', url: `/v1/chains/${chain}/head`, payload: body as object });

let fence: SupervisionFence | undefined;

async function leader(nodeId: string, expected: Term | undefined, mode: 'lease' | 'commit' = 'commit'): Promise<Term> {
  fence ??= await session.acquire('chain-h');
  if (!fence) throw new Error('could not supervise chain-h');
  return harness.store.writeLeader(fence, expected, { nodeId, reason: 'test', fromHead: 0, mode }, {
    nodeId, previousNodeId: undefined, previousTerm: expected, fromHead: 0, reason: 'test', atMs: Date.now(), supervisor: 'test-supervisor', durationMs: undefined,
  });
}

t.test('commit, replay and every refusal', async (t) => {
  t.equal((await callApp(t, harness, { method: 'PUT', url: '/v1/chains/chain-h', payload: idleSpec() })).status, 201);
  const term = await leader('n1', undefined);

  const ok = await commit(t, { nodeId: 'n1', term: term.toString(), head: head(1) });
  t.equal(ok.status, 200);
  t.match(ok.body, { duplicate: false, head: { number: 1, term: term.toString(), nodeId: 'n1' } });
  const replay = await commit(t, { nodeId: 'n1', term: term.toString(), head: head(1) });
  t.match(replay.body, { duplicate: true, revision: ok.body.revision }, 'a retry answers the same revision and writes nothing');

  const before = await harness.snapshot();
  const refusals: [string, unknown, number, string, string?][] = [
    ['wrong parent', { nodeId: 'n1', term: term.toString(), head: head(2, hash(77)) }, 409, 'HEAD_MISMATCH', 'parent'],
    ['a gap', { nodeId: 'n1', term: term.toString(), head: head(3) }, 409, 'HEAD_MISMATCH', 'gap'],
    ['another node', { nodeId: 'n2', term: term.toString(), head: head(2) }, 409, 'NOT_LEADER'],
    ['a term that is not current', { nodeId: 'n1', term: (term + 1n).toString(), head: head(2) }, 409, 'STALE_TERM'],
    ['term as a number', { nodeId: 'n1', term: Number(term), head: head(2) }, 400, 'INVALID_ARGUMENT'],
    ['term 0', { nodeId: 'n1', term: '0', head: head(2) }, 400, 'INVALID_ARGUMENT'],
    ['an unknown field', { nodeId: 'n1', term: term.toString(), head: head(2), force: true }, 400, 'INVALID_ARGUMENT'],
    ['uppercase hash', { nodeId: 'n1', term: term.toString(), head: { ...head(2), hash: 'AB'.repeat(32) } }, 400, 'INVALID_ARGUMENT'],
    ['no head', { nodeId: 'n1', term: term.toString() }, 400, 'INVALID_ARGUMENT'],
  ];
  for (const [what, body, status, code, reason] of refusals) {
    const res = await commit(t, body);
    t.equal(res.status, status, `${what}: ${status}`);
    t.equal(res.body?.code, code, `${what}: ${code}`);
    if (reason) t.equal(res.body?.details?.reason, reason, `${what}: details.reason ${reason}`);
  }
  const unknownChain = await commit(t, { nodeId: 'n1', term: term.toString(), head: head(2) }, 'chain-nope');
  t.equal(unknownChain.body?.code, 'STALE_TERM', 'a chain without a leader has no current term');
  t.same(await harness.snapshot(), before, 'refusals changed nothing in etcd');

  const term2 = await leader('n2', term);
  const deposed = await commit(t, { nodeId: 'n1', term: term.toString(), head: head(2) });
  t.equal(deposed.body?.code, 'STALE_TERM', 'the deposed node is told to stop');
  const next = await commit(t, { nodeId: 'n2', term: term2.toString(), head: head(2) });
  t.equal(next.status, 200, 'the new term continues from the committed head');
});

t.test('a commit under a lease-mode term is 409 NOT_COMMIT_MODE and changes nothing', async (t) => {
  const current = (await harness.store.read('chain-h'))?.leader?.term;
  const term = await leader('n1', current, 'lease');
  const before = await harness.snapshot();
  const res = await commit(t, { nodeId: 'n1', term: term.toString(), head: head(3, hash(2)) });
  t.equal(res.status, 409);
  t.equal(res.body?.code, 'NOT_COMMIT_MODE');
  t.same(await harness.snapshot(), before, 'nothing changed in etcd');
});
