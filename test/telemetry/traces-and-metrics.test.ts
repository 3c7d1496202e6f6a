// Traces and metrics of a real stack (etcd, `baton sim` nodes, two `baton serve` replicas) sent to
// an OTLP/HTTP receiver inside the test, as Jaeger would get them:
// - an API-driven switchover, sent to the replica that does NOT supervise the chain, is one trace
//   from the REST request through the intent in etcd to the supervisor's handoff steps and their
//   node RPCs; the trace id is in the response, on the operation and on the audit record;
// - the same over gRPC with the caller's W3C traceparent: the caller's trace, named by the
//   `x-trace-id` trailer and the operation record, spans both replicas;
// - a kill -9 of the active is one `failover` trace with its steps in order and their attributes,
//   and the supervisor's log lines about it (the decision, 'leader changed', 'leader producing')
//   carry its trace id;
// - /metrics scraped around that failover shows the histogram observation and the term change,
//   and `promtool check metrics` accepts the live output.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { credentials, Metadata } from '@grpc/grpc-js';
import t, { type Test } from 'tap';
import { waitFor } from '../../src/devstack/process.js';
import type { BatonProcess } from '../../src/devstack/baton.js';
import { BatonServiceClient, type SwitchoverResponse } from '../../src/gen/baton/v1/baton.js';
import { startStack } from '../helpers/stack.js';
import { childrenOf, OtlpReceiver, type ReceivedSpan } from './otlp-receiver.js';
import { sample } from './prom-text.js';

const CHAIN = 'chain-a';
const NODES = ['a1', 'a2', 'a3'];

