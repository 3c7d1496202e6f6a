// Break-glass override with rollbackHead on a real stack (real etcd, `baton serve`, one `baton sim`
// per node), over the REST API. The case it exists for: a lease-mode active dies (SIGKILL) holding
// the only copies of the last recorded blocks, every standby is behind the recorded head, and the
// chain halts for good; a plain override forces a standby that then never produces. An override
// with rollbackHead sets the recorded head back to exactly the forced node's head in the txn of
// the new term, and the node continues from it. Before that: a
// non-boolean rollbackHead is 400, and while the leader produces it is 409 ROLLBACK_REFUSED; both
// change nothing. At the end, the independent checker over every activity log reports only the
// authorised fork (the dead node's blocks above the new head against the new ones), and the drill's
// etcd history scan accepts the decrease because the override record names it.
import t from 'tap';
import { Etcd3 } from 'etcd3';
import { waitFor } from '../../src/devstack/process.js';
import type { ChainViewJson } from '../../src/devstack/baton.js';
import { FAST_POLICY } from '../../src/devstack/stack.js';
import { checkEtcdHistory, readEtcdHistory } from '../../src/drill/verify.js';
import { checkActivity } from '../../src/sim/checker.js';
import { readActivityLog } from '../../src/devstack/sim.js';
import { SseClient } from '../adapters/http/sse-client.js';
import { assertOneAuditRecord } from '../security/audit-assert.js';
import { watchWindow } from '../helpers/scenario.js';
import { blocksOf, startStack } from '../helpers/stack.js';
import { operationEnded, postJson } from '../helpers/rest.js';

const CHAIN = 'chain-r';
const NODES = ['r1', 'r2', 'r3'];
const PREFIX = '/baton/';
const MAX_LAG = FAST_POLICY.maxLagBlocks!;

const stack = await startStack(t, { replicas: 1, chains: [{ id: CHAIN, nodes: NODES }], blockTimeMs: 200 });
const etcd = new Etcd3({ hosts: stack.etcd.endpoints });
t.teardown(() => etcd.close());
const events = await SseClient.open(`${stack.replicas[0]!.url}/v1/events?lastEventId=1-0`);
t.teardown(() => events.close());

interface Answer {
  status: number;
  body: {
    code?: string;
    id?: string;
    state?: string;
    steps?: { name: string; state: string; detail: string }[];
    result?: { term?: string; nodeId?: string } | null;
    error?: { code: string; message: string } | null;
  };
  requestId: string;
}

function post(path: string, body: unknown): Promise<Answer> {
  return postJson<Answer['body']>(stack.replicas[0]!.url, path, body);
}

async function view(): Promise<ChainViewJson> {
  return (await stack.api().getChain(CHAIN)).body;
}

function finished(id: string): Promise<Answer['body']> {
  return operationEnded<Answer['body']>(stack, id, 60_000);
}

async function operationCount(): Promise<number> {
  return (await stack.api().request<{ operations: unknown[] }>('GET', `/v1/operations?chain=${CHAIN}`)).body.operations.length;
}

async function recordedHead(): Promise<{ number: number; hash: string; term: string; nodeId: string }> {
  const raw = await etcd.get(`${PREFIX}chains/${CHAIN}/head`).string();
  return JSON.parse(raw!) as { number: number; hash: string; term: string; nodeId: string };
}

async function headOf(node: string): Promise<{ number: number; hash: string }> {
  const h = await stack.node(CHAIN, node).sim.inspect({});
  return { number: Number(h.headNumber), hash: Buffer.from(h.headHash).toString('hex') };
}

const first = await stack.waitForProducingLeader(CHAIN, 30_000);
const standbys = NODES.filter((n) => n !== first.nodeId);

t.test('a rollbackHead that is not a boolean is 400 and changes nothing', async (t) => {
  const ops = await operationCount();
  for (const bad of ['yes', 1, null]) {
    const res = await post(`/v1/chains/${CHAIN}/override`, { nodeId: standbys[0], reason: 'x', rollbackHead: bad });
    t.equal(res.status, 400, `rollbackHead ${JSON.stringify(bad)}: 400`);
    t.equal(res.body.code, 'INVALID_ARGUMENT');
    await assertOneAuditRecord(t, etcd, PREFIX, res.requestId, { action: 'Override', outcome: 'refused' });
  }
  t.equal(await operationCount(), ops, 'no operation was created');
  const v = await view();
  t.equal(v.leader?.term, first.term.toString(), 'the term is unchanged');
  t.equal(v.override, null, 'no override');
});

