// OperationStore on etcd: operator requests made durable before the API answers 202 (invariant 6),
// and the supervisor's fenced progress records (invariant 5).
//
// submit is ONE txn: it compares that the chain exists, that the chain's leadership lock is free
// (failover, switchover, set-fencing-mode only) and that the idempotency key is unused, and writes
// the operation, the chain's intent key, the lock and the idempotency record together. Its failure
// branch reads those keys back, so NOT_FOUND, CONFLICT, replay and IDEMPOTENCY_MISMATCH are told
// apart without another request. The store stays dumb: it does not judge whether a request makes
// sense for the chain (a cancel-switchover with nothing to cancel, a resume without a pause); the
// supervisor does.
//
// Idempotency records ({operationId, requestHash, createdAtMs}) count as absent once older than the
// TTL (24 h by default) and are then overwritten, compared on their mod revision. Nothing deletes
// them yet: a periodic sweep of records older than the TTL is still to be built; until then they
// accumulate (one small key per keyed request). Operation records are kept (the API lists them).
import { randomBytes } from 'node:crypto';
import type { ICompare, IKeyValue, IRequestOp, ITxnRequest, ITxnResponse } from 'etcd3';
import { BatonError } from '../../core/errors.js';
import { FINAL_STATES, isFinal, type Operation, type OperationKind, type OperationParams, type OperationState, type PauseRecord } from '../../core/operation.js';
import type { Clock, Idempotency, NewOperation, OperationStore, SupervisionFence } from '../../core/ports.js';
import { systemClock } from '../system-clock.js';
import { compare, etcdCall, firstKv, op, rangeKvs, toRevision, type EtcdClient } from './client.js';
import { checkFence, fenceCompares, throwIfFenced } from './fence.js';
import { EtcdKeys, assertChainId, assertOperationId, prefixEnd } from './keys.js';
import type { NewAuditRecord } from '../../api/audit.js';
import { auditPut } from './audit-log.js';

export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface OperationStoreOptions {
  /** Wall time of records and of idempotency expiry (default: the system clock). */
  clock?: Clock;
  /** Id of an operation created at `wallMs` (default newOperationId). Ids must sort by creation. */
  newId?: (wallMs: number) => string;
  /** Age after which an idempotency record no longer counts (default 24 h). */
  idempotencyTtlMs?: number;
}

export interface ListOperationsQuery {
  readonly chainId?: string;
  readonly limit: number;
}

interface IdempotencyRecord {
  operationId: string;
  requestHash: string;
  createdAtMs: number;
}

const MAX_LIST_LIMIT = 1000;
/** Page of a listing filtered by chain, and batch of gets: etcd refuses txns of > 128 ops. */
const PAGE = 100;
/** A concurrent writer can change an expired idempotency record between our read and our txn. */
const SUBMIT_ATTEMPTS = 3;
const KINDS: readonly OperationKind[] = ['failover', 'switchover', 'pause', 'resume', 'cancel-switchover', 'override', 'clear-override', 'set-fencing-mode'];
const STATES: readonly OperationState[] = ['pending', 'scheduled', 'running', ...FINAL_STATES];
const STEP_STATES = ['running', 'done', 'failed', 'skipped'];

/**
 * `op-<wall ms, 13 digits>-<8 hex>`: lexical order is creation order to the millisecond (so intent
 * keys list oldest first); within one millisecond the order is arbitrary, the ids still unique.
 */
export function newOperationId(wallMs: number): string {
  if (!Number.isSafeInteger(wallMs) || wallMs < 0) throw new BatonError('INVALID_ARGUMENT', `wall time ${wallMs} is not a timestamp`);
  return `op-${String(wallMs).padStart(13, '0')}-${randomBytes(4).toString('hex')}`;
}

/**
 * Failover, switchover and a fencing-mode switch (a new term for the active) hold the chain's
 * leadership lock until they end: one leadership operation at a time.
 */
export function takesLeadershipLock(kind: OperationKind): boolean {
  return kind === 'failover' || kind === 'switchover' || kind === 'set-fencing-mode';
}

export class EtcdOperationStore implements OperationStore {
  private readonly clock: Clock;
  private readonly newId: (wallMs: number) => string;
  private readonly idempotencyTtlMs: number;

