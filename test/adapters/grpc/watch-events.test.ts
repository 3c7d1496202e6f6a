// WatchEvents over real gRPC: a Pause shows up as a `paused` event on a chain-filtered stream; a
// stream resumed with after_id delivers exactly what followed that id; bad ids are refused; a
// shutdown ends open streams with UNAVAILABLE.
import { Metadata, status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import t from 'tap';
import { EventType, type Event, type WatchEventsRequest, type WatchEventsResponse } from '../../../src/gen/baton/v1/baton.js';
import { call, chainSpec, startService, type Harness } from './harness.js';

const harness = await startService(t, 'grpc-events');
const c = harness.baton;

interface Watch {
  readonly events: Event[];
  /** Resolves with the events so far once `until` holds for one of them; rejects after `ms`. */
  waitFor(until: (e: Event) => boolean, ms?: number): Promise<Event[]>;
  /** The status the stream ended with. */
  readonly ended: Promise<ServiceError | undefined>;
  cancel(): void;
}

/** Opens a stream (deadline 60 s) and resolves once the server says it is subscribed. */
async function watch(h: Harness, req: WatchEventsRequest): Promise<Watch> {
  const stream: ClientReadableStream<WatchEventsResponse> = h.baton.watchEvents(req, new Metadata(), { deadline: Date.now() + 60_000 });
  const events: Event[] = [];
  const waiters = new Set<() => void>();
  stream.on('data', (res: WatchEventsResponse) => {
    events.push(res.event!);
    for (const w of waiters) w();
  });
  const ended = new Promise<ServiceError | undefined>((resolve) => {
    stream.on('error', (err: ServiceError) => resolve(err));
    stream.on('end', () => resolve(undefined));
  });
  await Promise.race([
    new Promise((resolve) => stream.once('metadata', resolve)),
    ended.then((err) => Promise.reject(err ?? new Error('stream ended before it was subscribed'))),
  ]);
  return {
    events,
    ended,
    cancel: () => stream.cancel(),
    waitFor: (until, ms = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (!events.some(until)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve([...events]);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching event within ${ms} ms; got ${events.map((e) => EventType[e.type]).join(', ')}`));
        }, ms);
        waiters.add(check);
        check();
      }),
  };
}

function order(id: string): [bigint, number] {
  const [rev, idx] = id.split('-');
  return [BigInt(rev!), Number(idx)];
}
function after(a: string, b: string): boolean {
  const [ra, ia] = order(a);
  const [rb, ib] = order(b);
  return ra > rb || (ra === rb && ia > ib);
}

t.test('a pause is streamed; a stream resumed after an id gets exactly what followed it', async (t) => {
  await call(c.putChain.bind(c), { spec: chainSpec('chain-w', 22_100) });
  const live = await watch(harness, { afterId: '', chainId: 'chain-w' });
  t.teardown(() => live.cancel());

  await call(c.putChain.bind(c), { spec: chainSpec('chain-other', 22_200) });
  const pause = await call(c.pause.bind(c), { chainId: 'chain-w', reason: 'watch me', until: undefined, idempotencyKey: '' });
  const seen = await live.waitFor((e) => e.type === EventType.EVENT_TYPE_PAUSED);
  const paused = seen.find((e) => e.type === EventType.EVENT_TYPE_PAUSED)!;
  t.equal(paused.chainId, 'chain-w');
  t.match(paused.data, { reason: 'watch me', operationId: pause.operation!.id }, 'the pause record');
  t.ok(seen.every((e) => e.chainId === 'chain-w'), 'the filter keeps other chains out');
  t.ok(
    seen.some((e) => e.type === EventType.EVENT_TYPE_OPERATION_CHANGED && e.data?.id === pause.operation!.id),
    'the operation is streamed too',
  );
  t.ok(seen.every((e, i) => i === 0 || after(e.id, seen[i - 1]!.id)), 'ids increase');

  await call(c.resume.bind(c), { chainId: 'chain-w', reason: 'enough', idempotencyKey: '' });
  const all = await live.waitFor((e) => e.type === EventType.EVENT_TYPE_RESUMED);

  // Resume right before the paused event: the same events, with the same ids, follow.
  const at = all.indexOf(paused);
  t.ok(at > 0, 'something came before the pause (its operation)');
  const resumed = await watch(harness, { afterId: all[at - 1]!.id, chainId: 'chain-w' });
  t.teardown(() => resumed.cancel());
  const replayed = await resumed.waitFor((e) => e.type === EventType.EVENT_TYPE_RESUMED);
  const expected = all.slice(at);
  t.same(replayed.slice(0, expected.length).map((e) => [e.id, e.type]), expected.map((e) => [e.id, e.type]), 'exactly what followed the id');

  // After the paused event itself: it is not delivered again.
  const later = await watch(harness, { afterId: paused.id, chainId: 'chain-w' });
  t.teardown(() => later.cancel());
  const rest = await later.waitFor((e) => e.type === EventType.EVENT_TYPE_RESUMED);
  t.notOk(rest.some((e) => e.id === paused.id || !after(e.id, paused.id)), 'nothing at or before the id');
});

t.test('bad stream requests are refused', async (t) => {
  for (const [name, req, message] of [
    ['malformed after_id', { afterId: 'yesterday', chainId: '' }, /after_id/],
    ['bad chain id', { afterId: '', chainId: 'Chain_W' }, /chain_id/],
  ] as const) {
    const err = await watch(harness, req).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    t.equal(err?.code, status.INVALID_ARGUMENT, `${name}: INVALID_ARGUMENT`);
    t.match(err?.details, message, name);
  }
});

t.test('closing the service ends open streams with UNAVAILABLE', async (t) => {
  const open = await watch(harness, { afterId: '', chainId: '' });
  await harness.close();
  const err = await open.ended;
  t.equal(err?.code, status.UNAVAILABLE, 'clients resume elsewhere with after_id');
  t.match(err?.details, /shutting down/);
});
