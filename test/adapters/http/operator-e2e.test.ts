// The operator API end to end: the real service (`serve`, in this process) over a real etcd, with
// one chain of three real simulated nodes (`baton sim`, its own process). Requests go through the
// service's REST app and are executed by its supervisor: pause and resume take effect, a failover
// while paused is refused by the supervisor, a dry run changes nothing, and a manual failover to a
// named candidate makes it the producing leader. The event stream and the leader long-poll see it
// all; every response is checked against openapi.yaml; the independent checker finds no overlap.
import type { InjectOptions } from 'fastify';
import t, { type Test } from 'tap';
import { parseConfig } from '../../../src/config/config.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { waitFor } from '../../../src/devstack/process.js';
import { readActivityLog } from '../../../src/devstack/sim.js';
import { FAST_BATON_CONFIG, FAST_POLICY } from '../../../src/devstack/stack.js';
import { serve } from '../../../src/main.js';
import { checkActivity } from '../../../src/sim/checker.js';
import { OpenApiContract } from '../../helpers/openapi.js';
import { startSimFor } from '../../helpers/sim.js';
import { call as callApp, type Reply } from './harness.js';
import { SseClient } from './sse-client.js';

const NODES = ['a1', 'a2', 'a3'];
const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());
const sim = await startSimFor(t, { logDir: t.testdir(), nodes: NODES.map((node) => ({ chain: 'chain-a', node, blockTimeMs: 200 })) });
const service = await serve(
  parseConfig({
    ...FAST_BATON_CONFIG,
    replicaId: 'replica-e2e',
    logLevel: 'error',
    etcd: { ...FAST_BATON_CONFIG.etcd, endpoints: cluster.endpoints, prefix: `/baton-e2e-${process.pid}/` },
    http: { host: '127.0.0.1', port: 0 },
    grpc: { host: '127.0.0.1', port: 0 },
    security: { insecureDev: true },
  }),
);
t.teardown(() => service.close());
const h = { app: service.app, contract: new OpenApiContract() };

const call = (t: Test, opts: InjectOptions & { method: string; url: string }) => callApp(t, h, opts);
const get = (t: Test, url: string) => call(t, { method: 'GET', url });
const post = (t: Test, url: string, body: unknown, headers: Record<string, string> = {}) =>
  call(t, { method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });

/** Waits (long-poll) until the operation is final. */
async function finished(t: Test, accepted: Reply): Promise<Reply> {
  t.equal(accepted.status, 202, `accepted: ${accepted.text.slice(0, 200)}`);
  return waitFor(`operation ${accepted.body.id} to end`, async () => {
    const res = await get(t, `/v1/operations/${accepted.body.id}?wait=5000`);
    return ['succeeded', 'failed', 'cancelled'].includes(res.body.state) ? res : undefined;
  }, 30_000, 0);
}

interface NodeJson { id: string; role: string; producing: boolean; eligible: boolean; term: string; reasons: string[] }

/** A leader producing under its term, and every standby eligible. */
async function steady(t: Test): Promise<{ leader: string; term: string; standbys: string[] }> {
  return waitFor('a producing leader and eligible standbys', async () => {
    const view = (await get(t, '/v1/chains/chain-a')).body;
    const leader = view.leader;
    const nodes = view.nodes as NodeJson[];
    const active = nodes.find((n) => n.id === leader?.nodeId);
    const standbys = nodes.filter((n) => n.id !== leader?.nodeId);
    if (!leader || !active?.producing || active.term !== leader.term || !standbys.every((n) => n.eligible)) return undefined;
    return { leader: leader.nodeId as string, term: leader.term as string, standbys: standbys.map((n) => n.id) };
  }, 30_000, 100);
}

const registered = await service.app.inject({
  method: 'PUT',
  url: '/v1/chains/chain-a',
  payload: {
    nodes: NODES.map((node) => ({ id: node, endpoint: sim.node('chain-a', node).address, zone: `z-${node}` })),
    policy: { ...FAST_POLICY, blockTimeMs: 200 },
  },
});
if (registered.statusCode !== 201) throw new Error(`PUT chain-a: ${registered.statusCode} ${registered.body}`);

