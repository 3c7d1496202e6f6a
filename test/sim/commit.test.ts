// Commit mode at the simulated node, against a scripted CommitUnsafeHead server in this test: each
// block is committed before any peer sees it, a commit Baton does not answer is retried with the
// same block, the first STALE_TERM stops production, and a start whose committed head is one past
// the node's own head adopts that block (in a lease-mode start too: a chain switched back to lease).
import { Metadata, Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import t from 'tap';
import { waitFor } from '../../src/devstack/process.js';
import { leaseToken } from '../../src/devstack/sim.js';
import { blockHash } from '../../src/sim/chain.js';
import { BatonServiceService, type CommitUnsafeHeadRequest, type CommitUnsafeHeadResponse } from '../../src/gen/baton/v1/baton.js';
import { FencingMode } from '../../src/gen/evnode/admin/v1/control.js';
import { entries, headOf, startSimFor, waitForEntry, waitForHead } from '../helpers/sim.js';

const BLOCK_MS = 100;
const COMMIT = FencingMode.FENCING_MODE_COMMIT;

type Verdict = 'ok' | 'unavailable' | 'stale';

/** A Baton stand-in: records every commit and answers as `verdict` says for the moment. */
async function scriptedBaton(t: { teardown(fn: () => unknown): void }) {
  const commits: { number: number; hash: string; term: bigint; at: number }[] = [];
  let verdict: Verdict = 'ok';
  const server = new Server();
  server.addService(BatonServiceService, {
    commitUnsafeHead(call: ServerUnaryCall<CommitUnsafeHeadRequest, CommitUnsafeHeadResponse>, cb: sendUnaryData<CommitUnsafeHeadResponse>) {
      const h = call.request.head!;
      commits.push({ number: Number(h.number), hash: Buffer.from(h.hash).toString('hex'), term: call.request.term, at: Date.now() });
      if (verdict === 'ok') return cb(null, { head: h, duplicate: false, revision: BigInt(commits.length) });
      const md = new Metadata();
      if (verdict === 'stale') {
        md.set('baton-error-code', 'STALE_TERM');
        return cb({ code: status.FAILED_PRECONDITION, details: 'term is not current', metadata: md });
      }
      return cb({ code: status.UNAVAILABLE, details: 'etcd is away', metadata: md });
    },
  } as never);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.teardown(() => server.forceShutdown());
  return {
    address: `127.0.0.1:${port}`,
    commits,
    set: (v: Verdict) => {
      verdict = v;
    },
  };
}

t.test('commit mode: committed before published, retried while Baton is away, stopped by STALE_TERM', async (t) => {
  const baton = await scriptedBaton(t);
  const sim = await startSimFor(t, {
    logDir: t.testdir(),
    nodes: [
      { chain: 'chain-c', node: 'c1', blockTimeMs: BLOCK_MS, baton: [baton.address] },
      { chain: 'chain-c', node: 'c2', blockTimeMs: BLOCK_MS, baton: [baton.address] },
    ],
  });
  const c1 = sim.node('chain-c', 'c1');
  const c2 = sim.node('chain-c', 'c2');
  await c1.control.startSequencer({ leaseToken: leaseToken(5), leaseTtlMs: 60_000, fencingMode: COMMIT });
  t.equal((await waitForEntry(c1, 'active-from')).mode, 'commit', 'the node logs that it runs in commit mode');
  await waitForHead(c2, 4);

  const published = entries(c1, 'block');
  for (const b of published) {
    const c = baton.commits.find((x) => x.number === b.number);
    t.ok(c && c.hash === b.hash && c.term === 5n, `block ${b.number} was committed (same hash, term 5) before it was published`);
  }

  // Baton away: the node keeps offering the same block and makes no other.
  baton.set('unavailable');
  const stuckAt = await headOf(c1);
  const before = baton.commits.length;
  await waitFor('four tries of the same block', () => (baton.commits.length >= before + 4 ? true : undefined), 10_000, 10);
  t.equal(await headOf(c1), stuckAt, 'no block is published while no commit succeeds');
  const retried = baton.commits.slice(before);
  t.equal(new Set(retried.map((c) => c.hash)).size, 1, `every retry offers the same block (${retried.length} tries)`);
  t.equal(retried[0]!.number, stuckAt + 1);

  baton.set('ok');
  await waitForHead(c2, stuckAt + 2);
  baton.set('stale');
  const ended = await waitForEntry(c1, 'active-until');
  t.equal(ended.reason, 'fenced', 'the first STALE_TERM ends production');
  t.match(entries(c1, 'rejected'), [{ rpc: 'CommitUnsafeHead', code: 'STALE_TERM', term: '5' }]);
  const last = baton.commits[baton.commits.length - 1]!;
  t.ok(entries(c1, 'block').every((b) => b.number < last.number), 'the refused block was never published');
  t.equal(Number((await c1.sim.inspect()).headNumber), last.number - 1, 'nor kept: the node holds the committed chain only');
});

t.test('commit mode: a start from a committed head one past the node adopts that block', async (t) => {
  const baton = await scriptedBaton(t);
  const sim = await startSimFor(t, { logDir: t.testdir(), nodes: [{ chain: 'chain-d', node: 'd1', blockTimeMs: BLOCK_MS, baton: [baton.address] }] });
  const d1 = sim.node('chain-d', 'd1');
  // The committed head 1 was made by d0 (which died before gossiping it) on top of genesis.
  const inspect = await d1.sim.inspect();
  const genesis = Buffer.from(inspect.headHash);
  const timeMs = 1_700_000_000_000;
  const hash = blockHash(genesis, 1, 3n, 'd0', timeMs);
  const unsafe = { l2Number: 1n, l2Hash: hash, l2ParentHash: genesis, l1Origin: 'l1:0', timestamp: BigInt(timeMs / 1000), term: 3n, nodeId: 'd0' };
  await d1.control.startSequencer({ leaseToken: leaseToken(7), leaseTtlMs: 60_000, fencingMode: COMMIT, fromUnsafeHead: true, unsafe, chainId: 'chain-d', nodeId: 'd1' });
  const adopted = await waitForEntry(d1, 'adopt');
  t.match(adopted, { number: 1, term: '3', from: 'd0', hash: hash.toString('hex') }, 'the committed block is adopted and logged');
  const next = await waitForEntry(d1, 'block');
  t.match(next, { number: 2, term: '7', parent: hash.toString('hex') }, 'and the node continues right on top of it');

  // A committed head that does not sit on the node's head is not adopted: the start is refused.
  const far = { ...unsafe, l2Number: 9n, l2Hash: Buffer.alloc(32, 9) };
  await t.rejects(d1.control.startSequencer({ leaseToken: leaseToken(8), leaseTtlMs: 60_000, fencingMode: COMMIT, fromUnsafeHead: true, unsafe: far, chainId: 'chain-d', nodeId: 'd1' }), /head/);
});

t.test('lease mode after commit mode: a start from a committed head one past the node adopts it too', async (t) => {
  // The chain was switched from commit to lease mode while its active had committed block 1 and
  // dropped it before gossiping it: no node holds the recorded head, so without adopting it every
  // lease-mode start is refused HEAD_BEHIND and the chain stalls for good.
  const sim = await startSimFor(t, { logDir: t.testdir(), nodes: [{ chain: 'chain-e', node: 'e1', blockTimeMs: BLOCK_MS }] });
  const e1 = sim.node('chain-e', 'e1');
  const genesis = Buffer.from((await e1.sim.inspect()).headHash);
  const timeMs = 1_700_000_000_000;
  const hash = blockHash(genesis, 1, 3n, 'e0', timeMs);
  const unsafe = { l2Number: 1n, l2Hash: hash, l2ParentHash: genesis, l1Origin: 'l1:0', timestamp: BigInt(timeMs / 1000), term: 3n, nodeId: 'e0' };
  await e1.control.startSequencer({ leaseToken: leaseToken(9), leaseTtlMs: 60_000, fencingMode: FencingMode.FENCING_MODE_LEASE, fromUnsafeHead: true, unsafe, chainId: 'chain-e', nodeId: 'e1' });
  t.match(await waitForEntry(e1, 'adopt'), { number: 1, term: '3', from: 'e0' }, 'the committed block is adopted');
  t.match(await waitForEntry(e1, 'block'), { number: 2, term: '9', parent: hash.toString('hex') }, 'and the lease-mode term continues on it');
});
