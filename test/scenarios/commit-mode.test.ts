// Commit-gated fencing with real processes: every block is committed to Baton (a fenced etcd txn)
// before it leaves the active node, so a failover does not wait out the old lease, a frozen and
// woken active cannot publish anything of its old term, and the new active continues from the
// exact committed head. The independent checker judges every node's activity log.
import t from 'tap';
import { createEtcdClient } from '../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../src/adapters/etcd/keys.js';
import { waitFor } from '../../src/devstack/process.js';
import { readActivityLog } from '../../src/devstack/sim.js';
import type { ActivityEntry } from '../../src/sim/activity.js';
import { assertCheckerClean, blocksOf, startStack } from '../helpers/stack.js';

const NODES = ['a1', 'a2', 'a3'];
const COMMIT = { fencingMode: 'commit' as const };

type Entry<E extends ActivityEntry['ev']> = Extract<ActivityEntry, { ev: E }>;

function entriesOf<E extends ActivityEntry['ev']>(file: string, ev: E): Entry<E>[] {
  return readActivityLog(file).filter((e): e is Entry<E> => e.ev === ev);
}

/** The chain's recorded head as etcd held it at `revision` (the head key's history). */
async function headAtRevision(stack: Awaited<ReturnType<typeof startStack>>, revision: bigint): Promise<{ number: number; hash: string; term: string }> {
  const client = createEtcdClient({ endpoints: stack.etcd.endpoints });
  try {
    const value = await client.get(new EtcdKeys().head('chain-a')).revision(revision.toString()).string();
    if (value === null) throw new Error(`no head at revision ${revision}`);
    return JSON.parse(value) as { number: number; hash: string; term: string };
  } finally {
    client.close();
  }
}

async function committedHead(stack: Awaited<ReturnType<typeof startStack>>): Promise<{ number: number; hash: string; term: string }> {
  const res = await stack.api().getChain<{ unsafeHead: { number: number; hash: string; term: string } | null }>('chain-a');
  if (!res.body.unsafeHead) throw new Error('no committed head yet');
  return res.body.unsafeHead;
}

t.test('commit mode: every published block is the committed head; kill -9 of the active continues from it exactly', async (t) => {
  const stack = await startStack(t, { chains: [{ id: 'chain-a', nodes: NODES, policy: COMMIT }] });
  const first = await stack.waitForProducingLeader('chain-a', 20_000);
  const old = stack.node('chain-a', first.nodeId);
  // Long enough for the supervisor's takeover bound (a lease its predecessor may have granted) to
  // pass: from then on nothing but detection stands between a failure and the new term.
  await waitFor('a run of committed blocks', () => (blocksOf(old.logFile).length >= 20 ? true : undefined), 15_000);

  // What the active published is what Baton committed: the head in etcd is never behind the log
  // by more than the block on its way.
  const head = await committedHead(stack);
  const published = blocksOf(old.logFile);
  const same = published.find((b) => b.number === head.number);
  t.ok(head.number >= published[published.length - 1]!.number, `committed head ${head.number} is at or above the last published block`);
  if (same) t.equal(same.hash, head.hash, 'the committed head is the block the node published at that height');

  const killedAt = Date.now();
  await stack.simProcess('chain-a', first.nodeId).kill();
  const next = await stack.waitForProducingLeader('chain-a', 20_000, first.nodeId);
  t.ok(next.term > first.term, `new term ${next.term} > old term ${first.term}`);
  const fresh = stack.node('chain-a', next.nodeId);
  const newBlocks = await waitFor('blocks of the new term', () => {
    const b = blocksOf(fresh.logFile).filter((x) => BigInt(x.term) === next.term);
    return b.length >= 3 ? b : undefined;
  }, 10_000);
  t.comment(`kill -> first block of the new active: ${newBlocks[0]!.t - killedAt} ms`);

  // The new active began at the head committed under the old term, and its first block extends it.
  const begun = entriesOf(fresh.logFile, 'active-from').find((e) => BigInt(e.term) === next.term)!;
  t.equal(begun.mode, 'commit', 'the new active runs in commit mode');
  const lastOldCommitted = await waitFor('the committed head of the new term', async () => {
    const h = await committedHead(stack);
    return BigInt(h.term) === next.term ? h : undefined;
  }, 10_000);
  t.ok(lastOldCommitted.number > begun.head, 'the new term commits above where it began');
  t.equal(newBlocks[0]!.number, begun.head + 1, `the first new block is ${begun.head + 1}, right above the committed head ${begun.head}`);
  // The head key as of the txn that wrote the new term (its revision IS the term): from then on no
  // commit of the old term can succeed, so this is the last head committed under it.
  const atNewTerm = await headAtRevision(stack, next.term);
  t.equal(BigInt(atNewTerm.term), first.term, `the head when term ${next.term} was written was committed under the old term ${first.term}`);
  t.equal(begun.head, atNewTerm.number, `the new active began at that head's number (${atNewTerm.number})`);
  t.equal(newBlocks[0]!.parent, atNewTerm.hash, "and on that head's hash: its first block's parent");
  const history = await stack.api().history('chain-a');
  t.equal(history.body.terms[0]?.nodeId, next.nodeId, 'history records the new leader');
  assertCheckerClean(t, stack);
});

