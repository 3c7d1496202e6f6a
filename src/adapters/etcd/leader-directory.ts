// Who leads which chain, kept in memory from a watch, so `GET /v1/chains/{id}/leader` (what
// leader-aware proxies poll) costs no etcd read. It also keeps each chain's recorded unsafe head as
// the watch last delivered it: in commit mode the nodes move the head on every block, and the
// metrics read it here rather than from a supervisor's copy that is re-read every few seconds. The same watch feeds the replica runtime (every
// chain key change, after it is applied here) and its list of chain specs, so a replica holds one
// watch on chains/ and never reads every chain's keys to learn which chains exist. Every key is
// applied only when its revision is newer than what is held for it, so the initial load and the
// watch can race freely, and a resync (the watch was re-created, changes may have been missed) is
// one more load. Until the first load has finished the directory answers nothing and callers read
// etcd.
import type { IKeyValue } from 'etcd3';
import type { ChainSpec } from '../../core/chain.js';
import type { Term } from '../../core/term.js';
import type { Logger } from '../telemetry/log.js';
import { etcdCall, op, rangeKvs, toRevision, type EtcdClient } from './client.js';
import type { EtcdKeys } from './keys.js';
import { PrefixWatch } from './watch.js';

export interface LeaderEntry {
  readonly nodeId: string | null;
  readonly term: Term | null;
  readonly endpoint: string | null;
}

export interface LeaderLookup {
  /** undefined: not known here (not loaded yet, or no such chain as far as this copy knows). */
  leaderOf(chainId: string): LeaderEntry | undefined;
}

/** A chain's recorded unsafe head as the watch last delivered it (only what the metrics show). */
export interface RecordedHeadEntry {
  readonly number: number;
  /** Block timestamp, in seconds. */
  readonly timestamp: number;
  /** The head key's mod revision. */
  readonly revision: bigint;
}

export interface ChainKeyListener {
  onKey(key: string): void;
  onResync(): void;
}

interface Held {
  /** Revision of the last put or delete applied. */
  revision: bigint;
  /** undefined: deleted at `revision`. */
  value: string | undefined;
}

export class LeaderDirectory implements LeaderLookup {
  private readonly specs = new Map<string, Held>();
  private readonly leaders = new Map<string, Held>();
  private readonly heads = new Map<string, Held>();
  private readonly endpoints = new Map<string, Map<string, string>>();
  /** The parsed spec of every chain whose spec key holds valid JSON. */
  private readonly parsedSpecs = new Map<string, ChainSpec>();
  private readonly listeners = new Set<ChainKeyListener>();
  /** nodeKey(node id, endpoint) → the chain whose spec names that node. */
  private readonly chainByNode = new Map<string, string>();
  private loaded = false;
  private readonly watch: PrefixWatch;

  constructor(
    private readonly client: EtcdClient,
    private readonly keys: EtcdKeys,
    timeoutMs: number,
    private readonly log?: Logger,
  ) {
    this.watch = new PrefixWatch(client, keys.chains(), (type, kv) => this.onWatch(type, kv), () => void this.resync(), timeoutMs, log);
  }

  async start(): Promise<void> {
    await this.watch.start();
    await this.load();
  }

  close(): Promise<void> {
    return this.watch.close();
  }

  leaderOf(chainId: string): LeaderEntry | undefined {
    if (!this.loaded) return undefined;
    const spec = this.specs.get(chainId);
    if (spec?.value === undefined) return undefined;
    const leader = this.leaders.get(chainId);
    if (leader?.value === undefined) return { nodeId: null, term: null, endpoint: null };
    const nodeId = (JSON.parse(leader.value) as { nodeId: string }).nodeId;
    return { nodeId, term: leader.revision, endpoint: this.endpoints.get(chainId)?.get(nodeId) ?? null };
  }

  /** The chain's recorded unsafe head as last delivered; undefined: none known here. */
  headOf(chainId: string): RecordedHeadEntry | undefined {
    const held = this.heads.get(chainId);
    if (held?.value === undefined) return undefined;
    try {
      const v = JSON.parse(held.value) as { number: number; timestamp: number };
      return { number: v.number, timestamp: v.timestamp, revision: held.revision };
    } catch {
      return undefined;
    }
  }