t.test('operator requests executed by the supervisor, seen in the event stream and the long-poll', async (t) => {
  const events = await SseClient.open(`${service.address}/v1/events?chain=chain-a`);
  t.teardown(() => events.close());
  const first = await steady(t);

  await t.test('a dry run plans with each node\'s eligibility and changes nothing', async (t) => {
    const opsBefore = (await get(t, '/v1/operations?chain=chain-a')).body.operations;
    const res = await post(t, '/v1/chains/chain-a/failover', { reason: 'what if', dryRun: true });
    t.equal(res.status, 200);
    t.equal(res.body.plan.from, first.leader);
    t.ok(first.standbys.includes(res.body.plan.to), `would pick a standby (${res.body.plan.to})`);
    t.match(res.body.plan.reason, `would fail over from ${first.leader} to ${res.body.plan.to}`);
    const nodes = res.body.plan.nodes as NodeJson[];
    t.same(nodes.map((n) => n.id), NODES, 'every node is listed');
    t.same(nodes.filter((n) => n.eligible).map((n) => n.id).sort(), [...first.standbys].sort(), 'the standbys are eligible');
    t.equal(nodes.find((n) => n.id === first.leader)!.role, 'active');
    t.same((await get(t, '/v1/operations?chain=chain-a')).body.operations, opsBefore, 'no operation');
    t.equal((await get(t, '/v1/chains/chain-a/leader')).body.term, first.term, 'no new term');
  });

  await t.test('pause, a failover refused while paused, resume', async (t) => {
    const pause = await finished(t, await post(t, '/v1/chains/chain-a/pause', { reason: 'maintenance' }, { 'idempotency-key': 'e2e-pause' }));
    t.equal(pause.body.state, 'succeeded');
    t.equal(pause.body.executor, 'replica-e2e', 'executed by the supervising replica');
    t.match(pause.body.result.detail, /paused until resumed/);
    const paused = (await get(t, '/v1/chains?filter=paused')).body;
    t.same(paused.chains.map((c: { id: string; paused: boolean }) => [c.id, c.paused]), [['chain-a', true]], 'the chain is listed as paused');
    t.equal(paused.counts.paused, 1);
    const view = (await get(t, '/v1/chains/chain-a')).body;
    t.same(view.paused, { reason: 'maintenance', untilMs: null, operationId: pause.body.id }, 'the chain view shows the pause');
    await events.waitForEvent('paused', (e) => e.event === 'paused' && e.data.data.operationId === pause.body.id);
    await events.waitForEvent('pause succeeded', (e) => e.event === 'operation-changed' && e.data.data.id === pause.body.id && e.data.data.state === 'succeeded');

    const replay = await post(t, '/v1/chains/chain-a/pause', { reason: 'maintenance' }, { 'idempotency-key': 'e2e-pause' });
    t.equal(replay.status, 202);
    t.equal(replay.headers['idempotent-replayed'], 'true');
    t.equal(replay.body.state, 'succeeded', 'a replay returns the operation as it is now; nothing runs again');

    const refused = await finished(t, await post(t, '/v1/chains/chain-a/failover', { reason: 'while paused' }));
    t.equal(refused.body.state, 'failed');
    t.equal(refused.body.error.code, 'PAUSED', 'the supervisor refuses a failover of a paused chain');
    t.equal((await get(t, '/v1/chains/chain-a/leader')).body.term, first.term, 'leader unchanged');

    const resume = await finished(t, await post(t, '/v1/chains/chain-a/resume', { reason: 'done' }));
    t.equal(resume.body.state, 'succeeded');
    t.same((await get(t, '/v1/chains?filter=paused')).body.chains, []);
    t.equal((await get(t, '/v1/chains/chain-a')).body.paused, null, 'and no pause once resumed');
    await events.waitForEvent('resumed', (e) => e.event === 'resumed');
  });

  await t.test('a manual failover to a named candidate: the long-poll sees it, the candidate produces', async (t) => {
    const before = await steady(t);
    const candidate = before.standbys[before.standbys.length - 1]!;
    const poll = get(t, `/v1/chains/chain-a/leader?waitForChangeFrom=${before.term}&timeout=30000`);
    const accepted = await post(t, '/v1/chains/chain-a/failover', { candidate, reason: 'move the sequencer' });
    t.equal(accepted.status, 202);
    const second = await post(t, '/v1/chains/chain-a/switchover', { reason: 'at the same time' });
    t.equal(second.status, 409, 'a second leadership operation while the first is unfinished');
    t.equal(second.body.code, 'CONFLICT');

    const changed = (await poll).body;
    t.equal(changed.changed, true, 'the long-poll answers on the change');
    t.equal(changed.nodeId, candidate);
    t.equal(changed.endpoint, sim.node('chain-a', candidate).address);
    t.ok(BigInt(changed.term) > BigInt(before.term), 'under a larger term');

    const done = await finished(t, accepted);
    t.equal(done.body.state, 'succeeded', `failover succeeded: ${JSON.stringify(done.body.error)}`);
    t.match(done.body.result, { nodeId: candidate, term: changed.term });
    t.ok(done.body.steps.length >= 2, `steps: ${done.body.steps.map((s: { name: string }) => s.name).join(', ')}`);

    const logFile = sim.node('chain-a', candidate).logFile;
    const blocks = await waitFor('blocks of the new leader', () => {
      const b = readActivityLog(logFile).filter((e) => e.ev === 'block' && String(e.term) === changed.term);
      return b.length >= 3 ? b : undefined;
    }, 15_000);
    t.ok(blocks.length >= 3, `${candidate} produces under term ${changed.term}`);
    const leaderEvent = await events.waitForEvent('leader-changed', (e) => e.event === 'leader-changed' && e.data.data.term === changed.term);
    t.equal(leaderEvent.data.data.nodeId, candidate, 'the stream announced the new leader');

    const report = checkActivity(NODES.map((n) => ({ file: sim.node('chain-a', n).logFile, entries: readActivityLog(sim.node('chain-a', n).logFile) })));
    for (const v of report.violations) t.comment(`${v.kind} ${v.chain}: ${v.message}`);
    t.equal(report.violations.length, 0, `checker: no violation over ${report.blocks} blocks`);
  });

  const ids = events.ids();
  t.equal(new Set(ids).size, ids.length, 'the stream sent no event twice');
});
