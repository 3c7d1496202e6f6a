// ChainStore on etcd. Every write that changes a chain's leadership or head is ONE txn that
// compares the caller's supervisor key (create revision + value: a deposed supervisor cannot
// write) and the revision it read (no lost update); the failure branch of the same txn reads back
// the compared keys, so a refusal says exactly why (FENCED or CONFLICT) without a second request.
//
// Values are JSON, bigints as decimal strings. Terms are never stored inside values: the leader key
// is written only when the term changes, so its mod revision IS the term; a history entry is
// written once, in the same txn, so its mod revision is that term too (see EtcdKeys.historyAfter).
import type { IKeyValue, IRequestOp, ITxnRequest, ITxnResponse } from 'etcd3';
import type { NewAuditRecord } from '../../api/audit.js';
import { systemClock } from '../system-clock.js';
import { auditPut } from './audit-log.js';
import type { ChainSpec, FencingMode, LeaderRecord, TermRecord, UnsafeHead } from '../../core/chain.js';
import { BatonError, isBatonError } from '../../core/errors.js';
import type { OverrideRecord, PauseRecord } from '../../core/operation.js';
import { judgeCommit, type CommitBase, type CommitResult, type HeadCommit } from '../../core/commit.js';
import type { ChainState, ChainStore, FleetSettings, NewLeader, NodeHealth, RecordedHead, SupervisionFence } from '../../core/ports.js';
import type { Term } from '../../core/term.js';
import { compare, etcdCall, firstKv, op, rangeKvs, selectUnderPrefix, toRevision, type EtcdClient } from './client.js';
import { checkFence, fenceCompares, throwIfFenced } from './fence.js';
import { CommitBatcher } from './commit-batcher.js';
import { assertChainId, EtcdKeys } from './keys.js';
import { validateChainSpec, validateFleetSettings, validateHead, validateNewLeader } from './validation.js';

export const DEFAULT_FLEET_SETTINGS: FleetSettings = Object.freeze({ autoFailover: true, maxConcurrentFailovers: 2 });

const MAX_HISTORY_LIMIT = 1000;

/** What the leader key holds: everything of LeaderRecord except the term (its mod revision). */
interface StoredLeader {
  nodeId: string;
  mode: LeaderRecord['mode'];
  previousMode?: LeaderRecord['mode'];
  leaseGrantsLive?: boolean;
  sinceMs: number;
  reason: string;
  fromHead: number;
}

/** A history entry; its term is the key's mod revision and its previous term is in the key. */
interface StoredTermRecord {
  nodeId: string;
  previousNodeId: string | null;
  fromHead: number;
  reason: string;
  atMs: number;
  supervisor: string;
  durationMs: number | null;
}

interface StoredHead {
  number: number;
  hash: string;
  parentHash: string;
  term: string;
  nodeId: string;
  l1Origin: string;
  timestamp: number;
}

/** A commit base with the head key's mod revision, which the commit txn compares. */
interface CommitBaseAt extends CommitBase {
  readonly revision: bigint;
}

export class EtcdChainStore implements ChainStore {
  /**
   * The last leader and head each chain's commits were judged on. Only a hint that saves a read
   * per commit: every commit txn compares the term and the head revision it came from.
   */
  private readonly commitBases = new Map<string, CommitBaseAt>();

  /** Head commits of many chains share etcd requests (see commit-batcher.ts); undefined: one each. */
  private readonly batcher: CommitBatcher | undefined;

  /** UNSAFE, the drill's negative control only: writeLeader without its fence and revision compares. */
  private readonly unsafeNoFenceCompare: boolean;

  constructor(
    private readonly client: EtcdClient,
    private readonly keys: EtcdKeys = new EtcdKeys(),
    options: { batchCommits?: boolean; unsafeNoFenceCompare?: boolean; commitMaxWaitMs?: number } = {},
  ) {
    this.unsafeNoFenceCompare = options.unsafeNoFenceCompare ?? false;
    this.batcher = options.batchCommits === false ? undefined : new CommitBatcher((req) => this.client.kv.txn(req), undefined, options.commitMaxWaitMs);
  }

