// Planned handoff: PrepareHandoff stops the active at h and returns a ticket bound to (term, h);
// CompleteHandoff on the target checks the ticket, the new term and its own head, then makes h+1.
import { status } from '@grpc/grpc-js';
import t from 'tap';
import { leaseToken } from '../../src/devstack/sim.js';
import { HandoffTicket } from '../../src/gen/evnode/admin/v1/control.js';
import { entries, forks, headOf, hex, rejection, sleep, startSimFor, waitForHead } from '../helpers/sim.js';

const BLOCK_MS = 100;

t.test('handoff', async (t) => {
  const dir = t.testdir();
  const sim = await startSimFor(t, {
    logDir: dir,
    nodes: [
      { chain: 'chain-h', node: 'h1', blockTimeMs: BLOCK_MS },
      { chain: 'chain-h', node: 'h2', blockTimeMs: BLOCK_MS },
    ],
  });
  const h1 = sim.node('chain-h', 'h1');
  const h2 = sim.node('chain-h', 'h2');
  await h1.control.startSequencer({ leaseToken: leaseToken(3), leaseTtlMs: 60_000 });
  await waitForHead(h2, 3);

  const complete = (ticket: Uint8Array, term: number) =>
    h2.control.completeHandoff({ handoffTicket: ticket, leaseToken: leaseToken(term), leaseTtlMs: 60_000 });

  const garbage = await rejection(complete(Buffer.from('not a ticket at all'), 4));
  t.equal(garbage.code, status.FAILED_PRECONDITION, 'garbage ticket');
  t.match(garbage.details, /^bad ticket: /);
  t.match(entries(h2, 'rejected'), [{ rpc: 'CompleteHandoff', term: '4', code: 'BAD_TICKET' }]);

  // The target stops following, so it is behind when the handoff comes.
  await h2.sim.setFaults({ faults: { stopFollowing: true } });
  await waitForHead(h1, (await headOf(h2)) + 2);

  const stale = await rejection(h1.control.prepareHandoff({ leaseToken: leaseToken(2), targetId: 'h2' }));
  t.match(stale.details, 'stale term 2 < highest 3');
  const wrongTerm = await rejection(h1.control.prepareHandoff({ leaseToken: leaseToken(4), targetId: 'h2' }));
  t.match(wrongTerm.details, 'not active under term 4');

  const prep = await h1.control.prepareHandoff({ leaseToken: leaseToken(3), targetId: 'h2', reason: 'upgrade' });
  const h = Number(prep.unsafe!.l2Number);
  const ticket = HandoffTicket.decode(prep.handoffTicket);
  t.match(ticket, { chainId: 'chain-h', fromNodeId: 'h1', targetId: 'h2', term: 3n, l2Number: BigInt(h) });
  t.equal(hex(ticket.l2Hash), entries(h1, 'block').at(-1)!.hash, 'bound to the last block made');
  t.match(entries(h1, 'active-until'), [{ term: '3', head: h, reason: 'handoff' }]);
  t.equal((await h1.control.health()).producing, false);
  await sleep(3 * BLOCK_MS);
  t.equal(await headOf(h1), h, 'the old active makes nothing more');
  const again = await h1.control.prepareHandoff({ leaseToken: leaseToken(3), targetId: 'h2' });
  t.equal(hex(again.handoffTicket), hex(prep.handoffTicket), 'PrepareHandoff is idempotent');

  const otherChain = Buffer.from(HandoffTicket.encode({ ...ticket, chainId: 'chain-x' }).finish());
  t.match((await rejection(complete(otherChain, 4))).details, 'bad ticket: for chain "chain-x"');
  const otherTarget = await rejection(
    h1.control.completeHandoff({ handoffTicket: prep.handoffTicket, leaseToken: leaseToken(4), leaseTtlMs: 1000 }),
  );
  t.match(otherTarget.details, 'bad ticket: for node "h2"', 'a ticket for h2 is refused by h1');
  const notGreater = await rejection(complete(prep.handoffTicket, 3));
  t.equal(notGreater.code, status.FAILED_PRECONDITION);
  t.match(notGreater.details, "must be greater than the ticket's term 3");
  const behind = await rejection(complete(prep.handoffTicket, 4));
  t.equal(behind.code, status.FAILED_PRECONDITION);
  t.match(behind.details, `head behind: have ${await headOf(h2)} need ${h}`);
  t.equal((await h2.control.health()).highestTerm, 0n, 'refusals raise no term');

  await h2.sim.setFaults({ faults: {} });
  await waitForHead(h2, h);
  const done = await complete(prep.handoffTicket, 4);
  t.ok(done.activated);
  t.equal(done.term?.term, 4n);
  t.equal(Number(done.unsafe!.l2Number), h);
  await waitForHead(h2, h + 2);
  const first = entries(h2, 'block')[0]!;
  t.match(first, { number: h + 1, parent: hex(ticket.l2Hash), term: '4' }, 'the target continues at h+1 on h');
  const retry = await complete(prep.handoffTicket, 4);
  t.ok(retry.activated, 'a retried CompleteHandoff is answered again');
  t.equal(entries(h2, 'lease-granted').length, 1, '... without a second grant');
  t.same(forks([h1, h2]), []);
  await waitForHead(h1, h + 2); // the old active follows the new one
});
