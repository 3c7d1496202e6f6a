// Prometheus metrics (prom-client) on Baton's own registry, all named baton_*. Events (a failover
// ended, a term written, an etcd call, a node RPC) are counted as they happen; the state of the
// chains this replica supervises (term, unsafe head, node health and lag) is read at scrape time
// from the supervisors, so nothing has to keep a second copy of it up to date.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FailoverOutcome, FailoverTrigger, Metrics, TermTrigger } from '../../core/telemetry.js';
import type { SupervisorStatus } from '../../core/supervisor.js';
import { isPaused } from '../../core/operation.js';

/** What the scrape reads of this replica. */
export interface MetricsSource {
  ready(): { ready: boolean };
  supervisedChains(): string[];
  statusOf(chainId: string): SupervisorStatus | undefined;
  /**
   * The chain's recorded unsafe head as the chains/ watch last delivered it. In commit mode the
   * nodes move the head with every block and a supervisor re-reads it only every few seconds, so
   * the head gauges show whichever of the two is newer (by the head key's revision).
   */
  recordedHead?(chainId: string): RecordedHead | undefined;
  /** Monotonic ms (the supervisors' clock) and wall ms. */
  monoMs(): number;
  wallMs(): number;
}

/** What the head gauges show of a recorded unsafe head. */
export interface RecordedHead {
  readonly number: number;
  /** Block timestamp, in seconds. */
  readonly timestamp: number;
  /** The head key's mod revision. */
  readonly revision: bigint;
}

/** prom-client's default gauges named *_total, which `promtool check metrics` refuses. */
const DEFAULT_GAUGES_NAMED_TOTAL = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

