// Traces of the REST API: @fastify/otel makes one span per request (continuing the caller's trace
// when it sends a W3C traceparent) and runs the handler inside it, so the etcd txn that makes an
// intent durable, and the trace context stored with the operation, belong to the request's trace.
// Every response names its trace: `traceresponse` (W3C Trace Context level 2) and `x-trace-id`.
import { FastifyOtelInstrumentation } from '@fastify/otel';
import { trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyPluginCallback, FastifyRequest } from 'fastify';

let instrumentation: FastifyOtelInstrumentation | undefined;

/** Routes that a kubelet or a scraper calls every few seconds: never a story worth a trace. */
const UNTRACED = new Set(['/livez', '/readyz', '/metrics']);

function requestSpan(req: FastifyRequest) {
  const otel = (req as FastifyRequest & { opentelemetry?: () => { span?: ReturnType<typeof trace.getActiveSpan> } }).opentelemetry?.();
  return otel?.span ?? undefined;
}

/** The plugin to register before any route (it instruments the routes declared after it). */
export function httpTracing(): FastifyPluginCallback {
  instrumentation ??= new FastifyOtelInstrumentation({
    // One span per request: the handler runs in it (no separate handler or hook spans).
    instrumentHooks: false,
    instrumentHandler: false,
    ignorePaths: (route: { url: string }) => UNTRACED.has(route.url),
    requestHook: (span, req) => {
      const r = req as FastifyRequest;
      span.updateName(`${r.method} ${r.routeOptions.url ?? 'unknown route'}`);
      span.setAttribute('baton.request_id', r.id);
    },
  });
  const otel = instrumentation.plugin();
  const plugin: FastifyPluginCallback = (app: FastifyInstance, _opts, done) => {
    app.register(otel);
    app.addHook('onSend', async (req, reply) => {
      const sc = requestSpan(req)?.spanContext();
      if (!sc || !trace.isSpanContextValid(sc)) return;
      void reply.header('x-trace-id', sc.traceId);
      void reply.header('traceresponse', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`);
    });
    done();
  };
  // Applies to the app it is registered on, not an encapsulated child.
  (plugin as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
  return plugin;
}
