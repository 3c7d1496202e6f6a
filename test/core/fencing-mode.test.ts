// The set-fencing-mode rules of core/fencing-mode.ts, stepped one call at a time over a fake
// runner host (the chain state and the spec store) and a fake operation book: the final state of
// the operation and of the spec is asserted, not the calls. The same rules on a real stack are in
// test/scenarios/fencing-mode-op.test.ts.
import t from 'tap';
import type { ChainSpec, FencingMode, LeaderRecord } from '../../src/core/chain.js';
import { BatonError } from '../../src/core/errors.js';
import { FencingModeSwitch } from '../../src/core/fencing-mode.js';
import type { Operation, OperationStep, SetFencingModeParams } from '../../src/core/operation.js';
import type { OperationBook } from '../../src/core/chain-controls.js';
import type { RunnerHost } from '../../src/core/operations-runner.js';
import type { ChainState } from '../../src/core/ports.js';
import { leader, NOW, spec as specOf, TERM } from './fixtures.js';

const TIMEOUT_MS = 25_000;

interface World {
  spec: ChainSpec;
  leader: LeaderRecord | undefined;
  pause?: ChainState['pause'];
  override?: ChainState['override'];
  monoMs: number;
  /** What the store's setFencingMode does instead of writing (a refusal). */
  refuseWrite?: BatonError;
  op: Operation;
}

function world(over: Partial<World> = {}, mode: FencingMode = 'commit'): { w: World; fm: FencingModeSwitch; params: SetFencingModeParams } {
  const params: SetFencingModeParams = { kind: 'set-fencing-mode', mode, reason: 'CHG-42' };
  const op: Operation = { id: 'op-1', chainId: 'chain-a', params, state: 'pending', steps: [], createdAtMs: 1, updatedAtMs: 1, requestId: 'r1' };
  const w: World = { spec: specOf(), leader: leader(), monoMs: NOW, op, ...over };
  const state = (): ChainState => ({
    spec: w.spec,
    leader: w.leader,
    head: undefined,
    headRevision: 0n,
    supervisor: 'replica-a',
    pause: w.pause,
    ...(w.override ? { override: w.override } : {}),
    intents: [w.op.id],
    health: undefined,
  });
  const host = {
    chainId: 'chain-a',
    spec: () => w.spec,
    state,
    monoMs: () => w.monoMs,
    wallMs: () => 1_700_000_000_000,
    setFencingMode: async (m: FencingMode) => {
      if (w.refuseWrite) throw w.refuseWrite;
      if (w.spec.policy.fencingMode === m) return false;
      w.spec = { ...w.spec, policy: { ...w.spec.policy, fencingMode: m } };
      return true;
    },
  } as unknown as RunnerHost;
  let since: number | undefined;
  const book: OperationBook = {
    save: async (o, change, ...steps) => {
      w.op = { ...o, ...change, steps: [...o.steps, ...steps.map((s): OperationStep => ({ atMs: 0, ...s }))] };
      return w.op;
    },
    fail: async (o, code, message, step) => {
      w.op = { ...o, state: 'failed', error: { code, message }, steps: [...o.steps, { name: step, state: 'failed', detail: message, atMs: 0 }] };
      return w.op;
    },
    wakeAfter: () => undefined,
    ordered: () => [w.op],
    started: () => {
      since = w.monoMs;
    },
    since: () => (since ??= w.monoMs),
  };
  return { w, fm: new FencingModeSwitch(host, book, () => TIMEOUT_MS), params };
}

t.test('lease -> commit: the spec is written, the operation runs until the leader record is commit, then ends with its term', async (t) => {
  const { w, fm, params } = world();
  await fm.start(w.op, params);
  t.equal(w.spec.policy.fencingMode, 'commit', 'the spec is in commit mode');
  t.equal(w.op.state, 'running');
  t.equal(w.op.result?.term, undefined, 'no term of its own');
  t.equal(await fm.check(w.op, params), false, 'still the lease-mode term: waits');
  t.equal(w.op.state, 'running');
  w.leader = { ...leader('b2', TERM + 5n), mode: 'commit' };
  t.equal(await fm.check(w.op, params), true);
  t.equal(w.op.state, 'succeeded');
  t.same({ term: w.op.result?.term, nodeId: w.op.result?.nodeId }, { term: (TERM + 5n).toString(), nodeId: 'b2' }, 'the result is the new term');
});