t.test('commit mode: an active frozen (SIGSTOP) past the failover wakes up fenced and publishes nothing of its old term', async (t) => {
  const stack = await startStack(t, { chains: [{ id: 'chain-a', nodes: NODES, policy: COMMIT }] });
  const first = await stack.waitForProducingLeader('chain-a', 20_000);
  const oldProc = stack.simProcess('chain-a', first.nodeId);
  const old = stack.node('chain-a', first.nodeId);
  await waitFor('a run of committed blocks', () => (blocksOf(old.logFile).length >= 20 ? true : undefined), 15_000);

  oldProc.process.pause();
  const frozenAt = Date.now();
  const next = await stack.waitForProducingLeader('chain-a', 20_000, first.nodeId);
  const fresh = stack.node('chain-a', next.nodeId);
  await waitFor('blocks of the new term', () => (blocksOf(fresh.logFile).some((b) => BigInt(b.term) === next.term) ? true : undefined), 10_000);
  const failedOverMs = Date.now() - frozenAt;
  // The old lease is still running when the old active wakes: only the commit fences it.
  oldProc.process.resume();
  const { leaseTtlMs } = (await stack.api().getChain('chain-a')).body.spec.policy;
  t.ok(failedOverMs < leaseTtlMs, `frozen -> new active producing in ${failedOverMs} ms, within the node lease TTL ${leaseTtlMs} ms`);
  // Sharper, from the old node's own log: the new active's first block came before the end of the
  // last lease the node was granted before it froze. (Only those: a renewal that reached it while
  // frozen is refused when it wakes, being past its not_after_unix_ms.)
  const oldLeaseEnd = Math.max(...readActivityLog(old.logFile)
    .flatMap((e) => ((e.ev === 'lease-granted' || e.ev === 'lease-renewed') && BigInt(e.term) === first.term && e.t < frozenAt ? [e.expiresAt] : [])));
  const firstNew = blocksOf(fresh.logFile).find((b) => BigInt(b.term) === next.term)!;
  t.ok(firstNew.t < oldLeaseEnd, `the new active's first block came ${oldLeaseEnd - firstNew.t} ms before the old lease's end`);

  await waitFor('the woken node to stop producing under its old term', () =>
    entriesOf(old.logFile, 'active-until').some((e) => BigInt(e.term) === first.term) ? true : undefined, 10_000);
  await waitFor('more blocks of the new active', () =>
    blocksOf(fresh.logFile).filter((b) => BigInt(b.term) === next.term).length >= 5 ? true : undefined, 10_000);
  const begun = entriesOf(fresh.logFile, 'active-from').find((e) => BigInt(e.term) === next.term)!;
  const stale = blocksOf(old.logFile).filter((b) => BigInt(b.term) === first.term && b.number > begun.head);
  t.same(stale, [], `no block of term ${first.term} above head ${begun.head} (where term ${next.term} began) was published`);
  const ended = entriesOf(old.logFile, 'active-until').find((e) => BigInt(e.term) === first.term)!;
  // It woke with its lease still valid: what ended it was the new term (a refused commit, or the
  // supervisor's stop, whichever reached it first), not the lease.
  t.not(ended.reason, 'lease-expired', `the old active was ended by the new term (${ended.reason}), while its lease still ran`);
  t.comment(`rejected commits of the old term: ${entriesOf(old.logFile, 'rejected').filter((e) => e.rpc === 'CommitUnsafeHead').length}`);
  assertCheckerClean(t, stack);
});