  /** `audit`: the record of the request, written by the same txn. */
  async putSpec(spec: ChainSpec, audit?: NewAuditRecord): Promise<void> {
    validateChainSpec(spec);
    await this.txn('put spec', { success: [op.put(this.keys.spec(spec.id), JSON.stringify(spec)), ...this.auditOps(audit)] });
  }

  async getSpec(chainId: string): Promise<ChainSpec | undefined> {
    const res = await this.txn('get spec', { success: [op.get(this.keys.spec(chainId))] });
    const kv = firstKv(res.responses[0]);
    return kv ? parseJson<ChainSpec>(kv) : undefined;
  }

  async listSpecs(): Promise<ChainSpec[]> {
    const kvs = await selectUnderPrefix(this.client, 'list specs', this.keys.chains(), (k) => this.keys.parseChainKey(k)?.kind === 'spec');
    return kvs.map((kv) => parseJson<ChainSpec>(kv));
  }

  /** `audit`: the record of the request, written by the same txn (only when the chain existed). */
  async deleteChain(chainId: string, audit?: NewAuditRecord): Promise<boolean> {
    this.commitBases.delete(chainId);
    const res = await this.txn('delete chain', {
      compare: [compare.exists(this.keys.spec(chainId))],
      success: [op.delPrefix(this.keys.chain(chainId)), op.del(this.keys.supervisor(chainId)), ...this.auditOps(audit)],
    });
    return res.succeeded;
  }

  async read(chainId: string): Promise<ChainState | undefined> {
    const k = this.keys;
    // One txn of gets: spec, leader, head and supervisor come from the same revision.
    const res = await this.txn('read chain', {
      success: [
        op.get(k.spec(chainId)),
        op.get(k.leader(chainId)),
        op.get(k.head(chainId)),
        op.get(k.supervisor(chainId)),
        op.get(k.pause(chainId)),
        op.getPrefix(k.intents(chainId), { keysOnly: true }),
        op.get(k.health(chainId)),
        op.get(k.override(chainId)),
      ],
    });
    const [spec, leader, head, supervisor, pause, , health, override] = res.responses.map((r) => firstKv(r));
    const intents = rangeKvs(res.responses[5]).map((kv) => kv.key.toString().slice(k.intents(chainId).length));
    if (!spec) return undefined;
    return {
      spec: parseJson<ChainSpec>(spec),
      ...toLeaderState(leader),
      head: head ? toHead(head) : undefined,
      headRevision: head ? toRevision(head.mod_revision) : 0n,
      supervisor: supervisor?.value.toString(),
      pause: pause ? parseJson<PauseRecord>(pause) : undefined,
      intents,
      health: health ? parseJson<{ nodes: NodeHealth[] }>(health).nodes : undefined,
      ...(override ? { override: { ...parseJson<OverrideRecord>(override), term: toRevision(override.mod_revision) } } : {}),
    };
  }

