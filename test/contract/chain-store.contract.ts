// The ChainStore contract: one suite that the etcd adapter and every fake must pass, so a fake can
// be trusted in core tests. Each subtest gets a fresh store from `makeStore`.
import type { Test } from 'tap';
import { DEFAULT_POLICY, type ChainSpec, type TermRecord, type UnsafeHead } from '../../src/core/chain.js';
import { isBatonError, type ErrorCode } from '../../src/core/errors.js';
import type { ChainStore, NewLeader, RecordedHead, SupervisionFence } from '../../src/core/ports.js';
import type { Term } from '../../src/core/term.js';

export interface ContractHarness {
  store: ChainStore;
  /** Makes the harness's replica the chain's supervisor and returns its fence. */
  acquire(chainId: string): Promise<SupervisionFence>;
  /** Someone else deletes the chain's supervisor key and takes it (a new election). */
  steal(chainId: string): Promise<void>;
  /**
   * Another store over the same etcd (on etcd, with its own client): a second replica, whose
   * commit cache and batcher are its own. `batchCommits: false` sends each commit alone.
   */
  another(options?: { batchCommits?: boolean }): ChainStore;
  close(): Promise<void>;
}

export function specOf(id: string, nodes = ['n1', 'n2']): ChainSpec {
  return {
    id,
    genesisHash: 'ab'.repeat(32),
    nodes: nodes.map((n, i) => ({ id: n, endpoint: `127.0.0.1:${9000 + i}`, priority: i, zone: `z${i}` })),
    policy: DEFAULT_POLICY,
  };
}

const NO_HEAD: RecordedHead = { revision: 0n, head: undefined };

export const leaderOf = (nodeId: string, reason = `make ${nodeId} active`, fromHead = 0): NewLeader => ({ nodeId, reason, fromHead, mode: 'lease' });

export function historyOf(next: NewLeader, previous: { nodeId: string; term: Term } | undefined, supervisor: string): Omit<TermRecord, 'term'> {
  return {
    nodeId: next.nodeId,
    previousNodeId: previous?.nodeId,
    previousTerm: previous?.term,
    fromHead: next.fromHead,
    reason: next.reason,
    atMs: 1_700_000_000_000,
    supervisor,
    durationMs: undefined,
  };
}

export const hashOf = (n: number) => n.toString(16).padStart(64, '0');

export function headOf(number: number, term: Term, nodeId = 'n1'): UnsafeHead {
  return { number, hash: hashOf(number), parentHash: number === 0 ? '' : hashOf(number - 1), term, nodeId, l1Origin: `l1-${number}`, timestamp: 1_700_000_000 + number };
}

