// Traces over OpenTelemetry: one tracer provider per process, configured by the standard OTEL_*
// environment (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and _ARG, OTEL_TRACES_EXPORTER, OTEL_SDK_DISABLED), exported as OTLP/HTTP, so
// Jaeger's OTLP port (4318) takes it as is. Spans are made even without an exporter: trace ids still
// go into responses, logs and operation records, and link them to each other.
//
// The core sees only the Tracer port (core/telemetry.ts); this file implements it on the OTel API.
import { context, propagation, ROOT_CONTEXT, SpanStatusCode, trace, type Context, type Span as OtelSpan, type Tracer as OtelTracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import type { Span, SpanAttrs, SpanOptions, TraceCarrier, Tracer } from '../../core/telemetry.js';

export const TRACER_NAME = 'baton';

export interface Tracing {
  readonly tracer: Tracer;
  /** Where spans are exported, or undefined when only trace ids are made. */
  readonly exportTo: string | undefined;
  /** Exports what is buffered (before a process exits). */
  flush(): Promise<void>;
}

interface ProcessTracing {
  readonly provider: NodeTracerProvider | undefined;
  readonly exportTo: string | undefined;
}

let installed: ProcessTracing | undefined;

/** What the OTEL_* environment asks of the tracer provider. */
export interface TracingSetup {
  /** False with OTEL_SDK_DISABLED=true: no provider, so no spans and no trace ids. */
  readonly enabled: boolean;
  /** Where spans are exported (OTLP/HTTP), or undefined when only trace ids are made. */
  readonly exportTo: string | undefined;
  /** OTEL_TRACES_SAMPLER (and OTEL_TRACES_SAMPLER_ARG), default parentbased_always_on. */
  readonly sampler: Sampler;
}

/**
 * Reads the OTEL_* variables Baton honours from `env`, rather than letting the SDK read
 * process.env, so that what a given environment does can be tested.
 */
export function tracingSetup(env: NodeJS.ProcessEnv): TracingSetup {
  const enabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase() !== 'true';
  return { enabled, exportTo: enabled ? exportEndpoint(env) : undefined, sampler: samplerFrom(env) };
}

function exportEndpoint(env: NodeJS.ProcessEnv): string | undefined {
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporter && exporter !== 'otlp') return undefined; // 'none', or one Baton does not ship
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return base ? `${base.replace(/\/$/, '')}/v1/traces` : undefined;
}

/** The samplers of the OpenTelemetry specification; an unknown name gets the default. */
function samplerFrom(env: NodeJS.ProcessEnv): Sampler {
  const raw = env.OTEL_TRACES_SAMPLER_ARG?.trim();
  const arg = raw ? Number(raw) : NaN;
  const ratio = arg >= 0 && arg <= 1 ? arg : 1; // the specification's default for a missing or bad one
  switch (env.OTEL_TRACES_SAMPLER?.trim()) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/**
 * Installs the process's tracer provider once (the global one: @fastify/otel and the context
 * manager use it); later calls in the same process share it. OTEL_SDK_DISABLED=true leaves the
 * API's no-op provider in place: no spans, no trace ids.
 */
export function startTracing(opts: { replicaId: string; version?: string; env?: NodeJS.ProcessEnv }): Tracing {
  if (!installed) {
    const { enabled, exportTo, sampler } = tracingSetup(opts.env ?? process.env);
    if (!enabled) {
      installed = { provider: undefined, exportTo: undefined };
    } else {
      const processors: SpanProcessor[] = [];
      // The exporter reads the rest of OTEL_EXPORTER_OTLP_* (headers, timeout) itself; JSON is
      // the encoding of the http exporter.
      // Batch delay and sizes come from OTEL_BSP_* (the SDK reads them).
      if (exportTo) processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: exportTo })));
      // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) win over these defaults.
      const resource = defaultResource()
        .merge(resourceFromAttributes({ 'service.name': 'baton', 'service.version': opts.version ?? '0.1.0', 'service.instance.id': opts.replicaId }))
        .merge(detectResources({ detectors: [envDetector] }));
      const provider = new NodeTracerProvider({ resource, sampler, spanProcessors: processors });
      provider.register();
      installed = { provider, exportTo };
    }
  }
  const p = installed;
  return {
    tracer: new OtelTracerPort(trace.getTracer(TRACER_NAME)),
    exportTo: p.exportTo,
    flush: async () => {
      await p.provider?.forceFlush().catch(() => undefined);
    },
  };
}