  /**
   * Every chain's spec, as of the last change applied; undefined until the first load (and after
   * a failed one), when callers read etcd. A listener told of a spec change sees it here already.
   */
  chainSpecs(): ChainSpec[] | undefined {
    return this.loaded ? [...this.parsedSpecs.values()] : undefined;
  }

  /** Tells `listener` of every change under chains/ once it is applied here, and of every resync. */
  subscribe(listener: ChainKeyListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The chain whose spec names this node (same id and endpoint), as far as this copy knows: a map
   * look-up, for what runs on every node call (labelling metrics) and must not walk every chain.
   */
  chainOfNode(nodeId: string, endpoint: string): string | undefined {
    return this.chainByNode.get(nodeKey(nodeId, endpoint));
  }

  /** Loads every spec and leader key (one read at one revision), keeping whatever is newer. */
  private async load(): Promise<void> {
    try {
      const res = await etcdCall('load leader directory', () => this.client.kv.txn({ success: [op.getPrefix(this.keys.chains())] }));
      const at = toRevision(res.header.revision);
      const seen = new Set<string>();
      for (const kv of rangeKvs(res.responses[0])) {
        seen.add(kv.key.toString());
        this.apply('put', kv);
      }
      // Keys gone by the time of this read were deleted in a change the watch may have missed.
      for (const [map, keyOf] of [[this.specs, (c: string) => this.keys.spec(c)], [this.leaders, (c: string) => this.keys.leader(c)], [this.heads, (c: string) => this.keys.head(c)]] as const) {
        for (const [chainId, held] of map) {
          if (held.value !== undefined && held.revision < at && !seen.has(keyOf(chainId))) this.set(map, chainId, 'delete', at, undefined);
        }
      }
      this.loaded = true;
    } catch (err) {
      this.log?.warn({ err: err instanceof Error ? err.message : String(err) }, 'leader directory load failed; reads go to etcd');
      this.loaded = false;
    }
  }

  private onWatch(type: 'put' | 'delete', kv: IKeyValue): void {
    this.apply(type, kv);
    const key = kv.key.toString();
    for (const l of this.listeners) l.onKey(key);
  }

  /** The watch was re-created (changes may have been missed): load again, then tell listeners. */
  private async resync(): Promise<void> {
    await this.load();
    for (const l of this.listeners) l.onResync();
  }

  private apply(type: 'put' | 'delete', kv: IKeyValue): void {
    const parsed = this.keys.parseChainKey(kv.key.toString());
    if (!parsed) return;
    const map = parsed.kind === 'spec' ? this.specs : parsed.kind === 'leader' ? this.leaders : parsed.kind === 'head' ? this.heads : undefined;
    if (!map) return;
    const revision = toRevision(kv.mod_revision);
    const value = type === 'put' ? kv.value.toString() : undefined;
    this.set(map, parsed.chainId, type, revision, value);
    if (parsed.kind === 'spec') this.indexEndpoints(parsed.chainId);
  }

  private set(map: Map<string, Held>, chainId: string, type: 'put' | 'delete', revision: bigint, value: string | undefined): void {
    const held = map.get(chainId);
    // A delete's kv carries the delete's revision; equal revisions are the same change seen twice.
    if (held && held.revision >= revision) return;
    map.set(chainId, { revision, value: type === 'put' ? value : undefined });
    if (map === this.specs) this.indexEndpoints(chainId);
  }

  private indexEndpoints(chainId: string): void {
    for (const [nodeId, endpoint] of this.endpoints.get(chainId) ?? []) {
      const k = nodeKey(nodeId, endpoint);
      if (this.chainByNode.get(k) === chainId) this.chainByNode.delete(k);
    }
    this.endpoints.delete(chainId);
    this.parsedSpecs.delete(chainId);
    const value = this.specs.get(chainId)?.value;
    if (value === undefined) return;
    let spec: ChainSpec;
    try {
      spec = JSON.parse(value) as ChainSpec;
    } catch {
      return;
    }
    this.parsedSpecs.set(chainId, spec);
    const nodes = new Map(spec.nodes.map((n) => [n.id, n.endpoint]));
    this.endpoints.set(chainId, nodes);
    for (const [nodeId, endpoint] of nodes) this.chainByNode.set(nodeKey(nodeId, endpoint), chainId);
  }
}

function nodeKey(nodeId: string, endpoint: string): string {
  return `${nodeId}\n${endpoint}`;
}
