// One replica's connection to the world's MemoryEtcd, as an EtcdClient: every txn travels the
// simulated network (latency, loss, partitions, the replica's pauses). etcd applies a request when
// it arrives, whether or not the reply makes it back, so a timed-out write may have happened: the
// ambiguity Baton's stores must live with. The real EtcdChainStore / EtcdOperationStore run on it.
import type { ITxnRequest, ITxnResponse } from 'etcd3';
import type { EtcdClient, EtcdLease, EtcdWatchBuilder } from '../adapters/etcd/client.js';
import type { EtcdKeys } from '../adapters/etcd/keys.js';
import type { MemoryEtcd } from '../adapters/memory/memory-etcd.js';
import type { Proc } from './loop.js';
import type { Network } from './network.js';

export interface LinkOptions {
  callTimeoutMs: number;
  /** BROKEN VARIANT (tests only): txns that write a leader key lose their supervisor-key compares. */
  dropSupervisorCompare?: boolean;
  /**
   * Fault hook: asked before a txn that writes a leader key is sent; a number pauses the replica
   * for that long right there (a process freeze between deciding and writing).
   */
  pauseBeforeLeaderWrite?: () => number | undefined;
}

export class EtcdLink implements EtcdClient {
  readonly kv = { txn: (req: ITxnRequest) => this.txn(req) };

  constructor(
    private readonly etcd: MemoryEtcd,
    private readonly etcdProc: Proc,
    readonly proc: Proc,
    private readonly net: Network,
    private readonly keys: EtcdKeys,
    private readonly opts: LinkOptions,
    /** Tells the world who applies the txn being applied (to judge fencing). */
    private readonly applying: (replicaId: string | undefined) => void,
  ) {}

  txn(req: ITxnRequest): Promise<ITxnResponse> {
    const leaderWrite = this.writesLeader(req);
    const sent = this.opts.dropSupervisorCompare && leaderWrite ? this.withoutSupervisorCompare(req) : req;
    const send = () => this.net.call(this.proc, this.etcdProc, this.opts.callTimeoutMs, () => this.apply(() => this.etcd.txnNow(sent)), deadline, false);
    const pause = leaderWrite ? this.opts.pauseBeforeLeaderWrite?.() : undefined;
    if (pause === undefined) return send();
    this.proc.pausedUntil = Math.max(this.proc.pausedUntil, this.proc.now() + pause);
    return new Promise((resolve) => this.proc.deliver(() => resolve(send())));
  }

  grant(ttlSeconds: number): Promise<bigint> {
    return this.net.call(this.proc, this.etcdProc, this.opts.callTimeoutMs, () => this.etcd.grantLease(ttlSeconds), deadline, false);
  }

  /** TTL seconds after the keepalive (0: the lease is gone). */
  keepAlive(id: bigint): Promise<number> {
    return this.net.call(this.proc, this.etcdProc, this.opts.callTimeoutMs, () => this.etcd.keepAlive(id), deadline, false);
  }

  revoke(id: bigint): Promise<void> {
    return this.net.call(this.proc, this.etcdProc, this.opts.callTimeoutMs, () => this.etcd.revokeLease(id), deadline, false);
  }

  watch(): EtcdWatchBuilder {
    throw new Error('the simulated world does not watch: supervisors and coordinators resync on timers');
  }

  lease(): EtcdLease {
    throw new Error('the simulated world keeps replica leases itself (SimReplica)');
  }

  private apply<T>(fn: () => T): T {
    this.applying(this.proc.name);
    try {
      return fn();
    } finally {
      this.applying(undefined);
    }
  }

  private writesLeader(req: ITxnRequest): boolean {
    return (req.success ?? []).some((o) => {
      const key = o.request_put?.key?.toString();
      return key !== undefined && this.keys.parseChainKey(key)?.kind === 'leader';
    });
  }

  private withoutSupervisorCompare(req: ITxnRequest): ITxnRequest {
    const supervisors = this.keys.supervisors();
    return { ...req, compare: (req.compare ?? []).filter((c) => !(c.key?.toString() ?? '').startsWith(supervisors)) };
  }
}

function deadline(): Error {
  return new Error('etcd call deadline exceeded (simulated)');
}
