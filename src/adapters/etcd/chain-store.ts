// ChainStore on etcd. Every write that changes a chain's leadership or head is ONE txn that
// compares the caller's supervisor key (create revision + value: a deposed supervisor cannot
// write) and the revision it read (no lost update); the failure branch of the same txn reads back
// the compared keys, so a refusal says exactly why (FENCED or CONFLICT) without a second request.
//
// Values are JSON, bigints as decimal strings. Terms are never stored inside values: the leader key
// is written only when the term changes, so its mod revision IS the term; a history entry is
// written once, in the same txn, so its mod revision is that term too (see EtcdKeys.historyAfter).
import type { Etcd3, IKeyValue, ITxnRequest, ITxnResponse } from 'etcd3';
import type { ChainSpec, LeaderRecord, TermRecord, UnsafeHead } from '../../core/chain.js';
import { BatonError } from '../../core/errors.js';
import type { PauseRecord } from '../../core/operation.js';
import type { ChainState, ChainStore, FleetSettings, NewLeader, NodeHealth, SupervisionFence } from '../../core/ports.js';
import type { Term } from '../../core/term.js';
import { compare, etcdCall, firstKv, op, rangeKvs, selectUnderPrefix, toRevision } from './client.js';
import { checkFence, fenceCompares, throwIfFenced } from './fence.js';
import { EtcdKeys } from './keys.js';
import { validateChainSpec, validateFleetSettings, validateHead, validateNewLeader } from './validation.js';

export const DEFAULT_FLEET_SETTINGS: FleetSettings = Object.freeze({ autoFailover: true, maxConcurrentFailovers: 2 });

const MAX_HISTORY_LIMIT = 1000;

/** What the leader key holds: everything of LeaderRecord except the term (its mod revision). */
interface StoredLeader {
  nodeId: string;
  mode: LeaderRecord['mode'];
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

export class EtcdChainStore implements ChainStore {
  constructor(
    private readonly client: Etcd3,
    private readonly keys: EtcdKeys = new EtcdKeys(),
  ) {}

  async putSpec(spec: ChainSpec): Promise<void> {
    validateChainSpec(spec);
    await this.txn('put spec', { success: [op.put(this.keys.spec(spec.id), JSON.stringify(spec))] });
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

  async deleteChain(chainId: string): Promise<boolean> {
    const res = await this.txn('delete chain', {
      compare: [compare.exists(this.keys.spec(chainId))],
      success: [op.delPrefix(this.keys.chain(chainId)), op.del(this.keys.supervisor(chainId))],
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
      ],
    });
    const [spec, leader, head, supervisor, pause, , health] = res.responses.map((r) => firstKv(r));
    const intents = rangeKvs(res.responses[5]).map((kv) => kv.key.toString().slice(k.intents(chainId).length));
    if (!spec) return undefined;
    return {
      spec: parseJson<ChainSpec>(spec),
      leader: leader ? toLeaderRecord(leader) : undefined,
      head: head ? toHead(head) : undefined,
      headRevision: head ? toRevision(head.mod_revision) : 0n,
      supervisor: supervisor?.value.toString(),
      pause: pause ? parseJson<PauseRecord>(pause) : undefined,
      intents,
      health: health ? parseJson<{ nodes: NodeHealth[] }>(health).nodes : undefined,
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
    const entry: StoredTermRecord = {
      nodeId: history.nodeId,
      previousNodeId: history.previousNodeId ?? null,
      fromHead: history.fromHead,
      reason: history.reason,
      atMs: history.atMs,
      supervisor: history.supervisor,
      durationMs: history.durationMs ?? null,
    };
    const res = await this.txn('write leader', {
      compare: [
        ...fenceCompares(fence),
        expected === undefined ? compare.absent(leaderKey) : compare.modRevision(leaderKey, expected),
      ],
      success: [
        op.put(leaderKey, JSON.stringify(leader)),
        op.put(this.keys.historyAfter(chainId, expected ?? 0n), JSON.stringify(entry)),
      ],
      failure: [op.get(fence.key), op.get(leaderKey)],
    });
    if (res.succeeded) return toRevision(res.header.revision);
    const [sup, current] = res.responses.map((r) => firstKv(r));
    throwIfFenced(fence, sup);
    throw new BatonError('CONFLICT', `leader of ${chainId} changed since it was read`, {
      chainId,
      expectedTerm: expected?.toString() ?? null,
      actualTerm: current ? current.mod_revision : null,
    });
  }

  async recordHead(fence: SupervisionFence, term: Term, expectedHeadRevision: bigint, head: UnsafeHead): Promise<bigint> {
    checkFence(this.keys, fence);
    if (term <= 0n) throw new BatonError('INVALID_ARGUMENT', `term ${term} is not a term`);
    if (expectedHeadRevision < 0n) throw new BatonError('INVALID_ARGUMENT', `head revision ${expectedHeadRevision} is negative`);
    validateHead(head);
    const chainId = fence.chainId;
    const headKey = this.keys.head(chainId);
    const leaderKey = this.keys.leader(chainId);

    // The txn below compares the head revision, so checking the number against this read is
    // race-free: if the head moved in between, the txn fails.
    const before = await this.txn('read head', { success: [op.get(headKey)] });
    const current = firstKv(before.responses[0]);
    const currentRevision = current ? toRevision(current.mod_revision) : 0n;
    if (currentRevision !== expectedHeadRevision) {
      throw new BatonError('CONFLICT', `head of ${chainId} changed since it was read`, {
        chainId,
        what: 'head',
        expectedRevision: expectedHeadRevision.toString(),
        actualRevision: currentRevision.toString(),
      });
    }
    if (current) {
      const recorded = toHead(current);
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

    const stored: StoredHead = { ...head, term: head.term.toString() };
    const res = await this.txn('record head', {
      compare: [
        ...fenceCompares(fence),
        compare.modRevision(leaderKey, term),
        expectedHeadRevision === 0n ? compare.absent(headKey) : compare.modRevision(headKey, expectedHeadRevision),
      ],
      success: [op.put(headKey, JSON.stringify(stored))],
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
      expectedRevision: expectedHeadRevision.toString(),
      actualRevision: headNow ? headNow.mod_revision : '0',
    });
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

  async getFleetSettings(): Promise<FleetSettings> {
    const res = await this.txn('get fleet settings', { success: [op.get(this.keys.fleetSettings())] });
    const kv = firstKv(res.responses[0]);
    return kv ? { ...DEFAULT_FLEET_SETTINGS, ...parseJson<Partial<FleetSettings>>(kv) } : DEFAULT_FLEET_SETTINGS;
  }

  async putFleetSettings(settings: FleetSettings): Promise<void> {
    validateFleetSettings(settings);
    const value: FleetSettings = { autoFailover: settings.autoFailover, maxConcurrentFailovers: settings.maxConcurrentFailovers };
    await this.txn('put fleet settings', { success: [op.put(this.keys.fleetSettings(), JSON.stringify(value))] });
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

function toLeaderRecord(kv: IKeyValue): LeaderRecord {
  const v = parseJson<StoredLeader>(kv);
  return { nodeId: v.nodeId, term: toRevision(kv.mod_revision), mode: v.mode, sinceMs: v.sinceMs, reason: v.reason, fromHead: v.fromHead };
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