  constructor(
    private readonly client: EtcdClient,
    private readonly keys: EtcdKeys = new EtcdKeys(),
    options: OperationStoreOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.newId = options.newId ?? newOperationId;
    this.idempotencyTtlMs = options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS;
    if (!Number.isSafeInteger(this.idempotencyTtlMs) || this.idempotencyTtlMs <= 0) {
      throw new BatonError('INVALID_ARGUMENT', `idempotency TTL ${this.idempotencyTtlMs} ms must be a positive integer`);
    }
  }

  /**
   * `idempotency.principal` scopes the key to the principal that used it. `audit`: the record of
   * the request, written by the same txn as the intent (not on a replay or a refusal).
   */
  async submit(
    request: NewOperation,
    idempotency: (Idempotency & { principal?: string }) | undefined,
    audit?: NewAuditRecord,
  ): Promise<{ operation: Operation; replayed: boolean }> {
    const params = validateNewOperation(request);
    const k = this.keys;
    const idemKey = idempotency ? (idempotency.principal !== undefined ? k.idempotencyOf(idempotency.principal, idempotency.key) : k.idempotency(idempotency.key)) : undefined;
    if (idempotency && !nonEmpty(idempotency.requestHash)) throw new BatonError('INVALID_ARGUMENT', 'idempotency request hash is required');
    const now = this.clock.wallMs();
    const id = this.newId(now);
    assertOperationId(id);
    const chainId = request.chainId;
    const scheduled = params.kind === 'switchover' && params.scheduledAtMs !== undefined && params.scheduledAtMs > now;
    const operation: Operation = {
      id,
      chainId,
      params,
      state: scheduled ? 'scheduled' : 'pending',
      steps: [],
      createdAtMs: now,
      updatedAtMs: now,
      requestId: request.requestId,
      ...(idempotency ? { idempotencyKey: idempotency.key } : {}),
      ...traceOf(request),
    };
    const specKey = k.spec(chainId);
    const lockKey = k.leadershipLock(chainId);
    const locks = takesLeadershipLock(params.kind);
    const success = [op.put(k.operation(id), JSON.stringify(operation)), op.put(k.intent(chainId, id), id)];
    if (audit) success.push(auditPut(k, now, { ...audit, operationId: id }).op);
    if (locks) success.push(op.put(lockKey, id));
    if (idemKey && idempotency) {
      const record: IdempotencyRecord = { operationId: id, requestHash: idempotency.requestHash, createdAtMs: now };
      success.push(op.put(idemKey, JSON.stringify(record)));
    }
    const failure = [op.get(specKey), op.get(lockKey), ...(idemKey ? [op.get(idemKey)] : [])];

    // Mod revision of an expired idempotency record we may overwrite; 0n: the key must be absent.
    let expiredRevision = 0n;
    for (let attempt = 0; attempt < SUBMIT_ATTEMPTS; attempt++) {
      const compares: ICompare[] = [compare.exists(specKey)];
      if (locks) compares.push(compare.absent(lockKey));
      if (idemKey) compares.push(expiredRevision === 0n ? compare.absent(idemKey) : compare.modRevision(idemKey, expiredRevision));
      const res = await this.txn('submit operation', { compare: compares, success, failure });
      if (res.succeeded) return { operation, replayed: false };

      const [spec, lock, idem] = res.responses.map((r) => firstKv(r));
      // The idempotency record decides first: a replay of an accepted failover must not be refused
      // because of the lock that failover itself holds.
      if (idempotency && idem) {
        const record = parseJson<IdempotencyRecord>(idem);
        if (now - record.createdAtMs < this.idempotencyTtlMs) return this.replay(idempotency, record);
        const revision = toRevision(idem.mod_revision);
        if (revision !== expiredRevision) {
          expiredRevision = revision;
          continue;
        }
      } else if (expiredRevision !== 0n) {
        expiredRevision = 0n; // the expired record was deleted meanwhile
        continue;
      }
      if (!spec) throw new BatonError('NOT_FOUND', `chain ${chainId} does not exist`, { chainId });
      if (locks && lock) {
        const holder = lock.value.toString();
        throw new BatonError('CONFLICT', `chain ${chainId} has an unfinished leadership operation ${holder}`, { chainId, operationId: holder });
      }
    }
    throw new BatonError('CONFLICT', `idempotency key changed concurrently ${SUBMIT_ATTEMPTS} times`, { chainId });
  }

  async get(operationId: string): Promise<Operation | undefined> {
    const res = await this.txn('get operation', { success: [op.get(this.keys.operation(operationId))] });
    const kv = firstKv(res.responses[0]);
    return kv ? parseJson<Operation>(kv) : undefined;
  }