  async writeLeader(fence: SupervisionFence, expected: Term | undefined, next: NewLeader, history: Omit<TermRecord, 'term'>): Promise<Term> {
    checkFence(this.keys, fence);
    if (expected !== undefined && expected <= 0n) {
      throw new BatonError('INVALID_ARGUMENT', `expected term ${expected} is not a term (use undefined for "no leader yet")`);
    }
    validateNewLeader(next);
    if (history.nodeId !== next.nodeId || history.fromHead !== next.fromHead) {
      throw new BatonError('INVALID_ARGUMENT', 'history entry must describe the new leader (nodeId, fromHead)');
    }
    const chainId = fence.chainId;
    const leaderKey = this.keys.leader(chainId);
    const leader: StoredLeader = { nodeId: next.nodeId, mode: next.mode, sinceMs: history.atMs, reason: next.reason, fromHead: next.fromHead };
    if (next.previousMode !== undefined) leader.previousMode = next.previousMode;
    if (next.leaseGrantsLive) leader.leaseGrantsLive = true;
    const entry: StoredTermRecord = {
      nodeId: history.nodeId,
      previousNodeId: history.previousNodeId ?? null,
      fromHead: history.fromHead,
      reason: history.reason,
      atMs: history.atMs,
      supervisor: history.supervisor,
      durationMs: history.durationMs ?? null,
    };
    const rollback = next.rollback;
    const headKey = this.keys.head(chainId);
    const res = await this.txn('write leader', {
      compare: this.unsafeNoFenceCompare
        ? []
        : [
            ...fenceCompares(fence),
            expected === undefined ? compare.absent(leaderKey) : compare.modRevision(leaderKey, expected),
            // Break-glass rollback: the head it replaces is the one it was judged against.
            ...(rollback ? [headCompare(headKey, rollback.expectedRevision)] : []),
          ],
      success: [
        op.put(leaderKey, JSON.stringify(leader)),
        op.put(this.keys.historyAfter(chainId, expected ?? 0n), JSON.stringify(entry)),
        // Break-glass: the override holds from exactly this term on.
        ...(next.override ? [op.put(this.keys.override(chainId), JSON.stringify(storedOverride(next.override)))] : []),
        // After the override record: a history scan meets the authorisation before the decrease.
        ...(rollback ? [op.put(headKey, storedHead(rollback.head))] : []),
      ],
      failure: [op.get(fence.key), op.get(leaderKey), op.get(headKey)],
    });
    if (res.succeeded) return toRevision(res.header.revision);
    const [sup, current, headNow] = res.responses.map((r) => firstKv(r));
    throwIfFenced(fence, sup);
    // Fence and leader as expected: what failed is the rollback's compare on the head.
    const leaderAsExpected = expected === undefined ? current === undefined : current !== undefined && toRevision(current.mod_revision) === expected;
    if (rollback && leaderAsExpected) {
      throw new BatonError('CONFLICT', `head of ${chainId} changed since it was read; nothing rolled back`, {
        chainId,
        what: 'head',
        expectedRevision: rollback.expectedRevision.toString(),
        actualRevision: headNow ? headNow.mod_revision : null,
      });
    }
    throw new BatonError('CONFLICT', `leader of ${chainId} changed since it was read`, {
      chainId,
      expectedTerm: expected?.toString() ?? null,
      actualTerm: current ? current.mod_revision : null,
    });
  }

  async recordHead(fence: SupervisionFence, term: Term, expected: RecordedHead, head: UnsafeHead): Promise<bigint> {
    checkFence(this.keys, fence);
    if (term <= 0n) throw new BatonError('INVALID_ARGUMENT', `term ${term} is not a term`);
    if (expected.revision < 0n) throw new BatonError('INVALID_ARGUMENT', `head revision ${expected.revision} is negative`);
    validateHead(head);
    const chainId = fence.chainId;
    const headKey = this.keys.head(chainId);
    const leaderKey = this.keys.leader(chainId);

    // `expected` was read together with its revision, and the txn compares that revision: if the
    // head moved since, the txn fails. So judging the number against it here is race-free.
    const recorded = expected.head;
    if (recorded) {
      if (head.number <= recorded.number) {
        throw new BatonError('CONFLICT', `head ${head.number} of ${chainId} is not above the recorded head ${recorded.number}`, {
          chainId,
          what: 'number',
          recorded: recorded.number,
          offered: head.number,
        });
      }
      // The next block must extend the recorded one: the same height never gets two hashes.
      if (head.number === recorded.number + 1 && head.parentHash !== '' && recorded.hash !== '' && head.parentHash !== recorded.hash) {
        throw new BatonError('HEAD_MISMATCH', `head ${head.number} of ${chainId} does not extend the recorded head ${recorded.number}`, {
          chainId,
          recordedHash: recorded.hash,
          parentHash: head.parentHash,
        });
      }
    }

    const res = await this.txn('record head', {
      compare: [...fenceCompares(fence), compare.modRevision(leaderKey, term), headCompare(headKey, expected.revision)],
      success: [op.put(headKey, storedHead(head))],
      failure: [op.get(fence.key), op.get(leaderKey), op.get(headKey)],
    });
    if (res.succeeded) return toRevision(res.header.revision);
    const [sup, leader, headNow] = res.responses.map((r) => firstKv(r));
    throwIfFenced(fence, sup);
    const leaderTerm = leader ? toRevision(leader.mod_revision) : 0n;
    if (leaderTerm !== term) {
      throw new BatonError('CONFLICT', `term ${term} of ${chainId} is not the current term`, {
        chainId,
        what: 'term',
        term: term.toString(),
        currentTerm: leaderTerm.toString(),
      });
    }
    throw new BatonError('CONFLICT', `head of ${chainId} changed since it was read`, {
      chainId,
      what: 'head',
      expectedRevision: expected.revision.toString(),
      actualRevision: headNow ? headNow.mod_revision : '0',
    });
  }

