// Every etcd key Baton uses is built here, under one configurable prefix, so the layout can be read
// (and changed) in one place. Layout, relative to the prefix (default `/baton/`):
//
//   chains/<id>/spec                     ChainSpec (JSON)
//   chains/<id>/leader                   LeaderRecord without term; term = this key's mod revision
//   chains/<id>/head                     UnsafeHead (JSON, bigints as decimal strings)
//   chains/<id>/history/<prev term, 20>  TermRecord of the term that FOLLOWED <prev term>
//                                        (0…0 for the first leader); term = this key's mod revision
//   chains/<id>/pause                    PauseRecord (JSON), written by the chain's supervisor
//   chains/<id>/override                 OverrideRecord (JSON): a break-glass override in force,
//                                        written in the txn of the term it forced; its mod
//                                        revision is that term
//   chains/<id>/intents/<operation id>   operation id, while that operation is unfinished
//   chains/<id>/leadership-op            id of the chain's unfinished failover/switchover (a lock)
//   supervisors/<id>                     replica id, under that replica's lease (election key); its
//                                        own prefix so listing and watching supervisors stays cheap
//   fleet/settings                       FleetSettings (JSON)
//   fleet/failover-slots/<n>             replica id, under its lease (fleet-wide failover cap)
//   replicas/<replicaId>                 {id, startedAtMs, apiAddress?}, under the replica's lease
//   operations/<operation id>            Operation (JSON); ids `op-<wall ms, 13>-<8 hex>` sort by creation
//   idempotency/<base64url(key)>         {operationId, requestHash, createdAtMs}; void after its TTL
//   idempotency/<b64url(principal)>.<b64url(key)>  the same, for a key scoped to its principal
//   audit/<wall ms, 13>-<8 hex>          AuditRecord (JSON); written in the txn of the change it
//                                        records; only the retention sweep deletes
//
// Later additions (audit, ...) get their own top-level segment or a new per-chain segment here;
// nothing outside this module concatenates key strings.
import { BatonError } from '../../core/errors.js';

export const DEFAULT_PREFIX = '/baton/';

const CHAIN_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
// Replica ids end up in keys and in log lines; keep them to a safe, slash-free alphabet.
const REPLICA_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const TERM_DIGITS = 20; // 2^64-1 has 20 decimal digits, so zero-padding keeps lexical = numeric order

export function isValidChainId(id: string): boolean {
  return CHAIN_ID.test(id);
}

export function assertChainId(id: string): void {
  if (typeof id !== 'string' || !CHAIN_ID.test(id)) {
    throw new BatonError('INVALID_ARGUMENT', `chain id ${JSON.stringify(id)} must match ${CHAIN_ID.source}`);
  }
}

const OPERATION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const AUDIT_ID = /^\d{13}-[0-9a-f]{8}$/;

export function assertOperationId(id: string): void {
  if (typeof id !== 'string' || !OPERATION_ID.test(id)) {
    throw new BatonError('INVALID_ARGUMENT', `operation id ${JSON.stringify(id)} must match ${OPERATION_ID.source}`);
  }
}

export function assertReplicaId(id: string): void {
  if (typeof id !== 'string' || !REPLICA_ID.test(id)) {
    throw new BatonError('INVALID_ARGUMENT', `replica id ${JSON.stringify(id)} must match ${REPLICA_ID.source}`);
  }
}

/** The part of the chain keys after `chains/<id>/`. */
export type ChainKeyKind = 'spec' | 'leader' | 'head' | 'history' | 'pause' | 'override' | 'intents' | 'leadership-op' | 'health';

const CHAIN_KEY_KINDS: readonly string[] = ['spec', 'leader', 'head', 'history', 'pause', 'override', 'intents', 'leadership-op', 'health'];

export class EtcdKeys {
  readonly prefix: string;

  constructor(prefix: string = DEFAULT_PREFIX) {
    // A prefix without the trailing slash would make `/baton` and `/batonx` overlap.
    if (!prefix.endsWith('/') || prefix.length < 2) {
      throw new BatonError('INVALID_ARGUMENT', `etcd key prefix ${JSON.stringify(prefix)} must end with '/'`);
    }
    this.prefix = prefix;
  }

  // ---- per chain ----

  /** Range prefix of every chain's keys. */
  chains(): string {
    return `${this.prefix}chains/`;
  }

  /** Range prefix of one chain's keys; deleting it removes the chain entirely. */
  chain(chainId: string): string {
    assertChainId(chainId);
    return `${this.chains()}${chainId}/`;
  }

  spec(chainId: string): string {
    return `${this.chain(chainId)}spec`;
  }

  leader(chainId: string): string {
    return `${this.chain(chainId)}leader`;
  }

  head(chainId: string): string {
    return `${this.chain(chainId)}head`;
  }

  /** Range prefix of every chain's supervisor key. */
  supervisors(): string {
    return `${this.prefix}supervisors/`;
  }

  supervisor(chainId: string): string {
    assertChainId(chainId);
    return `${this.supervisors()}${chainId}`;
  }

  /** Chain id of a supervisor key, or undefined for any other key. */
  parseSupervisorKey(key: string): string | undefined {
    const base = this.supervisors();
    if (!key.startsWith(base)) return undefined;
    const chainId = key.slice(base.length);
    return CHAIN_ID.test(chainId) ? chainId : undefined;
  }

  /** Summary of the chain's node health, rewritten by its supervisor when it changes (for events). */
  health(chainId: string): string {
    return `${this.chain(chainId)}health`;
  }