  async pending(chainId: string): Promise<Operation[]> {
    const prefix = this.keys.intents(chainId);
    // Intent keys first, then their operations as of the same revision: one consistent picture.
    const listed = await this.txn('list intents', { success: [op.getPrefix(prefix, { keysOnly: true })] });
    const atRevision = toRevision(listed.header.revision);
    const ids = rangeKvs(listed.responses[0]).map((kv) => kv.key.toString().slice(prefix.length));
    const operations: Operation[] = [];
    for (let i = 0; i < ids.length; i += PAGE) {
      const batch = ids.slice(i, i + PAGE).map((id) => op.get(this.keys.operation(id), atRevision));
      const res = await this.txn('read pending operations', { success: batch });
      // An intent always has its operation (written and removed in the same txns); skip rather
      // than block the chain's supervisor if one was ever orphaned by hand.
      operations.push(...res.responses.flatMap((r) => rangeKvs(r)).map((kv) => parseJson<Operation>(kv)));
    }
    return operations;
  }

  async update(fence: SupervisionFence, operation: Operation): Promise<void> {
    checkFence(this.keys, fence);
    validateProgress(operation);
    const chainId = fence.chainId;
    if (operation.chainId !== chainId) {
      throw new BatonError('INVALID_ARGUMENT', `operation ${operation.id} of ${operation.chainId} cannot be updated under the fence of ${chainId}`);
    }
    const opKey = this.keys.operation(operation.id);
    const read = await this.txn('read operation', { success: [op.get(opKey)] });
    const kv = firstKv(read.responses[0]);
    if (!kv) throw new BatonError('NOT_FOUND', `operation ${operation.id} does not exist`, { operationId: operation.id });
    const current = parseJson<Operation>(kv);
    if (current.chainId !== chainId) {
      throw new BatonError('INVALID_ARGUMENT', `operation ${operation.id} belongs to ${current.chainId}, not ${chainId}`);
    }
    if (isFinal(current.state)) throw alreadyFinal(current);

    // The request (id, chain, params, creation) is immutable; only the progress fields move.
    const next: Operation = {
      ...current,
      state: operation.state,
      steps: operation.steps,
      result: operation.result,
      error: operation.error,
      executor: operation.executor,
      updatedAtMs: this.clock.wallMs(),
    };
    const success: IRequestOp[] = [op.put(opKey, JSON.stringify(next))];
    if (isFinal(next.state)) {
      success.push(op.del(this.keys.intent(chainId, current.id)));
      if (takesLeadershipLock(current.params.kind)) {
        const lockKey = this.keys.leadershipLock(chainId);
        // Nested txn: release the lock only if it still names this operation.
        success.push({ request_txn: { compare: [compare.value(lockKey, current.id)], success: [op.del(lockKey)], failure: [] } });
      }
    }
    const res = await this.txn('update operation', {
      compare: [...fenceCompares(fence), compare.modRevision(opKey, toRevision(kv.mod_revision))],
      success,
      failure: [op.get(fence.key), op.get(opKey)],
    });
    if (res.succeeded) return;
    const [sup, after] = res.responses.map((r) => firstKv(r));
    throwIfFenced(fence, sup);
    if (!after) throw new BatonError('NOT_FOUND', `operation ${operation.id} does not exist`, { operationId: operation.id });
    const stored = parseJson<Operation>(after);
    if (isFinal(stored.state)) throw alreadyFinal(stored);
    throw new BatonError('CONFLICT', `operation ${operation.id} changed since it was read`, { operationId: operation.id, what: 'operation' });
  }

  async setPause(fence: SupervisionFence, pause: PauseRecord | undefined): Promise<void> {
    checkFence(this.keys, fence);
    const key = this.keys.pause(fence.chainId);
    let write: IRequestOp;
    if (pause) {
      validatePause(pause);
      const value: PauseRecord = { reason: pause.reason, untilMs: pause.untilMs, sinceMs: pause.sinceMs, operationId: pause.operationId };
      write = op.put(key, JSON.stringify(value));
    } else {
      write = op.del(key);
    }
    const res = await this.txn('set pause', { compare: fenceCompares(fence), success: [write], failure: [op.get(fence.key)] });
    if (res.succeeded) return;
    throwIfFenced(fence, firstKv(res.responses[0]));
    throw new BatonError('INTERNAL', `pause of ${fence.chainId} refused although the fence holds`);
  }

