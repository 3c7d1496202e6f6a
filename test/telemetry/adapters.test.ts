// The telemetry adapters in one process, exported to an OTLP/HTTP receiver inside the test:
// the Tracer port (nesting, manual spans, continuing a stored carrier), REST request spans with the
// trace id in the response, node RPCs and etcd calls as child spans only inside a recorded span,
// the trace context stored on new operations, and the ops listener with a /metrics that promtool
// accepts.
import { spawnSync } from 'node:child_process';
import Fastify from 'fastify';
import t from 'tap';
import type { NodeSpec } from '../../src/core/chain.js';
import { BatonError } from '../../src/core/errors.js';
import type { Operation } from '../../src/core/operation.js';
import type { NodeControl, OperationStore } from '../../src/core/ports.js';
import { traceIdOf } from '../../src/core/telemetry.js';
import { buildOpsApp } from '../../src/adapters/http/ops.js';
import { traceGrpcService } from '../../src/adapters/telemetry/grpc.js';
import { httpTracing } from '../../src/adapters/telemetry/http.js';
import { instrumentNodeControl, observeEtcdCall, withEtcdLabel } from '../../src/adapters/telemetry/instrument.js';
import { PromMetrics } from '../../src/adapters/telemetry/metrics.js';
import { traceOperations } from '../../src/adapters/telemetry/operations.js';
import { startTracing } from '../../src/adapters/telemetry/tracing.js';
import { waitFor } from '../../src/devstack/process.js';
import { OtlpReceiver } from './otlp-receiver.js';
import { sample } from './prom-text.js';

const receiver = await OtlpReceiver.start();
t.teardown(() => receiver.close());
const tracing = startTracing({ replicaId: 'unit', env: { ...receiver.env(), OTEL_BSP_SCHEDULE_DELAY: '50' } });
const tracer = tracing.tracer;

async function exported(traceId: string, names: string[]) {
  await tracing.flush();
  return waitFor(`spans ${names.join(', ')} of ${traceId}`, () => {
    const spans = receiver.trace(traceId);
    return names.every((n) => spans.some((s) => s.name === n)) ? spans : undefined;
  }, 10_000);
}

const NODE: NodeSpec = { id: 'a1', endpoint: '127.0.0.1:1', priority: 0, zone: 'z' };

t.test('tracer port: nested spans, a manual span, and a trace continued from a stored carrier', async (t) => {
  let stored: string | undefined;
  const traceId = await tracer.span('operation', { 'baton.chain': 'chain-a', 'baton.term': 7n, skipped: undefined }, async (root) => {
    await tracer.span('choose', { 'baton.node': 'a2' }, async () => undefined);
    stored = tracer.carrier()?.traceparent;
    return root.traceId;
  });
  t.match(traceId, /^[0-9a-f]{32}$/);
  t.equal(traceIdOf(stored ? { traceparent: stored } : undefined), traceId, 'the carrier names the same trace');
  // Another process (here: later, with no current span) continues the trace from the carrier.
  const later = tracer.start('first-block', { 'baton.node': 'a2' }, { parent: { traceparent: stored! } });
  t.equal(later.traceId, traceId, 'continued from the carrier');
  later.end();
  await t.rejects(tracer.span('fence', {}, async () => Promise.reject(new BatonError('FENCED', 'not the supervisor'))), { code: 'FENCED' });
  const spans = await exported(traceId, ['operation', 'choose', 'first-block']);
  const op = spans.find((s) => s.name === 'operation')!;
  t.match(op.attributes, { 'baton.chain': 'chain-a', 'baton.term': '7' }, 'bigint attributes as strings, undefined left out');
  t.notOk('skipped' in op.attributes);
  t.equal(spans.find((s) => s.name === 'choose')!.parentSpanId, op.spanId, 'choose is a child of operation');
  t.equal(op.instance, 'unit', 'resource: service.instance.id is the replica id');
  t.equal(op.service, 'baton');
});

