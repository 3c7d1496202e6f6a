// An in-memory etcd with the semantics Baton relies on, behind the same narrow surface the etcd
// adapters use (EtcdClient: raw txns, watch builders, manually kept-alive leases). It is a fake
// that is trusted because it passes the same contract suites as etcd 3.4 (test/contract/).
//
// Semantics modelled (etcd 3.4, mvcc + lessor + txn apply):
// - One global revision; a txn that changes something bumps it once, a read-only txn (or a delete
//   that matched nothing) does not. Keys carry create/mod revision, version (reset on delete), lease.
// - Compares on version/create/mod/lease/value with =, >, <, !=, optionally over a range. An absent
//   key compares as a zero KeyValue (create = mod = version = lease = 0), EXCEPT a value compare on
//   an absent key, which is always false.
// - Ranges: single key, [key, range_end), range_end "\0" (everything from key), limit, keys_only,
//   count_only, sort, and reads at an older revision (MVCC history) until compacted.
// - Ops in one txn apply in order and later reads see earlier writes of the same txn. A put under
//   an unknown lease fails the whole txn with etcd's "requested lease not found".
// - Leases with a TTL on an injected clock; keepalive restarts the TTL; expiry and revoke delete the
//   lease's keys in one revision. Expiry is checked before every request and by a timer when a
//   scheduler is given.
// - Watches from now or from a start revision (replaying history), one callback per event in
//   revision order, delivered asynchronously; a start revision below the compacted revision ends
//   the watch with an error, as etcd does.
// Not modelled: etcd's refusal of a txn that writes one key twice, auth, members and raft.
import { EtcdLeaseInvalidError, type ICompare, type IKeyValue, type IRequestOp, type IResponseOp, type ITxnRequest, type ITxnResponse } from 'etcd3';
import type { EtcdClient, EtcdLease, EtcdWatchBuilder } from '../etcd/client.js';
import { MemoryLease, MemoryWatchBuilder, type MemoryWatcher } from './handles.js';

export interface MemoryEtcdOptions {
  /** Monotonic milliseconds for lease TTLs (default performance.now()). */
  nowMs?: () => number;
  /** Runs `fn` after `ms`; used for lease expiry timers and watch delivery (default: real timers). */
  after?: (ms: number, fn: () => void) => void;
  /** Keep at least this many revisions of history; older ones are compacted (default: keep all). */
  retainRevisions?: number;
}

interface Version {
  readonly rev: number;
  /** undefined: a deletion (tombstone). */
  readonly kv: StoredKv | undefined;
}

interface StoredKv {
  readonly key: string; // latin1: JS string order is byte order
  readonly value: Buffer;
  readonly create: number;
  readonly mod: number;
  readonly version: number;
  readonly lease: bigint;
}

export interface Change {
  readonly type: 'put' | 'delete';
  readonly kv: IKeyValue;
  readonly prev: IKeyValue | undefined;
}

interface LeaseState {
  readonly id: bigint;
  readonly ttlSeconds: number;
  expiresAtMs: number;
  readonly keys: Set<string>;
}

interface WatchState {
  readonly from: string;
  /** Exclusive end; undefined: the single key `from`; '' : everything from `from`. */
  readonly end: string | undefined;
  readonly emit: (c: Change) => void;
  closed: boolean;
}

const CLUSTER_ID = '14841639068965178418';
const MEMBER_ID = '10276657743932975437';

/** etcd's error messages, as etcd3 maps them (EtcdLeaseInvalidError) or passes them on. */
export class MemoryEtcdError extends Error {}

/** Which branch of a txn (and of each nested txn of that branch) runs. */
interface TxnPath {
  readonly succeeded: boolean;
  /** Per op of the taken branch: the path of a nested txn, else undefined. */
  readonly nested: (TxnPath | undefined)[];
}

export class MemoryEtcd implements EtcdClient {
  private revision = 1; // etcd starts at revision 1 with an empty store
  private compacted = 0;
  private readonly history = new Map<string, Version[]>();
  private sortedKeys: string[] = [];
  private readonly leases = new Map<bigint, LeaseState>();
  private nextLeaseId = 0x694d7a1c0001n;
  private readonly watches = new Set<WatchState>();
  /** Changes per revision, oldest first (for watches from a start revision). */
  private readonly log: { rev: number; changes: Change[] }[] = [];
  private readonly nowMs: () => number;
  private readonly after: (ms: number, fn: () => void) => void;
  private readonly retain: number | undefined;
  /**
   * Test and simulation hook: every applied write txn, with its revision, the request, and the ops
   * that ran (the taken branch of it and of every nested txn, flattened; nested txns not included).
   */
  onCommit: ((rev: bigint, req: ITxnRequest, ran: readonly IRequestOp[]) => void) | undefined;

