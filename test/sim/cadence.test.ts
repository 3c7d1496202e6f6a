// Slot cadence across a change of active: the first block of a node made active (CompleteHandoff,
// or StartSequencer continuing from a head) is due one block time after its parent was made, or at
// once when that slot has passed; never one block time after the activation itself.
import t from 'tap';
import { leaseToken } from '../../src/devstack/sim.js';
import { entries, sleep, startSimFor, waitForEntry, waitForHead } from '../helpers/sim.js';

// Long enough that "one block time after activation" and "one block time after the parent" are far
// apart, whatever the timer jitter of a busy 2-core machine.
const BLOCK_MS = 600;
const LONG_LEASE = 60_000;
/** Timer and event-loop jitter allowed around a due time (a loaded CI box). */
const JITTER_MS = 120;
const HANDOFF_AT_MS = 250;

t.test('cadence', async (t) => {
  const dir = t.testdir();
  const sim = await startSimFor(t, {
    logDir: dir,
    nodes: [
      { chain: 'chain-c', node: 'c1', blockTimeMs: BLOCK_MS, followIntervalMs: 20 },
      { chain: 'chain-c', node: 'c2', blockTimeMs: BLOCK_MS, followIntervalMs: 20 },
    ],
  });
  const c1 = sim.node('chain-c', 'c1');
  const c2 = sim.node('chain-c', 'c2');
  await c1.control.startSequencer({ leaseToken: leaseToken(3), leaseTtlMs: LONG_LEASE });
  await waitForHead(c2, 2);

  await t.test('a handoff faster than a block time keeps the slot', async (t) => {
    // Hand over well into a slot (HANDOFF_AT_MS after c1 made a block) yet faster than a block
    // time: a first block one block time after the activation would come HANDOFF_AT_MS too late.
    const seen = entries(c1, 'block').length;
    const made = await waitForEntry(c1, 'block', (b) => b.number > seen, 5000);
    await sleep(HANDOFF_AT_MS - (Date.now() - made.t));
    const prep = await c1.control.prepareHandoff({ leaseToken: leaseToken(3), targetId: 'c2', reason: 'cadence' });
    const h = Number(prep.unsafe!.l2Number);
    await waitForHead(c2, h);
    const done = await c2.control.completeHandoff({ handoffTicket: prep.handoffTicket, leaseToken: leaseToken(4), leaseTtlMs: LONG_LEASE });
    t.ok(done.activated);
    const first = await waitForEntry(c2, 'block', () => true, 5000);
    const last = entries(c1, 'block').at(-1)!;
    t.equal(last.number, h, 'the ticket names the last block c1 made');
    t.match(first, { number: h + 1, parent: last.hash, term: '4' }, 'c2 continues at h+1 on h');
    const activeFrom = entries(c2, 'active-from')[0]!;
    const gap = first.t - last.t;
    t.comment(`c2 active ${activeFrom.t - last.t} ms later, first block ${gap} ms after its parent`);
    t.ok(gap >= BLOCK_MS - 5, `not before its slot: ${gap} ms >= ${BLOCK_MS} ms`);
    t.ok(gap <= BLOCK_MS + JITTER_MS, `in its slot: ${gap} ms <= ${BLOCK_MS} + ${JITTER_MS} ms`);
    const sinceActive = first.t - activeFrom.t;
    t.ok(sinceActive < BLOCK_MS - HANDOFF_AT_MS + JITTER_MS, `${sinceActive} ms after activation: the rest of the slot, not a whole block time`);
  });

  await t.test('a start after a longer outage produces at once', async (t) => {
    const stop = await c2.control.stopSequencer({ leaseToken: leaseToken(5), reason: 'outage' });
    const h = Number(stop.unsafe!.l2Number);
    await waitForHead(c1, h);
    await sleep(2 * BLOCK_MS); // the next slot has long passed
    await c1.control.startSequencer({
      leaseToken: leaseToken(5),
      leaseTtlMs: LONG_LEASE,
      fromUnsafeHead: true,
      unsafe: { l2Number: h, l2Hash: stop.unsafe!.l2Hash },
    });
    const activeFrom = await waitForEntry(c1, 'active-from', (e) => e.term === '5', 5000);
    const first = await waitForEntry(c1, 'block', (b) => b.term === '5', 5000);
    t.equal(first.number, h + 1);
    const delay = first.t - activeFrom.t;
    t.ok(delay <= JITTER_MS, `first block ${delay} ms after activation (the slot was overdue)`);
    const second = await waitForEntry(c1, 'block', (b) => b.number === h + 2, 5000);
    const spacing = second.t - first.t;
    // On the slot cadence: the second block is due one block time after the first was due, so a
    // late first block makes the spacing that much shorter.
    t.ok(Math.abs(spacing - BLOCK_MS) <= JITTER_MS, `then one block per block time: ${spacing} ms`);
  });
});