t.test('node RPCs: timed and counted always, traced only inside a recorded span; probes are the loop\'s own count', async (t) => {
  const metrics = new PromMetrics({ replicaId: 'unit', defaultMetrics: false });
  const fake = {
    deadlineMs: 100,
    health: async () => ({}) as never,
    renew: async () => Promise.reject(new BatonError('STALE_TERM', 'a1 saw term 9')),
    stop: async () => undefined,
  } as unknown as NodeControl;
  const nodes = instrumentNodeControl(fake, metrics, () => 'chain-a');
  await nodes.health(NODE); // a probe: no parent, no span
  await t.rejects(nodes.renew(NODE, 5n, 1000), { code: 'STALE_TERM' });
  const traceId = await tracer.span('fence', {}, async (s) => {
    await nodes.stop(NODE, 8n, 'new term');
    return s.traceId;
  });
  const spans = await exported(traceId, ['fence', 'node StopSequencer']);
  const stop = spans.find((s) => s.name === 'node StopSequencer')!;
  t.match(stop.attributes, { 'baton.node': 'a1', 'baton.term': '8', 'rpc.method': 'StopSequencer' }, 'node, term, method');
  t.notOk(receiver.spans.some((s) => s.name === 'node Health'), 'a probe outside a span is not traced');
  const text = await metrics.text();
  t.equal(sample(text, 'baton_stale_term_rejections_total', { chain: 'chain-a', node: 'a1', rpc: 'RenewLease', replica: 'unit' }), 1, 'a stale-term refusal is counted');
  t.equal(sample(text, 'baton_node_rpc_duration_seconds_count', { rpc: 'Health', outcome: 'ok' }), 1, 'a Health call is timed');
  t.equal(sample(text, 'baton_node_probes_total', { result: 'ok' }), undefined, 'but is not a probe: only the control loop counts those');
  metrics.probed('chain-a', true);
  metrics.probed('chain-a', false);
  const after = await metrics.text();
  t.equal(sample(after, 'baton_node_probes_total', { result: 'ok' }), 1, "the loop's probe is counted");
  t.equal(sample(after, 'baton_node_probes_total', { result: 'error' }), 1, 'and its failed probe');
  t.equal(sample(text, 'baton_node_rpc_errors_total', { rpc: 'RenewLease', code: 'STALE_TERM' }), 1);
});

t.test('etcd calls: labelled, timed, child spans only inside a recorded span', async (t) => {
  const metrics = new PromMetrics({ replicaId: 'unit', defaultMetrics: false });
  await observeEtcdCall(metrics, async () => 'no parent');
  const traceId = await tracer.span('fence', {}, async (s) => {
    await withEtcdLabel('write leader', () => observeEtcdCall(metrics, async () => 'ok'));
    await t.rejects(withEtcdLabel('record head', () => observeEtcdCall(metrics, async () => Promise.reject(new RangeError('unavailable')))));
    return s.traceId;
  });
  const spans = await exported(traceId, ['etcd write leader', 'etcd record head']);
  t.equal(spans.find((s) => s.name === 'etcd record head')!.statusCode, 2, 'a failed call is an error span');
  const text = await metrics.text();
  t.equal(sample(text, 'baton_etcd_request_duration_seconds_count', { method: 'unknown' }), 3, 'every call timed');
  t.equal(sample(text, 'baton_etcd_request_errors_total', { method: 'unknown', kind: 'RangeError' }), 1, 'errors by kind');
});

