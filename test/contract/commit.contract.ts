// The ChainStore contract of commit mode (commitHead): run by the same harnesses as
// chain-store.contract.ts, on real etcd and on MemoryEtcd. The leaders here are commit-mode terms.
import type { Test } from 'tap';
import type { UnsafeHead } from '../../src/core/chain.js';
import { isBatonError } from '../../src/core/errors.js';
import type { ChainStore, NewLeader } from '../../src/core/ports.js';
import type { Term } from '../../src/core/term.js';
import { headOf, historyOf, leaderOf, rejectsWith, specOf, storeTests, type ContractHarness } from './chain-store.contract.js';

const commitLeader = (nodeId: string): NewLeader => ({ nodeId, reason: `make ${nodeId} active`, fromHead: 0, mode: 'commit' });

export function commitContract(t: Test, makeStore: () => Promise<ContractHarness>): void {
  const withStore = storeTests(t, makeStore);

  /** A chain with a spec and this harness as its supervisor; `write` makes a commit-mode term. */
  async function supervised(h: ContractHarness, id: string) {
    await h.store.putSpec(specOf(id));
    const fence = await h.acquire(id);
    const write = async (expected: Term | undefined, nodeId: string, previous?: { nodeId: string; term: Term }, via: ChainStore = h.store) => {
      const next = commitLeader(nodeId);
      return via.writeLeader(fence, expected, next, historyOf(next, previous, fence.replicaId));
    };
    return { fence, write };
  }

  withStore('commitHead: the term holder extends the head one block at a time; stale terms are refused', async (t, h) => {
    const { write } = await supervised(h, 'chain-a');
    const term1 = await write(undefined, 'n1');
    const commit = (nodeId: string, term: Term, head: UnsafeHead) => h.store.commitHead({ chainId: 'chain-a', nodeId, term, head });

    const first = await commit('n1', term1, headOf(1, term1));
    t.match(first, { duplicate: false, head: headOf(1, term1) }, 'the first head of a chain is committed');
    const second = await commit('n1', term1, headOf(2, term1));
    t.ok(second.revision > first.revision, 'each commit is a new revision');
    t.same((await h.store.read('chain-a'))?.head, headOf(2, term1), 'the committed head is the recorded head');

    const replay = await commit('n1', term1, headOf(2, term1));
    t.match(replay, { duplicate: true, revision: second.revision }, 'an identical re-commit is idempotent and writes nothing');
    t.equal((await h.store.read('chain-a'))?.headRevision, second.revision, 'head key untouched by the replay');

    const before = await h.store.read('chain-a');
    await rejectsWith(t, commit('n1', term1, { ...headOf(3, term1), parentHash: 'ee'.repeat(32) }), 'HEAD_MISMATCH', 'wrong parent');
    await rejectsWith(t, commit('n1', term1, headOf(4, term1)), 'HEAD_MISMATCH', 'a gap');
    await rejectsWith(t, commit('n1', term1, { ...headOf(2, term1), hash: 'dd'.repeat(32) }), 'HEAD_MISMATCH', 'another hash at a committed height');
    await rejectsWith(t, commit('n2', term1, headOf(3, term1, 'n2')), 'NOT_LEADER', 'a node that does not hold the term');
    await rejectsWith(t, commit('n1', term1, headOf(3, term1, 'n2')), 'INVALID_ARGUMENT', 'a head naming another node');
    await rejectsWith(t, commit('n1', 0n, headOf(3, 0n)), 'INVALID_ARGUMENT', 'term 0');
    t.same(await h.store.read('chain-a'), before, 'refusals changed nothing');

    const term2 = await write(term1, 'n2', { nodeId: 'n1', term: term1 });
    await rejectsWith(t, commit('n1', term1, headOf(3, term1)), 'STALE_TERM', 'the deposed node cannot commit');
    await rejectsWith(t, commit('n2', term1 + 1n, headOf(3, term1 + 1n, 'n2')), 'STALE_TERM', 'a term that never was');
    t.equal((await h.store.read('chain-a'))?.head?.number, 2, 'the head stays where the old term left it');
    const third = await commit('n2', term2, headOf(3, term2, 'n2'));
    t.same(third.head, headOf(3, term2, 'n2'), 'the new term continues from the exact committed head');
  });

  withStore('commitHead: a lease-mode term commits nothing (NOT_COMMIT_MODE), in either direction of a mode switch', async (t, h) => {
    const { fence } = await supervised(h, 'chain-a');
    const writeAs = (expected: Term | undefined, next: NewLeader, via: ChainStore = h.store) =>
      via.writeLeader(fence, expected, next, historyOf(next, undefined, fence.replicaId));
    const commit = (nodeId: string, term: Term, head: UnsafeHead) => h.store.commitHead({ chainId: 'chain-a', nodeId, term, head });

    const lease1 = await writeAs(undefined, leaderOf('n1'));
    const before = await h.store.read('chain-a');
    await rejectsWith(t, commit('n1', lease1, headOf(1, lease1)), 'NOT_COMMIT_MODE', "the lease-mode term's own node");
    t.same(await h.store.read('chain-a'), before, 'nothing changed');

    const commit2 = await writeAs(lease1, { ...commitLeader('n1'), previousMode: 'lease' });
    await commit('n1', commit2, headOf(1, commit2));
    t.equal((await h.store.read('chain-a'))?.head?.number, 1, 'after a switch to commit mode the same node commits');

    // Back to lease mode through another replica: this store's cache holds the commit-mode term.
    const lease3 = await writeAs(commit2, { ...leaderOf('n2'), previousMode: 'commit' }, h.another());
    const after = await h.store.read('chain-a');
    await rejectsWith(t, commit('n1', commit2, headOf(2, commit2)), 'STALE_TERM', 'the commit-mode term is over');
    await rejectsWith(t, commit('n2', lease3, headOf(2, lease3, 'n2')), 'NOT_COMMIT_MODE', 'the new lease-mode term commits nothing');
    t.same(await h.store.read('chain-a'), after, 'nothing changed');
  });

  withStore('commitHead: a re-commit answered from a stale cache is confirmed against the store', async (t, h) => {
    const { write } = await supervised(h, 'chain-a');
    const term1 = await write(undefined, 'n1');
    const a = h.store;
    const other = h.another();
    const commitA = (head: UnsafeHead) => a.commitHead({ chainId: 'chain-a', nodeId: 'n1', term: term1, head });
    await commitA(headOf(1, term1));
    await commitA(headOf(2, term1));
    t.match(await commitA(headOf(2, term1)), { duplicate: true }, 'a retry under the current term is a duplicate');

    // Another replica writes a new term: a's cache still holds term1 with head 2.
    await write(term1, 'n2', { nodeId: 'n1', term: term1 }, other);
    const before = await a.read('chain-a');
    await rejectsWith(t, commitA(headOf(2, term1)), 'STALE_TERM', "the deposed node's retry of its last block");
    t.same(await a.read('chain-a'), before, 'nothing changed');
  });

  withStore('commitHead: a block rolled back by break-glass is not confirmed to its node', async (t, h) => {
    const { fence, write } = await supervised(h, 'chain-a');
    const term1 = await write(undefined, 'n1');
    const a = h.store;
    const commitA = (head: UnsafeHead) => a.commitHead({ chainId: 'chain-a', nodeId: 'n1', term: term1, head });
    for (let n = 1; n <= 3; n++) await commitA(headOf(n, term1));
    const rev3 = (await a.read('chain-a'))!.headRevision;
    // The operator rolls the head back to 2 and hands the chain to n2, through another replica.
    const override = { nodeId: 'n2', reason: 'INC-2', sinceMs: 1_700_000_000_000, operationId: 'op-2', rolledBackFrom: { number: 3, hash: headOf(3, term1).hash }, rolledBackTo: { number: 2, hash: headOf(2, term1).hash } };
    const next: NewLeader = { ...commitLeader('n2'), fromHead: 2, override, rollback: { head: headOf(2, term1, 'n2'), expectedRevision: rev3 } };
    await h.another().writeLeader(fence, term1, next, historyOf(next, { nodeId: 'n1', term: term1 }, fence.replicaId));
    const before = await a.read('chain-a');
    t.equal(before?.head?.number, 2, 'the head was rolled back');
    await rejectsWith(t, commitA(headOf(3, term1)), 'STALE_TERM', 'the rolled-back block 3, retried by its node');
    t.same(await a.read('chain-a'), before, 'nothing changed');
  });

  withStore('commitHead: concurrent commits for one chain from two nodes leave exactly one lineage', async (t, h) => {
    const { write } = await supervised(h, 'chain-a');
    const term1 = await write(undefined, 'n1');
    const commit = (nodeId: string, term: Term, head: UnsafeHead) => h.store.commitHead({ chainId: 'chain-a', nodeId, term, head });
    await commit('n1', term1, headOf(1, term1));
    // n1 races on with its blocks while the supervisor hands the term to n2, which commits its own
    // block 2 on top of block 1: every height ends up with one hash, of one term.
    const n1Blocks = [2, 3, 4, 5].map((n) => headOf(n, term1));
    const n1 = (async () => {
      const done: number[] = [];
      for (const b of n1Blocks) {
        try {
          await commit('n1', term1, b);
          done.push(b.number);
        } catch (err) {
          t.ok(isBatonError(err, 'STALE_TERM'), `n1 stops at STALE_TERM (block ${b.number})`);
          break;
        }
      }
      return done;
    })();
    const term2 = await write(term1, 'n2', { nodeId: 'n1', term: term1 });
    const n1Done = await n1;
    const recorded = (await h.store.read('chain-a'))!.head!;
    t.equal(recorded.number, 1 + n1Done.length, "the recorded head is n1's last accepted commit");
    const parallel = await Promise.allSettled([
      commit('n2', term2, { ...headOf(recorded.number + 1, term2, 'n2'), hash: 'aa'.repeat(32) }),
      commit('n2', term2, { ...headOf(recorded.number + 1, term2, 'n2'), hash: 'bb'.repeat(32) }),
      commit('n1', term1, headOf(recorded.number + 1, term1)),
    ]);
    t.equal(parallel.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one of three competing blocks at one height is committed');
    const final = (await h.store.read('chain-a'))!.head!;
    t.equal(final.number, recorded.number + 1);
    t.equal(final.term, term2, 'the winner holds the current term');
  });

  // Two replicas serve commits for one chain at once, each with its own cache and its own etcd
  // requests (batched or not), while the supervisor now and then hands the term to the other node.
  for (const batchCommits of [true, false]) {
    withStore(`commitHead: two replicas racing on one chain leave exactly one lineage (batching ${batchCommits ? 'on' : 'off'})`, async (t, h) => {
      const { write } = await supervised(h, 'chain-a');
      const replicas = [h.another({ batchCommits }), h.another({ batchCommits })];
      let leader = { nodeId: 'n1', term: await write(undefined, 'n1') };
      const acked: UnsafeHead[] = [];
      const refused = new Map<string, number>();
      let tip: UnsafeHead | undefined;
      let ids = 0;
      const candidate = (): UnsafeHead => ({
        number: (tip?.number ?? 0) + 1,
        hash: (++ids).toString(16).padStart(64, '0'),
        parentHash: tip?.hash ?? '00'.repeat(32),
        term: leader.term,
        nodeId: leader.nodeId,
        l1Origin: 'l1',
        timestamp: 1_700_000_000 + ids,
      });
      const ROUNDS = 40;
      for (let round = 0; round < ROUNDS; round++) {
        const offers = [candidate(), candidate()];
        const retry = acked.at(-1);
        const handOver = round % 4 === 3;
        const next = leader.nodeId === 'n1' ? 'n2' : 'n1';
        const [outcomes, retried, newTerm] = await Promise.all([
          Promise.allSettled(offers.map((head, i) => replicas[i]!.commitHead({ chainId: 'chain-a', nodeId: head.nodeId, term: head.term, head }))),
          retry && Promise.allSettled([replicas[round % 2]!.commitHead({ chainId: 'chain-a', nodeId: retry.nodeId, term: retry.term, head: retry })]),
          handOver ? write(leader.term, next, leader) : undefined,
        ]);
        for (const o of [...outcomes, ...(retried ?? [])]) {
          if (o.status === 'rejected') {
            const code = isBatonError(o.reason) ? o.reason.code : String(o.reason);
            refused.set(code, (refused.get(code) ?? 0) + 1);
          }
        }
        outcomes.forEach((o, i) => {
          if (o.status === 'fulfilled' && !o.value.duplicate) acked.push(offers[i]!);
        });
        const r = retried?.[0];
        if (r?.status === 'fulfilled' && !r.value.duplicate) t.fail(`round ${round}: a retry of a committed block was written again`);
        if (newTerm !== undefined) leader = { nodeId: next, term: newTerm };
        tip = (await h.store.read('chain-a'))?.head;
      }

      const atHeight = new Map<number, string>();
      for (const head of acked) {
        const seen = atHeight.get(head.number);
        if (seen !== undefined && seen !== head.hash) t.fail(`two acknowledged commits at height ${head.number}`);
        atHeight.set(head.number, head.hash);
      }
      // The recorded head's parent links run back through every acknowledged commit to block 1.
      const byHash = new Map(acked.map((head) => [head.hash, head]));
      const lineage: UnsafeHead[] = [];
      for (let head = tip && byHash.get(tip.hash); head; head = byHash.get(head.parentHash)) lineage.push(head);
      t.equal(lineage.at(-1)?.number, 1, 'the lineage of the recorded head reaches block 1');
      t.equal(lineage.length, acked.length, `all ${acked.length} acknowledged commits are on the final chain of heads`);
      t.ok(acked.length >= ROUNDS / 2, `most rounds committed a block (${acked.length} of ${ROUNDS})`);
      t.ok((refused.get('HEAD_MISMATCH') ?? 0) >= ROUNDS / 2, 'the losers of a height are refused HEAD_MISMATCH');
      t.ok((refused.get('STALE_TERM') ?? 0) > 0, 'commits under a term handed over meanwhile are refused STALE_TERM');
      t.same([...refused.keys()].filter((c) => c !== 'HEAD_MISMATCH' && c !== 'STALE_TERM'), [], 'no other refusal', Object.fromEntries(refused));
    });
  }
}
