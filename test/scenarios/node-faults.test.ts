// Node faults that a liveness probe alone would miss or must not act on: an active that stalls
// while it reports healthy (fail over, and say it stalled), and a chain whose every standby is
// lagging or misconfigured (refuse to fail over, and say why for each).
import t from 'tap';
import { FAST_POLICY } from '../../src/devstack/stack.js';
import type { ChainViewJson } from '../../src/devstack/baton.js';
import { waitFor } from '../../src/devstack/process.js';
import { readActivityLog } from '../../src/devstack/sim.js';
import { assertCheckerClean, blocksOf, startStack } from '../helpers/stack.js';
import { watchWindow } from '../helpers/scenario.js';

const CHAIN = 'chain-a';
const NODES = ['a1', 'a2', 'a3'];
const LEASE_MS = FAST_POLICY.leaseTtlMs!;
const MAX_LAG = FAST_POLICY.maxLagBlocks!;

t.test('active stalls but reports healthy: failover to a standby, and the reason says the head stopped', async (t) => {
  const stack = await startStack(t, { chains: [{ id: CHAIN, nodes: NODES }] });
  const first = await stack.waitForProducingLeader(CHAIN, 20_000);
  const old = stack.node(CHAIN, first.nodeId);
  await waitFor('a few blocks', () => (blocksOf(old.logFile).length >= 5 ? true : undefined), 10_000);

  await old.sim.setFaults({ faults: { stall: true } });
  const stalledAt = Date.now();
  const health = await old.control.health({});
  t.ok(health.healthy && health.producing, 'the stalled active still reports healthy and producing');

  const next = await stack.waitForProducingLeader(CHAIN, 20_000, first.nodeId);
  t.ok(next.term > first.term, `new term ${next.term} > old term ${first.term}`);
  const fresh = stack.node(CHAIN, next.nodeId);
  const newBlocks = await waitFor('blocks of the new term', () => {
    const b = blocksOf(fresh.logFile).filter((x) => BigInt(x.term) === next.term);
    return b.length >= 3 ? b : undefined;
  }, 10_000);

  const oldBlocks = blocksOf(old.logFile);
  const lastOld = oldBlocks[oldBlocks.length - 1]!;
  t.equal(oldBlocks.filter((b) => b.t > stalledAt).length, 0, 'the stalled node made no block after the fault');
  t.equal(newBlocks[0]!.number, lastOld.number + 1, `the new active continues right after the stalled head ${lastOld.number}`);
  const oldEnd = readActivityLog(old.logFile).find((e) => e.ev === 'active-until' && BigInt(e.term) === first.term);
  t.match(oldEnd, { reason: 'stopped' }, 'the stalled node was stopped under the new term, not waited out');

  const history = await stack.api().history(CHAIN);
  t.equal(history.body.terms.length, 2, 'two terms: the election and the failover');
  t.equal(history.body.terms[0]?.nodeId, next.nodeId, 'history records the new leader');
  t.match(
    history.body.terms[0]?.reason,
    new RegExp(`${first.nodeId} unhealthy \\(head ${lastOld.number} has not advanced for \\d+ ms \\(limit 1000\\)\\)`),
    'and that the old head had not advanced',
  );
  t.comment(`stall -> first block of the new active: ${newBlocks[0]!.t - stalledAt} ms (stall limit ${FAST_POLICY.stallFactor! * 200} ms)`);
  assertCheckerClean(t, stack);
});

t.test('every standby lagging or misconfigured: the dead active is not replaced, and GET says why', async (t) => {
  const stack = await startStack(t, { chains: [{ id: CHAIN, nodes: NODES }] });
  const first = await stack.waitForProducingLeader(CHAIN, 20_000);
  const [laggingId, wrongId] = NODES.filter((n) => n !== first.nodeId) as [string, string];
  const lagging = stack.node(CHAIN, laggingId);
  const wrong = stack.node(CHAIN, wrongId);
  await waitFor('the standby to follow a few blocks first', async () =>
    Number((await lagging.sim.inspect({})).headNumber) >= 3 ? true : undefined, 10_000);
  await lagging.sim.setFaults({ faults: { stopFollowing: true } });
  await wrong.sim.setFaults({ faults: { chainId: 'chain-wrong' } });

  // The recorded unsafe head must be clearly past the lagging standby's head plus the lag limit.
  const laggingHead = Number((await lagging.sim.inspect({})).headNumber);
  const before = await waitFor('the recorded head to pull away from the lagging standby', async () => {
    const view = (await stack.api().getChain(CHAIN)).body;
    return (view.unsafeHead?.number ?? 0) > laggingHead + MAX_LAG + 3 ? view : undefined;
  }, 15_000);
  t.comment(`recorded head ${before.unsafeHead!.number}, lagging standby ${laggingId} at ${laggingHead}, max lag ${MAX_LAG}`);

  const killedAt = Date.now();
  await stack.simProcess(CHAIN, first.nodeId).kill();

  const refused = await waitFor('the supervisor to refuse a failover', async () => {
    const view = (await stack.api().getChain(CHAIN)).body;
    return view.decision?.includes('no eligible standby') ? view : undefined;
  }, 15_000);
  t.comment(`kill -> refusal in GET: ${Date.now() - killedAt} ms`);

  // Well past the dead node's lease: a failover, had it been allowed, would have happened by now.
  const terms = new Set<string>();
  const leaders = new Set<string>();
  let last: ChainViewJson = refused;
  const probes = await watchWindow(LEASE_MS + 3000, 200, async () => {
    const view = (await stack.api().getChain(CHAIN)).body;
    terms.add(view.leader?.term ?? 'none');
    leaders.add(view.leader?.nodeId ?? 'none');
    last = view;
  });
  t.ok(probes >= 10, `${probes} GETs over the window`);
  t.same([...terms], [first.term.toString()], 'the term never changed');
  t.same([...leaders], [first.nodeId], 'the leader record still names the dead node');

  const view = last;
  const laggingView = view.nodes.find((n) => n.id === laggingId)!;
  const wrongView = view.nodes.find((n) => n.id === wrongId)!;
  t.equal(laggingView.eligible, false, `${laggingId} is not eligible`);
  t.match(laggingView.reasons, [new RegExp(`^behind: head ${laggingHead}, recorded \\d+, max lag ${MAX_LAG}$`)], `${laggingId}: behind`);
  t.equal(wrongView.eligible, false, `${wrongId} is not eligible`);
  t.match(wrongView.reasons, [`wrong chain id chain-wrong, want ${CHAIN}`], `${wrongId}: wrong chain id`);
  t.match(view.decision, new RegExp(`^${first.nodeId} unhealthy \\(\\d+ probes failed in a row: .*\\); no eligible standby: `), 'decision: active unhealthy, no eligible standby');
  t.match(view.decision, new RegExp(`not ${laggingId}: behind`), 'the decision names the lagging standby');
  t.match(view.decision, new RegExp(`not ${wrongId}: wrong chain id`), 'and the misconfigured one');
  t.comment(`decision: ${view.decision}`);

  const history = await stack.api().history(CHAIN);
  t.equal(history.body.terms.length, 1, 'history: the first election only');
  for (const node of [lagging, wrong]) {
    t.notOk(readActivityLog(node.logFile).some((e) => e.ev === 'active-from'), `${node.node} never became active`);
  }
  assertCheckerClean(t, stack);
});
