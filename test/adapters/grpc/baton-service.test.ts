// baton.v1.BatonService over real gRPC against serve(config) and a real etcd: every RPC's happy
// path, bad input and its status (with the Baton code in the trailers), conflicting failovers,
// idempotency replays and mismatches. The chains' nodes are unreachable: the chains stay
// leaderless, yet pause, resume and scheduled switchovers run through the supervisor.
import { status } from '@grpc/grpc-js';
import t from 'tap';
import {
  ChainFilter,
  FencingMode,
  NodeRole,
  OperationKind,
  OperationState,
  type Operation,
} from '../../../src/gen/baton/v1/baton.js';
import { batonCode, call, chainSpec, failure, metadata, startService } from './harness.js';

const { baton } = await startService(t, 'grpc-api');
const c = baton;

/** Waits (server side, up to 10 s) for the operation to end. */
async function settled(id: string): Promise<Operation> {
  const { operation } = await call(c.getOperation.bind(c), { operationId: id, waitMs: 10_000 }, { deadlineMs: 15_000 });
  return operation!;
}

t.test('chains: put, get, list, leader, history, delete', async (t) => {
  const put = await call(c.putChain.bind(c), { spec: chainSpec('chain-a', 21_100) });
  t.equal(put.created, true, 'a new chain');
  t.equal(put.spec?.blockTimeMs, 1000, 'defaults filled in');
  t.equal(put.spec?.fencingMode, FencingMode.FENCING_MODE_LEASE);
  t.equal(put.spec?.policy?.leaseTtlMs, 8000, 'the given policy kept');
  t.equal(put.spec?.policy?.maxLagBlocks, 2);
  const again = await call(c.putChain.bind(c), { spec: { ...chainSpec('chain-a', 21_100), blockTimeMs: 2000 } });
  t.equal(again.created, false, 'replaced, not created');

  const { chain } = await call(c.getChain.bind(c), { chainId: 'chain-a' });
  t.equal(chain?.spec?.id, 'chain-a');
  t.equal(chain?.spec?.blockTimeMs, 2000);
  t.equal(chain?.leader, undefined, 'leaderless');
  t.same(chain?.nodes.map((n) => [n.id, n.role, n.eligible]), [
    ['chain-a-1', NodeRole.NODE_ROLE_STANDBY, false],
    ['chain-a-2', NodeRole.NODE_ROLE_STANDBY, false],
  ]);
  t.ok(chain?.nodes.every((n) => n.reasons.length > 0), 'each node says why it is not eligible');

  const list = await call(c.listChains.bind(c), { filter: ChainFilter.CHAIN_FILTER_UNSPECIFIED });
  const a = list.summaries.find((s) => s.id === 'chain-a');
  t.match(a, { leader: '', term: 0n, nodes: 2, fencingMode: FencingMode.FENCING_MODE_LEASE, paused: false });
  t.ok(a?.states.includes(ChainFilter.CHAIN_FILTER_LEADERLESS));
  t.equal(list.counts?.total, list.summaries.length);
  t.same(list.chains, [], 'the deprecated field stays empty');
  const leaderless = await call(c.listChains.bind(c), { filter: ChainFilter.CHAIN_FILTER_LEADERLESS });
  t.ok(leaderless.summaries.some((s) => s.id === 'chain-a'), 'filtered listing');
  const paused = await call(c.listChains.bind(c), { filter: ChainFilter.CHAIN_FILTER_PAUSED });
  t.notOk(paused.summaries.some((s) => s.id === 'chain-a'));

  t.same(await call(c.getLeader.bind(c), { chainId: 'chain-a', waitForChangeFrom: 0n, timeoutMs: 0 }), { nodeId: '', term: 0n, endpoint: '', changed: false });
  const waited = await call(c.getLeader.bind(c), { chainId: 'chain-a', waitForChangeFrom: 7n, timeoutMs: 2000 });
  t.equal(waited.changed, true, 'a term other than the current one answers at once');
  t.same((await call(c.getHistory.bind(c), { chainId: 'chain-a', limit: 0 })).terms, [], 'no term yet');

  t.same(await call(c.deleteChain.bind(c), { chainId: 'chain-a' }), {});
  const gone = await failure(call(c.getChain.bind(c), { chainId: 'chain-a' }));
  t.equal(gone.code, status.NOT_FOUND);
  t.equal(batonCode(gone), 'NOT_FOUND');
  t.equal((await failure(call(c.deleteChain.bind(c), { chainId: 'chain-a' }))).code, status.NOT_FOUND, 'deleting twice');
});