/** The trace id of the current span (a recording one), for responses and log lines. */
export function currentTraceId(ctx: Context = context.active()): string | undefined {
  const sc = trace.getSpan(ctx)?.spanContext();
  return sc && trace.isSpanContextValid(sc) ? sc.traceId : undefined;
}

/** True inside a span that records: child spans (etcd, node RPCs) are made only there. */
export function insideRecordingSpan(): boolean {
  return trace.getSpan(context.active())?.isRecording() === true;
}

function attributes(attrs: SpanAttrs): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'bigint' ? v.toString() : v;
  }
  return out;
}

export function errorCodeOf(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : err instanceof Error ? err.constructor.name : 'ERROR';
}

class OtelSpanHandle implements Span {
  constructor(
    private readonly span: OtelSpan,
    private readonly ctx: Context,
  ) {}

  get traceId(): string {
    const sc = this.span.spanContext();
    return trace.isSpanContextValid(sc) ? sc.traceId : '';
  }

  set(attrs: SpanAttrs): void {
    this.span.setAttributes(attributes(attrs));
  }

  event(name: string, attrs: SpanAttrs = {}): void {
    this.span.addEvent(name, attributes(attrs));
  }

  fail(code: string, message: string): void {
    this.span.setAttribute('error.type', code);
    this.span.setStatus({ code: SpanStatusCode.ERROR, message });
  }

  end(): void {
    this.span.end();
  }

  carrier(): TraceCarrier | undefined {
    return carrierOf(this.ctx);
  }

  within<T>(fn: () => Promise<T>): Promise<T> {
    return context.with(this.ctx, fn);
  }
}

function carrierOf(ctx: Context): TraceCarrier | undefined {
  const c: Record<string, string> = {};
  propagation.inject(ctx, c);
  if (!c.traceparent) return undefined;
  return c.tracestate ? { traceparent: c.traceparent, tracestate: c.tracestate } : { traceparent: c.traceparent };
}

class OtelTracerPort implements Tracer {
  constructor(private readonly otel: OtelTracer) {}

  private parent(opts: SpanOptions | undefined): Context {
    if (opts?.parent === null) return ROOT_CONTEXT;
    if (opts?.parent) return propagation.extract(ROOT_CONTEXT, { ...opts.parent });
    return context.active();
  }

  start(name: string, attrs: SpanAttrs, opts?: SpanOptions): Span {
    const parent = this.parent(opts);
    const span = this.otel.startSpan(name, { attributes: attributes(attrs), ...(opts?.startWallMs !== undefined ? { startTime: opts.startWallMs } : {}) }, parent);
    return new OtelSpanHandle(span, trace.setSpan(parent, span));
  }

  async span<T>(name: string, attrs: SpanAttrs, fn: (span: Span) => Promise<T>, opts?: SpanOptions): Promise<T> {
    const span = this.start(name, attrs, opts);
    try {
      return await span.within(() => fn(span));
    } catch (err) {
      span.fail(errorCodeOf(err), err instanceof Error ? err.message : String(err));
      throw err;
    } finally {
      span.end();
    }
  }

  carrier(): TraceCarrier | undefined {
    return carrierOf(context.active());
  }

  outside<T>(fn: () => Promise<T>): Promise<T> {
    return context.with(ROOT_CONTEXT, fn);
  }
}