  async clearOverride(fence: SupervisionFence): Promise<boolean> {
    checkFence(this.keys, fence);
    const key = this.keys.override(fence.chainId);
    const res = await this.txn('clear override', { compare: fenceCompares(fence), success: [op.del(key)], failure: [op.get(fence.key)] });
    if (res.succeeded) return (res.responses[0]?.response_delete_range?.deleted ?? '0') !== '0';
    throwIfFenced(fence, firstKv(res.responses[0]));
    throw new BatonError('INTERNAL', `clearing the override of ${fence.chainId} refused although the fence holds`);
  }

  /**
   * Operations newest first (ids are time-ordered), optionally of one chain, as of one revision.
   * Filtering by chain scans the operations in pages: fine while they are swept, not an index.
   */
  async listOperations(query: ListOperationsQuery): Promise<Operation[]> {
    const { chainId, limit } = query;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new BatonError('INVALID_ARGUMENT', `operation list limit ${limit} must be an integer in 1..${MAX_LIST_LIMIT}`);
    }
    if (chainId !== undefined) assertChainId(chainId);
    const prefix = Buffer.from(this.keys.operations());
    const page = chainId === undefined ? limit : PAGE;
    let end = prefixEnd(this.keys.operations());
    let atRevision: bigint | undefined;
    const out: Operation[] = [];
    for (;;) {
      // A raw range: its end moves down to the last key of the previous page (exclusive).
      const range: IRequestOp = {
        request_range: {
          key: prefix,
          range_end: end,
          limit: page,
          sort_order: 'Descend',
          sort_target: 'Key',
          ...(atRevision ? { revision: atRevision.toString() } : {}),
        },
      };
      const res = await this.txn('list operations', { success: [range] });
      atRevision ??= toRevision(res.header.revision);
      const kvs = rangeKvs(res.responses[0]);
      for (const kv of kvs) {
        const operation = parseJson<Operation>(kv);
        if (chainId !== undefined && operation.chainId !== chainId) continue;
        out.push(operation);
        if (out.length === limit) return out;
      }
      const last = kvs[kvs.length - 1];
      if (!last || kvs.length < page) return out;
      end = last.key;
    }
  }

  // ---- helpers ----

  private async replay(idempotency: Idempotency, record: IdempotencyRecord): Promise<{ operation: Operation; replayed: boolean }> {
    if (record.requestHash !== idempotency.requestHash) {
      throw new BatonError('IDEMPOTENCY_MISMATCH', 'Idempotency-Key was already used for a different request', { operationId: record.operationId });
    }
    // A key first used by a plain write (PUT/DELETE) holds no operation.
    if (typeof record.operationId !== 'string') throw new BatonError('CONFLICT', 'Idempotency-Key belongs to another request still running or of another kind');
    const operation = await this.get(record.operationId);
    if (!operation) throw new BatonError('INTERNAL', `idempotency record names a missing operation ${record.operationId}`);
    return { operation, replayed: true };
  }

  /** Every request of this store is a txn: one code path, one deadline, one error mapping. */
  private txn(what: string, req: ITxnRequest): Promise<ITxnResponse> {
    return etcdCall(what, () => this.client.kv.txn(req));
  }
}

function alreadyFinal(operation: Operation): BatonError {
  return new BatonError('CONFLICT', `operation ${operation.id} is already ${operation.state}`, {
    operationId: operation.id,
    what: 'final',
    state: operation.state,
  });
}

function parseJson<T>(kv: IKeyValue): T {
  try {
    return JSON.parse(kv.value.toString()) as T;
  } catch {
    throw new BatonError('INTERNAL', `etcd key ${kv.key.toString()} does not hold JSON`);
  }
}

// ---- validation: bad input is INVALID_ARGUMENT before anything reaches etcd ----

function invalid(message: string): never {
  throw new BatonError('INVALID_ARGUMENT', message);
}

function nonEmpty(s: unknown, max = 256): s is string {
  return typeof s === 'string' && s.length > 0 && s.length <= max;
}

function isText(s: unknown): s is string {
  return typeof s === 'string' && s.length <= 1024;
}

/** The request's trace (W3C traceparent and its trace id), kept only when well-formed. */
function traceOf(request: NewOperation): { traceId?: string; traceparent?: string } {
  const { traceId, traceparent } = request;
  if (typeof traceparent !== 'string' || typeof traceId !== 'string') return {};
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent);
  return m && m[1] === traceId ? { traceId, traceparent } : {};
}

