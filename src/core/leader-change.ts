// The story of one leader change, from the new term to the new leader's first block, as spans and
// metrics. A change lasts over several turns of the control loop (the txn, then waiting out the old
// lease, then StartSequencer, then the first block seen by a probe), so its spans are kept here
// rather than in one call. Every step hangs under the span that asked for the change: the root of
// an automatic failover, or the operation span that continues the operator's request.
import type { FencingMode } from './chain.js';
import type { Term } from './term.js';
import { noopMetrics, noopTracer, traceIdOf, type FailoverOutcome, type Metrics, type Span, type SpanAttrs, type TermTrigger, type TraceCarrier, type Tracer } from './telemetry.js';

interface Change {
  readonly term: Term;
  readonly nodeId: string;
  /** Why the term was written: every later step of the change carries it. */
  readonly reason: string;
  readonly trigger: TermTrigger;
  readonly mode: FencingMode;
  /** The span the steps hang under. */
  readonly parent: TraceCarrier | undefined;
  /** Monotonic ms the change began: detection (the old leader's last good report), or the operation's execution. */
  readonly sinceMs: number;
  /** The root span this tracker owns (an automatic failover), ended with the change. */
  readonly root: Span | undefined;
  wait: Span | undefined;
  firstBlock: Span | undefined;
}

/** An automatic failover as the control loop decided it. */
export interface FailoverStart {
  readonly from: string;
  /** The old leader's term: the term in force while the failure was detected and a successor chosen. */
  readonly fromTerm: Term | undefined;
  readonly to: string;
  readonly reason: string;
  readonly mode: FencingMode;
  /** Monotonic ms of the old leader's last good report, where detection began (now when unknown). */
  readonly lastGoodMs: number | undefined;
}

/** A new term was written: for whom, why, and under which span its later steps hang. */
export interface WrittenTerm {
  readonly term: Term;
  readonly nodeId: string;
  readonly reason: string;
  readonly trigger: TermTrigger;
  readonly mode: FencingMode;
  /** The span that asked for the change. */
  readonly parent: TraceCarrier | undefined;
  /** A handoff's target is active at once (CompleteHandoff): no old lease is waited out. */
  readonly handoff: boolean;
}

export interface LeaderChangeDeps {
  readonly chainId: string;
  readonly tracer?: Tracer;
  readonly metrics?: Metrics;
  monoMs(): number;
  wallMs(): number;
}

export class LeaderChangeTrace {
  readonly tracer: Tracer;
  readonly metrics: Metrics;
  private current: Change | undefined;
  private pendingRoot: { span: Span; sinceMs: number } | undefined;

  constructor(private readonly deps: LeaderChangeDeps) {
    this.tracer = deps.tracer ?? noopTracer;
    this.metrics = deps.metrics ?? noopMetrics;
  }

  private attrs(extra: SpanAttrs): SpanAttrs {
    return { 'baton.chain': this.deps.chainId, ...extra };
  }

  /** What every step after the new term says: chain, node, new term, why, fencing mode. */
  private stepAttrs(c: Change): SpanAttrs {
    return this.attrs({ 'baton.node': c.nodeId, 'baton.term': c.term, 'baton.reason': c.reason, 'baton.mode': c.mode });
  }

  /**
   * An automatic failover begins: its root span (a trace of its own) with the detection (from the
   * last good report of the old leader to now) and the choice as its first steps. The change, and
   * the failover histogram, are measured from the start of detection. Until a new term exists the
   * steps carry the old leader's term as `baton.term` (the term they act under).
   */
  beginFailover(f: FailoverStart): Span {
    const nowMono = this.deps.monoMs();
    const detectedFromMono = f.lastGoodMs !== undefined && f.lastGoodMs < nowMono ? f.lastGoodMs : nowMono;
    const detectedFrom = this.deps.wallMs() - (nowMono - detectedFromMono);
    const root = this.tracer.start(
      'failover',
      this.attrs({ 'baton.from': f.from, 'baton.node': f.to, 'baton.trigger': 'auto', 'baton.mode': f.mode, 'baton.reason': f.reason }),
      { parent: null, startWallMs: detectedFrom },
    );
    const parent = root.carrier();
    const options = parent ? { parent } : {};
    this.tracer.start('detect', this.attrs({ 'baton.node': f.from, 'baton.term': f.fromTerm, 'baton.reason': f.reason }), { ...options, startWallMs: detectedFrom }).end();
    this.tracer.start('choose', this.attrs({ 'baton.node': f.to, 'baton.from': f.from, 'baton.term': f.fromTerm, 'baton.reason': f.reason }), options).end();
    this.pendingRoot = { span: root, sinceMs: detectedFromMono };
    return root;
  }