  /** The chain's pause record (PauseRecord JSON), written by its supervisor. */
  pause(chainId: string): string {
    return `${this.chain(chainId)}pause`;
  }

  /** The chain's break-glass override (OverrideRecord JSON), while it is in force. */
  override(chainId: string): string {
    return `${this.chain(chainId)}override`;
  }

  /** Range prefix of the chain's unfinished operations: one key per intent, value = operation id. */
  intents(chainId: string): string {
    return `${this.chain(chainId)}intents/`;
  }

  /** Intent keys sort by creation: the operation id starts with a time-ordered prefix. */
  intent(chainId: string, operationId: string): string {
    assertOperationId(operationId);
    return `${this.intents(chainId)}${operationId}`;
  }

  /** Held (value = operation id) while a failover or switchover of the chain is unfinished. */
  leadershipLock(chainId: string): string {
    return `${this.chain(chainId)}leadership-op`;
  }

  historyPrefix(chainId: string): string {
    return `${this.chain(chainId)}history/`;
  }

  /**
   * Key of the history entry written by the txn that replaced `previousTerm` (0n: the first
   * leader). The new term is not known before the txn commits, but the previous one is, and a
   * txn comparing the leader key to `previousTerm` can succeed only once: the key is unique, sorts
   * like the new term, and its mod revision is the new term.
   */
  historyAfter(chainId: string, previousTerm: bigint): string {
    if (previousTerm < 0n) throw new BatonError('INVALID_ARGUMENT', `term ${previousTerm} is negative`);
    return `${this.historyPrefix(chainId)}${previousTerm.toString().padStart(TERM_DIGITS, '0')}`;
  }

  /** Chain id and kind of a key under chains/, or undefined for any other key. */
  parseChainKey(key: string): { chainId: string; kind: ChainKeyKind } | undefined {
    const base = this.chains();
    if (!key.startsWith(base)) return undefined;
    const [chainId, kind] = key.slice(base.length).split('/', 2);
    if (chainId === undefined || kind === undefined || !CHAIN_ID.test(chainId)) return undefined;
    if (CHAIN_KEY_KINDS.includes(kind)) return { chainId, kind: kind as ChainKeyKind };
    return undefined;
  }

  // ---- fleet ----

  fleetSettings(): string {
    return `${this.prefix}fleet/settings`;
  }

  failoverSlots(): string {
    return `${this.prefix}fleet/failover-slots/`;
  }

  failoverSlot(n: number): string {
    if (!Number.isInteger(n) || n < 0) throw new BatonError('INVALID_ARGUMENT', `failover slot ${n} is not an index`);
    return `${this.failoverSlots()}${n}`;
  }

  /** Range prefix of every operation record. */
  operations(): string {
    return `${this.prefix}operations/`;
  }

  operation(operationId: string): string {
    assertOperationId(operationId);
    return `${this.operations()}${operationId}`;
  }

  /** Idempotency records: {operationId, requestHash, createdAtMs}. */
  idempotency(key: string): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > 255 || /[\x00-\x1f]/.test(key)) {
      throw new BatonError('INVALID_ARGUMENT', 'Idempotency-Key must be 1-255 printable characters');
    }
    return `${this.prefix}idempotency/${Buffer.from(key).toString('base64url')}`;
  }

  /**
   * An idempotency record scoped to the principal that used the key, so that one principal's key
   * never answers another's request. base64url has no '.', so the two parts cannot run together.
   */
  idempotencyOf(principal: string, key: string): string {
    const unscoped = this.idempotency(key); // validates the key
    if (typeof principal !== 'string' || principal.length === 0 || principal.length > 255) {
      throw new BatonError('INVALID_ARGUMENT', 'principal must be 1-255 characters');
    }
    return `${this.prefix}idempotency/${Buffer.from(principal).toString('base64url')}.${unscoped.slice(`${this.prefix}idempotency/`.length)}`;
  }

  // ---- audit ----

  /** Range prefix of the audit trail. */
  auditLog(): string {
    return `${this.prefix}audit/`;
  }

  /** One audit record; ids `<wall ms, 13 digits>-<8 hex>` sort by time. */
  audit(id: string): string {
    if (typeof id !== 'string' || !AUDIT_ID.test(id)) throw new BatonError('INVALID_ARGUMENT', `audit record id ${JSON.stringify(id)} must match ${AUDIT_ID.source}`);
    return `${this.auditLog()}${id}`;
  }

  /** The range bound where records of `wallMs` begin (not itself a record key). */
  auditAt(wallMs: number): string {
    if (!Number.isSafeInteger(wallMs) || wallMs < 0) throw new BatonError('INVALID_ARGUMENT', `wall time ${wallMs} is not a timestamp`);
    return `${this.auditLog()}${String(wallMs).padStart(13, '0')}`;
  }

  replicas(): string {
    return `${this.prefix}replicas/`;
  }

  replica(replicaId: string): string {
    assertReplicaId(replicaId);
    return `${this.replicas()}${replicaId}`;
  }

  /** Replica id of a key under replicas/, or undefined. */
  parseReplicaKey(key: string): string | undefined {
    const base = this.replicas();
    if (!key.startsWith(base)) return undefined;
    const id = key.slice(base.length);
    return REPLICA_ID.test(id) ? id : undefined;
  }
}

/** range_end that makes a range (or delete) cover every key starting with `prefix`. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] ?? 0xff) < 0xff) {
      end[i] = (end[i] ?? 0) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all keys: only for a prefix of 0xff bytes, which ours never is
}