t.test('fleet settings', async (t) => {
  const { settings } = await call(c.getFleetSettings.bind(c), {});
  t.same(settings, { autoFailover: true, maxConcurrentFailovers: 2 }, 'defaults');
  const put = await call(c.putFleetSettings.bind(c), { autoFailover: true, maxConcurrentFailovers: 3 });
  t.same(put.settings, { autoFailover: true, maxConcurrentFailovers: 3 });
  const missing = await failure(call(c.putFleetSettings.bind(c), { maxConcurrentFailovers: 3 }));
  t.equal(missing.code, status.INVALID_ARGUMENT, 'an unset switch is refused, not read as off');
  t.match(missing.details, /auto_failover/);
  t.equal((await failure(call(c.putFleetSettings.bind(c), { autoFailover: true, maxConcurrentFailovers: 0 }))).code, status.INVALID_ARGUMENT);
  t.same((await call(c.getFleetSettings.bind(c), {})).settings, { autoFailover: true, maxConcurrentFailovers: 3 }, 'refusals changed nothing');
});

t.test('pause and resume run through the supervisor; operations are listed', async (t) => {
  await call(c.putChain.bind(c), { spec: chainSpec('chain-p', 21_200) });
  const until = new Date(Date.now() + 3_600_000);
  const pause = await call(c.pause.bind(c), { chainId: 'chain-p', reason: 'maintenance', until, idempotencyKey: '' });
  t.equal(pause.replayed, false);
  t.match(pause.operation, { chainId: 'chain-p', kind: OperationKind.OPERATION_KIND_PAUSE, state: OperationState.OPERATION_STATE_PENDING, reason: 'maintenance' });
  t.equal(pause.operation?.untilMs, BigInt(until.getTime()), 'the pause end, as wall ms');
  t.match(pause.operation?.id, /^op-/);

  const done = await settled(pause.operation!.id);
  t.equal(done.state, OperationState.OPERATION_STATE_SUCCEEDED, 'the supervisor paused the chain');
  t.ok(done.executor, 'names the replica that executed it');
  const list = await call(c.listChains.bind(c), { filter: ChainFilter.CHAIN_FILTER_PAUSED });
  t.ok(list.summaries.find((s) => s.id === 'chain-p')?.paused, 'listed as paused');

  const resume = await call(c.resume.bind(c), { chainId: 'chain-p', reason: 'done', idempotencyKey: '' });
  t.equal((await settled(resume.operation!.id)).state, OperationState.OPERATION_STATE_SUCCEEDED);

  const { operations } = await call(c.listOperations.bind(c), { chainId: 'chain-p', limit: 0 });
  t.same(operations.map((o) => o.id), [resume.operation!.id, pause.operation!.id], 'newest first');
  const all = await call(c.listOperations.bind(c), { chainId: '', limit: 1 });
  t.equal(all.operations.length, 1, 'limit');
});

