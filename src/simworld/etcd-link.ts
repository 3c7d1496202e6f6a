// One replica's connection to the world's MemoryEtcd, as an EtcdClient: every txn travels the
// simulated network (latency, loss, partitions, the replica's pauses). etcd applies a request when
// it arrives, whether or not the reply makes it back, so a timed-out write may have happened: the
// ambiguity Baton's stores must live with. The real EtcdChainStore / EtcdOperationStore run on it.
import type { ITxnRequest, ITxnResponse } from 'etcd3';
import type { EtcdClient, EtcdLease, EtcdWatchBuilder } from '../adapters/etcd/client.js';
import type { EtcdKeys } from '../adapters/etcd/keys.js';
import type { MemoryEtcd } from '../adapters/memory/memory-etcd.js';
import type { Writer } from './checker.js';
import type { Proc } from './loop.js';
import type { Network } from './network.js';

export interface LinkOptions {
  callTimeoutMs: number;
  /** The link of the replica's commit service (head commits from nodes), not of its supervision. */
  commits?: boolean;
  /** BROKEN VARIANT (tests only): txns that write a leader key lose their supervisor-key compares. */
  dropSupervisorCompare?: boolean;
  /** BROKEN VARIANT (tests only): head commits lose their leader-term compare (batched ones too). */
  dropCommitTermCompare?: boolean;
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
    private readonly applying: (writer: Writer | undefined) => void,
  ) {}

  txn(req: ITxnRequest): Promise<ITxnResponse> {
    const leaderWrite = this.writesLeader(req);
    let sent = this.opts.dropSupervisorCompare && leaderWrite ? this.withoutSupervisorCompare(req) : req;
    if (this.opts.dropCommitTermCompare) sent = this.withoutTermCompare(sent);
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
    this.applying({ replicaId: this.proc.name, commits: this.opts.commits ?? false });
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

  /** Strips the compares on leader keys from every txn (nested ones too) that puts a head key. */
  private withoutTermCompare(req: ITxnRequest): ITxnRequest {
    const success = (req.success ?? []).map((o) => (o.request_txn ? { ...o, request_txn: this.withoutTermCompare(o.request_txn) } : o));
    const putsHead = success.some((o) => {
      const key = o.request_put?.key?.toString();
      return key !== undefined && this.keys.parseChainKey(key)?.kind === 'head';
    });
    const compare = putsHead ? (req.compare ?? []).filter((c) => this.keys.parseChainKey(c.key?.toString() ?? '')?.kind !== 'leader') : req.compare;
    return { ...req, compare, success };
  }

  private withoutSupervisorCompare(req: ITxnRequest): ITxnRequest {
    const supervisors = this.keys.supervisors();
    return { ...req, compare: (req.compare ?? []).filter((c) => !(c.key?.toString() ?? '').startsWith(supervisors)) };
  }
}

function deadline(): Error {
  return new Error('etcd call deadline exceeded (simulated)');
}