  readonly kv = { txn: (req: ITxnRequest): Promise<ITxnResponse> => this.call(() => this.txnNow(req)) };

  constructor(opts: MemoryEtcdOptions = {}) {
    this.nowMs = opts.nowMs ?? (() => performance.now());
    // Deliveries (0 ms) keep the process alive until done; lease timers must not.
    this.after = opts.after ?? ((ms, fn) => void (ms <= 0 ? setImmediate(fn) : setTimeout(fn, ms).unref()));
    this.retain = opts.retainRevisions;
  }

  /** The current value of one key, read without side effects (no lease expiry): for observers. */
  peek(key: string): IKeyValue | undefined {
    const kv = this.current(Buffer.from(key).toString('latin1'));
    return kv && toKv(kv, false);
  }

  /** The current revision (as a header reports it). */
  currentRevision(): bigint {
    return BigInt(this.revision);
  }

  // ---- the EtcdClient surface ----

  watch(): EtcdWatchBuilder {
    return new MemoryWatchBuilder(this);
  }

  lease(ttlSeconds: number, _options: { autoKeepAlive: boolean }): EtcdLease {
    if (!(ttlSeconds >= 1)) throw new RangeError(`The TTL in an etcd lease must be at least 1 second. Got: ${ttlSeconds}`);
    return new MemoryLease(this, ttlSeconds);
  }

  /** Nothing to release; present so tests can treat it like Etcd3. */
  close(): void {}

  // ---- synchronous core (what one etcd request does) ----

  /** Applies one txn now and returns etcd's response. Throws MemoryEtcdError like etcd would. */
  txnNow(req: ITxnRequest): ITxnResponse {
    this.expireLeases();
    // Like etcd (compareToPath): every compare, nested txns' too, is judged on the state before
    // the txn; then the taken branches apply, all at one revision.
    const path = this.txnPath(req);
    const ran = this.opsOnPath(req, path);
    // Validate first: etcd refuses the whole txn before applying anything.
    for (const o of ran) {
      const lease = o.request_put?.lease;
      if (lease !== undefined && BigInt(lease) !== 0n && !this.leases.has(BigInt(lease))) {
        throw new EtcdLeaseInvalidError(String(lease));
      }
    }
    const writeRev = this.revision + 1;
    const changes: Change[] = [];
    const res = this.applyTxn(req, path, writeRev, changes);
    if (changes.length > 0) this.commit(writeRev, changes, req, ran);
    return { ...res, header: this.header() };
  }

  private txnPath(req: ITxnRequest): TxnPath {
    const succeeded = (req.compare ?? []).every((c) => this.compare(c));
    const ops = (succeeded ? req.success : req.failure) ?? [];
    return { succeeded, nested: ops.map((o) => (o.request_txn ? this.txnPath(o.request_txn) : undefined)) };
  }

  private opsOnPath(req: ITxnRequest, path: TxnPath): IRequestOp[] {
    const ops = (path.succeeded ? req.success : req.failure) ?? [];
    return ops.flatMap((o, i) => (o.request_txn ? this.opsOnPath(o.request_txn, path.nested[i]!) : [o]));
  }

  private applyTxn(req: ITxnRequest, path: TxnPath, writeRev: number, changes: Change[]): ITxnResponse {
    const ops = (path.succeeded ? req.success : req.failure) ?? [];
    const responses = ops.map((o, i) =>
      o.request_txn ? ({ response_txn: this.applyTxn(o.request_txn, path.nested[i]!, writeRev, changes) } as IResponseOp) : this.applyOp(o, writeRev, changes),
    );
    return { header: this.header(), succeeded: path.succeeded, responses };
  }

  grantLease(ttlSeconds: number): bigint {
    this.expireLeases();
    const id = this.nextLeaseId++;
    const lease: LeaseState = { id, ttlSeconds, expiresAtMs: this.nowMs() + ttlSeconds * 1000, keys: new Set() };
    this.leases.set(id, lease);
    this.armExpiry(lease);
    return id;
  }

  /** TTL in seconds after the keepalive, 0 when the lease is gone (etcd's answer). */
  keepAlive(id: bigint): number {
    this.expireLeases();
    const lease = this.leases.get(id);
    if (!lease) return 0;
    lease.expiresAtMs = this.nowMs() + lease.ttlSeconds * 1000;
    this.armExpiry(lease);
    return lease.ttlSeconds;
  }

