// What a supervisor must wait out before it starts a new active: lease-mode grants bound the wait,
// commit-mode grants do not (their holder cannot publish once a newer term exists).
import t from 'tap';
import { LeaseBook } from '../../src/core/lease-book.js';

const DEADLINE = 250;
const TTL = 4500;

t.test('lease-mode grants bound the wait for every node but the leader; commit-mode grants do not', async (t) => {
  const book = new LeaseBook(0, DEADLINE, 0);
  t.equal(book.view(undefined, TTL).oldLeasesEndMs, DEADLINE + TTL, 'a new supervisor inherits its predecessor\'s possible grants');
  book.sent('a1', 10_000, TTL, 'lease');
  t.equal(book.view('b2', TTL).oldLeasesEndMs, 10_000 + DEADLINE + TTL, "a1's lease-mode grant is waited out");
  t.equal(book.view('a1', TTL).oldLeasesEndMs, DEADLINE + TTL, "the leader's own grant is not");
  book.sent('c3', 20_000, TTL, 'commit');
  t.equal(book.view('b2', TTL).oldLeasesEndMs, 10_000 + DEADLINE + TTL, "c3's commit-mode grant adds no wait");
});

t.test('the inherited bound is waived when the previous supervisor granted only under commit-mode terms', async (t) => {
  const book = new LeaseBook(5_000, DEADLINE, 0);
  book.waiveInherited();
  t.equal(book.view(undefined, TTL).oldLeasesEndMs, 0, 'nothing to wait out');
  book.sent('a1', 6_000, TTL, 'lease');
  t.equal(book.view('b2', TTL).oldLeasesEndMs, 6_000 + DEADLINE + TTL, 'its own lease-mode grants still count');
});

t.test('leaseGrantsLive: any lease-mode grant that may still be valid, the leader\'s own included', async (t) => {
  const book = new LeaseBook(0, DEADLINE, 0);
  t.equal(book.leaseGrantsLive(DEADLINE + TTL - 1, TTL), true, "the predecessor's possible grants, until their bound");
  t.equal(book.leaseGrantsLive(DEADLINE + TTL, TTL), false, 'then none');
  book.sent('a1', 10_000, TTL, 'lease');
  t.equal(book.leaseGrantsLive(10_000 + DEADLINE + TTL - 1, TTL), true, "a1's lease-mode grant, whoever leads now");
  t.equal(book.leaseGrantsLive(10_000 + DEADLINE + TTL, TTL), false, 'until its bound');
  book.sent('a1', 20_000, TTL, 'commit');
  t.equal(book.leaseGrantsLive(20_000, TTL), false, 'commit-mode grants do not count');
  const waived = new LeaseBook(0, DEADLINE, 0);
  waived.waiveInherited();
  t.equal(waived.leaseGrantsLive(0, TTL), false, 'a waived inheritance does not count');
});

t.test('the allowed clock skew of the nodes stretches every bound, inherited or own', async (t) => {
  const SKEW = 100;
  const book = new LeaseBook(5_000, DEADLINE, SKEW);
  t.equal(book.view(undefined, TTL).oldLeasesEndMs, 5_000 + DEADLINE + SKEW + TTL, 'a predecessor\'s grant may be judged on a node clock that is behind');
  book.sent('a1', 10_000, TTL, 'lease');
  t.equal(book.view('b2', TTL).oldLeasesEndMs, 10_000 + DEADLINE + SKEW + TTL, 'and so may our own');
  t.equal(book.leaseGrantsLive(10_000 + DEADLINE + SKEW + TTL - 1, TTL), true, 'live until the stretched bound');
  t.equal(book.leaseGrantsLive(10_000 + DEADLINE + SKEW + TTL, TTL), false);
  t.throws(() => new LeaseBook(0, DEADLINE, -1), RangeError, 'a negative skew is refused');
});
