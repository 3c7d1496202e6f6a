// The whole role × endpoint matrix, REST and gRPC, generated from the permission table
// (src/api/access.ts): every endpoint is called by one principal of each role over mTLS, and gets
// exactly the allow/deny the table says. Denied calls and mutations each leave exactly one audit
// record (assertOneAuditRecord). Every table row must have a request below, every route and
// method must have a row.
import { Metadata, status, type ClientReadableStream } from '@grpc/grpc-js';
import t from 'tap';
import { Etcd3 } from 'etcd3';
import { ENDPOINTS, restEndpoint, grpcEndpoint, ROLE_PERMISSIONS, type Endpoint, type Role } from '../../src/api/access.js';
import { httpsCall } from '../../src/devstack/baton.js';
import { BatonServiceService, type BatonServiceClient } from '../../src/gen/baton/v1/baton.js';
import { assertOneAuditRecord } from './audit-assert.js';
import { call, DEADLINE_MS, PRINCIPALS, startSecureService, type Identity, type PrincipalName } from './harness.js';

const h = await startSecureService(t, 'matrix');
const etcd = new Etcd3({ hosts: h.cluster.endpoints });
t.teardown(() => etcd.close());

const chainSpecJson = (id: string) => ({
  nodes: [
    { id: `${id}-1`, endpoint: '127.0.0.1:1', zone: 'a' },
    { id: `${id}-2`, endpoint: '127.0.0.1:2', zone: 'b' },
  ],
  policy: { blockTimeMs: 500, probeIntervalMs: 250, leaseTtlMs: 8000 },
});
const grpcSpec = (id: string) => ({
  id,
  nodes: [
    { id: `${id}-1`, endpoint: '127.0.0.1:1', priority: 0, zone: 'a' },
    { id: `${id}-2`, endpoint: '127.0.0.1:2', priority: 0, zone: 'b' },
  ],
  blockTimeMs: 500,
  fencingMode: 0,
  genesisHash: Buffer.alloc(0),
  policy: { leaseTtlMs: 8000 },
});
const head = { number: 1, hash: `0x${'11'.repeat(32)}`, parentHash: `0x${'00'.repeat(32)}`, l1Origin: 'l1', timestamp: 1 };

// chain-a exists for every call (node-a1 is its node chain-a-1).
const admin = h.identity('admin');
t.equal((await h.rest(admin, 'PUT', '/v1/chains/chain-a', chainSpecJson('chain-a'))).status, 201, 'chain-a created');

interface Outcome {
  /** Refused by the access layer (403 / PERMISSION_DENIED). */
  readonly denied: boolean;
  readonly detail: string;
  readonly requestId: string | undefined;
}