t.test('while the leader produces, rollbackHead is 409 ROLLBACK_REFUSED and changes nothing', async (t) => {
  const ops = await operationCount();
  const before = await recordedHead();
  const res = await post(`/v1/chains/${CHAIN}/override`, { nodeId: standbys[0], reason: 'INC-7: not yet', rollbackHead: true });
  t.equal(res.status, 409, '409');
  t.equal(res.body.code, 'ROLLBACK_REFUSED');
  await assertOneAuditRecord(t, etcd, PREFIX, res.requestId, { action: 'Override', outcome: 'refused' });
  t.equal(await operationCount(), ops, 'no operation was created');
  const v = await view();
  t.equal(v.leader?.nodeId, first.nodeId, 'the leader is unchanged');
  t.equal(v.leader?.term, first.term.toString(), 'the term is unchanged');
  t.equal(v.override, null, 'no override');
  t.ok((await recordedHead()).number >= before.number, 'the recorded head did not go back');
});

t.test('the active dies holding the only copies of the last blocks: halt, then override with rollbackHead', async (t) => {
  await waitFor('the standbys to follow a few blocks first', async () => {
    for (const n of standbys) if ((await headOf(n)).number < 3) return undefined;
    return true;
  }, 15_000);
  for (const n of standbys) await stack.node(CHAIN, n).sim.setFaults({ faults: { stopFollowing: true } });
  const heads = await Promise.all(standbys.map((n) => headOf(n)));
  const highest = Math.max(...heads.map((h) => h.number));
  await waitFor('the recorded head to pull away from both standbys', async () =>
    ((await view()).unsafeHead?.number ?? 0) > highest + MAX_LAG + 3 ? true : undefined, 15_000);

  await stack.simProcess(CHAIN, first.nodeId).kill();
  const halted = await waitFor('the supervisor to find no eligible standby', async () => {
    const v = await view();
    return v.decision?.includes('no eligible standby') ? v : undefined;
  }, 20_000, 100);
  t.match(halted.decision, /no eligible standby/, 'the decision says no eligible standby');
  t.equal(halted.leader?.nodeId, first.nodeId, 'the leader record still names the dead node');

  // The standby with the longer chain: the other one cannot hold blocks above it.
  const target = standbys[heads[0]!.number >= heads[1]!.number ? 0 : 1]!;
  const to = await headOf(target);
  const from = await recordedHead();
  t.ok(to.number < from.number, `${target} (head ${to.number}) is behind the recorded head ${from.number}`);

  // The gap this closes: a plain override forces the node, which then waits forever for a head it
  // can never get.
  const plain = await post(`/v1/chains/${CHAIN}/override`, { nodeId: target, reason: 'INC-8: try a plain override first' });
  t.equal(plain.status, 202, 'a plain override is accepted');
  const plainTerm = await waitFor('the plain override\'s term', async () => {
    const v = await view();
    return v.leader?.nodeId === target && BigInt(v.leader.term) > first.term ? BigInt(v.leader.term) : undefined;
  }, 20_000, 50);
  let produced = false;
  await watchWindow(FAST_POLICY.leaseTtlMs! + 1500, 200, async () => {
    produced ||= (await stack.node(CHAIN, target).sim.inspect({})).active;
  });
  t.notOk(produced, `without rollbackHead ${target} never produces under term ${plainTerm}: it lacks the recorded head`);
  t.equal((await recordedHead()).number, from.number, 'the recorded head is unchanged');
  const deadBlocks = blocksOf(stack.node(CHAIN, first.nodeId).logFile);
  const deadTop = Math.max(...deadBlocks.map((b) => b.number));

  const res = await post(`/v1/chains/${CHAIN}/override`, { nodeId: target, reason: 'INC-8: active lost with the last blocks', rollbackHead: true });
  t.equal(res.status, 202, `accepted (${JSON.stringify(res.body)})`);
  const audit = await assertOneAuditRecord(t, etcd, PREFIX, res.requestId, { action: 'Override', outcome: 'accepted' });
  t.equal(audit?.operationId, res.body.id, 'the audit record names the operation');
  const op = await finished(res.body.id!);
  t.equal(op.state, 'succeeded', `override succeeded (${JSON.stringify(op.error)})`);
  const term = BigInt(op.result!.term!);
  t.ok(term > plainTerm, `a new term ${term}`);
  const step = op.steps?.find((s) => s.name === 'rollback');
  t.match(step, { state: 'done', detail: new RegExp(`from ${from.number} .* to ${to.number} `) }, 'the operation says what it rolled back');

  // etcd: the history of the head key shows exactly the rolled-back head written with the new term.
  const written = await etcd.get(`${PREFIX}chains/${CHAIN}/head`).exec();
  t.ok(BigInt(written.kvs[0]!.mod_revision) >= term, 'the head key was written at or after the new term');
  const atTerm = JSON.parse((await etcd.get(`${PREFIX}chains/${CHAIN}/head`).revision(term.toString()).string())!) as { number: number; hash: string; nodeId: string };
  t.same({ number: atTerm.number, hash: atTerm.hash, nodeId: atTerm.nodeId }, { ...to, nodeId: target }, 'at the new term the recorded head is exactly the target\'s head');

  const v = await view();
  t.equal(v.leader?.nodeId, target);
  t.match(v.override, { nodeId: target, term: term.toString(), rolledBackFrom: { number: from.number, hash: from.hash }, rolledBackTo: to }, 'the chain view shows the rollback');

  const firstNew = await waitFor('a block under the new term', () => blocksOf(stack.node(CHAIN, target).logFile).find((b) => BigInt(b.term) === term), 15_000);
  t.equal(firstNew.number, to.number + 1, `${target} continues from its own head: block ${to.number + 1}`);
  t.equal(firstNew.parent, to.hash, 'on top of the rolled-back head');
  await waitFor('the recorded head to advance again', async () => ((await recordedHead()).number > to.number ? true : undefined), 10_000);
  t.pass('the recorded head advances from the rolled-back head');

  const history = (await stack.api().history(CHAIN)).body.terms;
  t.match(history[0], { nodeId: target, reason: new RegExp(`rolled back from ${from.number} \\(${from.hash}\\) to ${to.number} \\(${to.hash}\\)`) }, 'the history entry says so');
  const event = await waitFor('override-set event with the rollback', () =>
    events.events.find((e) => e.data.type === 'override-set' && e.data.data.nodeId === target && e.data.data.term === term.toString()), 10_000);
  t.match(event.data.data, { rolledBackFrom: { number: from.number, hash: from.hash }, rolledBackTo: to, term: term.toString() }, 'the event carries from and to');

  // The independent checker: only the authorised fork, at heights above the new head up to the
  // dead node's last block (FORK, and its lower-term blocks there seen as TERM_DECREASE).
  const report = checkActivity(stack.logFiles().map((file) => ({ file, entries: readActivityLog(file) })));
  const inFork = (h: number | undefined) => h !== undefined && h > to.number && h <= deadTop;
  const others = report.violations.filter((x) => !(['FORK', 'TERM_DECREASE'].includes(x.kind) && x.evidence.every((e) => e.height === undefined || inFork(e.height)) && x.evidence.some((e) => inFork(e.height))));
  for (const x of report.violations) t.comment(`${x.kind}: ${x.message}`);
  t.ok(report.violations.some((x) => x.kind === 'FORK'), 'the dead node\'s discarded blocks show as forks');
  t.same(others.map((x) => `${x.kind}: ${x.message}`), [], 'nothing else');

  // The drill's scan of etcd's history: the decrease is accepted because the override names it.
  const history2 = checkEtcdHistory(await readEtcdHistory(stack.etcd.endpoints, PREFIX, 30_000), PREFIX);
  t.same(history2.violations, [], 'etcd history: no violation');

  t.equal((await finished((await post(`/v1/chains/${CHAIN}/override/clear`, { reason: 'INC-8 done' })).body.id!)).state, 'succeeded');
});