export async function rejectsWith(t: Test, p: Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected ${code}, but it succeeded`);
  } catch (err) {
    t.ok(isBatonError(err, code), `${what}: ${code}`, { got: isBatonError(err) ? err.code : String(err) });
  }
}

/** `t.test(name)` on a fresh store from `makeStore`, closed when the test ends. */
export function storeTests(t: Test, makeStore: () => Promise<ContractHarness>) {
  return (name: string, fn: (t: Test, h: ContractHarness) => Promise<void>) =>
    t.test(name, async (t) => {
      const h = await makeStore();
      t.teardown(() => h.close());
      await fn(t, h);
    });
}

export function chainStoreContract(t: Test, makeStore: () => Promise<ContractHarness>): void {
  const withStore = storeTests(t, makeStore);

  /** A chain with a spec and this harness as its supervisor. */
  async function supervised(h: ContractHarness, id: string) {
    await h.store.putSpec(specOf(id));
    const fence = await h.acquire(id);
    const write = async (expected: Term | undefined, nodeId: string, previous?: { nodeId: string; term: Term }) => {
      const next = leaderOf(nodeId);
      return h.store.writeLeader(fence, expected, next, historyOf(next, previous, fence.replicaId));
    };
    return { fence, write };
  }

  withStore('spec CRUD and validation', async (t, { store }) => {
    t.equal(await store.getSpec('chain-a'), undefined, 'absent spec');
    t.equal(await store.read('chain-a'), undefined, 'absent chain reads as undefined');
    await store.putSpec(specOf('chain-a'));
    await store.putSpec(specOf('chain-b'));
    t.same(await store.getSpec('chain-a'), specOf('chain-a'));
    t.same((await store.listSpecs()).map((s) => s.id).sort(), ['chain-a', 'chain-b']);
    await store.putSpec(specOf('chain-a', ['n1', 'n2', 'n3']));
    t.equal((await store.getSpec('chain-a'))?.nodes.length, 3, 'putSpec replaces');

    const state = await store.read('chain-a');
    t.same(state && { leader: state.leader, head: state.head, headRevision: state.headRevision, supervisor: state.supervisor },
      { leader: undefined, head: undefined, headRevision: 0n, supervisor: undefined }, 'a new chain has no leader, head or supervisor');

    for (const id of ['Chain-A', '-a', 'a/b', 'a'.repeat(64), '']) {
      await rejectsWith(t, store.putSpec(specOf(id)), 'INVALID_ARGUMENT', `chain id ${JSON.stringify(id)}`);
    }
    await rejectsWith(t, store.getSpec('../x'), 'INVALID_ARGUMENT', 'getSpec validates the id');
    await rejectsWith(t, store.putSpec({ ...specOf('chain-c'), nodes: [] }), 'INVALID_ARGUMENT', 'no nodes');
    await rejectsWith(t, store.putSpec(specOf('chain-c', ['n1', 'n1'])), 'INVALID_ARGUMENT', 'duplicate node ids');
    await rejectsWith(t, store.putSpec({ ...specOf('chain-c'), policy: { ...DEFAULT_POLICY, blockTimeMs: -1 } }), 'INVALID_ARGUMENT', 'negative block time');
    t.equal(await store.getSpec('chain-c'), undefined, 'nothing stored for refused specs');

    t.equal(await store.deleteChain('chain-b'), true);
    t.equal(await store.deleteChain('chain-b'), false, 'second delete reports absence');
    t.same((await store.listSpecs()).map((s) => s.id), ['chain-a']);
  });

  withStore('first leader gets a term > 0 that read reports; later terms are strictly greater', async (t, h) => {
    const { fence, write } = await supervised(h, 'chain-a');
    t.equal((await h.store.read('chain-a'))?.supervisor, fence.replicaId, 'read reports the supervisor');
    const term1 = await write(undefined, 'n1');
    t.ok(term1 > 0n, 'first term is positive');
    const s1 = await h.store.read('chain-a');
    t.equal(s1?.leader?.term, term1, 'leader.term is the returned term');
    t.match(s1?.leader, { nodeId: 'n1', mode: 'lease', fromHead: 0, reason: 'make n1 active' });

    const term2 = await write(term1, 'n2', { nodeId: 'n1', term: term1 });
    t.ok(term2 > term1, 'next term is strictly greater');
    t.equal((await h.store.read('chain-a'))?.leader?.term, term2);

    // Terms are fleet-wide: another chain's term is above every earlier one too.
    const other = await supervised(h, 'chain-b');
    t.ok((await other.write(undefined, 'n1')) > term2, 'terms grow across chains');
  });

  withStore('a stale expected term is a CONFLICT and changes nothing', async (t, h) => {
    const { write } = await supervised(h, 'chain-a');
    const term1 = await write(undefined, 'n1');
    const term2 = await write(term1, 'n2', { nodeId: 'n1', term: term1 });
    const before = await h.store.read('chain-a');
    const historyBefore = await h.store.history('chain-a', 10);
    await rejectsWith(t, write(term1, 'n1'), 'CONFLICT', 'stale expected term');
    await rejectsWith(t, write(undefined, 'n1'), 'CONFLICT', '"no leader yet" when there is one');
    await rejectsWith(t, write(0n, 'n1'), 'INVALID_ARGUMENT', 'term 0 is refused before any write');
    t.same(await h.store.read('chain-a'), before, 'state unchanged');
    t.same(await h.store.history('chain-a', 10), historyBefore, 'history unchanged');
    t.equal(before?.leader?.term, term2);
  });

  withStore('a fence whose supervisor key was taken over is FENCED and changes nothing', async (t, h) => {
    const { fence, write } = await supervised(h, 'chain-a');
    const term1 = await write(undefined, 'n1');
    const headRev = await h.store.recordHead(fence, term1, NO_HEAD, headOf(5, term1));
    await h.steal('chain-a');
    const before = await h.store.read('chain-a');
    t.not(before?.supervisor, undefined, 'someone supervises the chain');
    await rejectsWith(t, write(term1, 'n2', { nodeId: 'n1', term: term1 }), 'FENCED', 'writeLeader with a deposed fence');
    await rejectsWith(t, h.store.recordHead(fence, term1, { revision: headRev, head: headOf(5, term1) }, headOf(6, term1)), 'FENCED', 'recordHead with a deposed fence');
    t.same(await h.store.read('chain-a'), before, 'state unchanged');
    t.equal((await h.store.history('chain-a', 10)).length, 1, 'no history entry added');
  });

  withStore('setFencingMode writes only the spec\'s mode, under the fence; the same mode writes nothing', async (t, h) => {
    const { fence, write } = await supervised(h, 'chain-a');
    const term = await write(undefined, 'n1');
    t.equal(await h.store.setFencingMode(fence, 'commit'), true, 'lease -> commit is written');
    const spec = await h.store.getSpec('chain-a');
    t.same(spec, { ...specOf('chain-a'), policy: { ...DEFAULT_POLICY, fencingMode: 'commit' } }, 'only policy.fencingMode changed');
    const state = await h.store.read('chain-a');
    t.equal(state?.leader?.term, term, 'no new term: the supervisor loop writes it');
    t.equal(state?.leader?.mode, 'lease', 'the leader record keeps the mode of its term');
    t.equal(await h.store.setFencingMode(fence, 'commit'), false, 'already commit: nothing written');
    t.same(await h.store.getSpec('chain-a'), spec, 'spec unchanged');
    await rejectsWith(t, h.store.setFencingMode(fence, 'raft' as never), 'INVALID_ARGUMENT', 'an unknown mode');
    t.same(await h.store.getSpec('chain-a'), spec, 'spec unchanged after a refused mode');
    await h.steal('chain-a');
    await rejectsWith(t, h.store.setFencingMode(fence, 'lease'), 'FENCED', 'setFencingMode with a deposed fence');
    t.equal((await h.store.getSpec('chain-a'))?.policy.fencingMode, 'commit', 'a deposed supervisor changed nothing');
  });

  withStore('recordHead only moves forward, on the current term and the head it read', async (t, h) => {
    const { fence, write } = await supervised(h, 'chain-a');
    const term1 = await write(undefined, 'n1');
    const rev1 = await h.store.recordHead(fence, term1, NO_HEAD, headOf(10, term1));
    const at1 = { revision: rev1, head: headOf(10, term1) };
    t.ok(rev1 > term1, 'returns the new head revision');
    let state = await h.store.read('chain-a');
    t.same(state?.head, headOf(10, term1), 'head stored as given, term as bigint');
    t.equal(state?.headRevision, rev1);

    await rejectsWith(t, h.store.recordHead(fence, term1, at1, headOf(9, term1)), 'CONFLICT', 'lower number');
    await rejectsWith(t, h.store.recordHead(fence, term1, at1, headOf(10, term1)), 'CONFLICT', 'equal number');
    await rejectsWith(t, h.store.recordHead(fence, term1, NO_HEAD, headOf(11, term1)), 'CONFLICT', '"no head yet" when there is one');
    await rejectsWith(t, h.store.recordHead(fence, 0n, at1, headOf(11, term1)), 'INVALID_ARGUMENT', 'term 0');
    await rejectsWith(t, h.store.recordHead(fence, term1, at1, { ...headOf(11, term1), parentHash: 'ff'.repeat(32) }), 'HEAD_MISMATCH', 'next block that does not extend the head');
    t.same(await h.store.read('chain-a'), state, 'refusals changed nothing');

    const rev2 = await h.store.recordHead(fence, term1, at1, headOf(12, term1));
    const at2 = { revision: rev2, head: headOf(12, term1) };
    t.ok(rev2 > rev1, 'a higher head with the read revision is recorded');
    await rejectsWith(t, h.store.recordHead(fence, term1, at1, headOf(13, term1)), 'CONFLICT', 'stale head revision');

    const term2 = await write(term1, 'n2', { nodeId: 'n1', term: term1 });
    await rejectsWith(t, h.store.recordHead(fence, term1, at2, headOf(13, term1)), 'CONFLICT', 'stale term');
    state = await h.store.read('chain-a');
    t.equal(state?.head?.number, 12, 'head unchanged by refusals');
    const rev3 = await h.store.recordHead(fence, term2, at2, headOf(13, term2, 'n2'));
    t.equal((await h.store.read('chain-a'))?.headRevision, rev3, 'current term records');
  });

  withStore('break-glass rollback: the head goes back only in the override txn, on the head revision it read', async (t, h) => {
    const { fence, write } = await supervised(h, 'chain-a');
    const term1 = await write(undefined, 'n1');
    const rev1 = await h.store.recordHead(fence, term1, NO_HEAD, headOf(10, term1));
    const back = { ...headOf(7, term1, 'n2') };
    const override = { nodeId: 'n2', reason: 'INC-1', sinceMs: 1_700_000_000_000, operationId: 'op-1', rolledBackFrom: { number: 10, hash: hashOf(10) }, rolledBackTo: { number: 7, hash: hashOf(7) } };
    const next: NewLeader = { ...leaderOf('n2', 'override', 7), override, rollback: { head: back, expectedRevision: rev1 } };
    const history = historyOf(next, { nodeId: 'n1', term: term1 }, fence.replicaId);
    const before = await h.store.read('chain-a');

    await rejectsWith(t, h.store.writeLeader(fence, term1, { ...next, rollback: { head: back, expectedRevision: rev1 - 1n } }, history), 'CONFLICT', 'a stale head revision');
    await rejectsWith(t, h.store.writeLeader(fence, term1, { ...next, override: undefined }, history), 'INVALID_ARGUMENT', 'a rollback without an override record');
    await rejectsWith(t, h.store.writeLeader(fence, term1, { ...next, override: { ...override, rolledBackTo: { number: 6, hash: hashOf(6) } } }, history), 'INVALID_ARGUMENT', 'an override record that names another head');
    t.same(await h.store.read('chain-a'), before, 'refusals changed nothing');

    const term2 = await h.store.writeLeader(fence, term1, next, history);
    const state = await h.store.read('chain-a');
    t.same(state?.head, back, 'the head is the rolled-back one');
    t.equal(state?.headRevision, term2, 'written by the txn of the new term');
    t.match(state?.override, { nodeId: 'n2', term: term2, rolledBackFrom: override.rolledBackFrom, rolledBackTo: override.rolledBackTo }, 'the override record names the rollback');
    const rev3 = await h.store.recordHead(fence, term2, { revision: term2, head: back }, headOf(8, term2, 'n2'));
    t.ok(rev3 > term2, 'the new leader records on top of it');
  });

  withStore('history is newest first, with reasons and predecessors', async (t, h) => {
    const { write } = await supervised(h, 'chain-a');
    t.same(await h.store.history('chain-a', 10), [], 'no history yet');
    const term1 = await write(undefined, 'n1');
    const term2 = await write(term1, 'n2', { nodeId: 'n1', term: term1 });
    const term3 = await write(term2, 'n1', { nodeId: 'n2', term: term2 });
    const all = await h.store.history('chain-a', 10);
    t.same(all.map((r) => r.term), [term3, term2, term1], 'newest first');
    t.same(all.map((r) => r.reason), ['make n1 active', 'make n2 active', 'make n1 active']);
    t.same(all.map((r) => r.previousTerm), [term2, term1, undefined], 'each entry names the term it replaced');
    t.same(all.map((r) => r.previousNodeId), ['n2', 'n1', undefined]);
    t.match(all[0], { nodeId: 'n1', supervisor: (await h.store.read('chain-a'))?.supervisor, fromHead: 0, atMs: 1_700_000_000_000 });
    t.same((await h.store.history('chain-a', 2)).map((r) => r.term), [term3, term2], 'limit keeps the newest');
    await rejectsWith(t, h.store.history('chain-a', 0), 'INVALID_ARGUMENT', 'limit 0');
  });

  withStore('deleteChain removes spec, leader, head, supervisor and history', async (t, h) => {
    const { fence, write } = await supervised(h, 'chain-a');
    const term1 = await write(undefined, 'n1');
    await h.store.recordHead(fence, term1, NO_HEAD, headOf(3, term1));
    await h.store.putSpec(specOf('chain-ab')); // a chain whose id extends the deleted one survives
    t.equal(await h.store.deleteChain('chain-a'), true);
    t.equal(await h.store.read('chain-a'), undefined);
    t.same(await h.store.history('chain-a', 10), []);
    t.not(await h.store.getSpec('chain-ab'), undefined, 'chain-ab untouched');
    await rejectsWith(t, write(term1, 'n2', { nodeId: 'n1', term: term1 }), 'FENCED', 'the old supervisor cannot write');
    await h.store.putSpec(specOf('chain-a'));
    const state = await h.store.read('chain-a');
    t.same(state && [state.leader, state.head, state.supervisor], [undefined, undefined, undefined], 're-created chain starts empty');
  });

  withStore('fleet settings default when absent and round-trip', async (t, { store }) => {
    t.same(await store.getFleetSettings(), { autoFailover: true, maxConcurrentFailovers: 2 });
    await store.putFleetSettings({ autoFailover: false, maxConcurrentFailovers: 5 });
    t.same(await store.getFleetSettings(), { autoFailover: false, maxConcurrentFailovers: 5 });
    await rejectsWith(t, store.putFleetSettings({ autoFailover: true, maxConcurrentFailovers: -1 }), 'INVALID_ARGUMENT', 'negative cap');
  });
}
