// One Baton replica's presence in etcd: a single lease (TTL 3-5 s) that carries its registry entry,
// its supervisor keys and its failover slots.
//
// The etcd3 library can report a lost lease up to 2×TTL late (measured: 6.2 s after the last ack
// with TTL 3 s) and its Election can report `elected` after an error, so neither is used. Instead
// this session keeps the lease alive itself and keeps a *proof*: a keepalive sent at time s and
// acknowledged proves the lease lives until at least s + TTL (etcd restarts the TTL when it
// processes the keepalive, which is after s). provenUntilMs() = that bound − margin. When the proof
// runs out the session emits 'lost' at once, whatever the library thinks, and is dead for good.
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { EtcdLeaseInvalidError, type IKeyValue, type ITxnRequest } from 'etcd3';
import { BatonError } from '../../core/errors.js';
import type { Clock, SupervisionFence } from '../../core/ports.js';
import type { Logger } from '../telemetry/log.js';
import { compare, etcdCall, firstKv, op, rangeKvs, toRevision, toStoreError, type EtcdClient, type EtcdLease } from './client.js';
import { EtcdKeys, assertReplicaId } from './keys.js';
import { FailoverSlots } from './failover-slots.js';
import { PrefixWatch, type Subscription } from './watch.js';

export type { Subscription } from './watch.js';

export interface ReplicaSessionOptions {
  client: EtcdClient;
  replicaId: string;
  keys?: EtcdKeys;
  /** Lease TTL in whole seconds (etcd's unit); default 3, at least 2. */
  ttlSeconds?: number;
  /** Safety margin subtracted from every proof, for clock-rate drift and timer lateness; default 500 ms. */
  marginMs?: number;
  /**
   * Default TTL/6 (etcd's Go client uses TTL/3): the proof after the last ack must outlast an etcd
   * leader election (1-2 s) with a 3 s TTL, or every replica self-fences while etcd elects.
   */
  keepaliveIntervalMs?: number;
  /** Advertised in the registry entry. */
  apiAddress?: string;
  /** monoMs must be real monotonic time: the proof is checked against timers. */
  clock?: Clock;
  log?: Logger;
  /** Deadline for connecting a watch (default 2000 ms). Unary calls get theirs from the client. */
  connectTimeoutMs?: number;
  /** Told the round trip of every acknowledged keepalive (the lease renewal latency metric). */
  onKeepaliveAck?: (latencyMs: number) => void;
}

export type SessionState = 'live' | 'lost' | 'closed';

export interface SessionLoss {
  reason: 'proof-expired' | 'lease-invalid';
  /** The proof that ran out (monotonic ms). */
  provenUntilMs: number;
  /** When the loss was noticed (monotonic ms). */
  atMs: number;
}

export interface KeepaliveStats {
  sent: number;
  acked: number;
  lastAckLatencyMs: number | undefined;
  maxAckLatencyMs: number | undefined;
}

export type ReplicaChange = { kind: 'joined'; replicaId: string } | { kind: 'left'; replicaId: string } | { kind: 'resync' };
export type SupervisorChange =
  | { kind: 'held'; chainId: string; holder: string }
  | { kind: 'free'; chainId: string }
  /** The watch was re-created and changes may have been missed: list again. */
  | { kind: 'resync' };

/** Resend period while the newest keepalive is unanswered. */
const RETRY_MS = 250;

const realClock: Clock = { monoMs: () => performance.now(), wallMs: () => Date.now() };

export class ReplicaSession extends EventEmitter<{ lost: [SessionLoss] }> {
  readonly replicaId: string;
  readonly ttlMs: number;
  private stateValue: SessionState = 'live';
  private provenUntil: number;
  private keepaliveTimer: NodeJS.Timeout | undefined;
  private lastSentAt = -Infinity;
  private newestAckedSentAt = -Infinity;
  private lossTimer: NodeJS.Timeout | undefined;
  private readonly watches = new Set<PrefixWatch>();
  private readonly slots: FailoverSlots;
  private readonly counters: KeepaliveStats = { sent: 0, acked: 0, lastAckLatencyMs: undefined, maxAckLatencyMs: undefined };

  private constructor(
    private readonly opts: Required<Pick<ReplicaSessionOptions, 'client' | 'keys' | 'marginMs' | 'keepaliveIntervalMs' | 'clock' | 'connectTimeoutMs'>> &
      Pick<ReplicaSessionOptions, 'log' | 'onKeepaliveAck'>,
    replicaId: string,
    ttlSeconds: number,
    private readonly lease: EtcdLease,
    /** Decimal int64 lease id, as etcd reports it on keys. */
    readonly leaseId: string,
    grantSentAt: number,
  ) {
    super();
    this.replicaId = replicaId;
    this.ttlMs = ttlSeconds * 1000;
    this.provenUntil = grantSentAt + this.ttlMs - opts.marginMs;
    this.slots = new FailoverSlots({ keys: opts.keys, replicaId, leaseId, txn: (what, req) => this.txn(what, req), assertLive: () => this.assertLive() });
  }

