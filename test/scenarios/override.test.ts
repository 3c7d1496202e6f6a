// Break-glass override on a real stack (real etcd, `baton serve`, one `baton sim` per node), over
// the REST API: bad requests are refused with stable codes and change nothing; a node that reports
// unhealthy is forced active under a new term with the old active stopped, exactly one audit record,
// and the override visible in the chain view, the event stream and /metrics; the supervisor keeps
// the forced node while the override lasts and fails away from it once cleared; on a paused chain a
// lagging node is forced too, and produces only once it holds the recorded head (continuity is
// never skipped). The independent checker reads every node's log at the end. Who may call it is the
// permission matrix's business (test/security/matrix.test.ts).
import t, { type Test } from 'tap';
import { Etcd3 } from 'etcd3';
import { waitFor } from '../../src/devstack/process.js';
import type { ChainViewJson } from '../../src/devstack/baton.js';
import { SseClient } from '../adapters/http/sse-client.js';
import { assertOneAuditRecord } from '../security/audit-assert.js';
import { assertCheckerClean, blocksOf, startStack } from '../helpers/stack.js';
import { operationEnded, postJson } from '../helpers/rest.js';

const CHAIN = 'chain-o';
const NODES = ['o1', 'o2', 'o3'];
const PREFIX = '/baton/';

const stack = await startStack(t, { replicas: 1, chains: [{ id: CHAIN, nodes: NODES }], blockTimeMs: 200 });
const etcd = new Etcd3({ hosts: stack.etcd.endpoints });
t.teardown(() => etcd.close());
// Every event since the stack started, as the REST stream serves them.
const events = await SseClient.open(`${stack.replicas[0]!.url}/v1/events?lastEventId=1-0`);
t.teardown(() => events.close());

interface Answer {
  status: number;
  body: { code?: string; id?: string; state?: string; result?: { term?: string; nodeId?: string } | null; error?: { code: string } | null };
  requestId: string;
}

function post(path: string, body: unknown): Promise<Answer> {
  return postJson<Answer['body']>(stack.replicas[0]!.url, path, body);
}

async function view(): Promise<ChainViewJson> {
  return (await stack.api().getChain(CHAIN)).body;
}

function finished(id: string): Promise<Answer['body']> {
  return operationEnded<Answer['body']>(stack, id);
}

