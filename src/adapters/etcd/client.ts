// The one way Baton builds an etcd3 client, and the small helpers every etcd adapter shares:
// deadlines, revision parsing, error mapping, raw txn building blocks.
//
// Why the client is configured the way it is (measured against etcd3 1.1.2):
// - A unary call without a deadline can hang for seconds, so every unary call gets one. Streams
//   (watch, keepalive) must not: a deadline would cut a healthy long-lived stream.
// - The library's default global policy retries "recoverable" errors three times, including
//   DEADLINE_EXCEEDED. A txn whose reply was lost may have been applied; replaying it turns our own
//   success into a failed compare (a bogus CONFLICT), and three retries triple the deadline. So
//   nothing is retried here: the caller sees STORE_UNAVAILABLE and decides.
// - The default per-host circuit breaker stays open for 5 s after 3 failures: with one member that
//   means 5 s of refused calls after etcd is back, long enough to lose a 3 s lease. With several
//   members we still want to skip a dead one, but never every member at once.
// - The default watch reconnect backoff grows to 30 s; a replica must notice a free chain sooner.
import { Etcd3, isRecoverableError, type IKeyValue, type IOptions, type IRequestOp, type ICompare, type IResponseOp, type ITxnRequest, type ITxnResponse } from 'etcd3';
import { BatonError, isBatonError } from '../../core/errors.js';
import { prefixEnd } from './keys.js';
import { noteEtcdMethod, observeEtcdCall, withEtcdLabel, type EtcdCallObserver } from '../telemetry/instrument.js';

export const DEFAULT_CALL_TIMEOUT_MS = 2000;

// ---- the narrow client surface every etcd adapter uses ----
// Adapters talk to etcd only through raw txns, watch builders and manually kept-alive leases.
// etcd3's Etcd3 satisfies these types, and so does the in-memory MemoryEtcd (adapters/memory), which
// passes the same contract suites: the adapters run unchanged over either.

/** A watch as the adapters use it: key events, confirmation, errors, cancel. */
export interface EtcdWatcher {
  on(event: 'put' | 'delete', handler: (kv: IKeyValue, previous?: IKeyValue) => void): this;
  on(event: 'connected', handler: (res: unknown) => void): this;
  on(event: 'error', handler: (err: Error) => void): this;
  once(event: 'connected', handler: (res: unknown) => void): this;
  once(event: 'error', handler: (err: Error) => void): this;
  cancel(): Promise<void>;
  removeAllListeners(): this;
}

export interface EtcdWatchBuilder {
  prefix(value: string): EtcdWatchBuilder;
  key(value: string): EtcdWatchBuilder;
  /** Replay events from this revision (decimal) on. */
  startRevision(revision: string): EtcdWatchBuilder;
  /** Creates the watcher; it emits 'connected' once etcd confirmed it. */
  watcher(): EtcdWatcher;
}

/** A lease kept alive by the caller (autoKeepAlive off). */
export interface EtcdLease {
  on(event: 'lost', handler: (err: Error) => void): this;
  /** Resolves the lease id (decimal int64). */
  grant(): Promise<string>;
  /** One keepalive; rejects with etcd3's EtcdLeaseInvalidError when the lease is gone. */
  keepaliveOnce(options?: { deadline?: number | Date }): Promise<{ TTL: string }>;
  revoke(): Promise<void>;
  /** Stops caring about the lease without revoking it: it expires in etcd after its TTL. */
  release(): void;
}

export interface EtcdClient {
  readonly kv: { txn(req: ITxnRequest): Promise<ITxnResponse> };
  watch(): EtcdWatchBuilder;
  lease(ttlSeconds: number, options: { autoKeepAlive: boolean }): EtcdLease;
}