type RestRequest = { method: string; path: string; body?: unknown; stream?: boolean };
/** The request of each REST row. */
const REST: Record<string, RestRequest> = {
  'GET /livez': { method: 'GET', path: '/livez' },
  'GET /readyz': { method: 'GET', path: '/readyz' },
  'GET /openapi.yaml': { method: 'GET', path: '/openapi.yaml' },
  'GET /docs': { method: 'GET', path: '/docs' },
  'GET /docs/*': { method: 'GET', path: '/docs/json' },
  'GET /v1/chains': { method: 'GET', path: '/v1/chains' },
  'GET /v1/chains/:id': { method: 'GET', path: '/v1/chains/chain-a' },
  'GET /v1/chains/:id/leader': { method: 'GET', path: '/v1/chains/chain-a/leader' },
  'GET /v1/chains/:id/history': { method: 'GET', path: '/v1/chains/chain-a/history' },
  'GET /v1/operations/:id': { method: 'GET', path: '/v1/operations/op-0000000000000-00000000' },
  'GET /v1/operations': { method: 'GET', path: '/v1/operations' },
  'GET /v1/fleet/settings': { method: 'GET', path: '/v1/fleet/settings' },
  'GET /v1/events': { method: 'GET', path: '/v1/events', stream: true },
  'GET /v1/audit': { method: 'GET', path: '/v1/audit?chain=chain-a&limit=5' },
  'PUT /v1/chains/:id': { method: 'PUT', path: '/v1/chains/chain-a', body: chainSpecJson('chain-a') },
  'DELETE /v1/chains/:id': { method: 'DELETE', path: '/v1/chains/chain-zz' },
  'PUT /v1/fleet/settings': { method: 'PUT', path: '/v1/fleet/settings', body: { autoFailover: true, maxConcurrentFailovers: 2 } },
  'POST /v1/chains/:id/failover': { method: 'POST', path: '/v1/chains/chain-a/failover', body: { reason: 'matrix' } },
  'POST /v1/chains/:id/switchover': { method: 'POST', path: '/v1/chains/chain-a/switchover', body: { reason: 'matrix' } },
  'POST /v1/chains/:id/switchover/cancel': { method: 'POST', path: '/v1/chains/chain-a/switchover/cancel', body: { reason: 'matrix' } },
  'POST /v1/chains/:id/pause': { method: 'POST', path: '/v1/chains/chain-a/pause', body: { reason: 'matrix' } },
  'POST /v1/chains/:id/resume': { method: 'POST', path: '/v1/chains/chain-a/resume', body: { reason: 'matrix' } },
  'POST /v1/chains/:id/fencing-mode': { method: 'POST', path: '/v1/chains/chain-a/fencing-mode', body: { mode: 'commit', reason: 'matrix' } },
  'POST /v1/chains/:id/override': { method: 'POST', path: '/v1/chains/chain-a/override', body: { nodeId: 'chain-a-2', reason: 'matrix' } },
  'POST /v1/chains/:id/override/clear': { method: 'POST', path: '/v1/chains/chain-a/override/clear', body: { reason: 'matrix' } },
  'POST /v1/chains/:id/head': { method: 'POST', path: '/v1/chains/chain-a/head', body: { nodeId: 'chain-a-1', term: '1', head } },
};

type GrpcCall = (c: BatonServiceClient, md: Metadata) => Promise<unknown>;
/** Methods that are not (yet) in the generated client are skipped: the row check above flags them. */
const unary =
  <Req>(name: string, req: Req): GrpcCall =>
  (c, md) =>
    call(((c as unknown as Record<string, any>)[name] as any).bind(c), req, { metadata: md });
/** The request of each gRPC row. */
const GRPC: Record<string, GrpcCall> = {
  ListChains: unary('listChains', { filter: 0 }),
  GetChain: unary('getChain', { chainId: 'chain-a' }),
  GetLeader: unary('getLeader', { chainId: 'chain-a', waitForChangeFrom: 0n, timeoutMs: 0 }),
  GetHistory: unary('getHistory', { chainId: 'chain-a', limit: 0 }),
  GetOperation: unary('getOperation', { operationId: 'op-0000000000000-00000000', waitMs: 0 }),
  ListOperations: unary('listOperations', { chainId: '', limit: 0 }),
  GetFleetSettings: unary('getFleetSettings', {}),
  WatchEvents: (c, md) => firstOfStream(c.watchEvents({ afterId: '', chainId: '' }, md, { deadline: Date.now() + DEADLINE_MS })),
  QueryAudit: unary('queryAudit', { chainId: 'chain-a', principal: '', limit: 5 }),
  PutChain: unary('putChain', { spec: grpcSpec('chain-a') }),
  DeleteChain: unary('deleteChain', { chainId: 'chain-zz' }),
  PutFleetSettings: unary('putFleetSettings', { autoFailover: true, maxConcurrentFailovers: 2 }),
  Failover: unary('failover', { chainId: 'chain-a', reason: 'matrix' }),
  Switchover: unary('switchover', { chainId: 'chain-a', reason: 'matrix' }),
  CancelSwitchover: unary('cancelSwitchover', { chainId: 'chain-a', reason: 'matrix' }),
  Pause: unary('pause', { chainId: 'chain-a', reason: 'matrix' }),
  Resume: unary('resume', { chainId: 'chain-a', reason: 'matrix' }),
  SetFencingMode: unary('setFencingMode', { chainId: 'chain-a', mode: 2, reason: 'matrix' }),
  Override: unary('override', { chainId: 'chain-a', nodeId: 'chain-a-2', reason: 'matrix' }),
  ClearOverride: unary('clearOverride', { chainId: 'chain-a', reason: 'matrix' }),
  CommitUnsafeHead: unary('commitUnsafeHead', {
    chainId: 'chain-a',
    nodeId: 'chain-a-1',
    term: 1n,
    head: { number: 1n, hash: Buffer.alloc(32, 1), parentHash: Buffer.alloc(32), l1Origin: 'l1', timestamp: 1n, term: 1n, nodeId: 'chain-a-1' },
  }),
};

