// The operation store as the API and the supervisors see it, with the trace context of the request
// stored on each new operation (so the replica that executes it continues the requester's trace)
// and operations counted by kind and state as they are accepted and as they end.
import { isFinal, type Operation } from '../../core/operation.js';
import type { NewOperation, OperationStore } from '../../core/ports.js';
import { traceIdOf, type Tracer } from '../../core/telemetry.js';

export interface OperationCounter {
  operation(kind: string, state: string): void;
}

/** Wraps submit and update (whatever else the store offers passes through unchanged). */
export function traceOperations<T extends OperationStore>(inner: T, tracer: Tracer, counter: OperationCounter | undefined): T {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'submit') {
        return async (request: NewOperation, ...rest: unknown[]) => {
          const carrier = tracer.carrier();
          const traceId = traceIdOf(carrier);
          const traced = carrier && traceId ? { ...request, traceId, traceparent: carrier.traceparent } : request;
          const res = await (target.submit as (...a: unknown[]) => Promise<{ operation: Operation; replayed: boolean }>).call(target, traced, ...rest);
          if (!res.replayed) counter?.operation(res.operation.params.kind, res.operation.state);
          return res;
        };
      }
      if (prop === 'update') {
        return async (fence: unknown, op: Operation, ...rest: unknown[]) => {
          await (target.update as (...a: unknown[]) => Promise<void>).call(target, fence, op, ...rest);
          if (isFinal(op.state)) counter?.operation(op.params.kind, op.state);
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