function isWallMs(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Checks a request and returns its params with only the fields of its kind (nothing else is stored). */
export function validateNewOperation(request: NewOperation): OperationParams {
  if (typeof request !== 'object' || request === null) invalid('operation request must be an object');
  assertChainId(request.chainId);
  if (!nonEmpty(request.requestId)) invalid('operation request needs a request id');
  const p = request.params;
  if (typeof p !== 'object' || p === null || !KINDS.includes(p.kind)) invalid(`operation kind must be one of ${KINDS.join(', ')}`);
  if (!isText(p.reason)) invalid(`${p.kind}: reason must be a string of at most 1024 characters`);
  const optionalNode = (v: unknown, what: string) => {
    if (v !== undefined && !nonEmpty(v)) invalid(`${p.kind}: ${what} must be a node id`);
  };
  const optionalMs = (v: unknown, what: string) => {
    if (v !== undefined && !isWallMs(v)) invalid(`${p.kind}: ${what} must be wall-clock milliseconds`);
  };
  switch (p.kind) {
    case 'failover':
      optionalNode(p.candidate, 'candidate');
      return { kind: p.kind, reason: p.reason, ...(p.candidate !== undefined ? { candidate: p.candidate } : {}) };
    case 'switchover':
      optionalNode(p.target, 'target');
      optionalMs(p.scheduledAtMs, 'scheduledAtMs');
      return {
        kind: p.kind,
        reason: p.reason,
        ...(p.target !== undefined ? { target: p.target } : {}),
        ...(p.scheduledAtMs !== undefined ? { scheduledAtMs: p.scheduledAtMs } : {}),
      };
    case 'pause':
      optionalMs(p.untilMs, 'untilMs');
      return { kind: p.kind, reason: p.reason, ...(p.untilMs !== undefined ? { untilMs: p.untilMs } : {}) };
    case 'override':
      if (!nonEmpty(p.nodeId)) invalid('override: nodeId must be a node id');
      if (p.reason === '') invalid('override: reason is required');
      if (p.rollbackHead !== undefined && typeof p.rollbackHead !== 'boolean') invalid('override: rollbackHead must be a boolean');
      // Stored only when asked for: an override without it is the same record as before it existed.
      return { kind: p.kind, nodeId: p.nodeId, reason: p.reason, ...(p.rollbackHead === true ? { rollbackHead: true } : {}) };
    case 'set-fencing-mode':
      if (p.mode !== 'lease' && p.mode !== 'commit') invalid('set-fencing-mode: mode must be "lease" or "commit"');
      return { kind: p.kind, mode: p.mode, reason: p.reason };
    case 'resume':
    case 'cancel-switchover':
    case 'clear-override':
      return { kind: p.kind, reason: p.reason };
  }
}

/** The progress fields the supervisor may change. */
export function validateProgress(operation: Operation): void {
  if (typeof operation !== 'object' || operation === null) invalid('operation must be an object');
  assertOperationId(operation.id);
  if (!STATES.includes(operation.state)) invalid(`operation state must be one of ${STATES.join(', ')}`);
  if (!Array.isArray(operation.steps)) invalid('operation steps must be a list');
  for (const step of operation.steps) {
    if (!nonEmpty(step?.name) || !STEP_STATES.includes(step.state) || !isWallMs(step.atMs) || !isText(step.detail)) {
      invalid(`operation ${operation.id}: every step needs a name, a state (${STEP_STATES.join(', ')}), atMs and a detail`);
    }
  }
  if (operation.result !== undefined && (typeof operation.result !== 'object' || !isText(operation.result.detail))) {
    invalid(`operation ${operation.id}: result needs a detail`);
  }
  if (operation.error !== undefined && (!nonEmpty(operation.error?.code) || !isText(operation.error.message))) {
    invalid(`operation ${operation.id}: error needs a code and a message`);
  }
  if (operation.executor !== undefined && !nonEmpty(operation.executor)) invalid(`operation ${operation.id}: executor must be a replica id`);
}

export function validatePause(pause: PauseRecord): void {
  if (typeof pause !== 'object' || pause === null) invalid('pause must be an object');
  if (!isText(pause.reason)) invalid('pause reason must be a string of at most 1024 characters');
  if (pause.untilMs !== undefined && !isWallMs(pause.untilMs)) invalid('pause untilMs must be wall-clock milliseconds');
  if (!isWallMs(pause.sinceMs)) invalid('pause sinceMs must be wall-clock milliseconds');
  assertOperationId(pause.operationId);
}
