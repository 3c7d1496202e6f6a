// Baton's event stream (leader changes, pauses, break-glass overrides, operations, chains), read from etcd's own history:
// every event is a key change, its id is the etcd revision of that change (plus its index among
// the events of one txn), so any replica serves any subscriber and a subscriber resumes after a
// disconnect from its Last-Event-ID exactly where it left off (as long as etcd has not compacted
// that far; then it gets a `resync` event and should re-read state).
import type { IKeyValue } from 'etcd3';
import type { EtcdClient, EtcdWatcher as Watcher } from './client.js';
import { parseJsonValue } from './json.js';
import type { EtcdKeys } from './keys.js';

export type EventType =
  | 'chain-registered'
  | 'chain-updated'
  | 'chain-removed'
  | 'leader-changed'
  | 'paused'
  | 'resumed'
  | 'override-set'
  | 'override-cleared'
  | 'node-health-changed'
  | 'operation-changed'
  | 'resync';

export interface BatonEvent {
  /** `<etcd revision>-<index within that revision>`; totally ordered. */
  readonly id: string;
  readonly type: EventType;
  readonly chainId?: string;
  readonly data: Record<string, unknown>;
}

export interface EventSubscription {
  close(): Promise<void>;
}

/** Parses a Last-Event-ID; undefined when absent or malformed (the stream then starts now). */
export function parseEventId(id: string | undefined): { revision: bigint; index: number } | undefined {
  const m = id === undefined ? null : /^(\d{1,20})-(\d{1,6})$/.exec(id);
  if (!m) return undefined;
  return { revision: BigInt(m[1]!), index: Number(m[2]) };
}

export class EventFeed {
  constructor(
    private readonly client: EtcdClient,
    private readonly keys: EtcdKeys,
    private readonly connectTimeoutMs = 2000,
  ) {}

  /** Events after `afterId` (or from now), in revision order, until closed. */
  async subscribe(afterId: string | undefined, onEvent: (e: BatonEvent) => void): Promise<EventSubscription> {
    const after = parseEventId(afterId);
    let builder = this.client.watch().prefix(this.keys.prefix);
    if (after) builder = builder.startRevision(String(after.revision));
    const watcher: Watcher = builder.watcher();
    let closed = false;
    let lastRevision = -1n;
    let index = 0;
    const emit = (type: 'put' | 'delete', kv: IKeyValue): void => {
      if (closed) return;
      const revision = BigInt(kv.mod_revision);
      if (revision !== lastRevision) {
        lastRevision = revision;
        index = 0;
      }
      const event = this.toEvent(type, kv);
      if (!event) return;
      const i = index++;
      if (after && (revision < after.revision || (revision === after.revision && i <= after.index))) return;
      onEvent({ ...event, id: `${revision}-${i}` });
    };
    watcher.on('put', (kv) => emit('put', kv));
    watcher.on('delete', (kv) => emit('delete', kv));
    watcher.on('error', () => {
      if (!closed) onEvent({ id: `${lastRevision < 0n ? 0n : lastRevision}-0`, type: 'resync', data: { why: 'watch ended by etcd (compacted?)' } });
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('event watch not confirmed in time')), this.connectTimeoutMs);
      watcher.once('connected', () => (clearTimeout(timer), resolve()));
      watcher.once('error', (err) => (clearTimeout(timer), reject(err)));
    });
    return {
      close: async () => {
        closed = true;
        await Promise.race([watcher.cancel().catch(() => undefined), new Promise((r) => setTimeout(r, this.connectTimeoutMs))]);
        watcher.removeAllListeners();
        watcher.on('error', () => undefined);
      },
    };
  }

  private toEvent(type: 'put' | 'delete', kv: IKeyValue): Omit<BatonEvent, 'id'> | undefined {
    const key = kv.key.toString();
    const chain = this.keys.parseChainKey(key);
    if (chain) {
      const { chainId, kind } = chain;
      switch (kind) {
        case 'spec':
          if (type === 'delete') return { type: 'chain-removed', chainId, data: {} };
          return { type: kv.create_revision === kv.mod_revision ? 'chain-registered' : 'chain-updated', chainId, data: {} };
        case 'leader': {
          if (type === 'delete') return undefined;
          const v = parseJsonValue(kv.value);
          return { type: 'leader-changed', chainId, data: { nodeId: v.nodeId, term: kv.mod_revision, reason: v.reason, fromHead: v.fromHead } };
        }
        case 'pause':
          if (type === 'delete') return { type: 'resumed', chainId, data: {} };
          return { type: 'paused', chainId, data: pick(parseJsonValue(kv.value), ['reason', 'untilMs', 'operationId']) };
        case 'override':
          if (type === 'delete') return { type: 'override-cleared', chainId, data: {} };
          return { type: 'override-set', chainId, data: { ...pick(parseJsonValue(kv.value), ['nodeId', 'reason', 'sinceMs', 'operationId', 'rolledBackFrom', 'rolledBackTo']), term: kv.mod_revision } };
        case 'health':
          if (type === 'delete') return undefined;
          return { type: 'node-health-changed', chainId, data: parseJsonValue(kv.value) };
        default:
          return undefined;
      }
    }
    if (key.startsWith(this.keys.operations()) && type === 'put') {
      const v = parseJsonValue(kv.value);
      return {
        type: 'operation-changed',
        chainId: typeof v.chainId === 'string' ? v.chainId : undefined,
        data: { id: v.id, kind: (v.params as { kind?: string } | undefined)?.kind, state: v.state, result: v.result, error: v.error },
      };
    }
    return undefined;
  }
}

function pick(o: Record<string, unknown>, fields: string[]): Record<string, unknown> {
  return Object.fromEntries(fields.filter((f) => o[f] !== undefined).map((f) => [f, o[f]]));
}
