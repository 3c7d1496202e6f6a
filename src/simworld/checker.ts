// The world's invariant checks (DESIGN safety invariants 1-6), judged from omniscient state: the
// nodes' real leases and blocks, and every txn etcd applies. It knows what happened, not what
// Baton believed, so a bug anywhere in the control plane shows up here.
import type { ITxnRequest } from 'etcd3';
import type { EtcdKeys } from '../adapters/etcd/keys.js';
import type { MemoryEtcd } from '../adapters/memory/memory-etcd.js';
import type { Block, SimSequencer } from './sequencer.js';

export type ViolationKind =
  | 'ONE_PRODUCER' // 1: two nodes of a chain hold unexpired leases at once
  | 'TERM_ORDER' // 2: a new term not above the last, or a node obeying a term below one it accepted
  | 'HEAD_BACK' // 3: the recorded head went back, or does not descend from the previous one (fork)
  | 'CONTINUITY' // 4: a node made active without the recorded head
  | 'UNFENCED' // 5: a chain write by a replica that does not hold the chain's supervisor key
  | 'LOST_OPERATION' // 6: an accepted operation never finished
  | 'LIVENESS'; // a chain without a producing leader after faults stopped

export interface Violation {
  kind: ViolationKind;
  atMs: number;
  chainId: string;
  message: string;
}

export class WorldChecker {
  readonly violations: Violation[] = [];
  private readonly lastTerm = new Map<string, bigint>();
  private readonly lastHead = new Map<string, { number: number; hash: string }>();
  private readonly maxAccepted = new Map<string, bigint>();
  failovers = 0;
  elections = 0;

  constructor(
    private readonly etcd: MemoryEtcd,
    private readonly keys: EtcdKeys,
    private readonly blocks: ReadonlyMap<string, Block>,
    private readonly now: () => number,
    private readonly trace: (line: string) => void,
  ) {}

  private violate(kind: ViolationKind, chainId: string, message: string): void {
    this.violations.push({ kind, atMs: this.now(), chainId, message });
    this.trace(`VIOLATION ${kind} ${chainId}: ${message}`);
  }

  /** Invariant 1, after every step. */
  checkProducers(chains: ReadonlyMap<string, readonly SimSequencer[]>): void {
    const now = this.now();
    for (const [chainId, nodes] of chains) {
      let holder: SimSequencer | undefined;
      for (const n of nodes) {
        if (!n.leaseValid(now)) continue;
        if (holder) {
          this.violate('ONE_PRODUCER', chainId, `${holder.nodeId} (term ${holder.lease!.term}) and ${n.nodeId} (term ${n.lease!.term}) both hold unexpired leases`);
          return;
        }
        holder = n;
      }
    }
  }

  /** Invariant 2 at the node: nothing older than a term it already obeyed. */
  accepted(node: SimSequencer, rpc: string, term: bigint): void {
    const id = `${node.chainId}/${node.nodeId}`;
    const max = this.maxAccepted.get(id) ?? 0n;
    if (term < max) this.violate('TERM_ORDER', node.chainId, `${node.nodeId} obeyed ${rpc} under term ${term} after term ${max}`);
    else this.maxAccepted.set(id, term);
  }

  /** Invariant 4: the node holds the recorded unsafe head when it becomes active. */
  activated(node: SimSequencer, term: bigint): void {
    this.trace(`${node.chainId}/${node.nodeId} active under term ${term} at head ${node.head.number}`);
    const kv = this.etcd.peek(this.keys.head(node.chainId));
    if (!kv) return;
    const head = JSON.parse(kv.value.toString()) as { number: number; hash: string };
    if (node.blocks[head.number]?.hash !== head.hash) {
      this.violate('CONTINUITY', node.chainId, `${node.nodeId} made active under term ${term} at head ${node.head.number} without the recorded head ${head.number}`);
    }
  }

