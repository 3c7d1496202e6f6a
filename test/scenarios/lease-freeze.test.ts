// Lease mode with real processes: an active frozen (SIGSTOP) with a lease renewal in its socket
// buffer, kept frozen until Baton has failed over and the new active produces. When it wakes it
// reads the renewal; grpc-js would date the call's deadline from that read, so only the absolute
// deadline Baton sends (not_after_unix_ms) lets the node tell the renewal is stale. It must refuse
// it and produce nothing; the independent checker judges every node's log.
// In lease mode Baton waited out the old lease before the failover, so this node's own lease has
// lapsed when it wakes and it would refuse the renewal anyway (NOT_ACTIVE): without the not_after
// check only the refusal's code differs (seen: 5 passed, 1 failed). What fails without it for
// safety is shown in test/sim/lease.test.ts (a frozen node whose lease still runs, or a standby
// with a start in its buffer, grants itself a full TTL from its wake).
import t from 'tap';
import { waitFor } from '../../src/devstack/process.js';
import { readActivityLog } from '../../src/devstack/sim.js';
import { renewIntervalMs } from '../../src/core/lease-book.js';
import type { ActivityEvent } from '../../src/sim/activity.js';
import type { EntryOf } from '../helpers/sim.js';
import { assertCheckerClean, blocksOf, startStack } from '../helpers/stack.js';

function entriesOf<E extends ActivityEvent>(file: string, ev: E): EntryOf<E>[] {
  return readActivityLog(file).filter((e): e is EntryOf<E> => e.ev === ev);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('lease mode: an active frozen with a renewal in flight refuses it on waking, after the failover', async (t) => {
  const stack = await startStack(t, { chains: [{ id: 'chain-a', nodes: ['a1', 'a2', 'a3'] }] });
  const first = await stack.waitForProducingLeader('chain-a', 20_000);
  t.equal(first.view.leader?.mode, 'lease', 'the chain runs in lease mode');
  const oldProc = stack.simProcess('chain-a', first.nodeId);
  const old = stack.node('chain-a', first.nodeId);
  const { leaseTtlMs } = (await stack.api().getChain('chain-a')).body.spec.policy;
  const interval = renewIntervalMs(leaseTtlMs);

  // Freeze 60% of a renewal interval after a renewal: the next one is then due before Baton has
  // seen enough failed probes (3 x 150 ms, each waiting out a 150 ms deadline) to stop renewing.
  const seen = entriesOf(old.logFile, 'lease-renewed').length;
  const renewed = await waitFor('a renewal of the active', () => entriesOf(old.logFile, 'lease-renewed')[seen], 10_000, 10);
  await sleep(Math.max(0, renewed.t + Math.round(interval * 0.6) - Date.now())); // the fault's timing, not a condition
  oldProc.process.pause();
  const frozenAt = Date.now();

  const next = await stack.waitForProducingLeader('chain-a', 20_000, first.nodeId);
  const fresh = stack.node('chain-a', next.nodeId);
  await waitFor('blocks of the new term', () => (blocksOf(fresh.logFile).some((b) => BigInt(b.term) === next.term) ? true : undefined), 10_000);
  oldProc.process.resume();
  const wokeAt = Date.now();
  t.comment(`frozen for ${wokeAt - frozenAt} ms; lease TTL ${leaseTtlMs} ms, renewal every ${interval} ms`);

  // Everything the node refused after waking: the renewal(s) Baton sent while it was frozen.
  const refused = await waitFor('the woken node to refuse the renewal sent while it was frozen', () => {
    const r = entriesOf(old.logFile, 'rejected').filter((e) => e.rpc === 'RenewLease' && e.t >= frozenAt);
    return r.length > 0 ? r : undefined;
  }, 10_000, 20);
  t.same(refused.map((e) => [e.term, e.code]), refused.map(() => [first.term.toString(), 'DEADLINE_EXCEEDED']),
    `each renewal of term ${first.term} that waited in the socket buffer was refused as past its not_after (${refused.length})`);
  t.same(entriesOf(old.logFile, 'lease-renewed').filter((e) => e.t >= frozenAt), [], 'no renewal was accepted after the freeze');

  await waitFor('more blocks of the new active', () =>
    blocksOf(fresh.logFile).filter((b) => BigInt(b.term) === next.term).length >= 10 ? true : undefined, 10_000);
  t.same(blocksOf(old.logFile).filter((b) => b.t >= frozenAt), [], 'the woken node produced nothing');
  const ended = entriesOf(old.logFile, 'active-until').find((e) => BigInt(e.term) === first.term);
  t.equal(ended?.reason, 'lease-expired', 'its old lease ran out: nothing extended it');
  assertCheckerClean(t, stack);
});