async function metric(name: string): Promise<number | undefined> {
  const text = await (await fetch(`${stack.replicas[0]!.opsUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{chain="${CHAIN}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function nodeState(node: string): Promise<{ producing: boolean; term: bigint; highestTerm: bigint; head: number }> {
  const h = await stack.node(CHAIN, node).sim.inspect();
  return { producing: h.active, term: h.term, highestTerm: h.highestTerm, head: Number(h.headNumber) };
}

/** A leader producing under its term, and a node `ineligible` that the view says is not eligible because of `why`. */
async function steadyWith(ineligible: string, why: RegExp): Promise<{ leader: string; term: bigint }> {
  return waitFor(`a producing leader and ${ineligible} ineligible (${why})`, async () => {
    const v = await view();
    const active = v.nodes.find((n) => n.id === v.leader?.nodeId);
    const bad = v.nodes.find((n) => n.id === ineligible);
    if (!v.leader || !active?.producing || active.term !== v.leader.term || bad?.eligible !== false || !bad.reasons.some((r) => why.test(r))) return undefined;
    return { leader: v.leader.nodeId, term: BigInt(v.leader.term) };
  }, 30_000, 100);
}

async function assertUnchanged(t: Test, term: bigint, what: string): Promise<void> {
  const v = await view();
  t.equal(BigInt(v.leader!.term), term, `${what}: the term is unchanged`);
  t.equal(v.override, null, `${what}: no override`);
}

t.test('bad requests are refused with a stable code and change nothing', async (t) => {
  const first = await stack.waitForProducingLeader(CHAIN, 30_000);
  const opsBefore = (await stack.api().request<{ operations: unknown[] }>('GET', `/v1/operations?chain=${CHAIN}`)).body.operations.length;
  const cases: [string, unknown, number, string][] = [
    ['no reason', { nodeId: 'o2' }, 400, 'INVALID_ARGUMENT'],
    ['a blank reason', { nodeId: 'o2', reason: '   ' }, 400, 'INVALID_ARGUMENT'],
    ['no node', { reason: 'x' }, 400, 'INVALID_ARGUMENT'],
    ['a node of no chain', { nodeId: 'zz9', reason: 'x' }, 404, 'NOT_FOUND'],
    ['an unknown field', { nodeId: 'o2', reason: 'x', force: true }, 400, 'INVALID_ARGUMENT'],
  ];
  for (const [what, body, status, code] of cases) {
    const res = await post(`/v1/chains/${CHAIN}/override`, body);
    t.equal(res.status, status, `${what}: ${status}`);
    t.equal(res.body.code, code, `${what}: ${code}`);
    await assertOneAuditRecord(t, etcd, PREFIX, res.requestId, { action: 'Override', outcome: 'refused' });
  }
  const clear = await post(`/v1/chains/${CHAIN}/override/clear`, {});
  t.equal(clear.status, 400, 'clear without a reason: 400');
  t.equal(clear.body.code, 'INVALID_ARGUMENT');
  const opsAfter = (await stack.api().request<{ operations: unknown[] }>('GET', `/v1/operations?chain=${CHAIN}`)).body.operations.length;
  t.equal(opsAfter, opsBefore, 'no operation was created');
  await assertUnchanged(t, first.term, 'after the refusals');
});

t.test('an unhealthy node is forced active, fenced, audited and visible until cleared', async (t) => {
  const before = await stack.waitForProducingLeader(CHAIN, 30_000);
  const forced = NODES.find((n) => n !== before.nodeId)!;
  await stack.node(CHAIN, forced).sim.setFaults({ faults: { unhealthy: 'disk on fire (test)' } });
  const { leader: old, term: oldTerm } = await steadyWith(forced, /unhealthy/);

  const failover = await post(`/v1/chains/${CHAIN}/failover`, { candidate: forced, reason: 'not eligible' });
  t.equal(failover.status, 202);
  t.equal((await finished(failover.body.id!)).error?.code, 'NOT_ELIGIBLE', 'an operator failover to it is refused: it is not eligible');

  const res = await post(`/v1/chains/${CHAIN}/override`, { nodeId: forced, reason: 'INC-1: health check misreports' });
  t.equal(res.status, 202, 'accepted');
  await assertOneAuditRecord(t, etcd, PREFIX, res.requestId, { principal: 'insecure-dev', action: 'Override', outcome: 'accepted' });
  const op = await finished(res.body.id!);
  t.equal(op.state, 'succeeded', `override succeeded (${JSON.stringify(op.error)})`);
  const term = BigInt(op.result!.term!);
  t.ok(term > oldTerm, `a new term ${term} above ${oldTerm}`);

  const v = await view();
  t.equal(v.leader?.nodeId, forced, 'the forced node is the leader');
  t.equal(v.leader?.term, term.toString());
  t.match(v.override, { nodeId: forced, term: term.toString(), reason: 'INC-1: health check misreports', operationId: res.body.id }, 'the chain view shows the override');
  const now = await nodeState(forced);
  t.ok(now.producing && now.term === term, `${forced} produces under term ${term}`);
  const stopped = await nodeState(old);
  t.notOk(stopped.producing, `the old active ${old} is stopped`);
  t.ok(stopped.highestTerm >= term, `${old} has seen the new term`);
  await waitFor('a block under the new term', () => blocksOf(stack.node(CHAIN, forced).logFile).some((b) => BigInt(b.term) === term) || undefined, 10_000);
  t.pass('its activity log shows blocks under the term');

  await waitFor('override-set event', () => events.events.find((e) => e.data.type === 'override-set' && e.data.data.nodeId === forced), 10_000);
  t.pass('the event stream carries override-set');
  t.equal(await waitFor('override gauge', async () => ((await metric('baton_chain_override_active')) === 1 ? 1 : undefined), 10_000), 1, 'baton_chain_override_active is 1');

  // The forced node still reports unhealthy: without the override the supervisor would fail away.
  await new Promise((r) => setTimeout(r, 2000));
  const kept = await view();
  t.equal(kept.leader?.nodeId, forced, 'kept while the override lasts, although it reports unhealthy');
  t.equal(kept.leader?.term, term.toString(), 'no new term meanwhile');
  t.match(kept.decision ?? '', /break-glass override/, 'the decision says why');

  const refused = await post(`/v1/chains/${CHAIN}/failover`, { reason: 'undo it' });
  t.equal(refused.status, 409, 'an operator failover is refused meanwhile');
  t.equal(refused.body.code, 'OVERRIDDEN');
  const refusedSwitch = await post(`/v1/chains/${CHAIN}/switchover`, { reason: 'undo it' });
  t.equal(refusedSwitch.body.code, 'OVERRIDDEN', 'and so is a switchover');

  const clear = await post(`/v1/chains/${CHAIN}/override/clear`, { reason: 'INC-1 resolved' });
  t.equal(clear.status, 202);
  await assertOneAuditRecord(t, etcd, PREFIX, clear.requestId, { action: 'ClearOverride', outcome: 'accepted' });
  t.equal((await finished(clear.body.id!)).state, 'succeeded');
  t.equal((await view()).override, null, 'the view no longer shows it');
  await waitFor('override-cleared event', () => events.events.find((e) => e.data.type === 'override-cleared'), 10_000);
  t.pass('the event stream carries override-cleared');
  t.equal(await waitFor('override gauge 0', async () => ((await metric('baton_chain_override_active')) === 0 ? 0 : undefined), 10_000), 0, 'the gauge is back to 0');
  const after = await stack.waitForProducingLeader(CHAIN, 30_000, forced);
  t.ok(after.term > term, `once cleared, the supervisor fails away from the unhealthy node (to ${after.nodeId})`);
  await stack.node(CHAIN, forced).sim.setFaults({ faults: {} });
});

t.test('on a paused chain a lagging node is forced, and produces only once it holds the recorded head', async (t) => {
  const before = await stack.waitForProducingLeader(CHAIN, 30_000);
  const lagging = NODES.find((n) => n !== before.nodeId)!;
  await stack.node(CHAIN, lagging).sim.setFaults({ faults: { stopFollowing: true } });
  await steadyWith(lagging, /^behind/);
  const pause = await post(`/v1/chains/${CHAIN}/pause`, { reason: 'freeze for the override test' });
  t.equal((await finished(pause.body.id!)).state, 'succeeded', 'paused');

  const res = await post(`/v1/chains/${CHAIN}/override`, { nodeId: lagging, reason: 'INC-2: force the lagging node' });
  t.equal(res.status, 202);
  const term = await waitFor('the new term', async () => {
    const v = await view();
    return v.leader?.nodeId === lagging ? BigInt(v.leader.term) : undefined;
  }, 20_000, 50);
  t.ok(term > before.term, 'a new term although the chain is paused and the node is behind');
  await waitFor(`${before.nodeId} stopped`, async () => ((await nodeState(before.nodeId)).producing ? undefined : true), 10_000);
  const recorded = (await view()).unsafeHead!.number;
  const behind = await nodeState(lagging);
  t.ok(behind.head < recorded, `${lagging} is behind (head ${behind.head} < recorded ${recorded})`);
  await new Promise((r) => setTimeout(r, 1000));
  t.notOk((await nodeState(lagging)).producing, 'it does not produce while it lacks the recorded head');

  await stack.node(CHAIN, lagging).sim.setFaults({ faults: {} });
  const op = await finished(res.body.id!);
  t.equal(op.state, 'succeeded', `it produced once caught up (${JSON.stringify(op.error)})`);
  const first = blocksOf(stack.node(CHAIN, lagging).logFile).find((b) => BigInt(b.term) === term)!;
  t.ok(first.number > recorded, `its first block ${first.number} continues above the recorded head ${recorded}`);

  t.equal((await finished((await post(`/v1/chains/${CHAIN}/override/clear`, { reason: 'done' })).body.id!)).state, 'succeeded');
  t.equal((await finished((await post(`/v1/chains/${CHAIN}/resume`, { reason: 'done' })).body.id!)).state, 'succeeded');
});

t.test('the activity logs hold no invariant violation', async (t) => {
  assertCheckerClean(t, stack);
});
