// LeaderChangeTrace on a recording tracer and metrics: the steps of an automatic failover and of an
// operator's change hang under the right parent, in order, each names chain, node, term and reason,
// and the failover is measured once with its outcome.
import t, { type Test } from 'tap';
import { LeaderChangeTrace } from '../../src/core/leader-change.js';
import type { FailoverOutcome, Metrics, Span, SpanAttrs, SpanOptions, TraceCarrier, Tracer } from '../../src/core/telemetry.js';

interface Recorded {
  id: string;
  name: string;
  parent: string | undefined;
  attrs: Record<string, unknown>;
  ended: boolean;
  failed: string | undefined;
  startWallMs: number | undefined;
}

class RecordingTracer implements Tracer {
  readonly spans: Recorded[] = [];
  private current: string | undefined;

  private make(name: string, attrs: SpanAttrs, opts?: SpanOptions): Span {
    const parent = opts?.parent === null ? undefined : opts?.parent ? opts.parent.traceparent : this.current;
    const r: Recorded = { id: `s${this.spans.length + 1}`, name, parent, attrs: { ...attrs }, ended: false, failed: undefined, startWallMs: opts?.startWallMs };
    this.spans.push(r);
    const carrier: TraceCarrier = { traceparent: r.id };
    return {
      traceId: 't',
      set: (a) => Object.assign(r.attrs, a),
      event: () => undefined,
      fail: (code) => (r.failed = code),
      end: () => (r.ended = true),
      carrier: () => carrier,
      within: async (fn) => {
        const before = this.current;
        this.current = r.id;
        try {
          return await fn();
        } finally {
          this.current = before;
        }
      },
    };
  }

  start(name: string, attrs: SpanAttrs, opts?: SpanOptions): Span {
    return this.make(name, attrs, opts);
  }

  async span<T>(name: string, attrs: SpanAttrs, fn: (s: Span) => Promise<T>, opts?: SpanOptions): Promise<T> {
    const s = this.make(name, attrs, opts);
    try {
      return await s.within(() => fn(s));
    } finally {
      s.end();
    }
  }

  carrier(): TraceCarrier | undefined {
    return this.current ? { traceparent: this.current } : undefined;
  }

  outside<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }

  named(name: string): Recorded {
    return this.spans.find((s) => s.name === name)!;
  }
}

function setup() {
  const tracer = new RecordingTracer();
  const failovers: { trigger: string; outcome: FailoverOutcome; ms: number }[] = [];
  const changes: string[] = [];
  const metrics: Metrics = {
    recordFailover: (_c, _m, trigger, outcome, ms) => failovers.push({ trigger, outcome, ms }),
    leaderChanged: (_c, trigger) => changes.push(trigger),
    decision: () => undefined,
    probed: () => undefined,
  };
  let mono = 1000;
  const trace = new LeaderChangeTrace({ chainId: 'chain-a', tracer, metrics, monoMs: () => mono, wallMs: () => 1_700_000_000_000 + mono });
  return { tracer, failovers, changes, trace, advance: (ms: number) => (mono += ms) };
}

const REASON = 'a1 unhealthy: 3 probe failures';

/** Chain, node, term and reason on a step span. */
function assertStep(t: Test, s: Recorded, want: { node: string; term: bigint; reason: string | RegExp }): void {
  t.match(s.attrs, { 'baton.chain': 'chain-a', 'baton.node': want.node, 'baton.term': want.term, 'baton.reason': want.reason }, `${s.name}: chain, node, term and reason`);
}

t.test('an automatic failover: one root, steps in order with their attributes', async (t) => {
  const { tracer, changes, trace, advance } = setup();
  const root = trace.beginFailover({ from: 'a1', fromTerm: 5n, to: 'a2', reason: REASON, mode: 'lease', lastGoodMs: 500 });
  await root.within(async () => {
    advance(20);
    const parent = tracer.carrier();
    await tracer.span('fence', {}, async () => trace.written({ term: 7n, nodeId: 'a2', reason: `failover from a1: ${REASON}`, trigger: 'auto', mode: 'lease', parent, handoff: false }));
  });
  advance(3000);
  await trace.start(7n, async () => undefined);
  trace.started(7n);
  advance(200);
  trace.producing(7n, 42);

  const r = tracer.named('failover');
  t.equal(r.parent, undefined, 'the failover is a root');
  const steps = tracer.spans.filter((s) => s.parent === r.id);
  t.same(steps.map((s) => s.name), ['detect', 'choose', 'fence', 'wait-old-lease', 'start', 'first-block'], 'steps in order');
  t.ok(tracer.spans.every((s) => s.ended), 'every span ended');
  t.match(r.attrs, { 'baton.chain': 'chain-a', 'baton.from': 'a1', 'baton.node': 'a2', 'baton.term': 7n, 'baton.trigger': 'auto', 'baton.reason': REASON });
  // Before the txn there is no new term: detect and choose name the term they acted under, the old leader's.
  assertStep(t, tracer.named('detect'), { node: 'a1', term: 5n, reason: REASON });
  assertStep(t, tracer.named('choose'), { node: 'a2', term: 5n, reason: REASON });
  t.equal(tracer.named('choose').attrs['baton.from'], 'a1', 'choose names the node it replaces');
  for (const name of ['wait-old-lease', 'start', 'first-block']) assertStep(t, tracer.named(name), { node: 'a2', term: 7n, reason: `failover from a1: ${REASON}` });
  t.same(changes, ['auto']);
});

