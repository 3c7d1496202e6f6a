// The story of one leader change, from the new term to the new leader's first block, as spans and
// metrics. A change lasts over several turns of the control loop (the txn, then waiting out the old
// lease, then StartSequencer, then the first block seen by a probe), so its spans are kept here
// rather than in one call. Every step hangs under the span that asked for the change: the root of
// an automatic failover, or the operation span that continues the operator's request.
import type { FencingMode } from './chain.js';
import type { Term } from './term.js';
import { noopMetrics, noopTracer, type FailoverOutcome, type Metrics, type Span, type SpanAttrs, type TermTrigger, type TraceCarrier, type Tracer } from './telemetry.js';

interface Change {
  readonly term: Term;
  readonly nodeId: string;
  readonly trigger: TermTrigger;
  readonly mode: FencingMode;
  /** The span the steps hang under. */
  readonly parent: TraceCarrier | undefined;
  /** Monotonic ms the change began (detection, or the operation's execution). */
  readonly sinceMs: number;
  /** The root span this tracker owns (an automatic failover), ended with the change. */
  readonly root: Span | undefined;
  wait: Span | undefined;
  firstBlock: Span | undefined;
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

  /**
   * An automatic failover begins: its root span (a trace of its own) with the detection (from the
   * last good report of the old leader, `lastGoodWallMs`, to now) and the choice as its first steps.
   */
  beginFailover(from: string, to: string, reason: string, mode: FencingMode, lastGoodWallMs: number | undefined): Span {
    const now = this.deps.wallMs();
    const detectedFrom = lastGoodWallMs !== undefined && lastGoodWallMs < now ? lastGoodWallMs : now;
    const root = this.tracer.start(
      'failover',
      this.attrs({ 'baton.from': from, 'baton.node': to, 'baton.trigger': 'auto', 'baton.mode': mode, 'baton.reason': reason }),
      { parent: null, startWallMs: detectedFrom },
    );
    const parent = root.carrier();
    const options = parent ? { parent } : {};
    this.tracer.start('detect', this.attrs({ 'baton.node': from, 'baton.reason': reason }), { ...options, startWallMs: detectedFrom }).end();
    this.tracer.start('choose', this.attrs({ 'baton.node': to, 'baton.reason': reason }), options).end();
    this.pendingRoot = { span: root, sinceMs: this.deps.monoMs() };
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
   * A new term was written (inside the `fence` span; `parent` is the span that asked for it). An
   * unfinished earlier change is superseded. A handoff's target is active at once (CompleteHandoff),
   * so no old lease is waited out: `handoff` skips that step.
   */
  written(term: Term, nodeId: string, trigger: TermTrigger, mode: FencingMode, parent: TraceCarrier | undefined, handoff: boolean): void {
    this.finish('superseded');
    const p = this.pendingRoot;
    this.pendingRoot = undefined;
    this.metrics.leaderChanged(this.deps.chainId, trigger, term);
    const ownRoot = trigger === 'auto' ? p?.span : undefined;
    const under = ownRoot?.carrier() ?? parent;
    const options = under ? { parent: under } : { parent: null };
    const change: Change = {
      term,
      nodeId,
      trigger,
      mode,
      parent: under,
      sinceMs: trigger === 'auto' && p ? p.sinceMs : this.deps.monoMs(),
      root: ownRoot,
      wait: undefined,
      firstBlock: undefined,
    };
    ownRoot?.set({ 'baton.term': term });
    if (!handoff) change.wait = this.tracer.start('wait-old-lease', this.attrs({ 'baton.node': nodeId, 'baton.term': term, 'baton.mode': mode }), options);
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
    return this.tracer.span('start', this.attrs({ 'baton.node': c.nodeId, 'baton.term': term, 'baton.mode': c.mode }), () => fn(), options);
  }

  /** The new leader was told to produce (StartSequencer, or CompleteHandoff): wait for its first block. */
  started(term: Term): void {
    const c = this.current;
    if (!c || c.term !== term || c.firstBlock) return;
    c.wait?.end();
    c.wait = undefined;
    const options = c.parent ? { parent: c.parent } : { parent: null };
    c.firstBlock = this.tracer.start('first-block', this.attrs({ 'baton.node': c.nodeId, 'baton.term': term }), options);
  }

  /** A probe saw the leader of `term` producing: the change is over. */
  producing(term: Term, headNumber: number): void {
    const c = this.current;
    if (!c || c.term !== term) return;
    if (!c.firstBlock) this.started(term);
    c.firstBlock?.set({ 'baton.head': headNumber });
    this.finish('succeeded');
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
