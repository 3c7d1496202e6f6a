// Operator requests executed by the chain's supervisor on a real stack: switchover as a two-phase
// handoff (to a named target and to the best candidate, rollback when the target cannot take over,
// scheduled and cancelled), an intent that survives the death of the replica that should run it,
// conflicting requests, and pause/resume against automatic failover. The requests are submitted
// straight to etcd with the operation store, as the REST and gRPC surfaces do.
import t, { type Test } from 'tap';
import { createEtcdClient } from '../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../src/adapters/etcd/keys.js';
import { EtcdOperationStore } from '../../src/adapters/etcd/operation-store.js';
import { isBatonError } from '../../src/core/errors.js';
import { isFinal, type Operation, type OperationParams } from '../../src/core/operation.js';
import type { ChainViewJson } from '../../src/devstack/baton.js';
import { waitFor } from '../../src/devstack/process.js';
import type { DevStack } from '../../src/devstack/stack.js';
import type { ActivityEntry } from '../../src/sim/activity.js';
import { assertCheckerClean, blocksOf, startStack } from '../helpers/stack.js';
import { watchWindow } from '../helpers/scenario.js';

// Block time of the chains whose handoffs are timed. The claim under test is that a handoff faster
// than a block time costs no slot; on a saturated 2-core box (load average 18 with other suites
// running) one handoff took up to 330 ms, so the slot must be longer than that for the claim to be
// testable there. bench:handoff measures 250 ms blocks on a quieter machine.
const BLOCK_MS = 400;
/** A planned handoff may cost at most this between the old active's last block and the new one's first. */
const GAP_LIMIT_MS = BLOCK_MS + 100;
const NODES = (c: string) => [1, 2, 3].map((i) => `${c}${i}`);

type Block = Extract<ActivityEntry, { ev: 'block' }>;

/** The operation store on the stack's etcd, under the replicas' default prefix. */
function operationStore(t: Test, stack: DevStack): EtcdOperationStore {
  const client = createEtcdClient({ endpoints: stack.etcd.endpoints });
  t.teardown(() => client.close());
  return new EtcdOperationStore(client, new EtcdKeys());
}

let requests = 0;
async function submit(store: EtcdOperationStore, chainId: string, params: OperationParams): Promise<Operation> {
  const { operation } = await store.submit({ chainId, params, requestId: `test-${process.pid}-${++requests}` }, undefined);
  return operation;
}

async function finished(store: EtcdOperationStore, id: string, timeoutMs = 20_000): Promise<Operation> {
  return waitFor(`operation ${id} to end`, async () => {
    const op = await store.get(id);
    return op && isFinal(op.state) ? op : undefined;
  }, timeoutMs, 50);
}

/**
 * A leader producing under its term for a few blocks already, and (unless `standbys` is false)
 * every standby eligible: a switchover can start at once.
 */
async function steady(stack: DevStack, chain: string, standbys = true): Promise<{ leader: string; term: bigint; view: ChainViewJson }> {
  return waitFor(`${chain} steady`, async () => {
    const view = (await stack.api().getChain(chain)).body;
    const leader = view.leader;
    const active = view.nodes.find((n) => n.id === leader?.nodeId);
    if (!leader || !active?.producing || active.term !== leader.term) return undefined;
    if (standbys && view.nodes.some((n) => n.id !== leader.nodeId && !n.eligible)) return undefined;
    const made = blocksOf(stack.node(chain, leader.nodeId).logFile).filter((b) => b.term === leader.term).length;
    if (made < 3) return undefined;
    return { leader: leader.nodeId, term: BigInt(leader.term), view };
  }, 20_000, 100);
}

async function headOf(stack: DevStack, chain: string, node: string): Promise<number> {
  return Number((await stack.node(chain, node).sim.inspect()).headNumber);
}

/** The supervisor's latest decision (only the supervising replica knows it). */
async function decisionOf(stack: DevStack, chain: string): Promise<string | undefined> {
  for (const r of stack.replicas.filter((x) => x.process.running)) {
    const d = (await r.api.getChain(chain)).body.decision;
    if (d) return d;
  }
  return undefined;
}