  revokeLease(id: bigint): void {
    this.expireLeases();
    const lease = this.leases.get(id);
    if (!lease) throw new EtcdLeaseInvalidError(id.toString());
    this.dropLease(lease);
  }

  /** Deletes the keys of every lease whose TTL ran out (etcd's lessor does this on its own). */
  expireLeases(): void {
    const now = this.nowMs();
    for (const lease of [...this.leases.values()]) if (lease.expiresAtMs <= now) this.dropLease(lease);
  }

  /** Drops history up to `rev` (exclusive of the latest version of each key at `rev`). */
  compact(rev: number): void {
    if (rev <= this.compacted) return;
    if (rev > this.revision) throw new MemoryEtcdError('etcdserver: mvcc: required revision is a future revision');
    this.compacted = rev;
    for (const [key, versions] of this.history) {
      let keep = versions.length - 1;
      while (keep > 0 && versions[keep]!.rev > rev) keep--;
      // versions[keep] is the latest at or before rev (or the first one after it)
      const kept = versions[keep]!.rev <= rev ? versions.slice(keep) : versions;
      if (kept.length === 1 && kept[0]!.kv === undefined && kept[0]!.rev <= rev) {
        this.history.delete(key);
      } else if (kept !== versions) this.history.set(key, kept);
    }
    this.sortedKeys = this.sortedKeys.filter((k) => this.history.has(k));
    let drop = 0;
    while (drop < this.log.length && this.log[drop]!.rev < rev) drop++;
    this.log.splice(0, drop);
  }

  // ---- watches ----

  addWatch(from: string, end: string | undefined, startRevision: number, w: MemoryWatcher): void {
    const state: WatchState = { from, end, closed: false, emit: (c) => w.deliver(c) };
    this.after(0, () => {
      if (w.cancelled) return;
      if (startRevision > 0 && startRevision < this.compacted) {
        w.fail(new MemoryEtcdError(`etcdserver: mvcc: required revision has been compacted (compact revision ${this.compacted})`));
        return;
      }
      w.connected(this.revision);
      if (startRevision > 0) {
        for (const entry of this.log) {
          if (entry.rev < startRevision) continue;
          for (const c of entry.changes) if (inRange(latin1(c.kv.key), from, end)) state.emit(c);
        }
      }
      this.watches.add(state);
      w.onCancel = () => {
        state.closed = true;
        this.watches.delete(state);
      };
    });
  }

  // ---- internals ----

  private call<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private header() {
    return { cluster_id: CLUSTER_ID, member_id: MEMBER_ID, revision: String(this.revision), raft_term: '2' };
  }

  private current(key: string): StoredKv | undefined {
    const versions = this.history.get(key);
    return versions?.[versions.length - 1]!.kv;
  }

  private at(key: string, rev: number): StoredKv | undefined {
    const versions = this.history.get(key);
    if (!versions) return undefined;
    for (let i = versions.length - 1; i >= 0; i--) if (versions[i]!.rev <= rev) return versions[i]!.kv;
    return undefined;
  }

  private compare(c: ICompare): boolean {
    const key = latin1(c.key);
    const end = rangeEndOf(c.range_end);
    const kvs = end === undefined ? [this.current(key)].filter((kv): kv is StoredKv => kv !== undefined) : this.keysIn(key, end).map((k) => this.current(k)!).filter(Boolean);
    const target = enumName(c.target, ['Version', 'Create', 'Mod', 'Value', 'Lease'], 'Version');
    if (kvs.length === 0) {
      if (target === 'Value') return false; // nil == empty in grpc: a missing value never compares
      return compareOne(c, target, undefined);
    }
    return kvs.every((kv) => compareOne(c, target, kv));
  }

  private keysIn(from: string, end: string): string[] {
    const keys = this.sortedKeys;
    let lo = lowerBound(keys, from);
    const out: string[] = [];
    for (; lo < keys.length; lo++) {
      const k = keys[lo]!;
      if (end !== '' && k >= end) break;
      out.push(k);
    }
    return out;
  }

