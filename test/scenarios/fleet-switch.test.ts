// The fleet-wide switch: with automatic failover off, a dead active is not replaced and the chain
// says why; switching it back on fails over at once.
import t from 'tap';
import { waitFor } from '../../src/devstack/process.js';
import { assertCheckerClean, blocksOf, startStack } from '../helpers/stack.js';

t.test('automatic failover disabled fleet-wide: no failover until it is enabled again', async (t) => {
  const stack = await startStack(t, { chains: [{ id: 'chain-a', nodes: ['a1', 'a2', 'a3'] }] });
  const first = await stack.waitForProducingLeader('chain-a', 20_000);
  await waitFor('a few blocks', () => (blocksOf(stack.node('chain-a', first.nodeId).logFile).length >= 3 ? true : undefined), 10_000);

  const off = await stack.api().request('PUT', '/v1/fleet/settings', { autoFailover: false, maxConcurrentFailovers: 2 });
  t.equal(off.status, 200);
  t.same(off.body, { autoFailover: false, maxConcurrentFailovers: 2 }, 'the switch is stored');
  t.same((await stack.api('r1').request('GET', '/v1/fleet/settings')).body, off.body, 'and readable from any replica');

  await stack.simProcess('chain-a', first.nodeId).kill();
  const held = await waitFor('the supervisor to say why it does not fail over', async () => {
    const v = (await stack.api().getChain('chain-a')).body;
    return v.decision?.includes('automatic failover disabled fleet-wide') ? v : undefined;
  }, 15_000, 100);
  t.equal(held.leader?.nodeId, first.nodeId, 'the dead node stays leader');
  t.equal(held.leader?.term, first.term.toString(), 'no new term was written');
  t.match(held.decision, new RegExp(`${first.nodeId} unhealthy`), 'the decision names the unhealthy leader');

  await stack.api().request('PUT', '/v1/fleet/settings', { autoFailover: true, maxConcurrentFailovers: 2 });
  const next = await stack.waitForProducingLeader('chain-a', 20_000, first.nodeId);
  t.ok(next.term > first.term, 'enabled again: failed over under a new term');
  await waitFor('blocks of the new term', () =>
    blocksOf(stack.node('chain-a', next.nodeId).logFile).some((b) => BigInt(b.term) === next.term) ? true : undefined, 10_000);
  assertCheckerClean(t, stack);
});
