// Every fault knob of a simulated node, observed over the wire.
import { status } from '@grpc/grpc-js';
import t from 'tap';
import { leaseToken } from '../../src/devstack/sim.js';
import { waitFor } from '../../src/devstack/process.js';
import { entries, headOf, rejection, sleep, startSimFor, waitForHead, within } from '../helpers/sim.js';

const BLOCK_MS = 100;

t.test('faults', async (t) => {
  const dir = t.testdir();
  const sim = await startSimFor(t, {
    logDir: dir,
    nodes: [
      { chain: 'chain-f', node: 'f1', blockTimeMs: BLOCK_MS },
      { chain: 'chain-f', node: 'f2', blockTimeMs: BLOCK_MS },
      { chain: 'chain-f', node: 'f3', blockTimeMs: BLOCK_MS },
      { chain: 'chain-g', node: 'g1', blockTimeMs: BLOCK_MS },
    ],
  });
  const [f1, f2, f3, g1] = [sim.node('chain-f', 'f1'), sim.node('chain-f', 'f2'), sim.node('chain-f', 'f3'), sim.node('chain-g', 'g1')];
  await f1.control.startSequencer({ leaseToken: leaseToken(1), leaseTtlMs: 60_000 });
  await waitForHead(f2, 2);

  await t.test('hang: ControlService never answers, SimService does', async (t) => {
    await f2.sim.setFaults({ faults: { hang: true } });
    const t0 = Date.now();
    const err = await rejection(f2.control.health({}, { deadlineMs: 300 }));
    t.equal(err.code, status.DEADLINE_EXCEEDED);
    t.ok(Date.now() - t0 >= 290);
    const inspected = await f2.sim.inspect();
    t.equal(inspected.faults?.hang, true);
    await f2.sim.setFaults({ faults: {} });
    t.equal((await f2.control.health()).healthy, true);
  });

  await t.test('slow_ms delays every ControlService call', async (t) => {
    await f2.sim.setFaults({ faults: { slowMs: 300 } });
    const t0 = Date.now();
    await f2.control.status();
    t.ok(Date.now() - t0 >= 300, `answered after ${Date.now() - t0} ms`);
    await f2.sim.setFaults({ faults: {} });
  });

  await t.test('a grant delayed past its deadline is refused, never executed', async (t) => {
    await f2.sim.setFaults({ faults: { slowMs: 300 } });
    const err = await rejection(f2.control.startSequencer({ leaseToken: leaseToken(7), leaseTtlMs: 5000 }, { deadlineMs: 100 }));
    t.equal(err.code, status.DEADLINE_EXCEEDED);
    await sleep(400); // past the moment the node would have executed it (+300 ms)
    const state = await f2.sim.inspect();
    t.equal(state.active, false, 'the late start was not executed');
    t.equal(state.highestTerm, 0n, 'and its term was not seen');
    await f2.sim.setFaults({ faults: {} });
  });

  await t.test('stall: healthy and producing, but no block', async (t) => {
    await f1.sim.setFaults({ faults: { stall: true } });
    await sleep(BLOCK_MS); // a block already on its way may still land
    const head = await headOf(f1);
    await sleep(5 * BLOCK_MS);
    t.equal(await headOf(f1), head, 'head does not advance');
    const h = await f1.control.health();
    t.match(h, { healthy: true, producing: true, term: 1n });
    const r = await f1.control.renewLease({ leaseToken: leaseToken(1), leaseTtlMs: 60_000 });
    t.ok(r.renewed, 'still renews');
    await f1.sim.setFaults({ faults: {} });
    await waitForHead(f1, head + 2);
  });

  await t.test('unhealthy: Health says so', async (t) => {
    await f1.sim.setFaults({ faults: { unhealthy: 'disk full' } });
    t.match(await f1.control.health(), { healthy: false, lastErr: 'disk full' });
    t.match(await f1.control.status(), { lastErr: 'disk full' });
    await f1.sim.setFaults({ faults: {} });
    t.match(await f1.control.health(), { healthy: true, lastErr: '' });
  });

  await t.test('stop_following and lag_blocks keep a standby behind', async (t) => {
    await f2.sim.setFaults({ faults: { stopFollowing: true } });
    await f3.sim.setFaults({ faults: { lagBlocks: 5 } });
    const frozen = await headOf(f2);
    await waitForHead(f1, frozen + 8);
    t.equal(await headOf(f2), frozen, 'stop_following: no block adopted');
    for (let i = 0; i < 5; i++) {
      const lagging = await headOf(f3);
      const lead = await headOf(f1);
      t.ok(lagging <= lead - 5, `lag_blocks: ${lagging} <= ${lead} - 5`);
      await sleep(BLOCK_MS);
    }
    await waitFor('f3 to follow at its lag', async () => ((await headOf(f3)) >= (await headOf(f1)) - 8 ? true : undefined), 5000);
    await f2.sim.setFaults({ faults: {} });
    await f3.sim.setFaults({ faults: {} });
    await waitForHead(f2, frozen + 8);
  });

  await t.test('a misconfigured node reports it and refuses a start for its chain', async (t) => {
    const genesis = Buffer.alloc(32, 9);
    await g1.sim.setFaults({ faults: { chainId: 'chain-x', genesisHash: genesis, version: 'evil/9.9' } });
    const h = await g1.control.health();
    t.match(h, { chainId: 'chain-x', version: 'evil/9.9', nodeId: 'g1' });
    t.same(h.genesisHash, genesis);
    t.equal((await g1.control.status()).buildVersion, 'evil/9.9');
    const err = await rejection(g1.control.startSequencer({ leaseToken: leaseToken(1), leaseTtlMs: 1000, chainId: 'chain-g' }));
    t.equal(err.code, status.FAILED_PRECONDITION);
    t.match(err.details, 'chain id mismatch: node reports "chain-x"');
    await g1.sim.setFaults({ faults: {} });
    t.ok((await g1.control.startSequencer({ leaseToken: leaseToken(1), leaseTtlMs: 1000, chainId: 'chain-g' })).activated);
  });

  await t.test('crash of one node of a process: that node is gone, the others run on', async (t) => {
    await f3.sim.setFaults({ faults: { crash: true } }).catch(() => undefined);
    // A call racing the shutdown may be CANCELLED; once the port is closed every call is UNAVAILABLE.
    const err = await waitFor('the crashed node to be unreachable', async () => {
      const e = await rejection(f3.control.health());
      return e.code === status.UNAVAILABLE ? e : undefined;
    }, 5000);
    t.equal(err.code, status.UNAVAILABLE);
    t.ok(sim.process.running);
    const head = await headOf(f1);
    await waitForHead(f2, head);
  });
});

t.test('crash of the only node: its process exits 1', async (t) => {
  const dir = t.testdir();
  const sim = await startSimFor(t, { logDir: dir, nodes: [{ chain: 'chain-c', node: 'c1', blockTimeMs: 50 }] });
  const c1 = sim.node('chain-c', 'c1');
  await c1.control.startSequencer({ leaseToken: leaseToken(1), leaseTtlMs: 60_000 });
  await waitForHead(c1, 3);
  const res = await c1.sim.setFaults({ faults: { crash: true } });
  t.equal(res.faults?.crash, true, 'the SetFaults call itself is answered');
  const crashedAt = Date.now();
  const err = await rejection(c1.control.health());
  t.equal(err.code, status.UNAVAILABLE);
  const exit = await within(sim.process.exited, 5000, 'still running');
  t.same(exit, { code: 1, signal: null });
  const log = entries(c1, 'block');
  t.ok(log.every((b) => b.t <= crashedAt), 'nothing written after the crash');
  t.same(entries(c1, 'active-until'), [], 'a crashed node does not record that it stopped');
});
