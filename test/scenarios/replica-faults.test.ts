// Baton replicas failing and racing: the replica that supervises a chain is killed (the other one
// takes over and renews the active's lease under the same term, no height missed), and two
// replicas race for the same chains (exactly one supervisor per chain at any time, one election).
import t from 'tap';
import { FAST_BATON_CONFIG, FAST_POLICY } from '../../src/devstack/stack.js';
import { waitFor } from '../../src/devstack/process.js';
import { readActivityLog } from '../../src/devstack/sim.js';
import { assertCheckerClean, blocksOf, startStack } from '../helpers/stack.js';
import { BatonLines, judgeRun, longestRenewalGap, watchWindow, type BatonLine } from '../helpers/scenario.js';

const LEASE_MS = FAST_POLICY.leaseTtlMs!;
const STALL_LIMIT_MS = FAST_POLICY.stallFactor! * 200;

t.test('kill -9 of the supervising replica: the other takes over, the active keeps its term, no height missed', async (t) => {
  const lines = new BatonLines();
  const chain = 'chain-a';
  const stack = await startStack(t, { chains: [{ id: chain, nodes: ['a1', 'a2', 'a3'] }], replicas: 2, onBatonLine: lines.onLine });
  const first = await stack.waitForProducingLeader(chain, 20_000);
  const active = stack.node(chain, first.nodeId);
  await waitFor('a few blocks', () => (blocksOf(active.logFile).length >= 5 ? true : undefined), 10_000);
  const supervisor = await waitFor('a supervisor in GET', async () => (await stack.api().getChain(chain)).body.supervisor ?? undefined, 10_000);
  const survivor = stack.replicas.map((r) => r.replicaId).find((id) => id !== supervisor)!;

  const killedAt = Date.now();
  await stack.replica(supervisor).kill();
  await waitFor(`${survivor} to supervise ${chain}`, async () => {
    const view = (await stack.api(supervisor).getChain(chain)).body;
    return view.supervisor === survivor ? true : undefined;
  }, 15_000);
  const tookOver = lines.with('supervising chain', { chain }).find((l) => l.replica === survivor && l.time >= killedAt);
  t.ok(tookOver, `${survivor} logged that it supervises ${chain}`);
  const takeoverMs = (tookOver?.time ?? Date.now()) - killedAt;
  t.comment(`kill -9 of ${supervisor} -> ${survivor} supervising: ${takeoverMs} ms`);

  // Two node leases from the kill: long enough for the active's lease to lapse had nobody renewed it.
  const terms = new Set<string>();
  const probes = await watchWindow(killedAt + 2 * LEASE_MS - Date.now(), 150, async () => {
    const view = (await stack.api(supervisor).getChain(chain)).body;
    terms.add(`${view.leader?.nodeId}@${view.leader?.term}`);
  });
  const windowEnd = Date.now();
  t.ok(probes >= 10, `${probes} GETs over the window`);
  t.same([...terms], [`${first.nodeId}@${first.term}`], 'the leader and its term never changed');

  const log = readActivityLog(active.logFile);
  const inWindow = log.filter((e) => e.t >= killedAt && e.t <= windowEnd);
  t.same(inWindow.filter((e) => e.ev === 'lease-expired' || e.ev === 'active-until'), [], 'the active never lost its lease');
  const renewals = inWindow.filter((e) => e.ev === 'lease-renewed' && BigInt(e.term) === first.term && e.t > (tookOver?.time ?? killedAt));
  t.ok(renewals.length > 0, `${survivor} renewed the lease under the same term (${renewals.length} renewals)`);
  const gap = longestRenewalGap(log.filter((e) => e.t <= windowEnd), killedAt);
  if (gap !== undefined) t.comment(`longest time without a renewal: ${gap} ms of a ${LEASE_MS} ms node lease (${LEASE_MS - gap} ms to spare)`);

  // From the last block before the kill to the end of the window.
  const blocks = blocksOf(active.logFile);
  const before = blocks.filter((b) => b.t < killedAt).length;
  const run = judgeRun(blocks.slice(Math.max(0, before - 1)).filter((b) => b.t <= windowEnd));
  t.same(run.missing, [], `heights ${run.first}..${run.last} are contiguous`);
  t.same(run.terms, [first.term.toString()], 'all under the first term');
  t.ok(run.count >= (2 * LEASE_MS) / 200 / 2, `${run.count} blocks in the window`);
  t.ok(run.maxGapMs < STALL_LIMIT_MS, `largest gap between blocks ${run.maxGapMs} ms < stall limit ${STALL_LIMIT_MS} ms`);
  t.comment(`largest gap between consecutive blocks in the window: ${run.maxGapMs} ms (after height ${run.maxGapAfter})`);
  assertCheckerClean(t, stack);
});

t.test('two replicas racing for the same chains: one supervisor per chain at a time, one election each', async (t) => {
  const lines = new BatonLines();
  const chains = ['chain-a', 'chain-b', 'chain-c', 'chain-d'];
  // No grace: both replicas campaign for every chain the moment it appears, not only its preferred
  // owner, so every chain is a race decided in etcd (and a race won by the non-owner is handed over).
  const stack = await startStack(t, {
    chains: chains.map((id) => ({ id, nodes: [`${id.slice(-1)}1`, `${id.slice(-1)}2`] })),
    replicas: 2,
    batonConfig: { ...FAST_BATON_CONFIG, replica: { ...FAST_BATON_CONFIG.replica, takeoverGraceMs: 0 } },
    onBatonLine: lines.onLine,
  });
  for (const chain of chains) await stack.waitForProducingLeader(chain, 30_000);
  // Past a resync of every replica, so late reconciles have had their chance to misbehave.
  await watchWindow(FAST_BATON_CONFIG.replica.resyncMs + 500, 500, () => undefined);

  const summary: string[] = [];
  for (const chain of chains) {
    const events = [...lines.with('supervising chain', { chain }), ...lines.with('stopped supervising chain', { chain })]
      // pino's time has ms resolution: at a tie a stop sorts first (it can be the cause of a take).
      .sort((a, b) => a.time - b.time || stopFirst(a) - stopFirst(b) || a.seq - b.seq);
    let holder: string | undefined;
    const overlaps: string[] = [];
    for (const e of events) {
      if (e.msg === 'supervising chain') {
        if (holder !== undefined) overlaps.push(`${e.replica} took ${chain} at ${e.time} while ${holder} still supervised it`);
        holder = e.replica;
      } else if (e.replica === holder) {
        holder = undefined;
      }
    }
    t.same(overlaps, [], `${chain}: never two supervisors at once (${events.length} supervise/stop lines)`);
    const view = (await stack.api().getChain(chain)).body;
    t.ok(view.supervisor, `${chain}: GET shows supervisor ${view.supervisor}`);
    t.equal(view.supervisor, holder, `${chain}: the supervisor in etcd is the last replica that took it`);
    const history = await stack.api().history(chain);
    t.equal(history.body.terms.length, 1, `${chain}: exactly one term in its history (one election)`);
    summary.push(`${chain}: ${events.map((e) => `${e.msg === 'supervising chain' ? '+' : '-'}${e.replica}`).join(' ')}`);
  }
  t.comment(`supervise (+) / stop (-) per chain: ${summary.join('; ')}`);
  const handovers = lines.all.filter((l) => l.msg === 'stopped supervising chain' && String(l.fields.why).startsWith('handing over'));
  t.comment(`handovers to the preferred owner after a lost race: ${handovers.length}`);
  assertCheckerClean(t, stack);
});

function stopFirst(l: BatonLine): number {
  return l.msg === 'stopped supervising chain' ? 0 : 1;
}