export interface EtcdClientOptions {
  endpoints: readonly string[];
  /** Deadline of every unary call (default 2000 ms). */
  callTimeoutMs?: number;
  /** How long a member that failed a call is skipped while another member is not (default 5000 ms). */
  hostCooldownMs?: number;
  /** Max delay between watch reconnect attempts (default 1000 ms). */
  watchBackoffMaxMs?: number;
  /** Times and counts every unary call (metrics; child spans inside a traced step). Streams are not observed. */
  observer?: EtcdCallObserver;
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;
type Backoff = NonNullable<FaultHandling['watchBackoff']>;

export function createEtcdClient(opts: EtcdClientOptions): Etcd3 {
  const callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  if (!(callTimeoutMs > 0)) throw new BatonError('INVALID_ARGUMENT', `etcd call timeout ${callTimeoutMs} ms must be > 0`);
  if (opts.endpoints.length === 0) throw new BatonError('INVALID_ARGUMENT', 'no etcd endpoints');
  const cooldown = new HostCooldown(opts.hostCooldownMs ?? 5000);
  return new Etcd3({
    hosts: [...opts.endpoints],
    dialTimeout: callTimeoutMs,
    // HTTP/2 pings find a dead connection under a long-lived watch; etcd refuses pings more often
    // than every 5 s (--grpc-keepalive-min-time), so stay well above that.
    grpcOptions: { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 },
    defaultCallOptions: (ctx) => {
      if (ctx.isStream) return {};
      noteEtcdMethod(ctx.service, ctx.method);
      return { deadline: Date.now() + callTimeoutMs };
    },
    faultHandling: {
      global: opts.observer ? policy((fn) => observeEtcdCall(opts.observer, fn)) : passThroughPolicy(),
      host: (host) => cooldown.policy(host),
      watchBackoff: cappedBackoff(50, opts.watchBackoffMaxMs ?? 1000),
    },
  });
}

// etcd3 only ever calls `execute` on these policies; the rest of cockatiel's IPolicy is unused,
// and importing cockatiel (a transitive dependency) just to build no-op policies is not worth it.
function policy(execute: <T>(fn: () => PromiseLike<T> | T) => Promise<T>): Policy {
  const noEvent = () => ({ dispose: () => undefined });
  return { onSuccess: noEvent, onFailure: noEvent, execute } as unknown as Policy;
}

function passThroughPolicy(): Policy {
  return policy(async (fn) => fn());
}

/**
 * Skips a member (without sending anything, so etcd3 moves on to the next one) for a while after a
 * transport failure, but only while some other member is not being skipped: with one member, or
 * when all just failed, calls still go through, so a cluster-wide blip is not stretched into a
 * cooldown. When every member is cooling, only the one whose cooldown ends first is tried: losing
 * the raft leader makes the live members fail too (deadlines, "leader changed") for the length of
 * an election, and letting every member through then sent a third of all calls (keepalives
 * included) to the dead one for the whole cooldown. Each failure moves a member to the back.
 */
export class HostCooldown {
  private readonly until = new Map<string, number>();

  constructor(private readonly cooldownMs: number) {}

  policy(host: string): Policy {
    this.until.set(host, 0);
    return policy(async (fn) => {
      if (this.skip(host, Date.now())) throw new MemberCoolingDown();
      // Success does not end a cooldown early: opening a stream succeeds even on a frozen member.
      try {
        return await fn();
      } catch (err) {
        if (isTransportError(err)) this.until.set(host, Date.now() + this.cooldownMs);
        throw err;
      }
    });
  }

  private skip(host: string, now: number): boolean {
    const mine = this.until.get(host) ?? 0;
    if (mine <= now) return false;
    // Another member is usable (its cooldown ended first), or all cool and this one ends later.
    return mine > Math.min(...this.until.values());
  }
}

class MemberCoolingDown extends Error {
  constructor() {
    super('etcd member skipped after a recent failure');
  }
}

function cappedBackoff(firstMs: number, maxMs: number, attempt = 0): Backoff {
  const duration = Math.min(maxMs, firstMs * 2 ** attempt);
  return { duration, next: () => cappedBackoff(firstMs, maxMs, attempt + 1) } as Backoff;
}

/** etcd3's own classification of "the member or the network failed" (unavailable, deadline, ...). */
function isTransportError(err: unknown): boolean {
  return err instanceof Error && (err instanceof MemberCoolingDown || isRecoverableError(err));
}

/**
 * Any failure of an etcd call as a BatonError. BatonErrors pass through unchanged; everything else
 * (deadline, unavailable, closed client, a broken response) is STORE_UNAVAILABLE: the caller cannot
 * know whether a write was applied and must re-read before deciding anything.
 */
export function toStoreError(err: unknown, what: string): BatonError {
  if (isBatonError(err)) return err;
  const cause = err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err);
  return new BatonError('STORE_UNAVAILABLE', `etcd ${what} failed: ${cause}`, { operation: what });
}

/** Runs one etcd call and maps its failure with toStoreError. */
export async function etcdCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await withEtcdLabel(what, call);
  } catch (err) {
    throw toStoreError(err, what);
  }
}

/** etcd3 hands revisions (and lease ids) over as decimal strings; they become bigint at once. */
export function toRevision(value: string | number | undefined | null): bigint {
  if (value === undefined || value === null || value === '') return 0n;
  try {
    return BigInt(value);
  } catch {
    throw new BatonError('STORE_UNAVAILABLE', `etcd returned a malformed revision ${String(value)}`);
  }
}