t.test('switching a running chain lease -> commit -> lease: the same active gets a new term in each mode, the chain goes on', async (t) => {
  const stack = await startStack(t, { chains: [{ id: 'chain-a', nodes: NODES }] });
  const first = await stack.waitForProducingLeader('chain-a', 20_000);
  const active = stack.node('chain-a', first.nodeId);
  await waitFor('a few blocks', () => (blocksOf(active.logFile).length >= 3 ? true : undefined), 10_000);

  const switchTo = async (fencingMode: 'lease' | 'commit') => {
    const { spec } = (await stack.api().getChain('chain-a')).body;
    const res = await stack.api().putChain('chain-a', { nodes: spec.nodes, genesisHash: spec.genesisHash, policy: { ...spec.policy, fencingMode } });
    t.equal(res.status, 200, `PUT fencingMode ${fencingMode}`);
    return waitFor(`the active in a ${fencingMode}-mode term`, async () => {
      const view = (await stack.api().getChain('chain-a')).body;
      const node = view.nodes.find((n) => n.id === view.leader?.nodeId);
      return view.leader?.mode === fencingMode && node?.producing && node.term === view.leader.term ? view : undefined;
    }, 15_000);
  };

  const inCommit = await switchTo('commit');
  t.equal(inCommit.leader!.nodeId, first.nodeId, 'no failover: the same node stays active');
  t.ok(BigInt(inCommit.leader!.term) > first.term, 'under a new term');
  const commitTerm = inCommit.leader!.term;
  const startHead = inCommit.unsafeHead!.number;
  const committed = await waitFor('heads committed by the node itself', async () => {
    const h = (await stack.api().getChain('chain-a')).body.unsafeHead;
    return h && h.term === commitTerm && h.number >= startHead + 3 ? h : undefined;
  }, 10_000);
  t.ok(committed.number >= startHead + 3, `committed head ${committed.number} continues the chain from ${startHead}`);

  const inLease = await switchTo('lease');
  t.equal(inLease.leader!.nodeId, first.nodeId, 'back in lease mode, still the same node');
  await waitFor('blocks of the lease-mode term', () =>
    blocksOf(active.logFile).filter((b) => b.term === inLease.leader!.term).length >= 3 ? true : undefined, 10_000);
  const modes = entriesOf(active.logFile, 'active-from').map((e) => e.mode ?? 'lease');
  t.same(modes.slice(-3), ['lease', 'commit', 'lease'], 'the node ran one term per mode');
  assertCheckerClean(t, stack);
});

t.test('commit mode: a switchover through the API hands over at the committed head, with no missed height', async (t) => {
  const stack = await startStack(t, { chains: [{ id: 'chain-a', nodes: NODES, policy: COMMIT }] });
  const first = await stack.waitForProducingLeader('chain-a', 20_000);
  await waitFor('a few blocks', () => (blocksOf(stack.node('chain-a', first.nodeId).logFile).length >= 5 ? true : undefined), 10_000);
  const target = NODES.find((n) => n !== first.nodeId)!;
  const accepted = await stack.api().request<{ id: string }>('POST', '/v1/chains/chain-a/switchover', { target, reason: 'commit-mode handoff' });
  t.equal(accepted.status, 202, 'switchover accepted');
  const done = await stack.api().request<{ state: string; result: { headNumber: number } }>('GET', `/v1/operations/${accepted.body.id}?wait=15000`);
  t.equal(done.body.state, 'succeeded', 'the handoff succeeded');
  const next = await stack.waitForProducingLeader('chain-a', 10_000, first.nodeId);
  t.equal(next.nodeId, target);
  const fresh = stack.node('chain-a', target);
  const newBlocks = await waitFor('blocks of the new term', () => {
    const b = blocksOf(fresh.logFile).filter((x) => BigInt(x.term) === next.term);
    return b.length >= 2 ? b : undefined;
  }, 10_000);
  const oldBlocks = blocksOf(stack.node('chain-a', first.nodeId).logFile).filter((b) => BigInt(b.term) === first.term);
  t.equal(newBlocks[0]!.number, oldBlocks[oldBlocks.length - 1]!.number + 1, 'the target continues right after the last block of the old term');
  t.equal(newBlocks[0]!.number, done.body.result.headNumber, 'where the operation said it would');
  assertCheckerClean(t, stack);
});
