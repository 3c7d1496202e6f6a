// One pino root logger; components take a child with `component` set. Every line written inside a
// traced span carries its trace and span id (the mixin), so a log line leads to its trace and back;
// request lines also carry the request id (Fastify's child logger, `reqId`).
import { context, trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';

export type { Logger };

export function traceFields(): { traceId?: string; spanId?: string } {
  const sc = trace.getSpan(context.active())?.spanContext();
  return sc && trace.isSpanContextValid(sc) ? { traceId: sc.traceId, spanId: sc.spanId } : {};
}

export function createRootLogger(level: string = 'info', destination?: pino.DestinationStream): Logger {
  const opts = { level, base: { pid: process.pid }, mixin: traceFields };
  return destination ? pino(opts, destination) : pino(opts);
}