t.test('the failover histogram measures from detection (the old leader\'s last good report) to the first block', async (t) => {
  const { tracer, failovers, trace, advance } = setup();
  // The old leader last answered well at mono 500; the loop decides at mono 1000.
  const root = trace.beginFailover({ from: 'a1', fromTerm: 5n, to: 'a2', reason: REASON, mode: 'lease', lastGoodMs: 500 });
  await root.within(async () => {
    advance(20);
    const parent = tracer.carrier();
    await tracer.span('fence', {}, async () => trace.written({ term: 7n, nodeId: 'a2', reason: REASON, trigger: 'auto', mode: 'lease', parent, handoff: false }));
  });
  advance(3000);
  trace.started(7n);
  advance(200);
  trace.producing(7n, 42);
  t.same(failovers, [{ trigger: 'auto', outcome: 'succeeded', ms: 500 + 20 + 3000 + 200 }], 'one observation, the 500 ms detection window included');
  const detectStart = 1_700_000_000_500;
  t.equal(tracer.named('detect').startWallMs, detectStart, 'the detect span starts where the observation starts');
  t.equal(tracer.named('failover').startWallMs, detectStart, 'and so does the root');
});

t.test('a last good report not before the decision (or none) starts detection at the decision', async (t) => {
  for (const lastGoodMs of [undefined, 1000, 1500]) {
    const { tracer, failovers, trace, advance } = setup();
    trace.beginFailover({ from: 'a1', fromTerm: 5n, to: 'a2', reason: REASON, mode: 'commit', lastGoodMs });
    trace.written({ term: 7n, nodeId: 'a2', reason: REASON, trigger: 'auto', mode: 'commit', parent: undefined, handoff: false });
    advance(700);
    trace.producing(7n, 1);
    t.same(failovers.map((f) => f.ms), [700], `last good ${lastGoodMs}: measured from the decision`);
    t.equal(tracer.named('detect').startWallMs, 1_700_000_001_000, 'detect starts at the decision');
  }
});

t.test("an operator's change hangs under the operation span; a handoff waits out no lease", async (t) => {
  const { tracer, failovers, trace } = setup();
  await tracer.span('switchover', {}, async () => {
    const parent = tracer.carrier();
    await tracer.span('fence', {}, async () => trace.written({ term: 9n, nodeId: 'a3', reason: 'switchover (upgrade)', trigger: 'switchover', mode: 'lease', parent, handoff: true }));
    trace.started(9n);
  });
  trace.producing(9n, 50);
  const op = tracer.named('switchover');
  t.same(tracer.spans.filter((s) => s.parent === op.id).map((s) => s.name), ['fence', 'first-block']);
  t.notOk(tracer.spans.some((s) => s.name === 'wait-old-lease'), 'no lease to wait out');
  assertStep(t, tracer.named('first-block'), { node: 'a3', term: 9n, reason: 'switchover (upgrade)' });
  t.same(failovers.map((f) => [f.trigger, f.outcome]), [['switchover', 'succeeded']]);
});

t.test('superseded and abandoned changes are closed, failed and measured', async (t) => {
  const { tracer, failovers, trace } = setup();
  trace.written({ term: 3n, nodeId: 'a2', reason: 'operator failover', trigger: 'operator', mode: 'commit', parent: undefined, handoff: false });
  trace.written({ term: 4n, nodeId: 'a3', reason: 'rolled back', trigger: 'rollback', mode: 'commit', parent: undefined, handoff: false });
  trace.abandon();
  t.same(failovers.map((f) => [f.trigger, f.outcome]), [['operator', 'superseded'], ['rollback', 'abandoned']]);
  t.ok(tracer.spans.every((s) => s.ended && s.failed), 'their open steps ended as failed');
  trace.written({ term: 5n, nodeId: 'a1', reason: 'elected', trigger: 'elect', mode: 'lease', parent: undefined, handoff: false });
  trace.producing(5n, 1);
  t.equal(failovers.length, 2, 'an election is not a failover');
});
