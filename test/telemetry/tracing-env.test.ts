// The OTEL_* environment of the tracer provider (tracingSetup): where spans are exported, when
// tracing is off altogether, and which sampler OTEL_TRACES_SAMPLER picks, judged by what a provider
// built with that sampler records.
import { ROOT_CONTEXT, trace, TraceFlags, type Context } from '@opentelemetry/api';
import { BasicTracerProvider, type Sampler } from '@opentelemetry/sdk-trace-node';
import t from 'tap';
import { tracingSetup } from '../../src/adapters/telemetry/tracing.js';

/** How many of `n` root spans (or children of `parent`) the sampler records. */
function recorded(sampler: Sampler, n: number, parent: Context = ROOT_CONTEXT): number {
  const tracer = new BasicTracerProvider({ sampler }).getTracer('test');
  let count = 0;
  for (let i = 0; i < n; i++) {
    const span = tracer.startSpan('s', {}, parent);
    if (span.isRecording() && (span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0) count++;
    span.end();
  }
  return count;
}

function remoteParent(sampled: boolean): Context {
  const traceFlags = sampled ? TraceFlags.SAMPLED : TraceFlags.NONE;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags, isRemote: true });
}

t.test('the export endpoint: the traces endpoint as is, else the base endpoint + /v1/traces', async (t) => {
  const both = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:4318/custom/path' };
  t.equal(tracingSetup(both).exportTo, 'http://traces:4318/custom/path', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT wins, unchanged');
  t.equal(tracingSetup({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318' }).exportTo, 'http://base:4318/v1/traces', 'the base endpoint gets /v1/traces');
  t.equal(tracingSetup({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318/' }).exportTo, 'http://base:4318/v1/traces', 'without a double slash');
  t.equal(tracingSetup({}).exportTo, undefined, 'no endpoint: nothing exported');
  t.ok(tracingSetup({}).enabled, 'but spans (and trace ids) are still made');
  t.equal(tracingSetup({ ...both, OTEL_TRACES_EXPORTER: 'otlp' }).exportTo, 'http://traces:4318/custom/path', 'OTEL_TRACES_EXPORTER=otlp exports');
});

t.test('OTEL_TRACES_EXPORTER=none: nothing exported, tracing still on', async (t) => {
  const s = tracingSetup({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318', OTEL_TRACES_EXPORTER: 'none' });
  t.equal(s.exportTo, undefined, 'no export');
  t.ok(s.enabled, 'trace ids are still made');
});

t.test('OTEL_SDK_DISABLED=true: no provider at all, whatever the endpoint', async (t) => {
  for (const v of ['true', 'TRUE', ' true ']) {
    const s = tracingSetup({ OTEL_SDK_DISABLED: v, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://base:4318' });
    t.same([s.enabled, s.exportTo], [false, undefined], `OTEL_SDK_DISABLED=${JSON.stringify(v)}`);
  }
  t.ok(tracingSetup({ OTEL_SDK_DISABLED: 'false' }).enabled, 'false leaves it on');
});

t.test('OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG are honoured', async (t) => {
  const sampler = (env: NodeJS.ProcessEnv) => tracingSetup(env).sampler;
  t.equal(recorded(sampler({}), 20), 20, 'default (parentbased_always_on): every root recorded');
  t.equal(recorded(sampler({}), 20, remoteParent(false)), 0, 'default: an unsampled parent is followed');
  t.equal(recorded(sampler({ OTEL_TRACES_SAMPLER: 'always_off' }), 20), 0, 'always_off: nothing');
  t.equal(recorded(sampler({ OTEL_TRACES_SAMPLER: 'always_on' }), 20, remoteParent(false)), 20, 'always_on: even under an unsampled parent');
  t.equal(recorded(sampler({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }), 20), 0, 'parentbased_always_off: no root');
  t.equal(recorded(sampler({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }), 20, remoteParent(true)), 20, '…but a sampled parent is followed');
  t.equal(recorded(sampler({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }), 50), 0, 'traceidratio 0: nothing');
  t.equal(recorded(sampler({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1' }), 50), 50, 'traceidratio 1: everything');
  const half = recorded(sampler({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }), 400);
  t.ok(half > 100 && half < 300, `traceidratio 0.5: about half of 400 (${half})`);
  t.equal(recorded(sampler({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' }), 20), 0, 'parentbased_traceidratio 0: no root');
  t.equal(recorded(sampler({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '7' }), 20), 20, 'a ratio out of range is 1');
  t.equal(recorded(sampler({ OTEL_TRACES_SAMPLER: 'bogus' }), 20, remoteParent(false)), 0, 'an unknown sampler is the default (parent-based)');
  t.equal(recorded(sampler({ OTEL_TRACES_SAMPLER: 'bogus' }), 20), 20, '…which records roots');
});