  private applyOp(o: IRequestOp, writeRev: number, changes: Change[]): IResponseOp {
    // A read after a write of the same txn sees that write (etcd: the txn's read revision moves).
    if (o.request_range) return { response_range: this.range(o.request_range, changes.length > 0 ? writeRev : this.revision) } as IResponseOp;
    if (o.request_put) {
      const p = o.request_put;
      const key = latin1(p.key);
      const prev = this.current(key);
      const lease = BigInt(p.lease ?? 0);
      const next: StoredKv = {
        key,
        value: Buffer.from(p.value ?? Buffer.alloc(0)),
        create: prev ? prev.create : writeRev,
        mod: writeRev,
        version: prev ? prev.version + 1 : 1,
        lease,
      };
      if (prev && prev.lease !== 0n) this.leases.get(prev.lease)?.keys.delete(key);
      if (lease !== 0n) this.leases.get(lease)!.keys.add(key);
      this.setVersion(key, { rev: writeRev, kv: next });
      changes.push({ type: 'put', kv: toKv(next, false), prev: prev && toKv(prev, false) });
      return { response_put: { header: this.header(), ...(p.prev_kv && prev ? { prev_kv: toKv(prev, false) } : {}) } } as IResponseOp;
    }
    if (o.request_delete_range) {
      const d = o.request_delete_range;
      const key = latin1(d.key);
      const end = rangeEndOf(d.range_end);
      const keys = (end === undefined ? [key] : this.keysIn(key, end)).filter((k) => this.current(k) !== undefined);
      const prevs = keys.map((k) => this.deleteKey(k, writeRev, changes));
      return {
        response_delete_range: { header: this.header(), deleted: String(keys.length), prev_kvs: d.prev_kv ? prevs.map((kv) => toKv(kv, false)) : [] },
      } as IResponseOp;
    }
    throw new MemoryEtcdError('etcdserver: empty request op');
  }

  private deleteKey(key: string, rev: number, changes: Change[]): StoredKv {
    const prev = this.current(key)!;
    if (prev.lease !== 0n) this.leases.get(prev.lease)?.keys.delete(key);
    this.setVersion(key, { rev, kv: undefined });
    changes.push({
      type: 'delete',
      kv: { key: Buffer.from(key, 'latin1'), value: Buffer.alloc(0), create_revision: '0', mod_revision: String(rev), version: '0', lease: '0' },
      prev: toKv(prev, false),
    });
    return prev;
  }

  private setVersion(key: string, v: Version): void {
    const versions = this.history.get(key);
    if (versions) {
      const last = versions[versions.length - 1]!;
      // Two writes to one key in one txn: the later wins at that revision.
      if (last.rev === v.rev) versions[versions.length - 1] = { rev: v.rev, kv: v.kv && { ...v.kv, create: last.kv ? last.kv.create : v.kv.create, version: v.kv.version } };
      else versions.push(v);
      return;
    }
    this.history.set(key, [v]);
    this.sortedKeys.splice(lowerBound(this.sortedKeys, key), 0, key);
  }

  private range(r: NonNullable<IRequestOp['request_range']>, current: number) {
    const rev = Number(r.revision ?? 0);
    if (rev > current) throw new MemoryEtcdError('etcdserver: mvcc: required revision is a future revision');
    if (rev > 0 && rev < this.compacted) throw new MemoryEtcdError('etcdserver: mvcc: required revision has been compacted');
    const at = rev > 0 ? rev : current;
    const key = latin1(r.key);
    const end = rangeEndOf(r.range_end);
    const keys = end === undefined ? [key] : this.keysIn(key, end);
    let kvs = keys.map((k) => this.at(k, at)).filter((kv): kv is StoredKv => kv !== undefined);
    const order = enumName(r.sort_order, ['None', 'Ascend', 'Descend'], 'None');
    const sortTarget = enumName(r.sort_target, ['Key', 'Version', 'Create', 'Mod', 'Value'], 'Key');
    const effective = order === 'None' && sortTarget !== 'Key' ? 'Ascend' : order;
    if (effective !== 'None') {
      const field = (kv: StoredKv): string | number =>
        sortTarget === 'Key' ? kv.key : sortTarget === 'Version' ? kv.version : sortTarget === 'Create' ? kv.create : sortTarget === 'Mod' ? kv.mod : kv.value.toString('latin1');
      kvs = [...kvs].sort((a, b) => (field(a) < field(b) ? -1 : field(a) > field(b) ? 1 : 0));
      if (effective === 'Descend') kvs.reverse();
    }
    const count = kvs.length;
    const limit = Number(r.limit ?? 0);
    if (limit > 0) kvs = kvs.slice(0, limit);
    return {
      header: this.header(),
      kvs: r.count_only ? [] : kvs.map((kv) => toKv(kv, r.keys_only === true)),
      more: limit > 0 && count > limit,
      count: String(count),
    };
  }

