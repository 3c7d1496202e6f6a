// GET /v1/events over a real listening app and a real etcd, read with fetch as a client would. The
// events are made the way Baton makes them: requests through the API, and the supervisor's fenced
// writes (pause, operation progress, a new leader) done here under a real supervisor key.
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { createEtcdClient } from '../../../src/adapters/etcd/client.js';
import type { EventSubscription } from '../../../src/adapters/etcd/event-feed.js';
import { ReplicaSession } from '../../../src/adapters/etcd/replica-session.js';
import type { EventSource } from '../../../src/adapters/http/events.js';
import type { SupervisionFence } from '../../../src/core/ports.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { waitFor } from '../../../src/devstack/process.js';
import { buildHarness, call, idleSpec, type Harness } from './harness.js';
import { compareEventIds, SseClient } from './sse-client.js';

const cluster = await EtcdCluster.start({ members: 1 });
t.teardown(() => cluster.stop());
const client = createEtcdClient({ endpoints: cluster.endpoints });
t.teardown(() => client.close());

/** Counts the etcd watches the SSE route opens and closes: a closed client must leave none open. */
const watches = { opened: 0, closed: 0, open: () => watches.opened - watches.closed };
const counting = (feed: EventSource): EventSource => ({
  async subscribe(after, onEvent) {
    const sub = await feed.subscribe(after, onEvent);
    watches.opened++;
    let done = false;
    const counted: EventSubscription = {
      close: async () => {
        if (!done) watches.closed++;
        done = true;
        await sub.close();
      },
    };
    return counted;
  },
});

const prefix = `/baton-events-${process.pid}/`;
const h = await buildHarness({ client, prefix, events: counting, sseHeartbeatMs: 150 });
t.teardown(() => h.app.close());
const base = await h.app.listen({ host: '127.0.0.1', port: 0 });
const session = await ReplicaSession.start({ client, keys: h.keys, replicaId: 'replica-events' });
t.teardown(() => session.close());

const post = (t: Test, url: string, body: unknown) => call(t, h, { method: 'POST', url, payload: body as object });
const putChain = async (t: Test, id: string, leaseTtlMs = 6000) => {
  const res = await call(t, h, { method: 'PUT', url: `/v1/chains/${id}`, payload: { ...idleSpec(), policy: { blockTimeMs: 500, probeIntervalMs: 250, leaseTtlMs } } });
  t.ok(res.status === 200 || res.status === 201, `PUT ${id}`);
};

async function open(t: Test, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const sse = await SseClient.open(`${base}${path}`, headers);
  t.teardown(() => sse.close());
  const problems = h.contract.check('GET', '/v1/events', { statusCode: sse.response.status, headers: Object.fromEntries(sse.response.headers), body: '' });
  t.same(problems, [], `GET ${path} -> ${sse.response.status} ${sse.response.headers.get('content-type')} conforms to openapi.yaml`);
  return sse;
}

async function fence(chainId: string): Promise<SupervisionFence> {
  const f = await session.acquire(chainId);
  if (!f) throw new Error(`could not supervise ${chainId}`);
  return f;
}

/** Executes an accepted pause or resume as the chain's supervisor would (fenced writes). */
async function execute(f: SupervisionFence, operationId: string): Promise<void> {
  const op = (await h.ops.get(operationId))!;
  const pause = op.params.kind === 'pause' ? { reason: op.params.reason, untilMs: op.params.untilMs, sinceMs: Date.now(), operationId } : undefined;
  await h.ops.setPause(f, pause);
  await h.ops.update(f, { ...op, state: 'succeeded', steps: [{ name: op.params.kind, state: 'done', atMs: Date.now(), detail: 'done' }], result: { detail: 'done' } });
}