/** Resolves once the stream is open (response headers) or refused; then cancels it. */
function firstOfStream(stream: ClientReadableStream<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.on('metadata', () => {
      stream.cancel();
      resolve();
    });
    stream.on('error', (err: { code: number }) => (err.code === status.CANCELLED ? resolve() : reject(err)));
  });
}

/** Expected from the table: the principal's roles hold the endpoint's permission (node-a1 acts on its own chain and node). */
function expectedAllowed(who: PrincipalName, ep: Endpoint): boolean {
  return (PRINCIPALS[who] as readonly Role[]).some((r) => ROLE_PERMISSIONS[r].includes(ep.permission));
}

async function restCall(who: Identity, req: RestRequest): Promise<Outcome> {
  if (req.stream) {
    const res = await streamStatus(who, req.path);
    return { denied: res.status === 403, detail: String(res.status), requestId: res.requestId };
  }
  const res = await httpsCall(`${h.service.address}${req.path}`, req.method, req.body, who, DEADLINE_MS);
  const requestId = res.headers['x-request-id'] as string | undefined;
  if (res.status === 401) throw new Error(`${req.method} ${req.path}: unauthenticated`);
  return { denied: res.status === 403, detail: `${res.status} ${res.text.slice(0, 200)}`, requestId };
}

/** The status of a streaming GET (its first bytes), then the stream is dropped. */
function streamStatus(who: Identity, path: string): Promise<{ status: number; requestId: string | undefined }> {
  return new Promise((resolve, reject) => {
    void import('node:https').then(({ request }) => {
      const req = request(`${h.service.address}${path}`, { ca: who.ca, cert: who.cert, key: who.key, agent: false, signal: AbortSignal.timeout(DEADLINE_MS) }, (res) => {
        resolve({ status: res.statusCode ?? 0, requestId: res.headers['x-request-id'] as string | undefined });
        res.destroy();
        req.destroy();
      });
      req.on('error', (err) => (err.name === 'AbortError' ? undefined : reject(err)));
      req.end();
    });
  });
}

async function grpcCall(who: Identity, method: string): Promise<Outcome> {
  const fn = GRPC[method];
  if (!fn) throw new Error(`no gRPC request for ${method}`);
  const requestId = `matrix-${method}-${Math.random().toString(16).slice(2)}`;
  const md = new Metadata();
  md.set('x-request-id', requestId);
  try {
    await fn(clientOf(who), md);
    return { denied: false, detail: 'OK', requestId };
  } catch (err) {
    const e = err as { code: number; details: string };
    if (e.code === status.UNAUTHENTICATED) throw new Error(`${method}: unauthenticated`);
    return { denied: e.code === status.PERMISSION_DENIED, detail: `${status[e.code]} ${e.details}`, requestId };
  }
}

const clients = new Map<Identity, BatonServiceClient>();
function clientOf(who: Identity): BatonServiceClient {
  let c = clients.get(who);
  if (!c) {
    c = h.grpc(who);
    clients.set(who, c);
  }
  return c;
}

const who = Object.keys(PRINCIPALS) as PrincipalName[];