t.test('failover: dry run plans; a scheduled switchover is cancelled', async (t) => {
  await call(c.putChain.bind(c), { spec: chainSpec('chain-s', 21_300) });
  const dry = await call(c.failover.bind(c), { chainId: 'chain-s', candidate: '', reason: 'drill', dryRun: true, idempotencyKey: '' });
  t.equal(dry.operation, undefined, 'nothing submitted');
  t.equal(dry.plan?.to, '', 'no standby to move to');
  t.match(dry.plan?.reason, /no eligible standby/);
  t.equal(dry.plan?.nodes.length, 2);
  const unknown = await failure(call(c.failover.bind(c), { chainId: 'chain-s', candidate: 'nope', reason: 'drill', dryRun: true, idempotencyKey: '' }));
  t.equal(unknown.code, status.NOT_FOUND, 'an unknown candidate');

  const at = new Date(Date.now() + 3_600_000);
  const sw = await call(c.switchover.bind(c), { chainId: 'chain-s', target: 'chain-s-2', scheduledAt: at, reason: 'upgrade', idempotencyKey: '' });
  t.match(sw.operation, { kind: OperationKind.OPERATION_KIND_SWITCHOVER, state: OperationState.OPERATION_STATE_SCHEDULED, target: 'chain-s-2' });
  t.equal(sw.operation?.scheduledAtMs, BigInt(at.getTime()));
  const cancel = await call(c.cancelSwitchover.bind(c), { chainId: 'chain-s', reason: 'postponed', idempotencyKey: '' });
  t.equal((await settled(cancel.operation!.id)).state, OperationState.OPERATION_STATE_SUCCEEDED);
  t.equal((await settled(sw.operation!.id)).state, OperationState.OPERATION_STATE_CANCELLED, 'the switchover is cancelled');
});

t.test('break-glass override: forced under a new term even unreachable, shown in GetChain, refuses failover, cleared', async (t) => {
  await call(c.putChain.bind(c), { spec: chainSpec('chain-o', 21_400) });
  const res = await call(c.override.bind(c), { chainId: 'chain-o', nodeId: 'chain-o-2', reason: 'INC-9', idempotencyKey: '', rollbackHead: false });
  t.match(res.operation, { kind: OperationKind.OPERATION_KIND_OVERRIDE, nodeId: 'chain-o-2', reason: 'INC-9' });
  const deadline = Date.now() + 15_000;
  let chain = (await call(c.getChain.bind(c), { chainId: 'chain-o' })).chain;
  while (!chain?.override && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    chain = (await call(c.getChain.bind(c), { chainId: 'chain-o' })).chain;
  }
  t.match(chain?.override, { nodeId: 'chain-o-2', reason: 'INC-9', operationId: res.operation!.id }, 'ChainStatus.override');
  t.ok((chain?.override?.term ?? 0n) > 0n, 'with the term it was forced under');
  t.equal(chain?.leader?.nodeId, 'chain-o-2', 'the forced node is the leader (unreachable: it simply never produces)');
  t.equal(chain?.leader?.term, chain?.override?.term);
  const refused = await failure(call(c.failover.bind(c), { chainId: 'chain-o', candidate: '', reason: 'undo', dryRun: false, idempotencyKey: '' }));
  t.equal(refused.code, status.FAILED_PRECONDITION, 'a failover is refused meanwhile');
  t.equal(batonCode(refused), 'OVERRIDDEN');
  const clear = await call(c.clearOverride.bind(c), { chainId: 'chain-o', reason: 'INC-9 over', idempotencyKey: '' });
  t.equal((await settled(clear.operation!.id)).state, OperationState.OPERATION_STATE_SUCCEEDED);
  t.equal((await call(c.getChain.bind(c), { chainId: 'chain-o' })).chain?.override, undefined, 'cleared');
});

t.test('override with rollback_head: carried on the Operation; a node that never reported is ROLLBACK_REFUSED', async (t) => {
  await call(c.putChain.bind(c), { spec: chainSpec('chain-r', 21_800) });
  const res = await call(c.override.bind(c), { chainId: 'chain-r', nodeId: 'chain-r-2', reason: 'INC-10', idempotencyKey: '', rollbackHead: true });
  t.match(res.operation, { kind: OperationKind.OPERATION_KIND_OVERRIDE, nodeId: 'chain-r-2', rollbackHead: true });
  const done = await settled(res.operation!.id);
  t.equal(done.state, OperationState.OPERATION_STATE_FAILED, 'unreachable: its head is unknown, nothing to roll back to');
  t.equal(done.error?.code, 'ROLLBACK_REFUSED');
  const chain = (await call(c.getChain.bind(c), { chainId: 'chain-r' })).chain;
  t.equal(chain?.override, undefined, 'nothing written: no override');
});