  async commitHead(commit: HeadCommit): Promise<CommitResult> {
    const { chainId, nodeId, term, head } = commit;
    assertChainId(chainId);
    if (term <= 0n) throw new BatonError('INVALID_ARGUMENT', `term ${term} is not a term`);
    validateHead(head);
    if (head.term !== term || head.nodeId !== nodeId) {
      throw new BatonError('INVALID_ARGUMENT', 'a committed head carries the term and node id of the commit');
    }
    // A cached base of an older term is re-read; of a newer one it already proves the term stale
    // (terms only grow). Another writer (a second replica, a concurrent commit) makes the txn fail;
    // its failure branch is the fresh read, and the commit is judged again on it.
    let base = this.commitBases.get(chainId);
    let fresh = base === undefined || base.term < term;
    if (fresh) base = await this.readCommitBase(chainId);
    for (let attempt = 0; ; attempt++) {
      let verdict: 'write' | 'duplicate';
      try {
        verdict = judgeCommit(base, commit);
      } catch (err) {
        // A refusal on the cached base stands only where the cache cannot be behind: a newer term
        // (terms only grow) or the term's own leader (fixed with its revision). The head may have
        // moved on through another replica: judge HEAD_MISMATCH again on a fresh read.
        if (fresh || !isBatonError(err, 'HEAD_MISMATCH')) throw err;
        base = await this.readCommitBase(chainId);
        fresh = true;
        continue;
      }
      const b = base!;
      // A duplicate judged on a fresh read is one. On the cache it is only a guess: another replica
      // may have written a newer term, or a break-glass rollback may have taken the head back, and
      // then the same answer would confirm a block to a deposed node. So it is confirmed by a txn
      // with the same compares and no write (duplicates are rare: a retry after a lost answer).
      if (verdict === 'duplicate' && fresh) return { head: b.head!, revision: b.revision, duplicate: true };
      const headKey = this.keys.head(chainId);
      const leaderKey = this.keys.leader(chainId);
      const req: ITxnRequest = {
        compare: [compare.modRevision(leaderKey, term), headCompare(headKey, b.revision)],
        success: verdict === 'write' ? [op.put(headKey, storedHead(head))] : [],
        failure: [op.get(leaderKey), op.get(headKey)],
      };
      const batcher = this.batcher;
      const res = batcher
        ? await etcdCall('commit head', () => batcher.submit(chainId, req))
        : await this.txn('commit head', req).then((r) => ({ succeeded: r.succeeded, responses: r.responses, revision: r.header.revision }));
      if (res.succeeded && verdict === 'duplicate') return { head: b.head!, revision: b.revision, duplicate: true };
      if (res.succeeded) {
        const revision = toRevision(res.revision);
        this.remember(chainId, { ...b, head, revision });
        return { head, revision, duplicate: false };
      }
      const [leader, headNow] = res.responses.map((r) => firstKv(r));
      base = this.remember(chainId, toCommitBase(leader, headNow));
      fresh = true;
      if (attempt >= 2) {
        throw new BatonError('CONFLICT', `head of ${chainId} kept changing under the commit`, { chainId });
      }
    }
  }