// ---- raw txn building blocks ----
// Txns are built from etcd's own request shapes rather than etcd3's builders, so each compare is
// visible in one place and a revision of 0 can be refused before it reaches a compare.

function key(k: string): Buffer {
  return Buffer.from(k);
}

function nonZero(rev: bigint, what: string): string {
  if (rev <= 0n) throw new BatonError('INVALID_ARGUMENT', `${what} ${rev} is not a valid revision (etcd treats 0 as "absent")`);
  return rev.toString();
}

export const compare = {
  /** The key does not exist: the one place where comparing a revision with 0 is meant. */
  absent(k: string): ICompare {
    return { key: key(k), target: 'Create', result: 'Equal', create_revision: '0' };
  },
  /** The key exists (its create revision is above 0). */
  exists(k: string): ICompare {
    return { key: key(k), target: 'Create', result: 'Greater', create_revision: '0' };
  },
  createRevision(k: string, rev: bigint): ICompare {
    return { key: key(k), target: 'Create', result: 'Equal', create_revision: nonZero(rev, `create revision of ${k}`) };
  },
  modRevision(k: string, rev: bigint): ICompare {
    return { key: key(k), target: 'Mod', result: 'Equal', mod_revision: nonZero(rev, `mod revision of ${k}`) };
  },
  value(k: string, v: string): ICompare {
    return { key: key(k), target: 'Value', result: 'Equal', value: Buffer.from(v) };
  },
};

export const op = {
  /** `atRevision` reads the key as of that revision (for consistent multi-request listings). */
  get(k: string, atRevision?: bigint): IRequestOp {
    return { request_range: { key: key(k), ...(atRevision ? { revision: atRevision.toString() } : {}) } };
  },
  getPrefix(prefix: string, opts: { keysOnly?: boolean; limit?: number; descending?: boolean } = {}): IRequestOp {
    return {
      request_range: {
        key: key(prefix),
        range_end: prefixEnd(prefix),
        keys_only: opts.keysOnly ?? false,
        limit: opts.limit ?? 0,
        sort_order: opts.descending ? 'Descend' : 'None',
        sort_target: 'Key',
      },
    };
  },
  put(k: string, value: string, lease?: string): IRequestOp {
    return { request_put: { key: key(k), value: Buffer.from(value), lease: lease ?? '0' } };
  },
  del(k: string): IRequestOp {
    return { request_delete_range: { key: key(k) } };
  },
  delPrefix(prefix: string): IRequestOp {
    return { request_delete_range: { key: key(prefix), range_end: prefixEnd(prefix) } };
  },
};

/** etcd refuses txns with more than --max-txn-ops (128 by default) operations. */
const MAX_OPS_PER_TXN = 100;

/**
 * The current values of the keys under `prefix` whose key passes `select`, all as of one revision.
 * For kinds of per-chain keys that cannot be selected by suffix: lists the keys without values
 * (heads and history stay on the server), then gets the selected ones in batched txns.
 */
export async function selectUnderPrefix(client: EtcdClient, what: string, prefix: string, select: (key: string) => boolean): Promise<IKeyValue[]> {
  const listed = await etcdCall(what, () => client.kv.txn({ success: [op.getPrefix(prefix, { keysOnly: true })] }));
  const atRevision = toRevision(listed.header.revision);
  const keys = rangeKvs(listed.responses[0]).map((kv) => kv.key.toString()).filter(select);
  const kvs: IKeyValue[] = [];
  for (let i = 0; i < keys.length; i += MAX_OPS_PER_TXN) {
    const batch = keys.slice(i, i + MAX_OPS_PER_TXN);
    const res = await etcdCall(what, () => client.kv.txn({ success: batch.map((k) => op.get(k, atRevision)) }));
    kvs.push(...res.responses.flatMap((r) => rangeKvs(r)));
  }
  return kvs;
}

/** The key-values of a range response inside a txn response. */
export function rangeKvs(res: IResponseOp | undefined): IKeyValue[] {
  return res?.response_range?.kvs ?? [];
}

/** The single key-value of a one-key range response, if the key exists. */
export function firstKv(res: IResponseOp | undefined): IKeyValue | undefined {
  return rangeKvs(res)[0];
}

// Compile-time proof that the real client satisfies the narrow surface.
const realClientFits: (c: Etcd3) => EtcdClient = (c) => c;
void realClientFits;