t.test('every REST route and gRPC method has exactly one row; every row is served', async (t) => {
  for (const def of Object.values(BatonServiceService)) {
    const method = def.path.split('/').pop()!;
    t.ok(grpcEndpoint(method), `gRPC ${method} has a row`);
  }
  for (const ep of ENDPOINTS) {
    for (const r of ep.rest ?? []) {
      const [method, url] = r.split(' ') as [string, string];
      t.ok(h.service.app.hasRoute({ method: method as 'GET', url }) || url.endsWith('*'), `${r} (${ep.action}) is a route of the app`);
      t.ok(REST[r], `${r} has a request in the matrix`);
      t.equal(restEndpoint(method, url), ep);
    }
    if (ep.grpc) {
      t.ok(Object.values(BatonServiceService).some((d) => d.path.endsWith(`/${ep.grpc}`)), `${ep.grpc} is a method of baton.v1.BatonService`);
      t.ok(GRPC[ep.grpc], `${ep.grpc} has a request in the matrix`);
    }
  }
});

for (const ep of ENDPOINTS) {
  t.test(`${ep.action} (${ep.permission})`, async (t) => {
    for (const name of who) {
      const id = h.identity(name);
      const allowed = expectedAllowed(name, ep);
      for (const r of ep.rest ?? []) {
        const req = REST[r];
        if (!req || !h.service.app.hasRoute({ method: req.method as 'GET', url: r.split(' ')[1]! }) && !r.endsWith('*')) continue;
        const out = await restCall(id, req);
        t.equal(out.denied, !allowed, `REST ${r} as ${name}: ${allowed ? 'allowed' : 'denied'} (${out.detail})`);
        if (!allowed || (ep.mutation && !ep.dataPlane)) await assertOneAuditRecord(t, etcd, h.prefix, out.requestId, { principal: name, action: ep.action, denied: !allowed });
      }
      if (ep.grpc && Object.values(BatonServiceService).some((d) => d.path.endsWith(`/${ep.grpc}`))) {
        const out = await grpcCall(id, ep.grpc);
        t.equal(out.denied, !allowed, `gRPC ${ep.grpc} as ${name}: ${allowed ? 'allowed' : 'denied'} (${out.detail})`);
        if (!allowed || (ep.mutation && !ep.dataPlane)) await assertOneAuditRecord(t, etcd, h.prefix, out.requestId, { principal: name, action: ep.action, denied: !allowed });
      }
    }
  });
}

t.test('the node role acts only for its own chain and node', async (t) => {
  const node = h.identity('node-a1');
  t.equal((await h.rest(admin, 'PUT', '/v1/chains/chain-b', chainSpecJson('chain-b'))).status, 201);
  t.equal((await h.rest(node, 'GET', '/v1/chains/chain-a')).status, 200, 'reads its own chain');
  const other = await h.rest(node, 'GET', '/v1/chains/chain-b');
  t.equal(other.status, 403, 'not another chain');
  const c = clientOf(node);
  const err = await call(c.getChain.bind(c), { chainId: 'chain-b' }).catch((e: { code: number }) => e);
  t.equal((err as { code: number }).code, status.PERMISSION_DENIED);
  if (h.service.app.hasRoute({ method: 'POST', url: '/v1/chains/:id/head' })) {
    const asOther = await h.rest(node, 'POST', '/v1/chains/chain-a/head', { nodeId: 'chain-a-2', term: '1', head });
    t.equal(asOther.status, 403, 'a node certificate committing for another node is refused');
    t.match(asOther.body.message, /only as node chain-a-1/);
    await assertOneAuditRecord(t, etcd, h.prefix, asOther.headers['x-request-id'] as string, { principal: 'node-a1', action: 'CommitUnsafeHead', denied: true });
  }
  const commitOther = await call(c.commitUnsafeHead.bind(c), { chainId: 'chain-a', nodeId: 'chain-a-2', term: 1n, head: undefined }).catch((e: { code: number; details: string }) => e);
  t.equal((commitOther as { code: number }).code, status.PERMISSION_DENIED, 'gRPC: committing as another node is refused');
  const commitChain = await call(c.commitUnsafeHead.bind(c), { chainId: 'chain-b', nodeId: 'chain-a-1', term: 1n, head: undefined }).catch((e: { code: number }) => e);
  t.equal((commitChain as { code: number }).code, status.PERMISSION_DENIED, 'gRPC: committing to another chain is refused');
});

h.assertEveryMutationAudited(t);
