// Instrumentation of the two things every failover talks to: etcd (unary calls, through the etcd3
// client's global fault-handling policy, which wraps every unary call and no stream) and the nodes
// (a proxy around NodeControl). Each call is timed into metrics; it becomes a child span only
// inside a recorded span (a failover step, an API request), so probes, renewals, keepalives and
// watches never make traces of their own.
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { NodeSpec } from '../../core/chain.js';
import type { NodeControl } from '../../core/ports.js';
import { errorCodeOf, insideRecordingSpan, TRACER_NAME } from './tracing.js';

export interface EtcdCallObserver {
  etcdCall(method: string, seconds: number, errorKind: string | undefined): void;
}

export interface NodeRpcObserver {
  nodeRpc(chainId: string | undefined, nodeId: string, rpc: string, seconds: number, errorCode: string | undefined): void;
}

interface CallSlot {
  method?: string;
}

const slot = new AsyncLocalStorage<CallSlot>();
const label = new AsyncLocalStorage<string>();

/** Names the etcd calls made inside fn (what Baton does, e.g. "write leader") for their spans. */
export function withEtcdLabel<T>(what: string, fn: () => Promise<T>): Promise<T> {
  return label.run(what, fn);
}

/** Called from the client's defaultCallOptions, inside the call: tells the policy which method runs. */
export function noteEtcdMethod(service: string, method: string): void {
  const s = slot.getStore();
  if (s) s.method = `${service}.${method}`;
}

/**
 * Wraps the execution of one unary etcd call (etcd3's global policy `execute`): times it, counts its
 * failure, and makes it a child span when there is a recording parent.
 */
export function observeEtcdCall<T>(observer: EtcdCallObserver | undefined, fn: () => PromiseLike<T> | T): Promise<T> {
  const record: CallSlot = {};
  const what = label.getStore();
  const span = insideRecordingSpan()
    ? trace.getTracer(TRACER_NAME).startSpan(`etcd ${what ?? 'call'}`, { kind: SpanKind.CLIENT, attributes: { 'db.system': 'etcd', ...(what ? { 'baton.etcd.what': what } : {}) } })
    : undefined;
  const started = performance.now();
  const done = (err: unknown) => {
    const method = record.method ?? 'unknown';
    const kind = err === undefined ? undefined : err instanceof Error ? err.constructor.name : 'Error';
    observer?.etcdCall(method, (performance.now() - started) / 1000, kind);
    if (span) {
      span.setAttribute('rpc.method', method);
      span.updateName(`etcd ${what ?? method}`);
      if (kind) span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      span.end();
    }
  };
  const ctx = span ? trace.setSpan(context.active(), span) : context.active();
  return context.with(ctx, () =>
    slot.run(record, async () => {
      try {
        const v = await fn();
        done(undefined);
        return v;
      } catch (err) {
        done(err);
        throw err;
      }
    }),
  );
}

const RPC_NAMES: Record<string, string> = {
  health: 'Health',
  start: 'StartSequencer',
  renew: 'RenewLease',
  stop: 'StopSequencer',
  prepareHandoff: 'PrepareHandoff',
  completeHandoff: 'CompleteHandoff',
};

function isNodeSpec(v: unknown): v is NodeSpec {
  return typeof v === 'object' && v !== null && typeof (v as NodeSpec).id === 'string' && typeof (v as NodeSpec).endpoint === 'string';
}

/** The term an RPC carries, wherever it is among its arguments (grant.term, term, ticket.term). */
function termOf(args: unknown[]): string | undefined {
  for (const a of args) {
    if (typeof a === 'bigint') return a.toString();
    const t = (a as { term?: unknown } | undefined)?.term;
    if (typeof t === 'bigint') return t.toString();
  }
  return undefined;
}

function chainOf(args: unknown[]): string | undefined {
  for (const a of args) {
    const c = (a as { chainId?: unknown } | undefined)?.chainId;
    if (typeof c === 'string') return c;
  }
  return undefined;
}

/**
 * NodeControl with every call (whatever methods the port has: the proxy does not need to know
 * them) timed, counted by error code (STALE_TERM: a fencing breach prevented) and, inside a
 * recorded span, traced as a client span with node, term and outcome.
 */
export function instrumentNodeControl<T extends NodeControl>(inner: T, observer: NodeRpcObserver | undefined, chainOfNode?: (node: NodeSpec) => string | undefined): T {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'close' || prop === 'constructor') return value;
      const fn = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        const node = args[0];
        if (!isNodeSpec(node)) return fn.apply(target, args);
        const rpc = RPC_NAMES[prop] ?? prop;
        const chain = chainOf(args) ?? chainOfNode?.(node);
        const span = insideRecordingSpan()
          ? trace.getTracer(TRACER_NAME).startSpan(`node ${rpc}`, {
              kind: SpanKind.CLIENT,
              attributes: { 'rpc.system': 'grpc', 'rpc.method': rpc, 'baton.node': node.id, ...(chain ? { 'baton.chain': chain } : {}), ...(termOf(args) ? { 'baton.term': termOf(args) } : {}) },
            })
          : undefined;
        const started = performance.now();
        const finish = (err: unknown) => {
          const code = err === undefined ? undefined : errorCodeOf(err);
          observer?.nodeRpc(chain, node.id, rpc, (performance.now() - started) / 1000, code);
          if (span) {
            if (code) {
              span.setAttribute('error.type', code);
              span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
            }
            span.end();
          }
        };
        const run = () => Promise.resolve(fn.apply(target, args));
        const p = span ? context.with(trace.setSpan(context.active(), span), run) : run();
        return p.then(
          (v) => {
            finish(undefined);
            return v;
          },
          (err: unknown) => {
            finish(err);
            throw err;
          },
        );
      };
    },
  });
}