/** The first `count` blocks `node` made under `term`. */
async function blocksUnder(stack: DevStack, chain: string, node: string, term: bigint, count = 1): Promise<Block[]> {
  return waitFor(`${count} blocks of ${node} under term ${term}`, () => {
    const b = blocksOf(stack.node(chain, node).logFile).filter((x) => BigInt(x.term) === term);
    return b.length >= count ? b : undefined;
  }, 10_000);
}

/**
 * The handoff from `from` to `to` (term `term`) as the activity logs tell it: the last block `from`
 * made before the first block of `to` under the new term, and the time between them.
 */
async function handoffOf(stack: DevStack, chain: string, from: string, to: string, term: bigint) {
  const [first] = await blocksUnder(stack, chain, to, term);
  const last = blocksOf(stack.node(chain, from).logFile).filter((b) => b.t <= first!.t).at(-1)!;
  return { last, first: first!, gapMs: first!.t - last.t };
}

/** Where the time between the two blocks went, from the operation's steps (supervisor clock). */
function breakdown(op: Operation, h: { last: Block; first: Block }): string {
  const at = (name: string) => op.steps.find((s) => s.name === name)?.atMs ?? NaN;
  return (
    `prepare answered ${at('prepare') - h.last.t} ms after the last old block, ` +
    `complete answered ${at('complete') - at('prepare')} ms later, first new block ${h.first.t - at('complete')} ms after that`
  );
}

function assertContinues(t: Test, h: { last: Block; first: Block; gapMs: number }, what: string): void {
  t.equal(h.first.number, h.last.number + 1, `${what}: continues at h+1 = ${h.last.number + 1} (no missed height)`);
  t.equal(h.first.parent, h.last.hash, `${what}: on the old active's last block (no fork)`);
}