async function scrape(replica: BatonProcess): Promise<string> {
  const res = await fetch(`${replica.opsUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}

function promtoolCheck(text: string): { ok: boolean; out: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function names(spans: readonly ReceivedSpan[]): string[] {
  return spans.map((s) => s.name);
}

/** The names in `want` appear in `have` in this order (other spans may sit between them). */
function inOrder(have: readonly string[], want: readonly string[]): boolean {
  let i = 0;
  for (const n of have) if (n === want[i]) i++;
  return i === want.length;
}

function descendants(spans: readonly ReceivedSpan[], root: ReceivedSpan): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  const queue = [root];
  while (queue.length) {
    const s = queue.shift()!;
    for (const c of childrenOf(spans, s)) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

interface LogLine {
  msg: string;
  chain?: string;
  traceId?: string;
  [field: string]: unknown;
}

/** The JSON lines a replica wrote so far. */
function logLines(replica: BatonProcess): LogLine[] {
  const out: LogLine[] = [];
  for (const l of readFileSync(replica.outputFile, 'utf8').split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as LogLine);
    } catch {
      // a line being written
    }
  }
  return out;
}

/** Each named step span is there and names chain, node, term and a reason. */
function assertSteps(t: Test, steps: readonly ReceivedSpan[], want: Record<string, { node: string; term: string }>): void {
  for (const [name, w] of Object.entries(want)) {
    const s = steps.find((x) => x.name === name);
    t.match(s?.attributes, { 'baton.chain': CHAIN, 'baton.node': w.node, 'baton.term': w.term }, `${name}: chain ${CHAIN}, node ${w.node}, term ${w.term}`);
    t.match(s?.attributes['baton.reason'], /\S/, `${name}: a reason`);
  }
}

/** A unary gRPC Switchover: its response and the `x-trace-id` trailer. */
function grpcSwitchover(client: BatonServiceClient, md: Metadata, reason: string): Promise<{ response: SwitchoverResponse; trailer: string }> {
  return new Promise((resolve, reject) => {
    let response: SwitchoverResponse | undefined;
    let trailer: string | undefined;
    const settle = () => {
      if (response && trailer !== undefined) resolve({ response, trailer });
    };
    const req = { chainId: CHAIN, target: '', scheduledAt: undefined, reason, idempotencyKey: randomBytes(8).toString('hex') };
    const call = client.switchover(req, md, { deadline: Date.now() + 10_000 }, (err, res) => {
      if (err) return reject(err);
      response = res;
      settle();
    });
    call.on('status', (s) => {
      trailer = String(s.metadata.get('x-trace-id')[0] ?? '');
      settle();
    });
  });
}

t.test('a switchover via REST and a failover: traces in the receiver, metrics on /metrics', async (t) => {
  const receiver = await OtlpReceiver.start();
  t.teardown(() => receiver.close());
  const stack = await startStack(t, { chains: [{ id: CHAIN, nodes: NODES }], batonEnv: receiver.env() });
  const first = await stack.waitForProducingLeader(CHAIN, 30_000);
  const supervisorId = await waitFor('a supervisor of the chain', async () => (await stack.api().getChain(CHAIN)).body.supervisor ?? undefined, 20_000);
  const supervisor = stack.replica(supervisorId);
  const other = stack.replicas.find((r) => r.replicaId !== supervisorId)!;

  await t.test('switchover sent to the replica that does not supervise the chain: one trace', async (t) => {
    const res = await fetch(`${other.url}/v1/chains/${CHAIN}/switchover`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'telemetry test' }),
      signal: AbortSignal.timeout(5000),
    });
    t.equal(res.status, 202, 'accepted');
    const traceId = res.headers.get('x-trace-id') ?? '';
    t.match(traceId, /^[0-9a-f]{32}$/, 'the response names its trace (x-trace-id)');
    t.match(res.headers.get('traceresponse') ?? '', new RegExp(`^00-${traceId}-[0-9a-f]{16}-0[01]$`), 'and as W3C traceresponse');
    const op = (await res.json()) as { id: string; traceId: string | null };
    t.equal(op.traceId, traceId, 'the operation record stores the trace id');

    const done = await waitFor('the switchover to end', async () => {
      const r = await other.api.request<{ state: string; traceId: string | null; result: { term?: string; nodeId?: string } | null }>('GET', `/v1/operations/${op.id}`);
      return ['succeeded', 'failed'].includes(r.body.state) ? r.body : undefined;
    }, 30_000);
    t.equal(done.state, 'succeeded', 'the switchover succeeded');
    t.equal(done.traceId, traceId, 'and still names the trace');

    const spans = await waitFor('the switchover trace to reach the receiver', () => {
      const s = receiver.trace(traceId);
      return s.some((x) => x.name === 'first-block') && s.some((x) => x.name === 'switchover') ? s : undefined;
    }, 20_000);
    t.comment(`trace ${traceId}: ${spans.map((s) => `${s.instance}:${s.name}`).join(', ')}`);
    const request = spans.find((s) => s.name === 'POST /v1/chains/:id/switchover');
    t.ok(request, 'the REST request span is in the trace');
    t.equal(request?.instance, other.replicaId, 'made by the replica that took the request');
    t.equal(request?.parentSpanId, '', 'and is the root of the trace');
    const submitTxn = spans.find((s) => s.name === 'etcd submit operation');
    t.ok(submitTxn && submitTxn.instance === other.replicaId, 'the txn that made the intent durable is a span of the request replica');

    const exec = spans.find((s) => s.name === 'switchover')!;
    t.equal(exec.instance, supervisorId, 'the switchover is executed, in the same trace, by the supervising replica');
    t.ok(spans.some((s) => s.spanId === exec.parentSpanId && s.instance === other.replicaId), 'its parent is a span of the request');
    t.match(exec.attributes, { 'baton.chain': CHAIN, 'baton.operation': op.id, 'baton.reason': 'telemetry test' }, 'operation span attributes');
    const steps = childrenOf(spans, exec);
    t.ok(inOrder(names(steps), ['choose', 'prepare', 'catch-up', 'fence', 'complete', 'first-block']), `steps in order: ${names(steps).join(', ')}`);
    // Until the new term is written, a step names the term it acts under: the old leader's.
    const target = done.result?.nodeId ?? '';
    const newTerm = done.result?.term ?? '';
    assertSteps(t, steps, {
      choose: { node: target, term: first.term.toString() },
      prepare: { node: first.nodeId, term: first.term.toString() },
      'catch-up': { node: target, term: first.term.toString() },
      fence: { node: target, term: newTerm },
      complete: { node: target, term: newTerm },
      'first-block': { node: target, term: newTerm },
    });
    const below = descendants(spans, exec);
    t.ok(below.some((s) => s.name === 'node PrepareHandoff' && s.attributes['baton.node'] === first.nodeId), 'PrepareHandoff to the old active is a child span');
    t.ok(below.some((s) => s.name === 'node CompleteHandoff'), 'CompleteHandoff to the target is a child span');
    t.ok(below.some((s) => s.name === 'etcd write leader'), 'the fenced leader txn is a child span');
    t.notOk(spans.some((s) => s.name === 'node Health' && s.parentSpanId === ''), 'no probe is a trace of its own');

    // The audit record of the request (written in the same txn as the intent) names the same trace.
    const record = await waitFor('the audit trail to answer with the record of the request', async () => {
      const audit = await other.api.request<{ records?: { operationId: string | null; traceId: string | null }[] }>('GET', `/v1/audit?chain=${CHAIN}`);
      return audit.status === 200 ? audit.body.records?.find((r) => r.operationId === op.id) : undefined;
    }, 10_000);
    t.equal(record.traceId, traceId, 'the audit record stores the trace id');

    // The supervisor's log lines about this operation carry its trace id.
    const lines = readFileSync(supervisor.outputFile, 'utf8').split('\n').filter((l) => l.includes(op.id)).map((l) => JSON.parse(l) as { msg: string; traceId?: string });
    const steps2 = lines.filter((l) => l.msg === 'operation step');
    t.ok(steps2.length > 0 && steps2.every((l) => l.traceId === traceId), `its ${steps2.length} 'operation step' log lines carry the trace id`);
  });

  await t.test("gRPC Switchover with the caller's traceparent, sent to the replica that does not supervise the chain: one trace", async (t) => {
    const from = await stack.waitForProducingLeader(CHAIN, 20_000);
    const callerTraceId = randomBytes(16).toString('hex');
    const callerSpanId = randomBytes(8).toString('hex');
    const md = new Metadata();
    md.set('traceparent', `00-${callerTraceId}-${callerSpanId}-01`);
    const client = new BatonServiceClient(other.grpcAddress, credentials.createInsecure());
    t.teardown(() => client.close());
    const { response, trailer } = await grpcSwitchover(client, md, 'telemetry test over gRPC');
    t.equal(trailer, callerTraceId, "the x-trace-id trailer names the caller's trace");
    const opId = response.operation?.id ?? '';
    t.equal(response.operation?.traceId, trailer, 'so does the operation in the response');

    const done = await waitFor('the gRPC switchover to end', async () => {
      const r = await other.api.request<{ state: string; traceId: string | null; result: { term?: string; nodeId?: string } | null }>('GET', `/v1/operations/${opId}`);
      return ['succeeded', 'failed'].includes(r.body.state) ? r.body : undefined;
    }, 30_000);
    t.equal(done.state, 'succeeded', 'the switchover succeeded');
    t.equal(done.traceId, trailer, 'the operation record stores the trailer\'s trace id');

    const spans = await waitFor('the gRPC switchover trace to reach the receiver', () => {
      const s = receiver.trace(callerTraceId);
      return s.some((x) => x.name === 'first-block') && s.some((x) => x.name === 'switchover') ? s : undefined;
    }, 20_000);
    t.comment(`trace ${callerTraceId}: ${spans.map((s) => `${s.instance}:${s.name}`).join(', ')}`);
    const call = spans.find((s) => s.name === 'grpc baton.v1.BatonService/Switchover');
    t.equal(call?.instance, other.replicaId, 'the gRPC call span is made by the replica that took the call');
    t.equal(call?.parentSpanId, callerSpanId, "and continues the caller's span");
    const exec = spans.find((s) => s.name === 'switchover');
    t.equal(exec?.instance, supervisorId, 'the switchover is executed, in the same trace, by the supervising replica');
    t.ok(exec && spans.some((s) => s.spanId === exec.parentSpanId && s.instance === other.replicaId), 'its parent is a span of the call');
    const below = exec ? descendants(spans, exec) : [];
    t.ok(below.some((s) => s.name === 'node PrepareHandoff' && s.instance === supervisorId && s.attributes['baton.node'] === from.nodeId), 'PrepareHandoff to the old active is in the trace, below the switchover');
    t.ok(below.some((s) => s.name === 'node CompleteHandoff' && s.instance === supervisorId), 'and CompleteHandoff to the target');
  });

  await t.test('kill -9 of the active: a failover trace, and the metrics show it', async (t) => {
    const current = await stack.waitForProducingLeader(CHAIN, 20_000);
    const before = await scrape(supervisor);
    const countLabels = { chain: CHAIN, trigger: 'auto', outcome: 'succeeded' };
    const countBefore = sample(before, 'baton_failover_duration_seconds_count', countLabels) ?? 0;
    t.equal(sample(before, 'baton_chain_term', { chain: CHAIN }), Number(current.term), 'baton_chain_term is the current term');

    await stack.simProcess(CHAIN, current.nodeId).kill();
    const next = await stack.waitForProducingLeader(CHAIN, 30_000, current.nodeId);

    const after = await waitFor('the failover in the histogram', async () => {
      const text = await scrape(supervisor);
      return (sample(text, 'baton_failover_duration_seconds_count', countLabels) ?? 0) > countBefore ? text : undefined;
    }, 20_000);
    t.pass('baton_failover_duration_seconds has a new observation (trigger auto, outcome succeeded)');
    t.equal(sample(after, 'baton_chain_term', { chain: CHAIN }), Number(next.term), `baton_chain_term moved to the new term ${next.term}`);
    t.ok((sample(after, 'baton_leader_changes_total', { chain: CHAIN, trigger: 'auto' }) ?? 0) >= 1, 'baton_leader_changes_total counts it');
    t.equal(sample(after, 'baton_node_healthy', { chain: CHAIN, node: current.nodeId }), 0, 'the killed node is unhealthy');
    t.ok((sample(after, 'baton_chain_leaderless_seconds_total', { chain: CHAIN }) ?? 0) > 0, 'time without a producing leader was counted');
    t.equal(sample(after, 'baton_replica_supervised_chains'), 1, 'the replica supervises the chain');
    const check = promtoolCheck(after);
    t.ok(check.ok, `promtool check metrics accepts the live output${check.ok ? '' : `: ${check.out}`}`);

    const spans = await waitFor('the failover trace in the receiver', () => {
      const roots = receiver.spans.filter((s) => s.name === 'failover' && s.attributes['baton.chain'] === CHAIN && s.attributes['baton.from'] === current.nodeId);
      const root = roots.find((r) => receiver.trace(r.traceId).some((s) => s.name === 'first-block'));
      return root ? receiver.trace(root.traceId) : undefined;
    }, 20_000);
    const root = spans.find((s) => s.name === 'failover')!;
    t.comment(`failover trace ${root.traceId}: ${names(spans).join(', ')}`);
    t.equal(root.parentSpanId, '', 'the failover is the root of its own trace');
    t.equal(root.instance, supervisorId, 'made by the supervising replica');
    t.match(root.attributes, { 'baton.chain': CHAIN, 'baton.from': current.nodeId, 'baton.node': next.nodeId, 'baton.trigger': 'auto', 'baton.mode': 'lease' }, 'root attributes');
    t.ok(root.attributes['baton.reason'], 'the root says why');
    const steps = childrenOf(spans, root);
    t.ok(inOrder(names(steps), ['detect', 'choose', 'fence', 'wait-old-lease', 'start', 'first-block']), `steps in order: ${names(steps).join(', ')}`);
    // detect and choose come before the new term: they name the old leader's, under which they acted.
    assertSteps(t, steps, {
      detect: { node: current.nodeId, term: current.term.toString() },
      choose: { node: next.nodeId, term: current.term.toString() },
      fence: { node: next.nodeId, term: next.term.toString() },
      'wait-old-lease': { node: next.nodeId, term: next.term.toString() },
      start: { node: next.nodeId, term: next.term.toString() },
      'first-block': { node: next.nodeId, term: next.term.toString() },
    });
    const fence = steps.find((s) => s.name === 'fence');
    const start = steps.find((s) => s.name === 'start');
    t.ok(start && childrenOf(spans, start).some((s) => s.name === 'node StartSequencer'), 'StartSequencer is a child of the start step');
    t.ok(fence && descendants(spans, fence).some((s) => s.name === 'etcd write leader'), 'the fenced txn is a child of the fence step');

    // The supervisor's lines about this failover carry its trace id; the decision is logged once.
    const lines = await waitFor("the supervisor's 'leader producing' line", () => {
      const all = logLines(supervisor).filter((l) => l.chain === CHAIN);
      return all.some((l) => l.msg === 'leader producing' && l.node === next.nodeId && l.term === next.term.toString()) ? all : undefined;
    }, 10_000);
    const decided = lines.filter((l) => l.msg.startsWith(`${current.nodeId} `) && l.msg.includes(`failing over to ${next.nodeId}`));
    t.equal(decided.length, 1, `the failover decision is logged once: ${decided.map((l) => l.msg).join(' | ')}`);
    t.equal(decided[0]?.traceId, root.traceId, 'the decision line carries the failover trace id');
    const changed = lines.find((l) => l.msg === 'leader changed' && l.to === next.nodeId && l.term === next.term.toString());
    t.equal(changed?.traceId, root.traceId, "the 'leader changed' line carries it");
    const producing = lines.find((l) => l.msg === 'leader producing' && l.node === next.nodeId && l.term === next.term.toString());
    t.equal(producing?.traceId, root.traceId, "the 'leader producing' line carries it");
  });

  t.equal(receiver.rejected, 0, 'the receiver refused no export');
  // Probes, renewals, keepalives and watches never start a trace: every root is a request, a
  // failover or a control-loop decision.
  const roots = receiver.spans.filter((s) => s.parentSpanId === '');
  const unexpected = roots.filter((s) => !/^((GET|POST|PUT|DELETE) \/|grpc |failover$|decision$)/.test(s.name));
  t.same(unexpected.map((s) => s.name), [], `${roots.length} root spans, all requests, failovers or decisions`);
  t.notOk(receiver.spans.some((s) => /^etcd |^node /.test(s.name) && s.parentSpanId === ''), 'no etcd call or node RPC is a root');
});
