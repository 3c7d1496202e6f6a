// How often Baton probes each node (probe-plan.ts), counted by the real nodes themselves: while the
// chain is steady the active is asked every round and a quiet standby every fourth; once the active
// is in doubt every node is asked every round, so the standbys' reports are current when one of
// them must be chosen.
import t from 'tap';
import { QUIET_STANDBY_EVERY } from '../../src/core/health.js';
import { waitFor } from '../../src/devstack/process.js';
import type { SimNodeHandle } from '../../src/devstack/sim.js';
import { assertCheckerClean, blocksOf, startStack } from '../helpers/stack.js';

const CHAIN = 'chain-a';
const NODES = ['a1', 'a2', 'a3'];
/** Rounds counted at the active before the standbys' counts are compared with it. */
const ROUNDS = 40;

async function healthCalls(n: SimNodeHandle): Promise<number> {
  return Number((await n.sim.inspect()).healthCalls);
}

/** Health calls each node answered while the active answered ROUNDS more. */
async function countRounds(active: SimNodeHandle, standbys: SimNodeHandle[]): Promise<{ active: number; standbys: number[] }> {
  const before = await Promise.all([active, ...standbys].map(healthCalls));
  const activeAfter = await waitFor(`${ROUNDS} probes of the active`, async () => {
    const n = await healthCalls(active);
    return n - before[0]! >= ROUNDS ? n : undefined;
  }, 30_000, 50);
  const after = await Promise.all(standbys.map(healthCalls));
  return { active: activeAfter - before[0]!, standbys: after.map((n, i) => n - before[i + 1]!) };
}

t.test('steady chain: quiet standbys are probed every fourth round; with the active in doubt, every round', async (t) => {
  const stack = await startStack(t, { chains: [{ id: CHAIN, nodes: NODES }] });
  const first = await stack.waitForProducingLeader(CHAIN, 20_000);
  const active = stack.node(CHAIN, first.nodeId);
  const standbys = NODES.filter((id) => id !== first.nodeId).map((id) => stack.node(CHAIN, id));
  await waitFor('a few blocks', () => (blocksOf(active.logFile).length >= 5 ? true : undefined), 10_000);

  const steady = await countRounds(active, standbys);
  t.comment(`steady: active ${steady.active}, standbys ${steady.standbys.join(', ')}`);
  for (const [i, n] of steady.standbys.entries()) {
    t.ok(n >= 1, `${standbys[i]!.node} is still probed (${n} times)`);
    // One in four, with a round either side for where the window starts and ends.
    t.ok(n <= steady.active / QUIET_STANDBY_EVERY + 2, `${standbys[i]!.node}: ${n} probes while the active had ${steady.active}`);
  }

  // Automatic failover off, and the active reports unhealthy: it stays leader, and is in doubt.
  const off = await stack.api().request('PUT', '/v1/fleet/settings', { autoFailover: false, maxConcurrentFailovers: 2 });
  t.equal(off.status, 200);
  await active.sim.setFaults({ faults: { unhealthy: 'disk full' } });
  await waitFor('the supervisor to see the active unhealthy', async () => {
    const v = (await stack.api().getChain(CHAIN)).body;
    return v.decision?.includes('automatic failover disabled fleet-wide') ? v : undefined;
  }, 15_000, 50);
  const doubt = await countRounds(active, standbys);
  t.comment(`in doubt: active ${doubt.active}, standbys ${doubt.standbys.join(', ')}`);
  for (const [i, n] of doubt.standbys.entries()) {
    t.ok(n >= doubt.active - 2, `${standbys[i]!.node} is probed every round: ${n} probes while the active had ${doubt.active}`);
  }

  // Back to normal: failover on, the active healthy again; no other node ever produced.
  await active.sim.setFaults({ faults: {} });
  await stack.api().request('PUT', '/v1/fleet/settings', { autoFailover: true, maxConcurrentFailovers: 2 });
  const leader = await stack.waitForProducingLeader(CHAIN, 20_000);
  t.equal(leader.term, first.term, 'the same term throughout: nothing was failed over');
  assertCheckerClean(t, stack);
});
