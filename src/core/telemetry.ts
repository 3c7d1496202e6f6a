// What the core needs to be observed: a Tracer to put its steps (a failover's detect, choose, fence,
// wait, start, first block; a handoff's prepare, catch-up, complete) into traces, and Metrics with
// domain methods. No OpenTelemetry or prom-client here: adapters/telemetry implements both, and
// the no-op versions below are the defaults, so a core object built without telemetry still works.

/** Attributes of a span; undefined values are left out. */
export type SpanAttrs = Readonly<Record<string, string | number | boolean | bigint | undefined>>;

/**
 * A trace context as it travels outside the process: W3C trace context headers. It is stored with
 * an operation in etcd, so the replica that executes the operation continues the requester's trace.
 */
export interface TraceCarrier {
  readonly traceparent: string;
  readonly tracestate?: string;
}

export interface Span {
  /** 32 hex digits; '' when not traced. */
  readonly traceId: string;
  set(attrs: SpanAttrs): void;
  event(name: string, attrs?: SpanAttrs): void;
  /** Marks the span failed (it still has to be ended). */
  fail(code: string, message: string): void;
  end(): void;
  /** This span as a carrier, to start children in another turn of the loop. */
  carrier(): TraceCarrier | undefined;
  /** Runs fn with this span as the current one: etcd calls and node RPCs inside become its children. */
  within<T>(fn: () => Promise<T>): Promise<T>;
}

export interface SpanOptions {
  /** Parent; default: the current span (if any). `null`: a new trace. */
  readonly parent?: TraceCarrier | null;
  /** When the step began (wall ms), if before now: e.g. detection begins at the last good probe. */
  readonly startWallMs?: number;
}

export interface Tracer {
  /** Runs fn inside a new span, ended when fn settles (failed when it throws). */
  span<T>(name: string, attrs: SpanAttrs, fn: (span: Span) => Promise<T>, opts?: SpanOptions): Promise<T>;
  /** A span ended by the caller: for a step that lasts over several turns of the control loop. */
  start(name: string, attrs: SpanAttrs, opts?: SpanOptions): Span;
  /** The current span as a carrier (undefined when there is none). */
  carrier(): TraceCarrier | undefined;
  /** Runs fn with no current span: work a traced step merely woke up is not part of that step. */
  outside<T>(fn: () => Promise<T>): Promise<T>;
}

/** Why a new term was written: an automatic failover, an operator failover, a switchover or its rollback, a break-glass override, the first election, a change of fencing mode. */
export type FailoverTrigger = 'auto' | 'operator' | 'switchover' | 'rollback' | 'override';
export type TermTrigger = FailoverTrigger | 'elect' | 'mode-switch';
export type FailoverOutcome = 'succeeded' | 'superseded' | 'abandoned';

/** Domain measurements the control loop reports; scrape-time gauges are the adapter's business. */
export interface Metrics {
  /**
   * A leader change ended: from the start of detection (the old leader's last good report; an
   * operator's change: its execution) to the new leader's first block, or given up.
   */
  recordFailover(chainId: string, mode: string, trigger: FailoverTrigger, outcome: FailoverOutcome, ms: number): void;
  /** A new term was written for the chain. */
  leaderChanged(chainId: string, trigger: TermTrigger, term: bigint): void;
  /** The loop took a decision that acts (not a renewal): its kind, once per decision. */
  decision(chainId: string, kind: string): void;
  /** The control loop probed a node (the probe rate; other Health calls are not probes). */
  probed(chainId: string, ok: boolean): void;
}

const noopSpan: Span = {
  traceId: '',
  set: () => undefined,
  event: () => undefined,
  fail: () => undefined,
  end: () => undefined,
  carrier: () => undefined,
  within: (fn) => fn(),
};

export const noopTracer: Tracer = {
  span: (_name, _attrs, fn) => fn(noopSpan),
  start: () => noopSpan,
  carrier: () => undefined,
  outside: (fn) => fn(),
};

export const noopMetrics: Metrics = {
  recordFailover: () => undefined,
  leaderChanged: () => undefined,
  decision: () => undefined,
  probed: () => undefined,
};

/** W3C traceparent → trace id, or undefined when it is not one. */
export function traceIdOf(carrier: TraceCarrier | undefined): string | undefined {
  const m = carrier && /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(carrier.traceparent);
  return m?.[1];
}