  private commit(rev: number, changes: Change[], req: ITxnRequest | undefined, ran: readonly IRequestOp[] = []): void {
    this.revision = rev;
    this.log.push({ rev, changes });
    if (req) this.onCommit?.(BigInt(rev), req, ran);
    if (this.retain !== undefined && this.revision - this.retain > this.compacted + this.retain) this.compact(this.revision - this.retain);
    for (const w of [...this.watches]) {
      for (const c of changes) {
        if (!inRange(latin1(c.kv.key), w.from, w.end)) continue;
        this.after(0, () => w.closed || w.emit(c));
      }
    }
  }

  private dropLease(lease: LeaseState): void {
    this.leases.delete(lease.id);
    const keys = [...lease.keys].filter((k) => this.current(k)?.lease === lease.id).sort();
    if (keys.length === 0) return;
    const rev = this.revision + 1;
    const changes: Change[] = [];
    for (const k of keys) this.deleteKey(k, rev, changes);
    this.commit(rev, changes, undefined);
  }

  private armExpiry(lease: LeaseState): void {
    const at = lease.expiresAtMs;
    this.after(Math.max(0, at - this.nowMs()), () => {
      if (this.leases.get(lease.id) === lease && lease.expiresAtMs === at) this.expireLeases();
    });
  }
}

// ---- helpers ----

function latin1(b: Buffer | string | undefined): string {
  if (b === undefined) return '';
  return Buffer.from(b).toString('latin1');
}

/** undefined: single key; '': to the end of the keyspace ("\0"); else the exclusive end. */
function rangeEndOf(b: Buffer | undefined): string | undefined {
  if (b === undefined || b.length === 0) return undefined;
  if (b.length === 1 && b[0] === 0) return '';
  return latin1(b);
}

function inRange(key: string, from: string, end: string | undefined): boolean {
  if (end === undefined) return key === from;
  return key >= from && (end === '' || key < end);
}

function lowerBound(keys: string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function enumName<T extends string>(v: string | number | undefined, names: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (typeof v === 'number') return names[v] ?? dflt;
  return (names as readonly string[]).includes(v) ? (v as T) : dflt;
}

function compareOne(c: ICompare, target: 'Version' | 'Create' | 'Mod' | 'Value' | 'Lease', kv: StoredKv | undefined): boolean {
  const result = enumName(c.result, ['Equal', 'Greater', 'Less', 'NotEqual'], 'Equal');
  let cmp: number;
  if (target === 'Value') {
    cmp = Buffer.compare(kv?.value ?? Buffer.alloc(0), Buffer.from(c.value ?? Buffer.alloc(0)));
  } else {
    const have =
      target === 'Version' ? BigInt(kv?.version ?? 0) : target === 'Create' ? BigInt(kv?.create ?? 0) : target === 'Mod' ? BigInt(kv?.mod ?? 0) : (kv?.lease ?? 0n);
    const want = BigInt(
      (target === 'Version' ? c.version : target === 'Create' ? c.create_revision : target === 'Mod' ? c.mod_revision : c.lease) ?? 0,
    );
    cmp = have < want ? -1 : have > want ? 1 : 0;
  }
  switch (result) {
    case 'Equal':
      return cmp === 0;
    case 'Greater':
      return cmp > 0;
    case 'Less':
      return cmp < 0;
    case 'NotEqual':
      return cmp !== 0;
  }
}

// Responses share one frozen-by-convention IKeyValue per stored version (callers only read them):
// building Buffers for every listed key dominated the cost of large ranges.
const kvCache = new WeakMap<StoredKv, IKeyValue>();
const keyOnlyCache = new WeakMap<StoredKv, IKeyValue>();

function toKv(kv: StoredKv, keysOnly: boolean): IKeyValue {
  const cache = keysOnly ? keyOnlyCache : kvCache;
  let out = cache.get(kv);
  if (!out) {
    out = buildKv(kv, keysOnly);
    cache.set(kv, out);
  }
  return out;
}

function buildKv(kv: StoredKv, keysOnly: boolean): IKeyValue {
  return {
    key: Buffer.from(kv.key, 'latin1'),
    value: keysOnly ? Buffer.alloc(0) : kv.value,
    create_revision: String(kv.create),
    mod_revision: String(kv.mod),
    version: String(kv.version),
    lease: kv.lease.toString(),
  };
}
