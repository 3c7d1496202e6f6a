// etcd failing under a running chain: losing the raft leader of a 3-member cluster changes nothing
// for the chain, and a single member frozen past the node lease makes every replica stop acting
// (and the active stop by itself) with no second producer, then the chain recovers.
import t from 'tap';
import { FAST_BATON_CONFIG, FAST_POLICY } from '../../src/devstack/stack.js';
import { waitFor } from '../../src/devstack/process.js';
import { readActivityLog } from '../../src/devstack/sim.js';
import { assertCheckerClean, blocksOf, startStack } from '../helpers/stack.js';
import { BatonLines, judgeRun, longestRenewalGap, watchWindow } from '../helpers/scenario.js';

const CHAIN = 'chain-a';
const NODES = ['a1', 'a2', 'a3'];
const LEASE_MS = FAST_POLICY.leaseTtlMs!;
const STALL_LIMIT_MS = FAST_POLICY.stallFactor! * 200;
const SELF_FENCE = 'etcd lease no longer proven: stopped acting';

t.test('3-member etcd, the raft leader member killed: same leader and term, production goes on', async (t) => {
  const lines = new BatonLines();
  const stack = await startStack(t, { chains: [{ id: CHAIN, nodes: NODES }], etcdMembers: 3, onBatonLine: lines.onLine });
  const first = await stack.waitForProducingLeader(CHAIN, 20_000);
  const active = stack.node(CHAIN, first.nodeId);
  await waitFor('a few blocks', () => (blocksOf(active.logFile).length >= 5 ? true : undefined), 10_000);

  const raftLeader = await stack.etcd.leaderIndex();
  const killedAt = Date.now();
  await stack.etcd.kill(raftLeader);
  const newRaftLeader = await stack.etcd.leaderIndex(15_000);
  t.not(newRaftLeader, raftLeader, `etcd member m${newRaftLeader} leads after m${raftLeader} was killed (${Date.now() - killedAt} ms)`);

  const seen = new Set<string>();
  let failed = 0;
  const probes = await watchWindow(2 * LEASE_MS, 150, async () => {
    const res = await stack.api().getChain(CHAIN);
    // A GET reads etcd: during the election it can fail, which is not what this test is about.
    if (res.status !== 200) {
      failed++;
      throw new Error(`GET ${res.status}`);
    }
    seen.add(`${res.body.leader?.nodeId}@${res.body.leader?.term}`);
  });
  const windowEnd = Date.now();
  t.ok(probes >= 10, `${probes} GETs answered 200 over the window (${failed} did not)`);
  t.same([...seen], [`${first.nodeId}@${first.term}`], 'the leader and its term never changed');
  // With the fast test timings a replica's proof (TTL 2 s - margin 0.5 s) can run out during the
  // etcd election; it then stops acting and joins again, which must not disturb the chain.
  const fenced = lines.with(SELF_FENCE).filter((l) => l.time >= killedAt);
  t.comment(`replicas that self-fenced during the election: ${fenced.map((l) => `${l.replica} +${l.time - killedAt} ms`).join(', ') || 'none'}`);

  const inWindow = readActivityLog(active.logFile).filter((e) => e.t >= killedAt && e.t <= windowEnd);
  t.same(inWindow.filter((e) => e.ev === 'lease-expired' || e.ev === 'active-until'), [], 'the active never lost its lease');
  t.ok(inWindow.some((e) => e.ev === 'lease-renewed'), 'its lease was renewed through the etcd election');
  const gap = longestRenewalGap(readActivityLog(active.logFile).filter((e) => e.t <= windowEnd), killedAt);
  if (gap !== undefined) t.comment(`longest time without a renewal: ${gap} ms of a ${LEASE_MS} ms node lease (${LEASE_MS - gap} ms to spare)`);
  const blocks = blocksOf(active.logFile);
  const run = judgeRun(blocks.slice(Math.max(0, blocks.filter((b) => b.t < killedAt).length - 1)).filter((b) => b.t <= windowEnd));
  t.same(run.missing, [], `heights ${run.first}..${run.last} are contiguous`);
  t.same(run.terms, [first.term.toString()], 'all under the first term');
  t.ok(run.maxGapMs < STALL_LIMIT_MS, `largest gap between blocks ${run.maxGapMs} ms < stall limit ${STALL_LIMIT_MS} ms`);
  t.comment(`largest gap between consecutive blocks in the window: ${run.maxGapMs} ms`);

  await stack.etcd.restart(raftLeader);
  const head = run.last ?? 0;
  await waitFor('more blocks after the member came back', () => (blocksOf(active.logFile).at(-1)!.number >= head + 5 ? true : undefined), 10_000);
  const after = await stack.waitForProducingLeader(CHAIN, 10_000);
  t.same([after.nodeId, after.term], [first.nodeId, first.term], 'still the same leader and term once the member is back');
  const history = await stack.api().history(CHAIN);
  t.equal(history.body.terms.length, 1, 'history: the first election only');
  assertCheckerClean(t, stack);
});

