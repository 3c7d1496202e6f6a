// The OperationStore contract: one suite that the etcd adapter and every fake must pass. Each
// subtest gets a fresh store from `makeStore`, whose wall clock the harness controls.
import type { Test } from 'tap';
import { isBatonError, type ErrorCode } from '../../src/core/errors.js';
import type { Operation, OperationParams } from '../../src/core/operation.js';
import type { ChainStore, Idempotency, OperationStore, SupervisionFence } from '../../src/core/ports.js';
import { specOf } from './chain-store.contract.js';

/** The port plus the listing the API uses. */
export interface ListableOperationStore extends OperationStore {
  listOperations(query: { chainId?: string; limit: number }): Promise<Operation[]>;
}

export interface OperationStoreHarness {
  store: ListableOperationStore;
  /** The chain store over the same data: specs, and read() shows pause and intents. */
  chains: ChainStore;
  /** Wall clock the store reads; starts at START_MS. */
  advance(ms: number): void;
  /** TTL the store was built with. */
  idempotencyTtlMs: number;
  /** Makes the harness's replica the chain's supervisor and returns its fence. */
  acquire(chainId: string): Promise<SupervisionFence>;
  /** Someone else takes the chain's supervisor key (a new election). */
  steal(chainId: string): Promise<void>;
  /** Changes whenever anything is written (etcd: the store's revision). */
  revision(): Promise<bigint>;
  close(): Promise<void>;
}

export const START_MS = 1_700_000_000_000;

const OPERATION_ID = /^op-\d{13}-[0-9a-z]{8}$/;

const failover = (reason = 'drill'): OperationParams => ({ kind: 'failover', reason });
const pause = (reason = 'maintenance'): OperationParams => ({ kind: 'pause', reason });
const idem = (key: string, requestHash = 'hash-1'): Idempotency => ({ key, requestHash });

async function rejectsWith(t: Test, p: Promise<unknown>, code: ErrorCode, what: string): Promise<unknown> {
  try {
    await p;
    t.fail(`${what}: expected ${code}, but it succeeded`);
    return undefined;
  } catch (err) {
    t.ok(isBatonError(err, code), `${what}: ${code}`, { got: isBatonError(err) ? err.code : String(err) });
    return err;
  }
}