  /** Invariants 2, 3 and 5 on every txn etcd applies. */
  committed(rev: bigint, req: ITxnRequest, writer: string | undefined): void {
    for (const o of req.success ?? []) {
      const put = o.request_put;
      if (!put?.key) continue;
      const parsed = this.keys.parseChainKey(put.key.toString());
      if (!parsed || (parsed.kind !== 'leader' && parsed.kind !== 'head')) continue;
      const { chainId, kind } = parsed;
      // A txn's success branch ran: was it fenced on the chain's supervisor key, held by the writer?
      const sup = this.etcd.peek(this.keys.supervisor(chainId));
      if (!sup || sup.value.toString() !== writer) {
        this.violate('UNFENCED', chainId, `${kind} written at revision ${rev} by ${writer ?? '?'} while ${sup?.value.toString() ?? 'nobody'} holds the supervisor key`);
      }
      if (kind === 'leader') {
        const last = this.lastTerm.get(chainId);
        if (last !== undefined && rev <= last) this.violate('TERM_ORDER', chainId, `term ${rev} not above ${last}`);
        if (last === undefined) this.elections++;
        else this.failovers++;
        this.lastTerm.set(chainId, rev);
        const v = JSON.parse(put.value!.toString()) as { nodeId: string; reason: string };
        this.trace(`${chainId} leader -> ${v.nodeId} term ${rev} by ${writer}: ${v.reason.slice(0, 120)}`);
      } else {
        const head = JSON.parse(put.value!.toString()) as { number: number; hash: string };
        const prev = this.lastHead.get(chainId);
        if (prev) {
          if (head.number <= prev.number) this.violate('HEAD_BACK', chainId, `recorded head ${head.number} not above ${prev.number}`);
          else if (this.ancestorAt(head.hash, prev.number) !== prev.hash) {
            this.violate('HEAD_BACK', chainId, `recorded head ${head.number} does not descend from the recorded head ${prev.number} (fork)`);
          }
        }
        this.lastHead.set(chainId, { number: head.number, hash: head.hash });
      }
    }
  }

  /** Chains seen with a producing leader since liveness watching began. */
  private readonly live = new Set<string>();

  /**
   * Liveness, sampled after every step once faults stopped: a chain counts as live once a node
   * holds a valid lease under the recorded term and has made a block within 3 block times.
   */
  noteLiveness(chains: ReadonlyMap<string, readonly SimSequencer[]>, blockTimeMs: number): void {
    for (const [chainId, nodes] of chains) {
      if (this.live.has(chainId)) continue;
      const kv = this.etcd.peek(this.keys.leader(chainId));
      const term = kv ? BigInt(kv.mod_revision) : undefined;
      if (nodes.some((n) => n.leaseValid() && n.lease!.term === term && this.now() - n.head.atMs <= 3 * blockTimeMs)) this.live.add(chainId);
    }
  }

  /** At the end of the liveness bound: every chain must have been seen producing. */
  checkLiveness(chains: ReadonlyMap<string, readonly SimSequencer[]>): number {
    let failures = 0;
    for (const chainId of chains.keys()) {
      if (this.live.has(chainId)) continue;
      failures++;
      const term = this.etcd.peek(this.keys.leader(chainId))?.mod_revision ?? 'none';
      this.violations.push({ kind: 'LIVENESS', atMs: this.now(), chainId, message: `no node producing under term ${term} within the bound` });
      this.trace(`LIVENESS ${chainId}: no node producing under term ${term} within the bound`);
    }
    return failures;
  }

  lostOperation(chainId: string, id: string, state: string): void {
    this.violate('LOST_OPERATION', chainId, `operation ${id} accepted but still ${state}`);
  }

  private ancestorAt(hash: string, number: number): string | undefined {
    let b = this.blocks.get(hash);
    while (b && b.number > number) b = this.blocks.get(b.parent);
    return b?.number === number ? b.hash : undefined;
  }
}
