// Limits over mTLS: body size (413 / RESOURCE_EXHAUSTED), per-principal request rate (429 /
// RESOURCE_EXHAUSTED), concurrent long-polls and event streams per principal; each is hit, then
// recovered from, and one principal's limit does not touch another's.
import { request } from 'node:https';
import { Metadata, status } from '@grpc/grpc-js';
import t from 'tap';
import { waitFor } from '../../src/devstack/process.js';
import { call, DEADLINE_MS, rejection, startSecureService, type Identity } from './harness.js';

const h = await startSecureService(t, 'limits', {
  limits: { bodyBytes: 4096, ratePerSecond: 5, burst: 8, maxWaitsPerPrincipal: 1, maxStreamsPerPrincipal: 1 },
});
const admin = h.identity('admin');
const viewer = h.identity('viewer');
const spec = { nodes: [{ id: 'n1', endpoint: '127.0.0.1:1' }], policy: { leaseTtlMs: 8000 } };
t.equal((await h.rest(admin, 'PUT', '/v1/chains/chain-a', spec)).status, 201);

t.test('a body over the limit is 413 (REST) and RESOURCE_EXHAUSTED (gRPC); a normal one still passes', async (t) => {
  const big = { ...spec, genesisHash: undefined, nodes: Array.from({ length: 60 }, (_, i) => ({ id: `node-${i}`, endpoint: `127.0.0.1:${1000 + i}`, zone: 'z'.repeat(60) })) };
  const res = await h.rest(admin, 'PUT', '/v1/chains/chain-big', big);
  t.equal(res.status, 413);
  t.equal(res.body.code, 'PAYLOAD_TOO_LARGE');
  const c = h.grpc(admin);
  const err = await rejection(
    call(c.putChain.bind(c), {
      spec: { id: 'chain-big', nodes: big.nodes.map((n) => ({ ...n, priority: 0 })), blockTimeMs: 0, fencingMode: 0, genesisHash: Buffer.alloc(0), policy: undefined },
    }),
  );
  t.equal(err.code, status.RESOURCE_EXHAUSTED);
  t.equal((await h.rest(admin, 'GET', '/v1/chains/chain-big')).status, 404, 'nothing was written');
  t.equal((await h.rest(admin, 'PUT', '/v1/chains/chain-a', spec)).status, 200, 'a normal body passes');
});

t.test('the request rate of one principal is limited, recovers, and does not limit another', async (t) => {
  const who = h.identity('operator');
  let limited: { status: number; body: any } | undefined;
  for (let i = 0; i < 50 && !limited; i++) {
    const res = await h.rest(who, 'GET', '/v1/chains');
    if (res.status === 429) limited = res;
    else t.equal(res.status, 200);
  }
  t.ok(limited, 'a burst is limited');
  t.equal(limited?.body.code, 'RESOURCE_EXHAUSTED');
  t.match(limited?.body.message, /requests per second/);
  // gRPC takes from the same bucket (it refills meanwhile, so a few calls may pass first).
  const c = h.grpc(who);
  let code: number | undefined;
  for (let i = 0; i < 50 && code === undefined; i++) {
    code = await call(c.listChains.bind(c), { filter: 0 }).then(
      () => undefined,
      (err: { code: number }) => err.code,
    );
  }
  t.equal(code, status.RESOURCE_EXHAUSTED, 'gRPC is limited too');
  t.equal((await h.rest(viewer, 'GET', '/v1/chains')).status, 200, 'another principal is not limited');
  await waitFor('the bucket refills', async () => ((await h.rest(who, 'GET', '/v1/chains')).status === 200 ? true : undefined), 10_000, 250);
  t.pass('recovered');
});

/** Starts a GET and resolves with its status as soon as headers arrive; `close` drops it. */
function open(who: Identity, path: string): Promise<{ status: number; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request(`${h.service.address}${path}`, { ca: who.ca, cert: who.cert, key: who.key, agent: false, signal: AbortSignal.timeout(DEADLINE_MS * 2) }, (res) => {
      resolve({ status: res.statusCode ?? 0, close: () => req.destroy() });
      res.resume();
    });
    req.on('error', (err) => (err.name === 'AbortError' ? undefined : reject(err)));
    req.end();
  });
}

t.test('concurrent event streams per principal are capped; closing one frees its slot', async (t) => {
  const who = h.identity('stream-viewer', { cn: 'viewer', usage: 'client' });
  const first = await open(who, '/v1/events');
  t.equal(first.status, 200, 'the first stream opens');
  const second = await open(who, '/v1/events');
  t.equal(second.status, 429, 'a second stream of the same principal is refused');
  second.close();
  const c = h.grpc(who);
  const stream = c.watchEvents({ afterId: '', chainId: '' }, new Metadata(), { deadline: Date.now() + DEADLINE_MS });
  const gerr = await new Promise<{ code: number }>((resolve) => {
    stream.on('error', resolve);
    stream.on('metadata', () => resolve({ code: status.OK }));
  });
  t.equal(gerr.code, status.RESOURCE_EXHAUSTED, 'gRPC streams count against the same cap');
  first.close();
  const third = await waitFor(
    'the slot is given back',
    async () => {
      const s = await open(who, '/v1/events');
      if (s.status === 200) return s;
      s.close();
      return undefined;
    },
    10_000,
    300,
  );
  t.equal(third.status, 200, 'a new stream opens once the first is closed');
  third.close();
});

t.test('concurrent long-polls per principal are capped', async (t) => {
  const who = h.identity('poll-viewer', { cn: 'viewer', usage: 'client' });
  // No leader: term "0"; asking to wait for a change from 0 holds the request open.
  const polling = h.rest(who, 'GET', '/v1/chains/chain-a/leader?waitForChangeFrom=0&timeout=3000');
  const refused = await waitFor(
    'the first long-poll holds its slot',
    async () => {
      const r = await h.rest(who, 'GET', '/v1/chains/chain-a/leader?waitForChangeFrom=0&timeout=10');
      return r.status === 429 && /long-polls/.test(r.body.message) ? r : undefined;
    },
    5000,
    300,
  );
  t.equal(refused.body.code, 'RESOURCE_EXHAUSTED');
  t.equal((await polling).status, 200, 'the first long-poll answers at its timeout');
  t.equal((await h.rest(who, 'GET', '/v1/chains/chain-a/leader?waitForChangeFrom=0&timeout=10')).status, 200, 'then a new one is served');
});

h.assertEveryMutationAudited(t);