export function operationStoreContract(t: Test, makeStore: () => Promise<OperationStoreHarness>): void {
  const withStore = (name: string, fn: (t: Test, h: OperationStoreHarness) => Promise<void>) =>
    t.test(name, async (t) => {
      const h = await makeStore();
      t.teardown(() => h.close());
      await fn(t, h);
    });

  const submit = (h: OperationStoreHarness, chainId: string, params: OperationParams, idempotency?: Idempotency) =>
    h.store.submit({ chainId, params, requestId: `req-${Math.random().toString(36).slice(2)}` }, idempotency);

  withStore('submit makes a pending operation with an intent the chain lists', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    const { operation, replayed } = await h.store.submit({ chainId: 'chain-a', params: failover(), requestId: 'req-1' }, undefined);
    t.equal(replayed, false);
    t.match(operation.id, OPERATION_ID, 'time-ordered id');
    t.same(operation, {
      id: operation.id,
      chainId: 'chain-a',
      params: { kind: 'failover', reason: 'drill' },
      state: 'pending',
      steps: [],
      createdAtMs: START_MS,
      updatedAtMs: START_MS,
      requestId: 'req-1',
    });
    t.same(await h.store.get(operation.id), operation, 'get returns the stored operation');
    t.same(await h.store.pending('chain-a'), [operation], 'pending lists it');
    t.same((await h.chains.read('chain-a'))?.intents, [operation.id], 'the chain read lists the intent');
    t.equal(await h.store.get('op-0000000000000-00000000'), undefined, 'unknown id');
    await rejectsWith(t, h.store.get('../x'), 'INVALID_ARGUMENT', 'bad id');
  });

  withStore('an unknown chain or a bad request is refused and nothing is written', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    const before = await h.revision();
    await rejectsWith(t, submit(h, 'chain-x', failover(), idem('k1')), 'NOT_FOUND', 'unknown chain');
    await rejectsWith(t, submit(h, 'chain-x', pause()), 'NOT_FOUND', 'unknown chain, pause');
    await rejectsWith(t, submit(h, 'Chain-A', failover()), 'INVALID_ARGUMENT', 'bad chain id');
    await rejectsWith(t, submit(h, 'chain-a', { kind: 'reboot', reason: '' } as unknown as OperationParams), 'INVALID_ARGUMENT', 'unknown kind');
    await rejectsWith(t, submit(h, 'chain-a', { kind: 'failover', reason: 'x', candidate: '' }), 'INVALID_ARGUMENT', 'empty candidate');
    await rejectsWith(t, submit(h, 'chain-a', { kind: 'pause', reason: 'x', untilMs: -1 }), 'INVALID_ARGUMENT', 'negative untilMs');
    await rejectsWith(t, submit(h, 'chain-a', failover(), idem('')), 'INVALID_ARGUMENT', 'empty idempotency key');
    await rejectsWith(t, submit(h, 'chain-a', { kind: 'set-fencing-mode', mode: 'raft', reason: 'x' } as unknown as OperationParams), 'INVALID_ARGUMENT', 'unknown fencing mode');
    await rejectsWith(t, submit(h, 'chain-x', { kind: 'set-fencing-mode', mode: 'commit', reason: 'x' }), 'NOT_FOUND', 'unknown chain, set-fencing-mode');
    t.equal(await h.revision(), before, 'nothing written');
    t.same(await h.store.pending('chain-a'), []);
  });

  withStore('one unfinished failover/switchover per chain; pause and resume still go through', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    await h.chains.putSpec(specOf('chain-b'));
    const first = (await submit(h, 'chain-a', failover())).operation;
    const err = await rejectsWith(t, submit(h, 'chain-a', failover('again')), 'CONFLICT', 'second failover');
    t.match(isBatonError(err) ? err.details : {}, { chainId: 'chain-a', operationId: first.id }, 'names the operation holding the lock');
    await rejectsWith(t, submit(h, 'chain-a', { kind: 'switchover', reason: 'planned' }), 'CONFLICT', 'switchover while a failover is unfinished');
    h.advance(1);
    const paused = (await submit(h, 'chain-a', pause())).operation;
    h.advance(1);
    const resumed = (await submit(h, 'chain-a', { kind: 'resume', reason: 'done' })).operation;
    h.advance(1);
    const cancel = (await submit(h, 'chain-a', { kind: 'cancel-switchover', reason: 'no' })).operation;
    t.same((await h.store.pending('chain-a')).map((o) => o.id), [first.id, paused.id, resumed.id, cancel.id], 'oldest first');
    t.ok(await submit(h, 'chain-b', failover()), 'another chain is not locked');
  });

  withStore('a fencing-mode switch holds the leadership lock like a failover, until it ends', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    const mode = (await submit(h, 'chain-a', { kind: 'set-fencing-mode', mode: 'commit', reason: 'CHG-42' })).operation;
    t.same(mode.params, { kind: 'set-fencing-mode', mode: 'commit', reason: 'CHG-42' }, 'stored with its mode, nothing else');
    await rejectsWith(t, submit(h, 'chain-a', failover()), 'CONFLICT', 'a failover while the mode switch is unfinished');
    await rejectsWith(t, submit(h, 'chain-a', { kind: 'set-fencing-mode', mode: 'lease', reason: 'x' }), 'CONFLICT', 'another mode switch');
    const fence = await h.acquire('chain-a');
    await h.store.update(fence, { ...mode, state: 'succeeded', result: { detail: 'already commit' }, updatedAtMs: START_MS });
    t.ok(await submit(h, 'chain-a', failover()), 'lock released once it ended');
  });

  withStore('idempotent replay returns the first operation and writes nothing; another request is a mismatch', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    const first = await submit(h, 'chain-a', failover(), idem('key-1'));
    t.equal(first.replayed, false);
    t.equal(first.operation.idempotencyKey, 'key-1');
    const before = await h.revision();
    h.advance(1000);
    const again = await submit(h, 'chain-a', failover(), idem('key-1'));
    t.equal(again.replayed, true, 'replayed, not refused by the lock the first one holds');
    t.same(again.operation, first.operation, 'the same operation');
    const err = await rejectsWith(t, submit(h, 'chain-a', failover('other'), idem('key-1', 'hash-2')), 'IDEMPOTENCY_MISMATCH', 'same key, other request');
    t.match(isBatonError(err) ? err.details : {}, { operationId: first.operation.id });
    t.equal(await h.revision(), before, 'nothing written by the replay or the mismatch');
    t.same((await h.store.pending('chain-a')).map((o) => o.id), [first.operation.id]);

    const p = await submit(h, 'chain-a', pause(), idem('key-2'));
    t.equal(p.replayed, false, 'another key is another request');
  });

  withStore('an expired idempotency record is reusable', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    const first = await submit(h, 'chain-a', pause(), idem('key-1'));
    h.advance(h.idempotencyTtlMs - 1);
    t.equal((await submit(h, 'chain-a', pause(), idem('key-1'))).replayed, true, 'still valid just before the TTL');
    h.advance(1);
    const second = await submit(h, 'chain-a', pause('later'), idem('key-1', 'hash-2'));
    t.equal(second.replayed, false, 'expired: a new request, even with another hash');
    t.not(second.operation.id, first.operation.id);
    const replay = await submit(h, 'chain-a', pause('later'), idem('key-1', 'hash-2'));
    t.same(replay, { operation: second.operation, replayed: true }, 'the key now names the new operation');
    await rejectsWith(t, submit(h, 'chain-a', pause(), idem('key-1')), 'IDEMPOTENCY_MISMATCH', 'the old request no longer matches');
  });

  withStore('a switchover scheduled in the future is scheduled; now or past is pending', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    await h.chains.putSpec(specOf('chain-b'));
    await h.chains.putSpec(specOf('chain-c'));
    const later = (await submit(h, 'chain-a', { kind: 'switchover', reason: 'window', target: 'n2', scheduledAtMs: START_MS + 60_000 })).operation;
    t.equal(later.state, 'scheduled');
    t.same(later.params, { kind: 'switchover', reason: 'window', target: 'n2', scheduledAtMs: START_MS + 60_000 });
    t.same((await h.store.pending('chain-a')).map((o) => o.state), ['scheduled'], 'a scheduled operation is pending work');
    t.equal((await submit(h, 'chain-b', { kind: 'switchover', reason: 'now', scheduledAtMs: START_MS })).operation.state, 'pending');
    t.equal((await submit(h, 'chain-c', { kind: 'switchover', reason: 'asap' })).operation.state, 'pending');
  });

  withStore('the supervisor records progress; a final state removes the intent and the lock', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    const fence = await h.acquire('chain-a');
    const op = (await submit(h, 'chain-a', failover())).operation;
    h.advance(100);
    const running: Operation = { ...op, state: 'running', executor: fence.replicaId, steps: [{ name: 'pick', state: 'done', atMs: START_MS + 100, detail: 'n2' }] };
    await h.store.update(fence, running);
    t.same(await h.store.get(op.id), { ...running, updatedAtMs: START_MS + 100 }, 'progress stored, updatedAtMs = now');
    t.same(await h.store.pending('chain-a'), [{ ...running, updatedAtMs: START_MS + 100 }], 'still pending work');

    h.advance(100);
    const done: Operation = { ...running, state: 'succeeded', result: { term: '42', nodeId: 'n2', headNumber: 7, detail: 'n2 active' } };
    await h.store.update(fence, { ...done, params: pause(), createdAtMs: 1 });
    const stored = await h.store.get(op.id);
    t.same(stored, { ...done, updatedAtMs: START_MS + 200 }, 'final state stored; the request itself is immutable');
    t.same(await h.store.pending('chain-a'), [], 'no longer pending');
    t.same((await h.chains.read('chain-a'))?.intents, [], 'intent removed');
    t.equal((await submit(h, 'chain-a', failover('next'))).replayed, false, 'lock released: a new failover is accepted');
  });

  withStore('finishing a pause leaves the lock of an unfinished failover alone', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    const fence = await h.acquire('chain-a');
    const f = (await submit(h, 'chain-a', failover())).operation;
    h.advance(1);
    const p = (await submit(h, 'chain-a', pause())).operation;
    await h.store.update(fence, { ...p, state: 'succeeded' });
    t.same((await h.store.pending('chain-a')).map((o) => o.id), [f.id]);
    await rejectsWith(t, submit(h, 'chain-a', failover()), 'CONFLICT', 'lock still held by the failover');
    await h.store.update(fence, { ...f, state: 'failed', error: { code: 'NOT_ELIGIBLE', message: 'no standby' } });
    t.ok(await submit(h, 'chain-a', failover()), 'lock released by the failed failover');
  });

  withStore('an update with a stale fence is FENCED and changes nothing', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    const fence = await h.acquire('chain-a');
    const op = (await submit(h, 'chain-a', failover())).operation;
    await h.steal('chain-a');
    const before = await h.revision();
    await rejectsWith(t, h.store.update(fence, { ...op, state: 'running' }), 'FENCED', 'progress');
    await rejectsWith(t, h.store.update(fence, { ...op, state: 'succeeded' }), 'FENCED', 'final state');
    await rejectsWith(t, h.store.setPause(fence, { reason: 'x', untilMs: undefined, sinceMs: START_MS, operationId: op.id }), 'FENCED', 'pause');
    t.equal(await h.revision(), before, 'nothing written');
    t.same(await h.store.get(op.id), op);
    t.same((await h.chains.read('chain-a'))?.intents, [op.id]);
  });

  withStore('updates of a final, unknown or foreign operation are refused', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    await h.chains.putSpec(specOf('chain-b'));
    const fence = await h.acquire('chain-a');
    const fenceB = await h.acquire('chain-b');
    const op = (await submit(h, 'chain-a', failover())).operation;
    await h.store.update(fence, { ...op, state: 'cancelled' });
    const final = await h.store.get(op.id);
    const before = await h.revision();
    await rejectsWith(t, h.store.update(fence, { ...op, state: 'running' }), 'CONFLICT', 'a final operation does not come back');
    await rejectsWith(t, h.store.update(fence, { ...op, state: 'succeeded' }), 'CONFLICT', 'nor changes its outcome');
    await rejectsWith(t, h.store.update(fence, { ...op, id: 'op-0000000000001-abcdefgh' }), 'NOT_FOUND', 'unknown operation');
    await rejectsWith(t, h.store.update(fenceB, op), 'INVALID_ARGUMENT', 'operation of another chain');
    await rejectsWith(t, h.store.update(fence, { ...op, state: 'done' as Operation['state'] }), 'INVALID_ARGUMENT', 'unknown state');
    t.equal(await h.revision(), before, 'nothing written');
    t.same(await h.store.get(op.id), final);
  });

  withStore('an override is written with its term and cleared by the supervisor only', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    const fence = await h.acquire('chain-a');
    const op = (await submit(h, 'chain-a', { kind: 'override', nodeId: 'n2', reason: 'INC-1' })).operation;
    t.same(op.params, { kind: 'override', nodeId: 'n2', reason: 'INC-1' });
    await rejectsWith(t, submit(h, 'chain-a', { kind: 'override', nodeId: '', reason: 'x' }), 'INVALID_ARGUMENT', 'an override names a node');
    await rejectsWith(t, submit(h, 'chain-a', { kind: 'override', nodeId: 'n2', reason: 'x', rollbackHead: 'yes' as unknown as boolean }), 'INVALID_ARGUMENT', 'rollbackHead is a boolean');
    await h.chains.putSpec(specOf('chain-b'));
    await h.chains.putSpec(specOf('chain-c'));
    const rb = (await submit(h, 'chain-b', { kind: 'override', nodeId: 'n2', reason: 'INC-2', rollbackHead: true })).operation;
    t.same(rb.params, { kind: 'override', nodeId: 'n2', reason: 'INC-2', rollbackHead: true }, 'rollbackHead kept when true');
    const plain = (await submit(h, 'chain-c', { kind: 'override', nodeId: 'n2', reason: 'INC-3', rollbackHead: false })).operation;
    t.same(plain.params, { kind: 'override', nodeId: 'n2', reason: 'INC-3' }, 'false: stored exactly as an override without it');
    t.equal(await h.store.clearOverride(fence), false, 'nothing to clear yet');
    const override = { nodeId: 'n2', reason: 'INC-1', sinceMs: START_MS, operationId: op.id };
    const history = { nodeId: 'n2', previousNodeId: undefined, previousTerm: undefined, fromHead: 0, reason: 'override', atMs: START_MS, supervisor: fence.replicaId, durationMs: undefined };
    await rejectsWith(t, h.chains.writeLeader(fence, undefined, { nodeId: 'n1', reason: 'override', fromHead: 0, mode: 'lease', override }, { ...history, nodeId: 'n1' }), 'INVALID_ARGUMENT', 'the record names the new leader');
    const term = await h.chains.writeLeader(fence, undefined, { nodeId: 'n2', reason: 'override', fromHead: 0, mode: 'lease', override }, history);
    t.same((await h.chains.read('chain-a'))?.override, { ...override, term }, 'read back with the term it was forced under');
    t.equal(await h.store.clearOverride(fence), true, 'cleared');
    t.equal((await h.chains.read('chain-a'))?.override, undefined);
    await h.chains.writeLeader(fence, term, { nodeId: 'n2', reason: 'again', fromHead: 0, mode: 'lease', override }, { ...history, previousNodeId: 'n2', previousTerm: term });
    await h.steal('chain-a');
    await rejectsWith(t, h.store.clearOverride(fence), 'FENCED', 'a deposed supervisor cannot clear it');
    t.ok((await h.chains.read('chain-a'))?.override, 'still in force');
  });

  withStore('setPause round-trips through the chain read', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    const fence = await h.acquire('chain-a');
    const op = (await submit(h, 'chain-a', { kind: 'pause', reason: 'upgrade', untilMs: START_MS + 5000 })).operation;
    const record = { reason: 'upgrade', untilMs: START_MS + 5000, sinceMs: START_MS, operationId: op.id };
    await h.store.setPause(fence, record);
    t.same((await h.chains.read('chain-a'))?.pause, record);
    await h.store.setPause(fence, { ...record, untilMs: undefined });
    const open = (await h.chains.read('chain-a'))?.pause;
    t.equal(open?.untilMs, undefined, 'a pause until resumed');
    t.equal(open?.reason, 'upgrade');
    await h.store.setPause(fence, undefined);
    t.equal((await h.chains.read('chain-a'))?.pause, undefined, 'cleared');
    await h.store.setPause(fence, undefined);
    t.pass('clearing twice is fine');
    await rejectsWith(t, h.store.setPause(fence, { ...record, sinceMs: -1 }), 'INVALID_ARGUMENT', 'bad record');
  });

  withStore('ids sort by creation; listOperations is newest first, by chain, limited', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    await h.chains.putSpec(specOf('chain-b'));
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      h.advance(1);
      ids.push((await submit(h, i % 2 === 0 ? 'chain-a' : 'chain-b', pause(`p${i}`))).operation.id);
    }
    t.same([...ids].sort(), ids, 'lexical order is creation order');
    t.equal(new Set(ids).size, ids.length, 'unique');
    t.same((await h.store.listOperations({ limit: 100 })).map((o) => o.id), [...ids].reverse(), 'newest first');
    t.same((await h.store.listOperations({ limit: 2 })).map((o) => o.id), [ids[5], ids[4]], 'limit keeps the newest');
    t.same((await h.store.listOperations({ chainId: 'chain-a', limit: 2 })).map((o) => o.id), [ids[4], ids[2]], 'by chain');
    t.same(await h.store.listOperations({ chainId: 'chain-c', limit: 10 }), [], 'no operations');
    await rejectsWith(t, h.store.listOperations({ limit: 0 }), 'INVALID_ARGUMENT', 'limit 0');
  });

  withStore('concurrent failovers of one chain: exactly one is accepted', async (t, h) => {
    await h.chains.putSpec(specOf('chain-a'));
    const results = await Promise.allSettled([submit(h, 'chain-a', failover('a')), submit(h, 'chain-a', failover('b')), submit(h, 'chain-a', { kind: 'switchover', reason: 'c' })]);
    const accepted = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.equal(accepted.length, 1, 'one accepted');
    t.ok(refused.every((r) => isBatonError(r.reason, 'CONFLICT')), 'the others are CONFLICT');
    t.equal((await h.store.pending('chain-a')).length, 1, 'one intent');

    // The same idempotent request sent twice at once: one operation, one of them a replay.
    await h.chains.putSpec(specOf('chain-b'));
    const twice = await Promise.all([submit(h, 'chain-b', failover(), idem('dup')), submit(h, 'chain-b', failover(), idem('dup'))]);
    t.same(twice.map((r) => r.replayed).sort(), [false, true]);
    t.equal(twice[0]?.operation.id, twice[1]?.operation.id, 'the same operation');
  });
}