t.test('switchover: named target, best candidate, conflicting requests, scheduled and cancelled', async (t) => {
  const chain = 'chain-s';
  const stack = await startStack(t, { chains: [{ id: chain, nodes: NODES('s') }], blockTimeMs: BLOCK_MS });
  const store = operationStore(t, stack);

  await t.test('to a named target: new term, h+1 on h, one slot', async (t) => {
    const before = await steady(stack, chain);
    const target = NODES('s').find((n) => n !== before.leader)!;
    const op = await submit(store, chain, { kind: 'switchover', target, reason: 'upgrade' });
    t.equal(op.state, 'pending');
    const done = await finished(store, op.id);
    t.equal(done.state, 'succeeded', `succeeded: ${done.error?.message ?? done.result?.detail}`);
    t.equal(done.result?.nodeId, target);
    const term = BigInt(done.result!.term!);
    t.ok(term > before.term, `new term ${term} > ${before.term}`);
    t.same(done.steps.map((s) => s.name), ['choose', 'prepare', 'catch-up', 'fence', 'complete']);
    t.match(done.steps[0]!.detail, `${target} as requested`);

    const h = await handoffOf(stack, chain, before.leader, target, term);
    assertContinues(t, h, `${before.leader} -> ${target}`);
    t.equal(h.first.number, done.result?.headNumber, 'where the operation said it would');
    // Measured on a 2-core box with other suites running: 398-402 ms, i.e. the slot itself. The
    // handoff starts right after a block (the supervisor waits for one) and took 20-100 ms from
    // PrepareHandoff to CompleteHandoff (330 ms at worst at load 18), so it fits in the slot; the
    // new node makes h+1 one block time after h. With 200 ms blocks at load 18 it did not always
    // fit: 325 ms was seen.
    t.ok(h.gapMs <= GAP_LIMIT_MS, `gap from the last old block to the first new one: ${h.gapMs} ms <= ${GAP_LIMIT_MS} ms`);
    t.comment(`handoff ${before.leader} -> ${target}: gap ${h.gapMs} ms at height ${h.first.number} (${breakdown(done, h)})`);
    const history = (await stack.api().history(chain)).body.terms;
    t.match(history[0], { nodeId: target, previousNodeId: before.leader, term: term.toString(), reason: /^switchover \(upgrade\)/ });
  });

  await t.test('to the best candidate: the choice is explained', async (t) => {
    const before = await steady(stack, chain);
    const op = await submit(store, chain, { kind: 'switchover', reason: 'rebalance' });
    const done = await finished(store, op.id);
    t.equal(done.state, 'succeeded', `succeeded: ${done.error?.message ?? done.result?.detail}`);
    const to = done.result!.nodeId!;
    t.not(to, before.leader, 'hands over to another node');
    const others = NODES('s').filter((n) => n !== before.leader && n !== to);
    t.match(done.steps[0]!.detail, new RegExp(`^${to}: chose ${to} \\(head \\d+, priority \\d+\\); not ${others[0]}: `), 'the choice says why it won and why the other lost');
    const term = BigInt(done.result!.term!);
    const h = await handoffOf(stack, chain, before.leader, to, term);
    assertContinues(t, h, `${before.leader} -> ${to}`);
    t.ok(h.gapMs <= GAP_LIMIT_MS, `gap ${h.gapMs} ms <= ${GAP_LIMIT_MS} ms`);
    t.comment(`handoff ${before.leader} -> ${to}: gap ${h.gapMs} ms (${breakdown(done, h)}); choice: ${done.steps[0]!.detail}`);
  });

  await t.test('two conflicting requests at once: one accepted, the other CONFLICT', async (t) => {
    const before = await steady(stack, chain);
    const results = await Promise.allSettled([
      submit(store, chain, { kind: 'switchover', reason: 'one' }),
      submit(store, chain, { kind: 'failover', reason: 'other' }),
    ]);
    const accepted = results.filter((r): r is PromiseFulfilledResult<Operation> => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.equal(accepted.length, 1, 'one accepted');
    t.equal(refused.length, 1, 'one refused');
    t.ok(isBatonError(refused[0]?.reason, 'CONFLICT'), `refused with CONFLICT: ${String(refused[0]?.reason)}`);
    t.match(String(refused[0]?.reason), accepted[0]!.value.id, 'naming the operation that holds the chain');
    const done = await finished(store, accepted[0]!.value.id);
    t.equal(done.state, 'succeeded', `the accepted one ran: ${done.error?.message ?? done.result?.detail}`);
    const history = (await stack.api().history(chain)).body.terms;
    t.equal(history.filter((x) => BigInt(x.term) > before.term).length, 1, 'exactly one new term');
  });

  await t.test('scheduled switchover fires at its time; a second one is cancelled', async (t) => {
    const before = await steady(stack, chain);
    const at = Date.now() + 3000;
    const op = await submit(store, chain, { kind: 'switchover', scheduledAtMs: at, reason: 'maintenance window' });
    t.equal(op.state, 'scheduled');
    const done = await finished(store, op.id, 15_000);
    t.equal(done.state, 'succeeded', `succeeded: ${done.error?.message ?? done.result?.detail}`);
    const chose = done.steps.find((s) => s.name === 'choose')!;
    const late = chose.atMs - at;
    t.ok(late >= 0 && late <= 400, `started ${late} ms after its time`);
    const term = BigInt(done.result!.term!);
    const h = await handoffOf(stack, chain, before.leader, done.result!.nodeId!, term);
    assertContinues(t, h, 'scheduled');
    t.ok(h.first.t >= at, 'no new block before the scheduled time');
    t.ok(h.last.t > at - BLOCK_MS - 100, 'the old active produced until about then');
    t.comment(`scheduled switchover: chosen ${late} ms after its time, gap ${h.gapMs} ms (${breakdown(done, h)})`);

    const mid = await steady(stack, chain);
    const secondAt = Date.now() + 3000;
    const second = await submit(store, chain, { kind: 'switchover', scheduledAtMs: secondAt, reason: 'second window' });
    t.equal(second.state, 'scheduled');
    const cancel = await submit(store, chain, { kind: 'cancel-switchover', reason: 'window moved' });
    const cancelled = await finished(store, cancel.id);
    t.equal(cancelled.state, 'succeeded');
    t.equal(cancelled.result?.detail, `cancelled ${second.id}`);
    const secondDone = await store.get(second.id);
    t.equal(secondDone?.state, 'cancelled', 'the scheduled switchover is cancelled');
    t.match(secondDone?.steps, [{ name: 'cancel', detail: 'window moved' }]);
    await watchWindow(secondAt + 1000 - Date.now(), 500, () => undefined);
    const view = (await stack.api().getChain(chain)).body;
    t.equal(view.leader?.term, mid.term.toString(), 'past its time: no term change');
    t.equal((await store.get(second.id))?.state, 'cancelled', 'and it stays cancelled');
  });

  assertCheckerClean(t, stack);
});

t.test('rollback: the target never reaches h, the old active continues under a newer term', async (t) => {
  const chain = 'chain-r';
  // A lag limit high enough that the target stays eligible while it falls behind on purpose.
  const stack = await startStack(t, { chains: [{ id: chain, nodes: NODES('r'), policy: { maxLagBlocks: 1000 } }] });
  const store = operationStore(t, stack);
  const before = await steady(stack, chain);
  const target = NODES('r').find((n) => n !== before.leader)!;
  await stack.node(chain, target).sim.setFaults({ faults: { stopFollowing: true } });
  const stuckAt = await headOf(stack, chain, target);
  await waitFor('the leader to get ahead of the target', async () => ((await headOf(stack, chain, before.leader)) >= stuckAt + 2 ? true : undefined), 10_000);
  const op = await submit(store, chain, { kind: 'switchover', target, reason: 'target refuses' });
  const done = await finished(store, op.id);
  t.equal(done.state, 'failed');
  t.equal(done.error?.code, 'ABORTED');
  t.match(done.error?.message, `${target} did not reach head`);
  t.equal(done.result?.nodeId, before.leader, 'rolled back to the old active');
  const term = BigInt(done.result!.term!);
  t.ok(term > before.term, `under a newer term ${term} > ${before.term}`);
  t.same(done.steps.map((s) => s.name), ['choose', 'prepare', 'rollback']);

  const [first] = await blocksUnder(stack, chain, before.leader, term);
  const old = blocksOf(stack.node(chain, before.leader).logFile).filter((b) => BigInt(b.term) === before.term);
  const last = old.at(-1)!;
  t.equal(first!.number, last.number + 1, `the old active continues at ${last.number + 1}`);
  t.equal(first!.parent, last.hash, 'on its own last block');
  t.same(blocksOf(stack.node(chain, target).logFile), [], 'the target made no block');
  t.comment(`rollback: chain stalled ${first!.t - last.t} ms (catch-up timeout, then the restart)`);
  const view = await stack.waitForProducingLeader(chain, 10_000);
  t.equal(view.nodeId, before.leader);
  t.equal(view.term, term);
  await stack.node(chain, target).sim.setFaults({ faults: {} });
  assertCheckerClean(t, stack);
});

t.test('the supervising replica dies right after the intent is durable: the other replica runs it', async (t) => {
  const chain = 'chain-k';
  const stack = await startStack(t, { chains: [{ id: chain, nodes: NODES('k') }], replicas: 2, blockTimeMs: BLOCK_MS });
  const store = operationStore(t, stack);
  const before = await steady(stack, chain);
  const supervisor = await waitFor('a supervisor', async () => (await stack.api().getChain(chain)).body.supervisor ?? undefined, 10_000);
  const survivor = stack.replicas.map((r) => r.replicaId).find((id) => id !== supervisor)!;
  const victim = stack.replica(supervisor).process;
  // Frozen first, so that it cannot act on the intent between the submit and the kill.
  victim.pause();
  const op = await submit(store, chain, { kind: 'switchover', reason: 'replica dies' });
  victim.signal('SIGKILL');
  await victim.exited;
  const killedAt = Date.now();

  const done = await finished(store, op.id, 30_000);
  t.equal(done.state, 'succeeded', `succeeded: ${done.error?.message ?? done.result?.detail}`);
  t.equal(done.executor, survivor, `executed by ${survivor}`);
  const term = BigInt(done.result!.term!);
  const h = await handoffOf(stack, chain, before.leader, done.result!.nodeId!, term);
  assertContinues(t, h, 'after the takeover');
  t.ok(h.gapMs <= GAP_LIMIT_MS, `gap ${h.gapMs} ms <= ${GAP_LIMIT_MS} ms`);
  const chose = done.steps.find((s) => s.name === 'choose')!;
  t.comment(`kill -9 of ${supervisor} -> ${survivor} chose ${done.result?.nodeId} ${chose.atMs - killedAt} ms later; gap ${h.gapMs} ms (${breakdown(done, h)})`);
  assertCheckerClean(t, stack);
});

t.test('pause blocks automatic failover, resume lets it happen; a pause with an end expires by itself', async (t) => {
  const chain = 'chain-p';
  const stack = await startStack(t, { chains: [{ id: chain, nodes: NODES('p') }] });
  const store = operationStore(t, stack);

  await t.test('pause until resumed', async (t) => {
    const before = await steady(stack, chain);
    const pause = await finished(store, (await submit(store, chain, { kind: 'pause', reason: 'investigating' })).id);
    t.equal(pause.state, 'succeeded');
    await stack.simProcess(chain, before.leader).kill();
    const decision = await waitFor('the supervisor to say it is paused', async () => {
      const d = await decisionOf(stack, chain);
      return d?.startsWith('paused;') && d.includes(`${before.leader} unhealthy`) ? d : undefined;
    }, 15_000, 100);
    t.comment(`decision while paused: ${decision}`);
    // Well past detection (3 probes of 150 ms) and the node lease (3.3 s): a failover would have happened.
    await watchWindow(4000, 500, () => undefined);
    const held = (await stack.api().getChain(chain)).body;
    t.equal(held.leader?.nodeId, before.leader, 'the dead node stays leader');
    t.equal(held.leader?.term, before.term.toString(), 'no new term');
    t.match(await decisionOf(stack, chain), /^paused; /, 'still paused');

    const resumedAt = Date.now();
    const resume = await finished(store, (await submit(store, chain, { kind: 'resume', reason: 'done' })).id);
    t.equal(resume.result?.detail, 'resumed');
    const next = await stack.waitForProducingLeader(chain, 20_000, before.leader);
    t.ok(next.term > before.term, `failed over after the resume under term ${next.term}`);
    const [first] = await blocksUnder(stack, chain, next.nodeId, next.term);
    t.ok(first!.t > resumedAt, 'the new active produced only after the resume');
  });

  await t.test('pause with an end', async (t) => {
    const before = await steady(stack, chain, false); // one node is dead (the previous subtest)
    const untilMs = Date.now() + 5000;
    const pause = await finished(store, (await submit(store, chain, { kind: 'pause', untilMs, reason: 'short freeze' })).id);
    t.equal(pause.state, 'succeeded');
    t.match(pause.result?.detail, `paused until ${new Date(untilMs).toISOString()}`);
    await stack.simProcess(chain, before.leader).kill();
    await waitFor('the supervisor to say it is paused', async () => ((await decisionOf(stack, chain))?.startsWith('paused;') ? true : undefined), 15_000, 100);
    const next = await stack.waitForProducingLeader(chain, 20_000, before.leader);
    t.ok(next.term > before.term, `failed over once the pause ended, under term ${next.term}`);
    const history = (await stack.api().history(chain)).body.terms;
    const change = history.find((x) => BigInt(x.term) === next.term)!;
    t.ok(change.atMs >= untilMs, `the new term was written ${change.atMs - untilMs} ms after the pause ended, not before`);
    t.ok(change.atMs - untilMs < 2000, 'and soon after it');
  });

  assertCheckerClean(t, stack);
});
