// Failover in lease mode when the active node dies or freezes: a standby continues the same chain
// and the independent checker finds no overlap, fork or block after a lease.
import t from 'tap';
import { waitFor } from '../../src/devstack/process.js';
import { readActivityLog } from '../../src/devstack/sim.js';
import { assertCheckerClean, blocksOf, startStack } from '../helpers/stack.js';

const NODES = ['a1', 'a2', 'a3'];

t.test('kill -9 of the active: a new active continues the same chain', async (t) => {
  const stack = await startStack(t, { chains: [{ id: 'chain-a', nodes: NODES }] });
  const first = await stack.waitForProducingLeader('chain-a', 20_000);
  const old = stack.node('chain-a', first.nodeId);
  await waitFor('a few blocks', () => (blocksOf(old.logFile).length >= 5 ? true : undefined), 10_000);

  const killedAt = Date.now();
  await stack.simProcess('chain-a', first.nodeId).kill();
  const oldBlocks = blocksOf(old.logFile);
  const lastOld = oldBlocks[oldBlocks.length - 1]!;

  const next = await stack.waitForProducingLeader('chain-a', 20_000, first.nodeId);
  t.ok(next.term > first.term, `new term ${next.term} > old term ${first.term}`);
  const fresh = stack.node('chain-a', next.nodeId);
  const newBlocks = await waitFor('blocks of the new term', () => {
    const b = blocksOf(fresh.logFile).filter((x) => BigInt(x.term) === next.term);
    return b.length >= 3 ? b : undefined;
  }, 10_000);
  t.ok(newBlocks[0]!.number <= lastOld.number + 1, `the new active continues at ${newBlocks[0]!.number}, old ended at ${lastOld.number}: no height skipped`);
  t.ok(newBlocks[0]!.t > killedAt, 'the new active produced only after the kill');
  t.comment(`kill -> first block of the new active: ${newBlocks[0]!.t - killedAt} ms`);

  const history = await stack.api().history('chain-a');
  t.equal(history.body.terms[0]?.nodeId, next.nodeId, 'history records the new leader');
  t.match(history.body.terms[0]?.reason, new RegExp(`${first.nodeId} unhealthy`), 'and why the old one was replaced');
  assertCheckerClean(t, stack);
});

t.test('SIGSTOP of the active past its lease, then SIGCONT: it stopped by itself, no overlap', async (t) => {
  const stack = await startStack(t, { chains: [{ id: 'chain-a', nodes: NODES }] });
  const first = await stack.waitForProducingLeader('chain-a', 20_000);
  const oldProc = stack.simProcess('chain-a', first.nodeId);
  const old = stack.node('chain-a', first.nodeId);
  await waitFor('a few blocks', () => (blocksOf(old.logFile).length >= 3 ? true : undefined), 10_000);

  oldProc.process.pause();
  const next = await stack.waitForProducingLeader('chain-a', 20_000, first.nodeId);
  const fresh = stack.node('chain-a', next.nodeId);
  await waitFor('blocks of the new term', () => (blocksOf(fresh.logFile).some((b) => BigInt(b.term) === next.term) ? true : undefined), 10_000);
  oldProc.process.resume();

  // Give the woken node time to do whatever it would do, then look at its log.
  await waitFor('the old node to log that its lease expired', () =>
    readActivityLog(old.logFile).some((e) => e.ev === 'lease-expired') ? true : undefined, 10_000);
  await waitFor('two more blocks of the new active', () => {
    const n = blocksOf(fresh.logFile).filter((b) => BigInt(b.term) === next.term).length;
    return n >= 5 ? true : undefined;
  }, 10_000);
  const firstNew = blocksOf(fresh.logFile).find((b) => BigInt(b.term) === next.term)!;
  const lateOld = blocksOf(old.logFile).filter((b) => b.t >= firstNew.t);
  t.equal(lateOld.length, 0, 'the frozen node made no block after the new active started');
  assertCheckerClean(t, stack);
});