t.test('already in the mode (spec and leader term): succeeded at once, nothing written', async (t) => {
  const committed: ChainSpec = { ...specOf(), policy: { ...specOf().policy, fencingMode: 'commit' } };
  const { w, fm, params } = world({ spec: committed, leader: { ...leader(), mode: 'commit' } });
  await fm.start(w.op, params);
  t.equal(w.op.state, 'succeeded');
  t.equal(w.op.result?.detail, 'already commit');
  t.equal(w.op.result?.term, TERM.toString());
  t.equal(w.spec, committed, 'the spec object was not replaced');
});

t.test('spec already commit but the term still lease (a PUT in flight): runs until the term follows', async (t) => {
  const committed: ChainSpec = { ...specOf(), policy: { ...specOf().policy, fencingMode: 'commit' } };
  const { w, fm, params } = world({ spec: committed });
  await fm.start(w.op, params);
  t.equal(w.op.state, 'running');
  t.match(w.op.steps.at(-1)?.detail, /already in commit mode/);
});

t.test('no leader yet: succeeded once the spec is written', async (t) => {
  const { w, fm, params } = world({ leader: undefined });
  await fm.start(w.op, params);
  t.equal(w.op.state, 'succeeded');
  t.equal(w.spec.policy.fencingMode, 'commit');
  t.match(w.op.result?.detail, /first term will be in commit mode/);
});

t.test('a break-glass override in force: OVERRIDDEN, whatever the mode, spec unchanged', async (t) => {
  const override = { nodeId: 'a1', reason: 'INC-1', sinceMs: 1, operationId: 'op-0', term: TERM };
  const { w, fm, params } = world({ override });
  await fm.start(w.op, params);
  t.equal(w.op.state, 'failed');
  t.equal(w.op.error?.code, 'OVERRIDDEN');
  t.equal(w.spec.policy.fencingMode, 'lease', 'spec unchanged');
  const same = world({ override }, 'lease');
  await same.fm.start(same.w.op, same.params);
  t.equal(same.w.op.error?.code, 'OVERRIDDEN', 'also when already in the mode');
});

t.test('paused: PAUSED and spec unchanged; paused after the write: PAUSED, saying the term follows on resume', async (t) => {
  const pause = { reason: 'freeze', untilMs: undefined, sinceMs: 1, operationId: 'op-0' };
  const { w, fm, params } = world({ pause });
  await fm.start(w.op, params);
  t.equal(w.op.error?.code, 'PAUSED');
  t.equal(w.spec.policy.fencingMode, 'lease', 'spec unchanged');

  const later = world();
  await later.fm.start(later.w.op, later.params);
  later.w.pause = pause;
  t.equal(await later.fm.check(later.w.op, later.params), true);
  t.equal(later.w.op.error?.code, 'PAUSED');
  t.match(later.w.op.error?.message, /term follows once it is resumed/);
});

t.test('the spec changed back meanwhile: CONFLICT', async (t) => {
  const { w, fm, params } = world();
  await fm.start(w.op, params);
  w.spec = specOf();
  t.equal(await fm.check(w.op, params), true);
  t.equal(w.op.error?.code, 'CONFLICT');
});

t.test('no new-mode term within the timeout: UNAVAILABLE', async (t) => {
  const { w, fm, params } = world();
  await fm.start(w.op, params);
  w.monoMs += TIMEOUT_MS;
  t.equal(await fm.check(w.op, params), false, 'at the timeout: still waiting');
  w.monoMs += 1;
  t.equal(await fm.check(w.op, params), true);
  t.equal(w.op.error?.code, 'UNAVAILABLE');
  t.match(w.op.error?.message, /b2 still under lease-mode term/);
});

t.test('a refused spec write (a concurrent PUT, a lost fence) leaves the operation pending for the next turn', async (t) => {
  const { w, fm, params } = world({ refuseWrite: new BatonError('CONFLICT', 'spec of chain-a changed since it was read') });
  await t.rejects(fm.start(w.op, params), { code: 'CONFLICT' });
  t.equal(w.op.state, 'pending');
  t.equal(w.spec.policy.fencingMode, 'lease');
  w.refuseWrite = new BatonError('NOT_FOUND', 'chain chain-a does not exist');
  await fm.start(w.op, params);
  t.equal(w.op.error?.code, 'NOT_FOUND', 'a deleted chain fails it');
});