t.test('the stream carries chain, operation, pause, resume and leader events of its chain, with heartbeats', async (t) => {
  const sse = await open(t, '/v1/events?chain=chain-s');
  const all = await open(t, '/v1/events');
  t.equal(sse.response.status, 200);
  t.match(sse.response.headers.get('content-type'), /^text\/event-stream/);
  t.equal(sse.response.headers.get('cache-control'), 'no-cache');

  await putChain(t, 'chain-s');
  await putChain(t, 'chain-other');
  const f = await fence('chain-s');
  const pause = await post(t, '/v1/chains/chain-s/pause', { reason: 'maintenance' });
  await execute(f, pause.body.id);
  const resume = await post(t, '/v1/chains/chain-s/resume', { reason: 'done' });
  await execute(f, resume.body.id);
  const term = await h.store.writeLeader(f, undefined, { nodeId: 'n2', reason: 'operator failover', fromHead: 0, mode: 'lease' }, {
    nodeId: 'n2', previousNodeId: undefined, previousTerm: undefined, fromHead: 0, reason: 'operator failover', atMs: Date.now(), supervisor: 'replica-events', durationMs: undefined,
  });

  await sse.waitForEvent('leader-changed', (e) => e.event === 'leader-changed');
  t.same(sse.events.map((e) => [e.event, e.data.data.state ?? null]), [
    ['chain-registered', null],
    ['operation-changed', 'pending'],
    ['paused', null],
    ['operation-changed', 'succeeded'],
    ['operation-changed', 'pending'],
    ['resumed', null],
    ['operation-changed', 'succeeded'],
    ['leader-changed', null],
  ], 'every event of chain-s, in order, and nothing of chain-other');
  for (const e of sse.events) {
    t.equal(e.data.id, e.id, 'data carries the event id');
    t.equal(e.data.type, e.event, 'and its type');
    t.equal(e.data.chainId, 'chain-s');
  }
  const ids = sse.ids();
  t.same([...ids].sort(compareEventIds), ids, 'ids increase');
  t.equal(new Set(ids).size, ids.length, 'no id twice');
  t.match(sse.events.find((e) => e.event === 'paused')!.data.data, { reason: 'maintenance', operationId: pause.body.id });
  t.match(sse.events.filter((e) => e.event === 'operation-changed')[1]!.data.data, { id: pause.body.id, kind: 'pause', state: 'succeeded' });
  t.same(sse.events.find((e) => e.event === 'leader-changed')!.data.data, { nodeId: 'n2', term: term.toString(), reason: 'operator failover', fromHead: 0 });
  t.equal(sse.retry, 2000, 'tells the client how soon to reconnect');

  await all.waitForEvent('leader-changed', (e) => e.event === 'leader-changed');
  t.ok(all.events.some((e) => e.data.chainId === 'chain-other'), 'the unfiltered stream has chain-other too');
  await waitFor('two heartbeats', () => (sse.comments.filter((c) => c === 'heartbeat').length >= 2 ? true : undefined), 5000);
  t.pass('heartbeat comments keep the connection alive');
});

t.test('a client that reconnects with Last-Event-ID gets exactly what it missed, no duplicates', async (t) => {
  await putChain(t, 'chain-r');
  const reference = await open(t, '/v1/events?chain=chain-r');
  const first = await open(t, '/v1/events?chain=chain-r');
  const bump = async (n: number) => {
    for (let i = 0; i < n; i++) await putChain(t, 'chain-r', 6000 + (reference.events.length + i + 1) * 100);
  };
  await bump(3);
  await first.waitForCount(3);
  const lastSeen = first.events[first.events.length - 1]!.id;
  first.close();
  await bump(3);
  await reference.waitForCount(6);

  const header = await open(t, '/v1/events?chain=chain-r', { 'last-event-id': lastSeen });
  const query = await open(t, `/v1/events?chain=chain-r&lastEventId=${lastSeen}`);
  const missed = reference.ids().filter((id) => compareEventIds(id, lastSeen) > 0);
  t.equal(missed.length, 3);
  await header.waitForCount(3);
  await query.waitForCount(3);
  await new Promise((r) => setTimeout(r, 200));
  t.same(header.ids(), missed, 'Last-Event-ID header: exactly the missed events');
  t.same(query.ids(), missed, '?lastEventId=: the same');
  t.same([...first.ids(), ...header.ids()], reference.ids(), 'first connection + resumed one = the whole stream, nothing twice');

  await bump(1);
  await header.waitForCount(4);
  t.equal(header.events[3]!.id, reference.ids()[6], 'and then it goes on live');
});

t.test('a client that disconnects leaves no etcd watch behind', async (t) => {
  await waitFor('earlier streams closed', () => (watches.open() <= 0 ? true : undefined), 5000).catch(() => undefined);
  const before = watches.open();
  const streams = await Promise.all([1, 2, 3, 4, 5].map(() => open(t, '/v1/events')));
  t.equal(watches.open(), before + 5, 'one watch per stream');
  for (const s of streams) s.close();
  await waitFor('every watch closed', () => (watches.open() === before ? true : undefined), 5000);
  t.equal(watches.open(), before, 'the watches ended with their connections');
});

t.test('closing the app ends its open streams (a graceful shutdown is not held up)', async (t) => {
  const other: Harness = await buildHarness({ client, prefix, events: counting });
  const url = await other.app.listen({ host: '127.0.0.1', port: 0 });
  const before = watches.open();
  const sse = await SseClient.open(`${url}/v1/events`);
  t.equal(watches.open(), before + 1);
  // A spare connection that never sends a request (HTTP clients open such) must not hold close() either.
  const spare = connect(Number(new URL(url).port), '127.0.0.1');
  await new Promise((r) => spare.once('connect', r));
  const started = Date.now();
  await other.app.close();
  t.ok(Date.now() - started < 3000, `app.close() took ${Date.now() - started} ms`);
  await waitFor('the stream ended', () => (sse.ended ? true : undefined), 3000);
  await waitFor('its watch closed', () => (watches.open() === before ? true : undefined), 3000);
  await waitFor('the spare connection closed', () => (spare.destroyed || spare.readableEnded ? true : undefined), 3000);
  t.pass('stream, watch and spare connection closed');
});