t.test('a second failover while the first is unfinished is ABORTED (CONFLICT)', async (t) => {
  await call(c.putChain.bind(c), { spec: chainSpec('chain-f', 21_400) });
  // Submitted together: the supervisor cannot finish either between two etcd txns.
  const request = { chainId: 'chain-f', candidate: '', reason: 'drill', dryRun: false, idempotencyKey: '' };
  const results = await Promise.allSettled([call(c.failover.bind(c), request), call(c.failover.bind(c), { ...request, reason: 'again' })]);
  const accepted = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Parameters<typeof batonCode>[0]] : []));
  t.equal(accepted.length, 1, 'one accepted');
  t.equal(refused.length, 1, 'one refused');
  t.equal(refused[0]?.code, status.ABORTED);
  t.equal(refused[0] && batonCode(refused[0]), 'CONFLICT');
  t.match(refused[0]?.details, new RegExp(accepted[0]!.operation!.id), 'names the operation in the way');

  const first = await settled(accepted[0]!.operation!.id);
  t.equal(first.state, OperationState.OPERATION_STATE_FAILED, 'no reachable standby: the failover fails');
  t.equal(first.error?.code, 'NOT_ELIGIBLE');
  const later = await call(c.failover.bind(c), { ...request, reason: 'once the first ended' });
  t.ok(later.operation?.id, 'accepted once the first has ended');
});

t.test('idempotency: a replay answers the first operation; another request under the key is refused', async (t) => {
  await call(c.putChain.bind(c), { spec: chainSpec('chain-i', 21_500) });
  const req = { chainId: 'chain-i', reason: 'keyed', until: undefined, idempotencyKey: 'key-1' };
  const first = await call(c.pause.bind(c), req);
  const replay = await call(c.pause.bind(c), req);
  t.equal(replay.operation?.id, first.operation?.id, 'same operation');
  t.equal(replay.replayed, true);
  const viaMetadata = await call(c.pause.bind(c), { ...req, idempotencyKey: '' }, { metadata: metadata({ 'idempotency-key': 'key-1' }) });
  t.equal(viaMetadata.operation?.id, first.operation?.id, 'the key as metadata is the same key');

  const mismatch = await failure(call(c.pause.bind(c), { ...req, reason: 'something else' }));
  t.equal(mismatch.code, status.FAILED_PRECONDITION);
  t.equal(batonCode(mismatch), 'IDEMPOTENCY_MISMATCH');
  const otherKind = await failure(call(c.resume.bind(c), { chainId: 'chain-i', reason: 'keyed', idempotencyKey: 'key-1' }));
  t.equal(batonCode(otherKind), 'IDEMPOTENCY_MISMATCH', 'another operation under the key');
  const disagree = await failure(call(c.pause.bind(c), req, { metadata: metadata({ 'idempotency-key': 'key-2' }) }));
  t.equal(disagree.code, status.INVALID_ARGUMENT, 'field and metadata disagree');
  const { operations } = await call(c.listOperations.bind(c), { chainId: 'chain-i', limit: 0 });
  t.equal(operations.length, 1, 'only the first request wrote anything');
});

t.test('SetFencingMode: the supervisor writes the spec of a leaderless chain; again: already in the mode', async (t) => {
  await call(c.putChain.bind(c), { spec: chainSpec('chain-m', 21_900) });
  const res = await call(c.setFencingMode.bind(c), { chainId: 'chain-m', mode: FencingMode.FENCING_MODE_COMMIT, reason: 'CHG-42', idempotencyKey: '' });
  t.match(res.operation, { kind: OperationKind.OPERATION_KIND_SET_FENCING_MODE, fencingMode: FencingMode.FENCING_MODE_COMMIT, reason: 'CHG-42' });
  const done = await settled(res.operation!.id);
  t.equal(done.state, OperationState.OPERATION_STATE_SUCCEEDED, `succeeded: ${done.error?.message ?? ''}`);
  t.match(done.result?.detail, /no leader yet: the first term will be in commit mode/);
  t.equal(done.result?.term, 0n, 'no term: there is no leader to give one');
  t.equal((await call(c.getChain.bind(c), { chainId: 'chain-m' })).chain?.spec?.fencingMode, FencingMode.FENCING_MODE_COMMIT, 'the spec is in commit mode');
  const again = await call(c.setFencingMode.bind(c), { chainId: 'chain-m', mode: FencingMode.FENCING_MODE_COMMIT, reason: 'again', idempotencyKey: '' });
  const second = await settled(again.operation!.id);
  t.equal(second.state, OperationState.OPERATION_STATE_SUCCEEDED);
  t.equal(second.result?.detail, 'already commit');
});