  async history(chainId: string, limit: number): Promise<TermRecord[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) {
      throw new BatonError('INVALID_ARGUMENT', `history limit ${limit} must be an integer in 1..${MAX_HISTORY_LIMIT}`);
    }
    const prefix = this.keys.historyPrefix(chainId);
    // Keys are zero-padded previous terms, so descending key order is newest first.
    const res = await this.txn('read history', { success: [op.getPrefix(prefix, { limit, descending: true })] });
    return rangeKvs(res.responses[0]).map((kv) => toTermRecord(kv, prefix));
  }

  async setFencingMode(fence: SupervisionFence, mode: FencingMode): Promise<boolean> {
    checkFence(this.keys, fence);
    if (mode !== 'lease' && mode !== 'commit') throw new BatonError('INVALID_ARGUMENT', `fencing mode ${JSON.stringify(mode)} must be "lease" or "commit"`);
    const chainId = fence.chainId;
    const specKey = this.keys.spec(chainId);
    const read = await this.txn('read spec', { success: [op.get(specKey)] });
    const kv = firstKv(read.responses[0]);
    if (!kv) throw new BatonError('NOT_FOUND', `chain ${chainId} does not exist`, { chainId });
    const spec = parseJson<ChainSpec>(kv);
    if (spec.policy.fencingMode === mode) return false;
    const next: ChainSpec = { ...spec, policy: { ...spec.policy, fencingMode: mode } };
    validateChainSpec(next);
    // The spec as read, or nothing: a PUT in between is not overwritten with a stale copy.
    const res = await this.txn('set fencing mode', {
      compare: [...fenceCompares(fence), compare.modRevision(specKey, toRevision(kv.mod_revision))],
      success: [op.put(specKey, JSON.stringify(next))],
      failure: [op.get(fence.key), op.get(specKey)],
    });
    if (res.succeeded) return true;
    const [sup, now] = res.responses.map((r) => firstKv(r));
    throwIfFenced(fence, sup);
    if (!now) throw new BatonError('NOT_FOUND', `chain ${chainId} does not exist`, { chainId });
    throw new BatonError('CONFLICT', `spec of ${chainId} changed since it was read`, { chainId, what: 'spec' });
  }

  async getFleetSettings(): Promise<FleetSettings> {
    const res = await this.txn('get fleet settings', { success: [op.get(this.keys.fleetSettings())] });
    const kv = firstKv(res.responses[0]);
    return kv ? { ...DEFAULT_FLEET_SETTINGS, ...parseJson<Partial<FleetSettings>>(kv) } : DEFAULT_FLEET_SETTINGS;
  }

  /** `audit`: the record of the request, written by the same txn. */
  async putFleetSettings(settings: FleetSettings, audit?: NewAuditRecord): Promise<void> {
    validateFleetSettings(settings);
    const value: FleetSettings = { autoFailover: settings.autoFailover, maxConcurrentFailovers: settings.maxConcurrentFailovers };
    await this.txn('put fleet settings', { success: [op.put(this.keys.fleetSettings(), JSON.stringify(value)), ...this.auditOps(audit)] });
  }

  /** The put of an audit record, for the txn of the change it records. */
  private auditOps(audit: NewAuditRecord | undefined): IRequestOp[] {
    return audit ? [auditPut(this.keys, systemClock.wallMs(), audit).op] : [];
  }

  async publishHealth(fence: SupervisionFence, health: readonly NodeHealth[]): Promise<void> {
    checkFence(this.keys, fence);
    const res = await this.txn('publish health', {
      compare: fenceCompares(fence),
      success: [op.put(this.keys.health(fence.chainId), JSON.stringify({ nodes: health }))],
      failure: [op.get(fence.key)],
    });
    if (!res.succeeded) throwIfFenced(fence, firstKv(res.responses[0]));
  }

  // ---- helpers ----

  /** The leader and the head in one read, as a commit is judged on them. */
  private async readCommitBase(chainId: string): Promise<CommitBaseAt | undefined> {
    const res = await this.txn('read commit base', { success: [op.get(this.keys.leader(chainId)), op.get(this.keys.head(chainId))] });
    const [leader, head] = res.responses.map((r) => firstKv(r));
    return this.remember(chainId, toCommitBase(leader, head));
  }

  private remember(chainId: string, base: CommitBaseAt | undefined): CommitBaseAt | undefined {
    if (base === undefined) this.commitBases.delete(chainId);
    else this.commitBases.set(chainId, base);
    return base;
  }

  /** Every request of this store is a txn: one code path, one deadline, one error mapping. */
  private txn(what: string, req: ITxnRequest): Promise<ITxnResponse> {
    return etcdCall(what, () => this.client.kv.txn(req));
  }
}