t.test('REST: one span per request, continuing the caller; the trace id in the response; intents carry it', async (t) => {
  const submitted: unknown[] = [];
  const store = {
    submit: async (req: { chainId: string; params: Operation['params']; requestId: string }) => {
      submitted.push(req);
      return { operation: { id: 'op-1', params: req.params, state: 'pending' } as Operation, replayed: false };
    },
    update: async () => undefined,
  } as unknown as OperationStore;
  const metrics = new PromMetrics({ replicaId: 'unit', defaultMetrics: false });
  const ops = traceOperations(store, tracer, metrics);
  const app = Fastify();
  await app.register(httpTracing());
  app.post('/v1/chains/:id/failover', async (req) => {
    const r = await ops.submit({ chainId: 'chain-a', params: { kind: 'failover', reason: 'x' }, requestId: req.id }, undefined);
    return { id: r.operation.id };
  });
  app.get('/livez', async () => ({ ok: true }));
  t.teardown(() => app.close());

  const res = await app.inject({ method: 'POST', url: '/v1/chains/chain-a/failover', payload: {} });
  t.equal(res.statusCode, 200);
  const traceId = String(res.headers['x-trace-id']);
  t.match(traceId, /^[0-9a-f]{32}$/, 'x-trace-id');
  t.match(String(res.headers.traceresponse), new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`), 'traceresponse');
  t.match(submitted[0], { traceId, traceparent: new RegExp(`^00-${traceId}-`) }, 'the intent carries the request trace');
  t.equal(sample(await metrics.text(), 'baton_operations_total', { kind: 'failover', state: 'pending' }), 1, 'accepted operations counted');

  const caller = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const continued = await app.inject({ method: 'POST', url: '/v1/chains/chain-a/failover', payload: {}, headers: { traceparent: caller } });
  t.equal(continued.headers['x-trace-id'], '0af7651916cd43dd8448eb211c80319c', "a caller's traceparent is continued");
  const spans = await exported(traceId, ['POST /v1/chains/:id/failover']);
  t.ok(spans.find((s) => s.name === 'POST /v1/chains/:id/failover')?.attributes['baton.request_id'], 'the request span has the request id');
  const probe = await app.inject({ method: 'GET', url: '/livez' });
  t.notOk(probe.headers['x-trace-id'], 'probes are not traced');
});

t.test('ops listener: /livez, /readyz, and a /metrics that promtool accepts', async (t) => {
  const metrics = new PromMetrics({ replicaId: 'unit' });
  metrics.recordFailover('chain-a', 'lease', 'auto', 'succeeded', 1234);
  metrics.leaderChanged('chain-a', 'auto');
  metrics.keepaliveAcked(12);
  let ready = false;
  const app = buildOpsApp({ replicaId: 'unit', ready: () => ({ ready, why: ready ? 'ok' : 'joining' }), metrics: async () => ({ contentType: metrics.contentType, text: await metrics.text() }) });
  t.teardown(() => app.close());
  t.equal((await app.inject('/livez')).statusCode, 200);
  t.equal((await app.inject('/readyz')).statusCode, 503, 'not ready while joining');
  ready = true;
  t.equal((await app.inject('/readyz')).statusCode, 200);
  const res = await app.inject('/metrics');
  t.match(res.headers['content-type'], /text\/plain/);
  const failover = { chain: 'chain-a', mode: 'lease', trigger: 'auto', outcome: 'succeeded' };
  t.equal(sample(res.body, 'baton_failover_duration_seconds_bucket', { ...failover, le: '1' }), 0, 'a 1.234 s failover is above the 1 s bucket');
  t.equal(sample(res.body, 'baton_failover_duration_seconds_bucket', { ...failover, le: '2' }), 1, 'and within the 2 s bucket');
  t.match(res.body, /process_cpu_seconds_total/, 'process metrics too');
  t.notMatch(res.body, /nodejs_active_handles_total/, 'without the *_total gauges promtool refuses');
  const check = spawnSync('promtool', ['check', 'metrics'], { input: res.body, encoding: 'utf8' });
  t.equal(check.status, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
});

t.test('gRPC: one span per unary call, continuing the caller; the trace id in the trailers', async (t) => {
  const { Server, ServerCredentials, Client, credentials, Metadata } = await import('@grpc/grpc-js');
  const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown };
  const definition = {
    failover: {
      // As ts-proto generates it: a camelCased key and no originalName; the span names the wire method.
      path: '/test.Ops/Failover', requestStream: false, responseStream: false,
      requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize,
    },
  };
  const seen: (string | undefined)[] = [];
  const impl = traceGrpcService('test.Ops', definition, {
    failover: (_call: unknown, cb: (err: null, v: unknown) => void) => {
      seen.push(tracer.carrier()?.traceparent);
      cb(null, { ok: true });
    },
  });
  const server = new Server();
  server.addService(definition, impl);
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  t.teardown(() => {
    client.close();
    server.forceShutdown();
  });
  const call = (md: InstanceType<typeof Metadata>) =>
    new Promise<string>((resolve, reject) => {
      let trailer = '';
      const c = client.makeUnaryRequest(definition.failover.path, json.serialize, json.deserialize, {}, md, (err) => (err ? reject(err) : setImmediate(() => resolve(trailer))));
      c.on('status', (s) => (trailer = String(s.metadata.get('x-trace-id')[0] ?? '')));
    });
  const traceId = await call(new Metadata());
  t.match(traceId, /^[0-9a-f]{32}$/, 'x-trace-id trailer');
  t.equal(traceIdOf(seen[0] ? { traceparent: seen[0] } : undefined), traceId, 'the handler ran inside the call span');
  const md = new Metadata();
  md.set('traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  t.equal(await call(md), '4bf92f3577b34da6a3ce929d0e0e4736', "a caller's traceparent is continued");
  const spans = await exported(traceId, ['grpc test.Ops/Failover']);
  t.match(spans[0]?.attributes, { 'rpc.system': 'grpc', 'rpc.method': 'Failover' });
});