t.test('etcd frozen past the node lease: replicas self-fence, the active stops by itself, no double active, then recovery', async (t) => {
  const lines = new BatonLines();
  const stack = await startStack(t, { chains: [{ id: CHAIN, nodes: NODES }], onBatonLine: lines.onLine });
  const first = await stack.waitForProducingLeader(CHAIN, 20_000);
  const active = stack.node(CHAIN, first.nodeId);
  await waitFor('a few blocks', () => (blocksOf(active.logFile).length >= 5 ? true : undefined), 10_000);
  const replicas = stack.replicas.map((r) => r.replicaId);

  stack.etcd.pause(0);
  const pausedAt = Date.now();
  try {
    const fenced = await waitFor('every replica to self-fence', () => {
      const got = new Set(lines.with(SELF_FENCE).filter((l) => l.time >= pausedAt).map((l) => l.replica));
      return replicas.every((r) => got.has(r)) ? got : undefined;
    }, 10_000);
    t.same([...fenced].sort(), replicas, 'every replica logged that it stopped acting');
    const fenceMs = Math.max(...lines.with(SELF_FENCE).map((l) => l.time)) - pausedAt;
    t.comment(`etcd frozen -> last replica self-fenced: ${fenceMs} ms (replica TTL ${FAST_BATON_CONFIG.replica.leaseTtlS} s, margin ${FAST_BATON_CONFIG.replica.fenceMarginMs} ms)`);

    const expired = await waitFor('the active to stop when its lease runs out', () =>
      readActivityLog(active.logFile).find((e) => e.ev === 'lease-expired' && e.t >= pausedAt), LEASE_MS + 5000);
    t.comment(`etcd frozen -> active's lease expired: ${expired.t - pausedAt} ms (node lease ${LEASE_MS} ms)`);
    t.ok(expired.t - pausedAt <= LEASE_MS + 500, 'no renewal reached the active after etcd froze');

    // Frozen for ~5 s in all (the scenario itself, not a wait for a condition).
    await watchWindow(pausedAt + 5000 - Date.now(), 200, () => undefined);
  } finally {
    stack.etcd.resume(0);
  }
  const resumedAt = Date.now();

  const next = await stack.waitForProducingLeader(CHAIN, 30_000);
  const recoveredAt = Date.now();
  t.comment(`etcd resumed -> producing leader ${next.nodeId} (term ${next.term}): ${recoveredAt - resumedAt} ms`);
  t.ok(next.term >= first.term, `term ${next.term} did not go back`);
  const rejoined = await waitFor('every replica to join again', () => {
    const got = new Set(lines.with('joined').filter((l) => l.time >= resumedAt).map((l) => l.replica));
    return replicas.every((r) => got.has(r)) ? got : undefined;
  }, 15_000);
  t.same([...rejoined].sort(), replicas, 'every replica joined again with a fresh session');
  t.comment(`etcd resumed -> last replica joined: ${Math.max(...lines.with('joined').map((l) => l.time)) - resumedAt} ms`);

  // Nobody produced between the active's own lease expiry and etcd coming back.
  const expiredAt = readActivityLog(active.logFile).find((e) => e.ev === 'lease-expired' && e.t >= pausedAt)!.t;
  for (const node of NODES) {
    const during = blocksOf(stack.node(CHAIN, node).logFile).filter((b) => b.t > expiredAt && b.t < resumedAt);
    t.equal(during.length, 0, `${node} made no block while etcd was frozen and no lease was valid`);
  }
  assertCheckerClean(t, stack);
});