function parseJson<T>(kv: IKeyValue): T {
  try {
    return JSON.parse(kv.value.toString()) as T;
  } catch {
    throw new BatonError('INTERNAL', `etcd key ${kv.key.toString()} does not hold JSON`);
  }
}

function storedHead(head: UnsafeHead): string {
  const stored: StoredHead = { ...head, term: head.term.toString() };
  return JSON.stringify(stored);
}

/** The head key at `revision` (0n: the chain has no head yet). */
function headCompare(headKey: string, revision: bigint) {
  return revision === 0n ? compare.absent(headKey) : compare.modRevision(headKey, revision);
}

function toCommitBase(leader: IKeyValue | undefined, head: IKeyValue | undefined): CommitBaseAt | undefined {
  if (!leader) return undefined;
  const stored = parseJson<StoredLeader>(leader);
  return {
    term: toRevision(leader.mod_revision),
    leaderNodeId: stored.nodeId,
    mode: stored.mode,
    head: head ? toHead(head) : undefined,
    revision: head ? toRevision(head.mod_revision) : 0n,
  };
}

/** The leader record and what it says of the terms before it, from one parse of the leader key. */
function toLeaderState(kv: IKeyValue | undefined): Pick<ChainState, 'leader' | 'previousMode' | 'leaseGrantsLive'> {
  if (!kv) return { leader: undefined, previousMode: undefined, leaseGrantsLive: undefined };
  const v = parseJson<StoredLeader>(kv);
  return {
    leader: { nodeId: v.nodeId, term: toRevision(kv.mod_revision), mode: v.mode, sinceMs: v.sinceMs, reason: v.reason, fromHead: v.fromHead },
    previousMode: v.previousMode,
    leaseGrantsLive: v.leaseGrantsLive === true,
  };
}

function toHead(kv: IKeyValue): UnsafeHead {
  const v = parseJson<StoredHead>(kv);
  return { ...v, term: BigInt(v.term) };
}

function toTermRecord(kv: IKeyValue, prefix: string): TermRecord {
  const v = parseJson<StoredTermRecord>(kv);
  const previousTerm = BigInt(kv.key.toString().slice(prefix.length));
  return {
    term: toRevision(kv.mod_revision),
    nodeId: v.nodeId,
    previousNodeId: v.previousNodeId ?? undefined,
    previousTerm: previousTerm === 0n ? undefined : previousTerm,
    fromHead: v.fromHead,
    reason: v.reason,
    atMs: v.atMs,
    supervisor: v.supervisor,
    durationMs: v.durationMs ?? undefined,
  };
}

/** Only the record's own fields are stored. */
function storedOverride(o: OverrideRecord): OverrideRecord {
  const stored: OverrideRecord = { nodeId: o.nodeId, reason: o.reason, sinceMs: o.sinceMs, operationId: o.operationId };
  if (!o.rolledBackFrom || !o.rolledBackTo) return stored;
  const ref = (h: { number: number; hash: string }) => ({ number: h.number, hash: h.hash });
  return { ...stored, rolledBackFrom: ref(o.rolledBackFrom), rolledBackTo: ref(o.rolledBackTo) };
}