const FAILOVER_BUCKETS = [0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120];
const FAST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  private source: MetricsSource | undefined;
  /** Per chain: monotonic ms since when it has had no producing leader (absent: it has one). */
  private readonly notProducingSince = new Map<string, number>();
  /** Per chain: seconds without a producing leader already counted into the counter. */
  private readonly counted = new Map<string, number>();

  readonly failoverDuration: Histogram<'chain' | 'mode' | 'trigger' | 'outcome'>;
  readonly leaderChanges: Counter<'chain' | 'trigger'>;
  readonly decisions: Counter<'chain' | 'kind'>;
  readonly leaderlessSeconds: Counter<'chain'>;
  readonly etcdDuration: Histogram<'method'>;
  readonly etcdErrors: Counter<'method' | 'kind'>;
  readonly keepalive: Histogram;
  readonly nodeRpcDuration: Histogram<'rpc' | 'outcome'>;
  readonly nodeRpcErrors: Counter<'rpc' | 'code'>;
  readonly staleTermRejections: Counter<'chain' | 'node' | 'rpc'>;
  readonly probes: Counter<'result'>;
  readonly operations: Counter<'kind' | 'state'>;

  constructor(opts: { replicaId: string; defaultMetrics?: boolean }) {
    const r = this.registry;
    r.setDefaultLabels({ replica: opts.replicaId });
    if (opts.defaultMetrics !== false) {
      collectDefaultMetrics({ register: r });
      for (const name of DEFAULT_GAUGES_NAMED_TOTAL) r.removeSingleMetric(name);
    }
    this.failoverDuration = new Histogram({
      name: 'baton_failover_duration_seconds',
      help: 'Leader change from detection (the old leader\'s last good report; an operator\'s change: its execution) to the first block of the new leader, by fencing mode, trigger and outcome.',
      labelNames: ['chain', 'mode', 'trigger', 'outcome'],
      buckets: FAILOVER_BUCKETS,
      registers: [r],
    });
    this.leaderChanges = new Counter({ name: 'baton_leader_changes_total', help: 'New terms written, by trigger (auto, operator, switchover, rollback, override, elect, mode-switch).', labelNames: ['chain', 'trigger'], registers: [r] });
    this.decisions = new Counter({ name: 'baton_control_loop_decisions_total', help: 'Control-loop decisions that act, by kind of action.', labelNames: ['chain', 'kind'], registers: [r] });
    this.leaderlessSeconds = new Counter({ name: 'baton_chain_leaderless_seconds_total', help: 'Seconds a supervised chain had no producing leader.', labelNames: ['chain'], registers: [r] });
    this.etcdDuration = new Histogram({ name: 'baton_etcd_request_duration_seconds', help: 'Unary etcd calls, by gRPC method.', labelNames: ['method'], buckets: FAST_BUCKETS, registers: [r] });
    this.etcdErrors = new Counter({ name: 'baton_etcd_request_errors_total', help: 'Failed unary etcd calls, by method and error kind.', labelNames: ['method', 'kind'], registers: [r] });
    this.keepalive = new Histogram({ name: 'baton_replica_lease_keepalive_seconds', help: 'Round trip of an acknowledged keepalive of the replica etcd lease (lease renewal latency).', buckets: FAST_BUCKETS, registers: [r] });
    this.nodeRpcDuration = new Histogram({ name: 'baton_node_rpc_duration_seconds', help: 'Node ControlService calls, by RPC and outcome.', labelNames: ['rpc', 'outcome'], buckets: FAST_BUCKETS, registers: [r] });
    this.nodeRpcErrors = new Counter({ name: 'baton_node_rpc_errors_total', help: 'Failed node calls, by RPC and Baton error code.', labelNames: ['rpc', 'code'], registers: [r] });
    this.staleTermRejections = new Counter({
      name: 'baton_stale_term_rejections_total',
      help: 'Commands a node refused because it had seen a newer term (fencing breaches prevented).',
      labelNames: ['chain', 'node', 'rpc'],
      registers: [r],
    });
    this.probes = new Counter({ name: 'baton_node_probes_total', help: 'Health probes of nodes by the control loop, by result (on-demand views and handoff polls are not counted).', labelNames: ['result'], registers: [r] });
    this.operations = new Counter({ name: 'baton_operations_total', help: 'Operator requests accepted (pending, scheduled) and ended (succeeded, failed, cancelled), by kind and state.', labelNames: ['kind', 'state'], registers: [r] });
    this.scrapeGauges();
  }

  private sampler: NodeJS.Timeout | undefined;

  /**
   * Binds the replica whose supervised chains the scrape-time gauges show. The time without a
   * producing leader is sampled every `sampleMs` too, so a gap between two scrapes is counted.
   */
  bind(source: MetricsSource, sampleMs = 250): void {
    this.source = source;
    clearInterval(this.sampler);
    this.sampler = setInterval(() => this.sampleGaps(), sampleMs);
    this.sampler.unref();
  }

  close(): void {
    clearInterval(this.sampler);
    this.sampler = undefined;
  }

  /** Whether the chain's leader reports producing under its term, as of its last good probe. */
  private static producing(status: SupervisorStatus): boolean {
    const leader = status.state?.leader;
    const obs = leader && status.nodes.get(leader.nodeId);
    return !!leader && !!obs && obs.consecutiveFailures === 0 && obs.report?.producing === true && obs.report.term === leader.term;
  }

  private sampleGaps(): void {
    const src = this.source;
    if (!src) return;
    const now = src.monoMs();
    const chains = src.supervisedChains();
    // A chain this replica no longer supervises is counted by its new supervisor.
    for (const chain of this.notProducingSince.keys()) {
      if (chains.includes(chain)) continue;
      this.notProducingSince.delete(chain);
      this.counted.delete(chain);
    }
    for (const chain of chains) {
      const status = src.statusOf(chain);
      if (status?.state) this.gap(chain, PromMetrics.producing(status), now);
    }
  }

  // ---- the core's port ----

  recordFailover(chainId: string, mode: string, trigger: FailoverTrigger, outcome: FailoverOutcome, ms: number): void {
    this.failoverDuration.observe({ chain: chainId, mode, trigger, outcome }, Math.max(0, ms) / 1000);
  }

  leaderChanged(chainId: string, trigger: TermTrigger): void {
    this.leaderChanges.inc({ chain: chainId, trigger });
  }

  decision(chainId: string, kind: string): void {
    this.decisions.inc({ chain: chainId, kind });
  }

  // ---- adapters ----

  etcdCall(method: string, seconds: number, errorKind: string | undefined): void {
    this.etcdDuration.observe({ method }, seconds);
    if (errorKind) this.etcdErrors.inc({ method, kind: errorKind });
  }

  nodeRpc(chainId: string | undefined, nodeId: string, rpc: string, seconds: number, errorCode: string | undefined): void {
    this.nodeRpcDuration.observe({ rpc, outcome: errorCode ? 'error' : 'ok' }, seconds);
    if (!errorCode) return;
    this.nodeRpcErrors.inc({ rpc, code: errorCode });
    if (errorCode === 'STALE_TERM') this.staleTermRejections.inc({ chain: chainId ?? '', node: nodeId, rpc });
  }

  probed(_chainId: string, ok: boolean): void {
    this.probes.inc({ result: ok ? 'ok' : 'error' });
  }

  keepaliveAcked(latencyMs: number): void {
    this.keepalive.observe(latencyMs / 1000);
  }

  operation(kind: string, state: string): void {
    this.operations.inc({ kind, state });
  }

  /** The exposition text; the scrape-time gauges are filled first, from one look at the supervisors. */
  async text(): Promise<string> {
    this.fillGauges();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  // ---- scrape-time gauges: the state of the chains this replica supervises ----

  private fillGauges: () => void = () => undefined;

  private scrapeGauges(): void {
    const r = this.registry;
    const self = this;
    const chainGauge = (name: string, help: string, labelNames: string[] = ['chain']) => new Gauge({ name, help, labelNames, registers: [r] });
    const ready = chainGauge('baton_replica_ready', 'This replica holds a proven etcd session (1) or not (0): /readyz.', []);
    const supervised = chainGauge('baton_replica_supervised_chains', 'Chains this replica supervises.', []);
    const term = chainGauge('baton_chain_term', 'Current term (fencing token) of the chain leader; 0 without a leader.');
    const hasLeader = chainGauge('baton_chain_has_leader', '1 when the chain has a leader record.');
    const producing = chainGauge('baton_chain_leader_producing', '1 when the leader reports producing under its term.');
    const withoutLeader = chainGauge('baton_chain_without_producing_leader_seconds', 'How long the chain has been without a producing leader (0 while it has one).');
    const headNumber = chainGauge('baton_chain_unsafe_head_number', 'Recorded unsafe head height.');
    const headAge = chainGauge('baton_chain_unsafe_head_age_seconds', 'Age of the recorded unsafe head (wall clock minus its timestamp).');
    const blockTime = chainGauge('baton_chain_block_time_seconds', 'Block time of the chain policy.');
    const paused = chainGauge('baton_chain_paused', '1 while the chain is paused.');
    const pausedFor = chainGauge('baton_chain_paused_seconds', 'How long the chain has been paused (0 when not).');
    const overridden = chainGauge('baton_chain_override_active', '1 while a break-glass override holds the chain (until cleared).');
    const pending = chainGauge('baton_chain_pending_operations', 'Unfinished operator requests of the chain.');
    const unfinished = chainGauge('baton_operations_unfinished', 'Unfinished operator requests of the chains this replica supervises, by kind and state (pending, scheduled, running).', ['kind', 'state']);
    const nodeHealthy = chainGauge('baton_node_healthy', '1 when the last probe of the node succeeded and it reported healthy.', ['chain', 'node']);
    const nodeLag = chainGauge('baton_node_lag_blocks', 'Blocks the node is behind the recorded unsafe head (0 when level or ahead).', ['chain', 'node']);
    const nodeProducing = chainGauge('baton_node_producing', '1 when the node reports producing blocks (more than one per chain is a fencing breach).', ['chain', 'node']);
    const nodeHead = chainGauge('baton_node_head_number', 'Head height the node last reported.', ['chain', 'node']);
    const nodeFailures = chainGauge('baton_node_consecutive_probe_failures', 'Failed probes in a row.', ['chain', 'node']);

    const all = [ready, supervised, term, hasLeader, producing, withoutLeader, headNumber, headAge, blockTime, paused, pausedFor, overridden, pending, unfinished, nodeHealthy, nodeLag, nodeProducing, nodeHead, nodeFailures];
    this.fillGauges = (): void => {
      const src = self.source;
      for (const g of all) g.reset();
      if (!src) return;
      ready.set(src.ready().ready ? 1 : 0);
      const chains = src.supervisedChains();
      supervised.set(chains.length);
      const now = src.monoMs();
      const wall = src.wallMs();
      for (const chain of chains) {
        const status = src.statusOf(chain);
        const state = status?.state;
        if (!status || !state) continue;
        const leader = state.leader;
        const isProducing = PromMetrics.producing(status);
        term.set({ chain }, leader ? Number(leader.term) : 0);
        hasLeader.set({ chain }, leader ? 1 : 0);
        producing.set({ chain }, isProducing ? 1 : 0);
        withoutLeader.set({ chain }, self.gap(chain, isProducing, now));
        const head = newerHead(state.head && { ...state.head, revision: state.headRevision }, src.recordedHead?.(chain));
        if (head) {
          headNumber.set({ chain }, head.number);
          headAge.set({ chain }, Math.max(0, wall / 1000 - head.timestamp));
        }
        blockTime.set({ chain }, state.spec.policy.blockTimeMs / 1000);
        const isP = isPaused(state.pause, wall);
        paused.set({ chain }, isP ? 1 : 0);
        pausedFor.set({ chain }, isP && state.pause ? Math.max(0, (wall - state.pause.sinceMs) / 1000) : 0);
        overridden.set({ chain }, state.override ? 1 : 0);
        pending.set({ chain }, state.intents.length);
        for (const o of status.operations) unfinished.inc({ kind: o.kind, state: o.state });
        const recorded = head?.number ?? 0;
        for (const node of state.spec.nodes) {
          const obs = status.nodes.get(node.id);
          const rep = obs?.report;
          const labels = { chain, node: node.id };
          nodeHealthy.set(labels, obs && obs.consecutiveFailures === 0 && rep?.healthy ? 1 : 0);
          nodeFailures.set(labels, obs?.consecutiveFailures ?? 0);
          if (rep) {
            // A report from before a run of failed probes says nothing about now.
            nodeProducing.set(labels, rep.producing && obs.consecutiveFailures === 0 ? 1 : 0);
            nodeHead.set(labels, rep.headNumber);
            nodeLag.set(labels, Math.max(0, recorded - rep.headNumber));
          }
        }
      }
    };
  }

  /** Seconds of the current gap without a producing leader; also feeds the leaderless counter. */
  private gap(chain: string, producing: boolean, now: number): number {
    const since = this.notProducingSince.get(chain);
    if (producing) {
      if (since !== undefined) this.addLeaderless(chain, (now - since) / 1000);
      this.notProducingSince.delete(chain);
      this.counted.delete(chain);
      return 0;
    }
    if (since === undefined) {
      this.notProducingSince.set(chain, now);
      return 0;
    }
    const seconds = (now - since) / 1000;
    this.addLeaderless(chain, seconds);
    return seconds;
  }

  private addLeaderless(chain: string, total: number): void {
    const done = this.counted.get(chain) ?? 0;
    if (total > done) this.leaderlessSeconds.inc({ chain }, total - done);
    this.counted.set(chain, Math.max(done, total));
  }
}

/** The later of two copies of a chain's recorded head (a rolled-back head is later, not higher). */
function newerHead(a: RecordedHead | undefined, b: RecordedHead | undefined): RecordedHead | undefined {
  if (!a || !b) return a ?? b;
  return b.revision > a.revision ? b : a;
}
