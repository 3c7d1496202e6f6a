// ReplicaSession against a real etcd: supervisor elections, the lease proof, expiry and takeover,
// fencing of a deposed supervisor, failover slots, and deadlines while etcd is frozen (SIGSTOP).
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Etcd3 } from 'etcd3';
import t, { type Test } from 'tap';
import { EtcdChainStore } from '../../../src/adapters/etcd/chain-store.js';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import { EtcdKeys } from '../../../src/adapters/etcd/keys.js';
import { ReplicaSession, type ReplicaSessionOptions, type SessionLoss, type SupervisorChange } from '../../../src/adapters/etcd/replica-session.js';
import { isBatonError, type ErrorCode } from '../../../src/core/errors.js';
import type { SupervisionFence } from '../../../src/core/ports.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { waitFor } from '../../../src/devstack/process.js';
import { specOf } from '../../contract/chain-store.contract.js';

const C = 'chain-a';
const TTL_MS = 3000;
const MARGIN_MS = 500;

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());

let prefixes = 0;
/** A fresh key prefix, a client, a store and a session factory; everything is closed at teardown. */
async function setup(t: Test, on: EtcdCluster = cluster) {
  const client = createEtcdClient({ endpoints: on.endpoints });
  const keys = new EtcdKeys(`/baton-session-${process.pid}-${++prefixes}/`);
  const store = new EtcdChainStore(client, keys);
  const sessions: ReplicaSession[] = [];
  t.teardown(async () => {
    await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
    client.close();
  });
  await store.putSpec(specOf(C));
  const start = async (replicaId: string, opts: Partial<ReplicaSessionOptions> = {}) => {
    const s = await ReplicaSession.start({ client, keys, replicaId, ...opts });
    sessions.push(s);
    return s;
  };
  return { client, keys, store, start };
}

