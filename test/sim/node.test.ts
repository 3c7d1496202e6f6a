// A simulated node over real gRPC, in real `baton sim` processes: production at block time,
// following, failover continuing the same chain, fencing, start checks, reorg onto a higher term.
import { status } from '@grpc/grpc-js';
import t from 'tap';
import { leaseToken, wirePeers } from '../../src/devstack/sim.js';
import { entries, forks, headOf, hex, rejection, startSimFor, waitForEntry, waitForHead } from '../helpers/sim.js';

const BLOCK_MS = 100;
const LONG_LEASE = 60_000;

t.test('one chain, two processes', async (t) => {
  const dir = t.testdir();
  const p1 = await startSimFor(t, { logDir: dir, nodes: [{ chain: 'chain-a', node: 'a1', blockTimeMs: BLOCK_MS }] });
  const p2 = await startSimFor(t, { logDir: dir, nodes: [{ chain: 'chain-a', node: 'a2', blockTimeMs: BLOCK_MS }] });
  const a1 = p1.node('chain-a', 'a1');
  const a2 = p2.node('chain-a', 'a2');
  await wirePeers([a1, a2]);

  await t.test('the active produces one block per block time', async (t) => {
    const res = await a1.control.startSequencer({ leaseToken: leaseToken(5), leaseTtlMs: LONG_LEASE, chainId: 'chain-a', nodeId: 'a1' });
    t.ok(res.activated);
    t.equal(res.term?.term, 5n);
    t.equal(res.term?.leaderId, 'a1');
    t.equal(res.unsafe?.l2Number, 0n, 'continues from genesis');
    t.ok(res.leaseRemainingMs > 59_000n);
    await waitForHead(a1, 16);
    const blocks = entries(a1, 'block');
    t.ok(blocks.every((b, i) => b.number === i + 1 && b.term === '5'), 'consecutive heights under term 5');
    t.ok(blocks.every((b, i) => i === 0 || b.parent === blocks[i - 1]!.hash), 'each block links to the one before');
    const gaps = blocks.slice(1).map((b, i) => b.t - blocks[i]!.t).sort((x, y) => x - y);
    const median = gaps[Math.floor(gaps.length / 2)]!;
    t.ok(median >= BLOCK_MS * 0.8 && median <= BLOCK_MS * 1.5, `median spacing ${median} ms ≈ ${BLOCK_MS}`);
    const from = blocks[1]!.t;
    const inWindow = blocks.filter((b) => b.t >= from && b.t < from + 10 * BLOCK_MS).length;
    t.ok(inWindow >= 6 && inWindow <= 11, `${inWindow} blocks in ${10 * BLOCK_MS} ms`);
    const h = await a1.control.health();
    t.match(h, { healthy: true, producing: true, term: 5n, chainId: 'chain-a', nodeId: 'a1', version: 'sim/0.1.0', highestTerm: 5n });
    t.equal(h.peerCount, 1n);
    t.same(entries(a1, 'active-from').map((e) => [e.term, e.head]), [['5', 0]]);
    t.same(entries(a1, 'lease-granted').map((e) => [e.term, e.ttlMs]), [['5', LONG_LEASE]]);
  });

  await t.test('the standby follows the same blocks', async (t) => {
    const target = await headOf(a1);
    await waitForHead(a2, target);
    const byHeight = new Map(entries(a1, 'block').map((b) => [b.number, b.hash]));
    const st = await a2.sim.inspect();
    t.equal(hex(st.headHash), byHeight.get(Number(st.headNumber)), 'standby head is the active block at that height');
    t.equal(st.active, false);
    t.same(entries(a2, 'block'), [], 'a standby logs no block');
    const h = await a2.control.health();
    t.match(h, { producing: false, term: 0n, highestTerm: 0n });
  });

  let stoppedAt = 0;
  await t.test('after a failover the new active continues the same chain', async (t) => {
    const stop = await a1.control.stopSequencer({ leaseToken: leaseToken(6), reason: 'failover' });
    t.ok(stop.stopped);
    t.equal(stop.highestTerm, 6n);
    stoppedAt = Number(stop.unsafe!.l2Number);
    const last = entries(a1, 'block').at(-1)!;
    t.equal(last.number, stoppedAt, 'the stop reports the last block made');
    t.match(entries(a1, 'active-until'), [{ term: '5', head: stoppedAt, reason: 'stopped' }]);
    await waitForHead(a2, stoppedAt);
    const start = await a2.control.startSequencer({
      leaseToken: leaseToken(6),
      leaseTtlMs: LONG_LEASE,
      fromUnsafeHead: true,
      unsafe: { l2Number: stoppedAt, l2Hash: stop.unsafe!.l2Hash },
      chainId: 'chain-a',
      nodeId: 'a2',
    });
    t.ok(start.activated);
    await waitForHead(a2, stoppedAt + 3);
    const first = entries(a2, 'block')[0]!;
    t.equal(first.number, stoppedAt + 1);
    t.equal(first.parent, last.hash, 'its first block sits on the old active last block');
    t.equal(first.term, '6');
    t.same(forks([a1, a2]), [], 'no height has two hashes');
    await waitForHead(a1, stoppedAt + 3); // the old active now follows the new one
    t.same(entries(a1, 'block').length, stoppedAt, 'and makes no block');
  });

  await t.test('a lower term is refused and recorded', async (t) => {
    const err = await rejection(a1.control.startSequencer({ leaseToken: leaseToken(5), leaseTtlMs: 1000 }));
    t.equal(err.code, status.FAILED_PRECONDITION);
    t.match(err.details, 'stale term 5 < highest 6');
    t.equal(err.metadata.get('baton-error-code')[0], 'STALE_TERM');
    await waitForEntry(a1, 'rejected', (e) => e.rpc === 'StartSequencer' && e.term === '5' && e.code === 'STALE_TERM');
    const stopErr = await rejection(a2.control.stopSequencer({ leaseToken: leaseToken(4) }));
    t.equal(stopErr.code, status.FAILED_PRECONDITION);
    t.equal((await a2.control.health()).producing, true, 'a stale stop changes nothing');
    const renewErr = await rejection(a2.control.renewLease({ leaseToken: leaseToken(5), leaseTtlMs: 1000 }));
    t.match(renewErr.details, 'stale term 5 < highest 6');
  });

  await t.test('start checks its arguments, the head and the term', async (t) => {
    const cases: [string, Parameters<typeof a1.control.startSequencer>[0], status, string][] = [
      ['short token', { leaseToken: Buffer.alloc(4), leaseTtlMs: 1000 }, status.INVALID_ARGUMENT, '8 bytes'],
      ['term 0', { leaseToken: Buffer.alloc(8), leaseTtlMs: 1000 }, status.INVALID_ARGUMENT, 'term 0'],
      ['no ttl', { leaseToken: leaseToken(7) }, status.INVALID_ARGUMENT, 'lease_ttl_ms'],
      ['other chain', { leaseToken: leaseToken(7), leaseTtlMs: 1000, chainId: 'chain-b' }, status.FAILED_PRECONDITION, 'chain id mismatch'],
      ['other node', { leaseToken: leaseToken(7), leaseTtlMs: 1000, nodeId: 'a9' }, status.FAILED_PRECONDITION, 'node id mismatch'],
      ['head behind', { leaseToken: leaseToken(7), leaseTtlMs: 1000, unsafe: { l2Number: 1_000_000 } }, status.FAILED_PRECONDITION, 'head behind: have'],
      ['head mismatch', { leaseToken: leaseToken(7), leaseTtlMs: 1000, unsafe: { l2Number: 1, l2Hash: Buffer.alloc(32, 7) } }, status.FAILED_PRECONDITION, 'head mismatch at 1'],
    ];
    for (const [name, req, code, text] of cases) {
      const err = await rejection(a1.control.startSequencer(req));
      t.equal(err.code, code, name);
      t.match(err.details, text, name);
    }
    t.equal((await a1.control.health()).highestTerm, 6n, 'refused commands do not raise the highest term');
    const again = await rejection(a2.control.startSequencer({ leaseToken: leaseToken(6), leaseTtlMs: 1000 }));
    t.equal(again.code, status.ALREADY_EXISTS, 'already active under the same term');
  });

  await t.test('a standby that diverged switches to the higher-term branch', async (t) => {
    // a1 stops following (an active ignores that fault) and falls behind; a2 is stopped under term 7 and a1 started under 7
    // without a recorded head (an unsafe start): a2's blocks above a1's head are on a dead branch.
    await a1.sim.setFaults({ faults: { stopFollowing: true } });
    const behind = await headOf(a1);
    await waitForHead(a2, behind + 3);
    const stop = await a2.control.stopSequencer({ leaseToken: leaseToken(7) });
    const dropped = Number(stop.unsafe!.l2Number);
    const ancestor = await headOf(a1);
    t.ok(ancestor < dropped, `a1 at ${ancestor} is behind a2 at ${dropped}`);
    await a1.control.startSequencer({ leaseToken: leaseToken(7), leaseTtlMs: LONG_LEASE });
    const reorg = await waitForEntry(a2, 'reorg', () => true, 10_000);
    t.match(reorg, { ancestor, droppedHead: dropped, droppedHash: hex(stop.unsafe!.l2Hash) });
    const target = await headOf(a1);
    await waitForHead(a2, target);
    const byHeight = new Map(entries(a1, 'block').map((b) => [b.number, b.hash]));
    const st = await a2.sim.inspect();
    t.equal(hex(st.headHash), byHeight.get(Number(st.headNumber)), 'a2 is on a1 branch');
  });
});