  /** The failover began above did not get as far as a new term (the txn failed). */
  failoverNotWritten(code: string, message: string): void {
    const p = this.pendingRoot;
    this.pendingRoot = undefined;
    if (!p) return;
    p.span.fail(code, message);
    p.span.end();
  }

  /**
   * A new term was written (inside the `fence` span; `w.parent` is the span that asked for it). An
   * unfinished earlier change is superseded.
   */
  written(w: WrittenTerm): void {
    this.finish('superseded');
    const p = this.pendingRoot;
    this.pendingRoot = undefined;
    this.metrics.leaderChanged(this.deps.chainId, w.trigger, w.term);
    const ownRoot = w.trigger === 'auto' ? p?.span : undefined;
    const under = ownRoot?.carrier() ?? w.parent;
    const options = under ? { parent: under } : { parent: null };
    const change: Change = {
      term: w.term,
      nodeId: w.nodeId,
      reason: w.reason,
      trigger: w.trigger,
      mode: w.mode,
      parent: under,
      sinceMs: w.trigger === 'auto' && p ? p.sinceMs : this.deps.monoMs(),
      root: ownRoot,
      wait: undefined,
      firstBlock: undefined,
    };
    ownRoot?.set({ 'baton.term': w.term });
    if (!w.handoff) change.wait = this.tracer.start('wait-old-lease', this.stepAttrs(change), options);
    this.current = change;
  }

  /** The span the steps of the change under way hang under, if there is one. */
  parent(): TraceCarrier | undefined {
    return this.current?.parent;
  }

  /** Runs StartSequencer for the changing term as the `start` step (plain, for any other start). */
  start<T>(term: Term, fn: () => Promise<T>): Promise<T> {
    const c = this.current;
    if (!c || c.term !== term) return fn();
    c.wait?.end();
    c.wait = undefined;
    const options = c.parent ? { parent: c.parent } : { parent: null };
    return this.tracer.span('start', this.stepAttrs(c), () => fn(), options);
  }

  /** The new leader was told to produce (StartSequencer, or CompleteHandoff): wait for its first block. */
  started(term: Term): void {
    const c = this.current;
    if (!c || c.term !== term || c.firstBlock) return;
    c.wait?.end();
    c.wait = undefined;
    const options = c.parent ? { parent: c.parent } : { parent: null };
    c.firstBlock = this.tracer.start('first-block', this.stepAttrs(c), options);
  }

  /**
   * A probe saw the leader of `term` producing: the change is over. Returns the id of the change's
   * trace (for the log line that says so, written outside any span), if it was traced.
   */
  producing(term: Term, headNumber: number): string | undefined {
    const c = this.current;
    if (!c || c.term !== term) return undefined;
    if (!c.firstBlock) this.started(term);
    c.firstBlock?.set({ 'baton.head': headNumber });
    this.finish('succeeded');
    return traceIdOf(c.parent);
  }

  /** This replica stops supervising the chain before the change ended. */
  abandon(): void {
    this.finish('abandoned');
    this.failoverNotWritten('ABORTED', 'supervision ended');
  }

  private finish(outcome: FailoverOutcome): void {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    const ms = this.deps.monoMs() - c.sinceMs;
    for (const s of [c.wait, c.firstBlock, c.root]) {
      if (!s) continue;
      if (outcome !== 'succeeded') s.fail(outcome.toUpperCase(), `leader change to ${c.nodeId} under term ${c.term} ${outcome}`);
      s.end();
    }
    if (c.trigger === 'elect' || c.trigger === 'mode-switch') return;
    this.metrics.recordFailover(this.deps.chainId, c.mode, c.trigger, outcome, ms);
  }
}
