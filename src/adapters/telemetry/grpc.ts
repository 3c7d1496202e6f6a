// Traces of the gRPC operator API: one server span per unary call, continuing the caller's trace
// when its metadata carries a W3C traceparent, with the handler run inside it (so an intent written
// by the call carries its trace). The trace id goes back in the trailers (`x-trace-id`). Streams
// (WatchEvents) are left alone: a long-lived stream is not one request.
import { Metadata, type ServiceDefinition, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { TRACER_NAME } from './tracing.js';

function carrierOf(md: Metadata): Record<string, string> {
  const c: Record<string, string> = {};
  for (const k of ['traceparent', 'tracestate']) {
    const v = md.get(k)[0];
    if (typeof v === 'string') c[k] = v;
  }
  return c;
}

export function traceGrpcService<T extends object>(serviceName: string, definition: ServiceDefinition, impl: T): T {
  const out: Record<string, unknown> = { ...(impl as Record<string, unknown>) };
  for (const [name, method] of Object.entries(definition)) {
    const handler = (impl as Record<string, unknown>)[name];
    if (typeof handler !== 'function' || method.requestStream || method.responseStream) continue;
    const unary = handler as (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;
    // The method as on the wire (`/pkg.Service/Method`): ts-proto's definitions give no
    // originalName, and their keys are camelCased.
    const rpc = method.path.slice(method.path.lastIndexOf('/') + 1) || (method.originalName ?? name);
    out[name] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const parent = propagation.extract(ROOT_CONTEXT, carrierOf(call.metadata));
      const span = trace.getTracer(TRACER_NAME).startSpan(
        `grpc ${serviceName}/${rpc}`,
        { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.service': serviceName, 'rpc.method': rpc } },
        parent,
      );
      const sc = span.spanContext();
      const done: sendUnaryData<unknown> = (err, value, trailer, flags) => {
        if (err) {
          span.setAttribute('rpc.grpc.status_code', (err as Partial<ServiceError>).code ?? 2);
          span.setStatus({ code: SpanStatusCode.ERROR, message: (err as { message?: string }).message ?? (err as { details?: string }).details ?? 'error' });
        }
        span.end();
        let t = trailer;
        if (trace.isSpanContextValid(sc)) {
          // A failed call's trailers are its error's metadata (a separate trailer would replace
          // them, and with them Baton's error code): the trace id joins them there.
          const failed = err as Partial<ServiceError> | null;
          if (failed) {
            failed.metadata ??= new Metadata();
            failed.metadata.set('x-trace-id', sc.traceId);
          } else {
            t = trailer ?? new Metadata();
            t.set('x-trace-id', sc.traceId);
          }
        }
        callback(err, value, t, flags);
      };
      context.with(trace.setSpan(parent, span), () => unary(call, done));
    };
  }
  return out as T;
}