t.test('bad input gets a clear status and changes nothing', async (t) => {
  await call(c.putChain.bind(c), { spec: chainSpec('chain-b', 21_600) });
  const cases: [string, () => Promise<unknown>, status, RegExp][] = [
    ['bad chain id', () => call(c.getChain.bind(c), { chainId: 'Chain_B' }), status.INVALID_ARGUMENT, /chain_id/],
    ['empty chain id', () => call(c.pause.bind(c), { chainId: '', reason: 'x', until: undefined, idempotencyKey: '' }), status.INVALID_ARGUMENT, /chain_id/],
    ['unknown chain', () => call(c.getChain.bind(c), { chainId: 'no-such-chain' }), status.NOT_FOUND, /no-such-chain/],
    ['pause of an unknown chain', () => call(c.pause.bind(c), { chainId: 'no-such-chain', reason: 'x', until: undefined, idempotencyKey: '' }), status.NOT_FOUND, /no-such-chain/],
    ['history of an unknown chain', () => call(c.getHistory.bind(c), { chainId: 'no-such-chain', limit: 0 }), status.NOT_FOUND, /no-such-chain/],
    ['spec without nodes', () => call(c.putChain.bind(c), { spec: { ...chainSpec('chain-x', 21_700), nodes: [] } }), status.INVALID_ARGUMENT, /nodes/],
    ['no spec', () => call(c.putChain.bind(c), { spec: undefined }), status.INVALID_ARGUMENT, /spec/],
    ['unknown fencing mode', () => call(c.putChain.bind(c), { spec: { ...chainSpec('chain-x', 21_700), fencingMode: 7 as FencingMode } }), status.INVALID_ARGUMENT, /fencing mode/],
    ['commit without a head', () => call(c.commitUnsafeHead.bind(c), { chainId: 'chain-b', nodeId: 'n1', term: 5n, head: undefined }), status.INVALID_ARGUMENT, /head/],
    ['commit under term 0', () => call(c.commitUnsafeHead.bind(c), { chainId: 'chain-b', nodeId: 'n1', term: 0n, head: { number: 1n, hash: Buffer.alloc(32, 1), parentHash: Buffer.alloc(32, 2), l1Origin: '', timestamp: 1n, term: 0n, nodeId: '' } }), status.INVALID_ARGUMENT, /term/],
    ['lease too short', () => call(c.putChain.bind(c), { spec: { ...chainSpec('chain-x', 21_700), policy: { leaseTtlMs: 600 } } }), status.INVALID_ARGUMENT, /leaseTtlMs/],
    ['bad endpoint', () => call(c.putChain.bind(c), { spec: { ...chainSpec('chain-x', 21_700), nodes: [{ id: 'n', endpoint: 'nowhere', priority: 0, zone: '' }] } }), status.INVALID_ARGUMENT, /endpoint/],
    ['no reason', () => call(c.pause.bind(c), { chainId: 'chain-b', reason: '', until: undefined, idempotencyKey: '' }), status.INVALID_ARGUMENT, /reason/],
    ['override without a reason', () => call(c.override.bind(c), { chainId: 'chain-b', nodeId: 'zz9', reason: '', idempotencyKey: '', rollbackHead: false }), status.INVALID_ARGUMENT, /reason/],
    ['override without a node', () => call(c.override.bind(c), { chainId: 'chain-b', nodeId: '', reason: 'x', idempotencyKey: '', rollbackHead: false }), status.INVALID_ARGUMENT, /node_id/],
    ['override of a node of no chain', () => call(c.override.bind(c), { chainId: 'chain-b', nodeId: 'zz9', reason: 'x', idempotencyKey: '', rollbackHead: false }), status.NOT_FOUND, /zz9/],
    ['fencing mode unspecified', () => call(c.setFencingMode.bind(c), { chainId: 'chain-b', mode: FencingMode.FENCING_MODE_UNSPECIFIED, reason: 'x', idempotencyKey: '' }), status.INVALID_ARGUMENT, /mode/],
    ['fencing mode unknown', () => call(c.setFencingMode.bind(c), { chainId: 'chain-b', mode: 9 as FencingMode, reason: 'x', idempotencyKey: '' }), status.INVALID_ARGUMENT, /mode/],
    ['fencing mode without a reason', () => call(c.setFencingMode.bind(c), { chainId: 'chain-b', mode: FencingMode.FENCING_MODE_COMMIT, reason: '', idempotencyKey: '' }), status.INVALID_ARGUMENT, /reason/],
    ['fencing mode of an unknown chain', () => call(c.setFencingMode.bind(c), { chainId: 'no-such-chain', mode: FencingMode.FENCING_MODE_COMMIT, reason: 'x', idempotencyKey: '' }), status.NOT_FOUND, /no-such-chain/],
    ['clearing an override without a reason', () => call(c.clearOverride.bind(c), { chainId: 'chain-b', reason: '', idempotencyKey: '' }), status.INVALID_ARGUMENT, /reason/],
    ['pause ending in the past', () => call(c.pause.bind(c), { chainId: 'chain-b', reason: 'x', until: new Date(Date.now() - 60_000), idempotencyKey: '' }), status.INVALID_ARGUMENT, /until/],
    ['switchover next month', () => call(c.switchover.bind(c), { chainId: 'chain-b', target: '', scheduledAt: new Date(Date.now() + 30 * 86_400_000), reason: 'x', idempotencyKey: '' }), status.INVALID_ARGUMENT, /scheduledAt/],
    ['unknown operation', () => call(c.getOperation.bind(c), { operationId: 'op-0000000000001-deadbeef', waitMs: 0 }), status.NOT_FOUND, /op-0000000000001-deadbeef/],
    ['bad operation id', () => call(c.getOperation.bind(c), { operationId: '../etc', waitMs: 0 }), status.INVALID_ARGUMENT, /operation id/],
    ['no operation id', () => call(c.getOperation.bind(c), { operationId: '', waitMs: 0 }), status.INVALID_ARGUMENT, /operation_id/],
    ['list limit too large', () => call(c.listOperations.bind(c), { chainId: '', limit: 5000 }), status.INVALID_ARGUMENT, /limit/],
    ['unknown chain filter', () => call(c.listChains.bind(c), { filter: 42 as ChainFilter }), status.INVALID_ARGUMENT, /filter/],
    ['over-long idempotency key', () => call(c.resume.bind(c), { chainId: 'chain-b', reason: 'x', idempotencyKey: 'k'.repeat(300) }), status.INVALID_ARGUMENT, /Idempotency-Key/],
  ];
  for (const [name, run, code, message] of cases) {
    const err = await failure(run());
    t.equal(err.code, code, `${name}: status`);
    t.match(err.details, message, `${name}: says what is wrong`);
    t.equal(batonCode(err), status[code], `${name}: Baton code in the trailers`);
  }
  t.same((await call(c.listOperations.bind(c), { chainId: 'chain-b', limit: 0 })).operations, [], 'no operation was written');
  t.equal((await failure(call(c.getChain.bind(c), { chainId: 'chain-x' }))).code, status.NOT_FOUND, 'no refused spec was written');
  t.equal((await call(c.getChain.bind(c), { chainId: 'chain-b' })).chain?.spec?.fencingMode, FencingMode.FENCING_MODE_LEASE, 'no refused mode switch changed the spec');

});

t.test('the request id travels back in the response headers', async (t) => {
  const headers = await new Promise<string | undefined>((resolve, reject) => {
    const req = c.getFleetSettings({}, metadata({ 'x-request-id': 'req-42' }), { deadline: Date.now() + 5000 }, (err) => err && reject(err));
    req.on('metadata', (md) => resolve(md.get('x-request-id')[0]?.toString()));
  });
  t.equal(headers, 'req-42');
});