async function rejectsWith(t: Test, p: Promise<unknown>, code: ErrorCode, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected ${code}, but it succeeded`);
  } catch (err) {
    t.ok(isBatonError(err, code), `${what}: ${code}`, { got: isBatonError(err) ? err.code : String(err) });
  }
}

const leader = (nodeId: string, supervisor: string) =>
  [
    { nodeId, reason: `make ${nodeId} active`, fromHead: 0, mode: 'lease' as const },
    { nodeId, previousNodeId: undefined, previousTerm: undefined, fromHead: 0, reason: `make ${nodeId} active`, atMs: Date.now(), supervisor, durationMs: undefined },
  ] as const;

t.test('two sessions race for one chain: exactly one wins, and a release lets the other in', async (t) => {
  const { store, start } = await setup(t);
  const [a, b] = await Promise.all([start('replica-a'), start('replica-b')]);
  const fences = await Promise.all([a.acquire(C), b.acquire(C)]);
  const winners = fences.filter((f): f is SupervisionFence => f !== undefined);
  t.equal(winners.length, 1, 'exactly one acquire wins');
  const win = winners[0]!;
  const [winner, loser] = win.replicaId === 'replica-a' ? [a, b] : [b, a];
  t.equal((await store.read(C))?.supervisor, winner.replicaId, 'the key names the winner');
  t.same(await loser.holders(), new Map([[C, winner.replicaId]]), 'holders() lists the chain under the winner');
  t.ok(win.createRevision > 0n);
  t.same(await winner.acquire(C), win, "acquiring a chain one already holds returns the same fence (a lost reply's key is adopted)");
  t.equal(await loser.acquire(C), undefined, 'the loser still cannot acquire');
  t.equal(await loser.acquire('chain-none'), undefined, 'a chain without a spec cannot be acquired');

  const changes: SupervisorChange[] = [];
  const sub = await loser.watchSupervisors((c) => changes.push(c));
  t.teardown(() => sub.close());
  t.equal(await winner.release(win), true, 'release deletes the key');
  await waitFor('the free event', () => changes.find((c) => c.kind === 'free' && c.chainId === C), 2000);
  const taken = await loser.acquire(C);
  t.ok(taken, 'the other replica acquires after the release');
  t.equal((await store.read(C))?.supervisor, loser.replicaId);
  t.equal(await winner.release(win), false, 'an old fence releases nothing');
  await waitFor('the held event', () => changes.find((c) => c.kind === 'held' && c.holder === loser.replicaId), 2000);
});

t.test('registry and proof while etcd is up', async (t) => {
  const { start } = await setup(t);
  const a = await start('replica-a', { apiAddress: '127.0.0.1:8080' });
  const joined: string[] = [];
  const left: string[] = [];
  const sub = await a.watchReplicas((c) => (c.kind === 'joined' ? joined.push(c.replicaId) : c.kind === 'left' ? left.push(c.replicaId) : 0));
  t.teardown(() => sub.close());
  const b = await start('replica-b');
  t.same(await a.liveReplicas(), ['replica-a', 'replica-b']);
  await waitFor('replica-b joined', () => (joined.includes('replica-b') ? true : undefined), 2000);
  await b.close();
  await waitFor('replica-b left', () => (left.includes('replica-b') ? true : undefined), 2000);
  t.same(await a.liveReplicas(), ['replica-a'], 'a closed session leaves the registry at once (revoked)');

  const p0 = a.provenUntilMs();
  await new Promise((r) => setTimeout(r, 1500));
  const now = performance.now();
  const p1 = a.provenUntilMs();
  t.ok(p1 > p0, 'provenUntil advances with each acknowledged keepalive');
  t.ok(a.proven(now), 'proven now');
  // The last acked keepalive was sent at most one interval (+ latency) ago.
  t.ok(p1 - now <= TTL_MS - MARGIN_MS && p1 - now >= TTL_MS - MARGIN_MS - TTL_MS / 3 - 400, 'proof = last acked send + TTL − margin', { ahead: p1 - now });
  const stats = a.stats();
  t.ok(stats.acked >= 2, 'keepalives acked');
  t.comment(`keepalive ack latency: last ${stats.lastAckLatencyMs?.toFixed(2)} ms, max ${stats.maxAckLatencyMs?.toFixed(2)} ms over ${stats.acked} acks`);
});

t.test("an abandoned session's lease expires: its key goes, the other replica takes over, the deposed fence is refused", async (t) => {
  const { store, start } = await setup(t);
  const [a, b] = await Promise.all([start('replica-a'), start('replica-b')]);
  const fenceA = await a.acquire(C);
  if (!fenceA) throw new Error('replica-a could not acquire');
  const term1 = await store.writeLeader(fenceA, undefined, ...leader('n1', 'replica-a'));
  const changes: SupervisorChange[] = [];
  const sub = await b.watchSupervisors((c) => changes.push(c));
  t.teardown(() => sub.close());

  const abandonedAt = performance.now();
  a.abandon(); // keepalives stop, no revoke: as if replica-a crashed
  t.equal(await b.acquire(C), undefined, 'the key outlives its keepalives until the TTL runs out');
  await waitFor('the supervisor key to expire', () => changes.find((c) => c.kind === 'free' && c.chainId === C), TTL_MS + 3000, 20);
  const expiredAfter = performance.now() - abandonedAt;
  t.ok(expiredAfter <= TTL_MS + 1500, 'expired about one TTL after the last keepalive', { expiredAfter });
  t.comment(`supervisor key expired ${expiredAfter.toFixed(0)} ms after the keepalives stopped`);

  const fenceB = await b.acquire(C);
  t.ok(fenceB, 'replica-b acquires the free chain');
  await rejectsWith(t, store.writeLeader(fenceA, term1, ...leader('n2', 'replica-a')), 'FENCED', "the deposed supervisor's write");
  const term2 = await store.writeLeader(fenceB!, term1, ...leader('n2', 'replica-b'));
  t.ok(term2 > term1, 'the new supervisor writes');
});

t.test('failover slots cap concurrent failovers at max', async (t) => {
  const { start } = await setup(t);
  const [a, b] = await Promise.all([start('replica-a'), start('replica-b')]);
  const r1 = await a.acquireFailoverSlot(2);
  const r2 = await a.acquireFailoverSlot(2);
  t.ok(r1 && r2, 'one replica can run two failovers when the cap is 2');
  t.equal(await b.acquireFailoverSlot(2), undefined, 'a third is refused');
  await r1!();
  const r3 = await b.acquireFailoverSlot(2);
  t.ok(r3, 'a released slot is free again');
  t.equal(await a.acquireFailoverSlot(2), undefined, 'still capped');
  t.equal(await a.acquireFailoverSlot(0), undefined, 'cap 0 disables failovers');
  await b.close();
  t.ok(await a.acquireFailoverSlot(2), "a closed replica's slot is freed with its lease");
});

t.test("orphaned failover slots (a take that landed after its taker gave up) are swept, and only this replica's", async (t) => {
  const { client, keys, start } = await setup(t);
  const [a, b] = await Promise.all([start('replica-a'), start('replica-b')]);
  // What a take looks like when its reply was lost and its undo arrived before it: a's key, a's
  // lease, a nonce a no longer holds. Two of them fill the default cap of 2.
  await client.put(keys.failoverSlot(0)).value('replica-a/late-1').lease(a.leaseId).exec();
  await client.put(keys.failoverSlot(1)).value('replica-a/late-2').lease(a.leaseId).exec();
  t.equal(await b.acquireFailoverSlot(2), undefined, 'the orphans block every other replica');
  t.equal(await b.sweepFailoverSlots(), 0, "another replica's sweep leaves them alone");
  t.equal(await a.sweepFailoverSlots(), 2, "a's sweep deletes both");
  const held = await b.acquireFailoverSlot(2);
  t.ok(held, 'b can take a slot again');
  const mine = await a.acquireFailoverSlot(2);
  t.ok(mine, 'and so can a');
  t.equal(await a.sweepFailoverSlots(), 0, 'a held slot is not swept');
  t.equal(await b.sweepFailoverSlots(), 0, "nor is b's");
  t.equal(await a.acquireFailoverSlot(2), undefined, 'both slots are really held');
  await client.put(keys.failoverSlot(5)).value('replica-a/late-3').lease(a.leaseId).exec();
  const mine2 = await waitFor('the periodic sweep', async () => ((await client.get(keys.failoverSlot(5)).string()) === null ? true : undefined), 12_000, 200);
  t.ok(mine2, 'the periodic sweep deletes an orphan nobody asked about');
  await held!();
  await mine!();
});

t.test('timing rules are checked at start', async (t) => {
  const { start } = await setup(t);
  await rejectsWith(t, start('replica-a', { ttlSeconds: 1 }), 'INVALID_ARGUMENT', 'TTL below etcd minimum');
  await rejectsWith(t, start('replica-a', { ttlSeconds: 3, marginMs: 2500 }), 'INVALID_ARGUMENT', 'margin leaves no room for a keepalive');
  await rejectsWith(t, start('bad/id'), 'INVALID_ARGUMENT', 'replica id');
});

t.test('etcd frozen: the proof runs out on time, long before etcd3 notices, and calls hit their deadline', async (t) => {
  const frozen = await EtcdCluster.start({ members: 1 });
  t.teardown(() => frozen.stop());
  const { store, start } = await setup(t, frozen);
  const a = await start('replica-a', { ttlSeconds: TTL_MS / 1000, marginMs: MARGIN_MS });
  const fenceA = await a.acquire(C);
  if (!fenceA) throw new Error('replica-a could not acquire');
  const term1 = await store.writeLeader(fenceA, undefined, ...leader('n1', 'replica-a'));

  // The library's own view, for comparison: a lease with its built-in keepalive loop.
  const lib = new Etcd3({ hosts: frozen.endpoints });
  t.teardown(() => lib.close());
  const libLease = lib.lease(TTL_MS / 1000);
  let libLostAt: number | undefined;
  libLease.on('lost', () => (libLostAt ??= performance.now()));
  await libLease.grant();
  await new Promise((r) => setTimeout(r, 1200)); // a few keepalive rounds

  const lost = once(a, 'lost') as Promise<[SessionLoss]>;
  const pausedAt = performance.now();
  frozen.pause(0);

  const readStarted = performance.now();
  await rejectsWith(t, store.read(C), 'STORE_UNAVAILABLE', 'read on a frozen etcd');
  const readTook = performance.now() - readStarted;
  t.ok(readTook < 2000 + 500, 'the read gave up at its 2 s deadline', { readTook });

  const [loss] = await lost;
  const lastAckSentAt = loss.provenUntilMs - (TTL_MS - MARGIN_MS);
  t.equal(loss.reason, 'proof-expired');
  t.ok(loss.atMs >= loss.provenUntilMs, 'not before the proof ran out', { early: loss.provenUntilMs - loss.atMs });
  t.ok(loss.atMs - lastAckSentAt <= TTL_MS - MARGIN_MS + 1000, 'within TTL − margin + 1 s of the last acked keepalive', { sinceLastAck: loss.atMs - lastAckSentAt });
  t.ok(lastAckSentAt <= pausedAt && pausedAt - lastAckSentAt <= TTL_MS / 3 + 400, 'the last ack was the keepalive just before the freeze');
  t.equal(libLostAt, undefined, 'etcd3 has not noticed yet');
  t.equal(a.state, 'lost');
  t.notOk(a.proven(), 'no longer proven');
  t.comment(`frozen at +0 ms; last acked keepalive sent ${(lastAckSentAt - pausedAt).toFixed(0)} ms; lost at +${(loss.atMs - pausedAt).toFixed(0)} ms (${(loss.atMs - loss.provenUntilMs).toFixed(1)} ms after provenUntil); read failed after ${readTook.toFixed(0)} ms`);
  await rejectsWith(t, a.acquire(C), 'LEASE_EXPIRED', 'a lost session refuses to act');

  frozen.resume(0);
  const b = await waitFor('a new session after the freeze', () => start('replica-b'), 5000, 100);
  const fenceB = await waitFor('the dead lease to release chain-a', () => b.acquire(C), TTL_MS + 3000, 100);
  await rejectsWith(t, store.writeLeader(fenceA, term1, ...leader('n2', 'replica-a')), 'FENCED', 'the lost session cannot write');
  t.ok((await store.writeLeader(fenceB, term1, ...leader('n2', 'replica-b'))) > term1, 'the new supervisor can');
  t.comment(libLostAt === undefined ? 'etcd3 never reported its lease lost during the test' : `etcd3 reported its lease lost ${(libLostAt - pausedAt).toFixed(0)} ms after the freeze`);
});

t.test('a keepalive acknowledged later than one interval still extends the proof', async (t) => {
  const slow = await EtcdCluster.start({ members: 1 });
  t.teardown(() => slow.stop());
  const { start } = await setup(t, slow);
  const intervalMs = 500;
  const a = await start('replica-a', { ttlSeconds: TTL_MS / 1000, marginMs: MARGIN_MS, keepaliveIntervalMs: intervalMs });
  await new Promise((r) => setTimeout(r, 1200)); // a few prompt keepalive rounds

  // etcd stops answering for longer than one interval, well within the proof (TTL − margin).
  const pausedAt = performance.now();
  slow.pause(0);
  await new Promise((r) => setTimeout(r, 1000));
  slow.resume(0);
  // Only a keepalive sent during the pause proves the lease past pausedAt + TTL − margin.
  await waitFor('an ack of a keepalive sent during the pause', () => (a.provenUntilMs() >= pausedAt + TTL_MS - MARGIN_MS ? true : undefined), 3000, 20);

  t.equal(a.state, 'live', 'the session lived through the pause');
  t.ok(a.proven(), 'and is proven');
  const late = a.stats().maxAckLatencyMs ?? 0;
  t.ok(late > intervalMs, 'a keepalive sent during the pause was acknowledged after more than one interval, and used', { late, intervalMs });
});