  /** Grants the lease, starts the keepalive loop and registers `replicas/<id>`. */
  static async start(options: ReplicaSessionOptions): Promise<ReplicaSession> {
    assertReplicaId(options.replicaId);
    const ttlSeconds = options.ttlSeconds ?? 3;
    const marginMs = options.marginMs ?? 500;
    const keepaliveIntervalMs = options.keepaliveIntervalMs ?? Math.floor((ttlSeconds * 1000) / 6);
    // Timing rules, checked once here (as client-go's leaderelection does): etcd's minimum TTL is
    // 2 s; a proof must outlive at least one keepalive interval or it lapses between two acks.
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 2) throw new BatonError('INVALID_ARGUMENT', `lease TTL ${ttlSeconds} s must be an integer >= 2`);
    if (!(marginMs >= 0)) throw new BatonError('INVALID_ARGUMENT', `lease margin ${marginMs} ms must be >= 0`);
    if (!(keepaliveIntervalMs > 0) || keepaliveIntervalMs >= ttlSeconds * 1000 - marginMs) {
      throw new BatonError('INVALID_ARGUMENT', `keepalive interval ${keepaliveIntervalMs} ms must be > 0 and < TTL − margin (${ttlSeconds * 1000 - marginMs} ms)`);
    }
    const clock = options.clock ?? realClock;
    const keys = options.keys ?? new EtcdKeys();
    const sentAt = clock.monoMs();
    // autoKeepAlive off: the library's loop is what reports loss late; ours replaces it.
    const lease = options.client.lease(ttlSeconds, { autoKeepAlive: false });
    lease.on('lost', () => undefined); // a failed grant also emits 'lost'; the rejection below reports it
    const leaseId = await etcdCall('grant lease', () => lease.grant());
    const session = new ReplicaSession(
      { client: options.client, keys, marginMs, keepaliveIntervalMs, clock, connectTimeoutMs: options.connectTimeoutMs ?? 2000, log: options.log, onKeepaliveAck: options.onKeepaliveAck },
      options.replicaId,
      ttlSeconds,
      lease,
      leaseId,
      sentAt,
    );
    session.begin();
    try {
      const entry = { id: options.replicaId, startedAtMs: clock.wallMs(), ...(options.apiAddress ? { apiAddress: options.apiAddress } : {}) };
      // Unconditional: a restarted replica reuses its id while its previous lease may still live.
      await session.txn('register replica', { success: [op.put(keys.replica(options.replicaId), JSON.stringify(entry), leaseId)] });
    } catch (err) {
      await session.close().catch(() => undefined); // the lease expires by itself if etcd is away
      throw err;
    }
    return session;
  }

  get state(): SessionState {
    return this.stateValue;
  }

  /** Monotonic ms until which the lease is proven alive (send time of the last acked keepalive + TTL − margin). */
  provenUntilMs(): number {
    return this.provenUntil;
  }

  /** True while the session is live and its proof covers `nowMs`. Check it before acting. */
  proven(nowMs: number = this.opts.clock.monoMs()): boolean {
    return this.stateValue === 'live' && nowMs < this.provenUntil;
  }

  stats(): KeepaliveStats {
    return { ...this.counters };
  }

  // ---- keepalive and proof ----

  private begin(): void {
    this.lease.on('lost', () => this.lose('lease-invalid'));
    // The loop ticks fast but sends once per interval while keepalives are acked; while the newest
    // one is unanswered it resends every tick. Measured on 3 members with the raft leader frozen:
    // a keepalive that lands on (or is forwarded to) the frozen leader hangs, and with one send per
    // second the proof ran out although the others elected a new leader within a second.
    const tickMs = Math.min(RETRY_MS, this.opts.keepaliveIntervalMs);
    this.keepaliveTimer = setInterval(() => this.keepaliveTick(), tickMs);
    this.keepaliveTimer.unref();
    this.slots.start();
    this.armLossTimer();
    this.keepalive();
  }

  private keepaliveTick(): void {
    const sinceSend = this.opts.clock.monoMs() - this.lastSentAt;
    const unanswered = this.newestAckedSentAt < this.lastSentAt;
    if (sinceSend >= this.opts.keepaliveIntervalMs || (unanswered && sinceSend >= RETRY_MS)) this.keepalive();
  }

  private keepalive(): void {
    if (this.stateValue !== 'live') return;
    const sentAt = this.opts.clock.monoMs();
    this.lastSentAt = sentAt;
    this.counters.sent++;
    // keepaliveOnce opens a short stream per call (on a randomly chosen member). Its deadline is the
    // longest its ack can still extend the proof (sent + TTL − margin): a busy replica or etcd
    // acknowledges late, and an ack 900 ms after its send still proves the lease 1.6 s further. Cut
    // at one interval, such acks were thrown away and a loaded replica self-fenced over and over
    // while its lease was alive. Meanwhile the retry tick keeps sending newer ones.
    this.lease.keepaliveOnce({ deadline: Date.now() + this.ttlMs - this.opts.marginMs }).then(
      (res) => this.acked(sentAt, toRevision(res.TTL)),
      (err: unknown) => {
        if (err instanceof EtcdLeaseInvalidError) this.lose('lease-invalid');
        else this.opts.log?.debug({ err: (err as Error).message }, 'keepalive failed');
      },
    );
  }

  private acked(sentAt: number, ttlSeconds: bigint): void {
    if (this.stateValue !== 'live') return;
    const now = this.opts.clock.monoMs();
    const latency = now - sentAt;
    this.counters.acked++;
    this.newestAckedSentAt = Math.max(this.newestAckedSentAt, sentAt);
    this.counters.lastAckLatencyMs = latency;
    this.counters.maxAckLatencyMs = Math.max(this.counters.maxAckLatencyMs ?? 0, latency);
    this.opts.onKeepaliveAck?.(latency);
    // A proof that already lapsed stays lapsed: someone may have acted on proven() === false.
    if (now >= this.provenUntil) return this.lose('proof-expired');
    if (ttlSeconds <= 0n) return this.lose('lease-invalid');
    const until = sentAt + Math.min(Number(ttlSeconds) * 1000, this.ttlMs) - this.opts.marginMs;
    if (until > this.provenUntil) {
      this.provenUntil = until;
      this.armLossTimer();
    }
  }

  private armLossTimer(): void {
    clearTimeout(this.lossTimer);
    const delay = Math.max(0, this.provenUntil - this.opts.clock.monoMs());
    this.lossTimer = setTimeout(() => {
      if (this.opts.clock.monoMs() >= this.provenUntil) this.lose('proof-expired');
      else this.armLossTimer();
    }, delay);
    this.lossTimer.unref();
  }

  private lose(reason: SessionLoss['reason']): void {
    if (this.stateValue !== 'live') return;
    this.stateValue = 'lost';
    this.stopLocal();
    const loss: SessionLoss = { reason, provenUntilMs: this.provenUntil, atMs: this.opts.clock.monoMs() };
    this.opts.log?.warn({ replicaId: this.replicaId, ...loss }, 'replica session lost');
    // Best effort: if etcd is reachable after all, our keys go now instead of at lease expiry, so
    // other replicas take over our chains sooner. We have stopped acting either way.
    this.lease.revoke().catch(() => undefined);
    this.emit('lost', loss);
  }

  private stopLocal(): void {
    clearInterval(this.keepaliveTimer);
    this.slots.stop();
    clearTimeout(this.lossTimer);
    for (const w of this.watches) void w.close();
    this.watches.clear();
  }

  /** Stops everything and revokes the lease, which deletes every key under it. Does not emit 'lost'. */
  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    const wasLive = this.stateValue === 'live';
    this.stateValue = 'closed';
    this.stopLocal();
    if (wasLive) await etcdCall('revoke lease', () => this.lease.revoke());
  }

  /** Stops keepalives without revoking, as a crash would: the lease expires in etcd after TTL. For drills and tests. */
  abandon(): void {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'closed';
    this.stopLocal();
    this.lease.release();
  }

  // ---- registry ----

  async liveReplicas(): Promise<string[]> {
    const res = await this.txn('list replicas', { success: [op.getPrefix(this.opts.keys.replicas(), { keysOnly: true })] });
    return rangeKvs(res.responses[0])
      .map((kv) => this.opts.keys.parseReplicaKey(kv.key.toString()))
      .filter((id): id is string => id !== undefined)
      .sort();
  }

  /** Subscribe first, then list: nothing is missed in between. */
  watchReplicas(cb: (change: ReplicaChange) => void): Promise<Subscription> {
    const keys = this.opts.keys;
    return this.watch(keys.replicas(), (type, kv) => {
      const replicaId = keys.parseReplicaKey(kv.key.toString());
      if (replicaId !== undefined) cb(type === 'put' ? { kind: 'joined', replicaId } : { kind: 'left', replicaId });
    }, () => cb({ kind: 'resync' }));
  }

  // ---- supervision ----

  /**
   * Takes the chain's supervisor key under this session's lease, if it is free and the chain
   * exists. A key that already holds our id under our lease is ours (an earlier acquire whose
   * reply was lost) and is adopted. An acquire that fails is never treated as acquired.
   */
  async acquire(chainId: string): Promise<SupervisionFence | undefined> {
    this.assertLive();
    const keys = this.opts.keys;
    const key = keys.supervisor(chainId);
    const res = await this.txn('acquire supervisor key', {
      compare: [compare.absent(key), compare.exists(keys.spec(chainId))],
      success: [op.put(key, this.replicaId, this.leaseId)],
      failure: [op.get(key), op.get(keys.spec(chainId))],
    });
    this.assertLive(); // the proof may have run out while the txn was in flight
    const fence = (createRevision: bigint): SupervisionFence => ({ chainId, replicaId: this.replicaId, key, createRevision });
    if (res.succeeded) return fence(toRevision(res.header.revision));
    const [holder, spec] = res.responses.map((r) => firstKv(r));
    if (!spec) return undefined;
    if (holder && this.isOurs(holder)) return fence(toRevision(holder.create_revision));
    this.opts.log?.debug({ chainId, holder: holder?.value.toString() }, 'chain supervised by another replica');
    return undefined;
  }

  /** Deletes the supervisor key if it is still the one the fence names; false when it was not. */
  async release(fence: SupervisionFence): Promise<boolean> {
    if (fence.replicaId !== this.replicaId) throw new BatonError('INVALID_ARGUMENT', `fence of ${fence.replicaId} is not ours`);
    const res = await this.txn('release supervisor key', {
      compare: [compare.createRevision(fence.key, fence.createRevision), compare.value(fence.key, this.replicaId)],
      success: [op.del(fence.key)],
    });
    return res.succeeded;
  }

  /** chain id → replica id holding its supervisor key, as of one revision. */
  async holders(): Promise<Map<string, string>> {
    const keys = this.opts.keys;
    const res = await this.txn('list supervisors', { success: [op.getPrefix(keys.supervisors())] });
    const holders = new Map<string, string>();
    for (const kv of rangeKvs(res.responses[0])) {
      const chainId = keys.parseSupervisorKey(kv.key.toString());
      if (chainId !== undefined) holders.set(chainId, kv.value.toString());
    }
    return holders;
  }

  /** Supervisor keys appearing and vanishing, so a replica can campaign for a free chain at once. */
  watchSupervisors(cb: (change: SupervisorChange) => void): Promise<Subscription> {
    const keys = this.opts.keys;
    return this.watch(keys.supervisors(), (type, kv) => {
      const chainId = keys.parseSupervisorKey(kv.key.toString());
      if (chainId === undefined) return;
      cb(type === 'put' ? { kind: 'held', chainId, holder: kv.value.toString() } : { kind: 'free', chainId });
    }, () => cb({ kind: 'resync' }));
  }

  // ---- failover slots ----

  /** See failover-slots.ts: a take of one of the fleet-wide slots, or undefined when all are taken. */
  acquireFailoverSlot(max: number): Promise<(() => Promise<void>) | undefined> {
    return this.slots.acquire(max);
  }

  /** Deletes this session's orphaned slot keys (also done when every slot is taken, and periodically). */
  sweepFailoverSlots(): Promise<number> {
    return this.slots.sweep();
  }

  // ---- helpers ----

  private isOurs(kv: IKeyValue): boolean {
    return kv.value.toString() === this.replicaId && toRevision(kv.lease) === toRevision(this.leaseId);
  }

  private assertLive(): void {
    if (!this.proven()) throw new BatonError('LEASE_EXPIRED', `replica session of ${this.replicaId} is ${this.stateValue === 'live' ? 'unproven' : this.stateValue}`);
  }

  private async txn(what: string, req: ITxnRequest) {
    try {
      return await this.opts.client.kv.txn(req);
    } catch (err) {
      // etcd refused a put under our lease: it is gone, whatever our proof said.
      if (err instanceof EtcdLeaseInvalidError) {
        this.lose('lease-invalid');
        throw new BatonError('LEASE_EXPIRED', `lease of ${this.replicaId} is gone (${what})`);
      }
      throw toStoreError(err, what);
    }
  }

  private async watch(prefix: string, onKv: (type: 'put' | 'delete', kv: IKeyValue) => void, onResync: () => void): Promise<Subscription> {
    this.assertLive();
    const w = new PrefixWatch(this.opts.client, prefix, onKv, onResync, this.opts.connectTimeoutMs, this.opts.log);
    try {
      await w.start();
    } catch (err) {
      await w.close();
      throw toStoreError(err, `watch ${prefix}`);
    }
    this.watches.add(w);
    return { close: async () => (this.watches.delete(w), w.close()) };
  }
}
