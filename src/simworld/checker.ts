// The world's invariant checks (DESIGN safety invariants 1-6), judged from omniscient state: the
// nodes' real leases and blocks, and every txn etcd applies. It knows what happened, not what
// Baton believed, so a bug anywhere in the control plane shows up here. Commit mode's own checks
// live in commit-checks.ts.
import type { IRequestOp } from 'etcd3';
import type { EtcdKeys } from '../adapters/etcd/keys.js';
import type { MemoryEtcd } from '../adapters/memory/memory-etcd.js';
import type { FencingMode } from '../core/chain.js';
import { CommitChecks, type CommitViolation } from './commit-checks.js';
import type { Block, SimSequencer } from './sequencer.js';

export type ViolationKind =
  | 'ONE_PRODUCER' // 1: two nodes of a chain hold unexpired leases at once, the older one in lease mode
  | 'STALE_PUBLISH' // 1 in commit mode: an old-term block published once a newer commit-mode term began
  | 'UNCOMMITTED_PUBLISH' // commit mode: a block published before etcd committed it
  | 'TERM_ORDER' // 2: a new term not above the last, or a node obeying a term below one it accepted
  | 'HEAD_BACK' // 3: the recorded head went back, or does not descend from the previous one (fork)
  | 'CONTINUITY' // 4: a node made active without the recorded head
  | 'UNFENCED' // 5: a chain write by a replica that does not hold the chain's supervisor key, or a head commit not under the current term
  | 'LOST_OPERATION' // 6: an accepted operation never finished
  | 'LIVENESS'; // a chain without a producing leader after faults stopped

export interface Violation {
  kind: ViolationKind;
  atMs: number;
  chainId: string;
  message: string;
}

/** Who applies a txn: a replica's supervision (fenced on its supervisor key) or its commit service (fenced on the term). */
export interface Writer {
  readonly replicaId: string;
  readonly commits: boolean;
}

export class WorldChecker {
  readonly violations: Violation[] = [];
  private readonly commit = new CommitChecks();
  private readonly lastTerm = new Map<string, bigint>();
  private readonly lastLeader = new Map<string, string>();
  private readonly lastHead = new Map<string, { number: number; hash: string }>();
  private readonly maxAccepted = new Map<string, bigint>();
  /** New terms after a chain's first, by the new term's fencing mode (mode switches apart). */
  readonly failovers = { lease: 0, commit: 0 };
  modeSwitches = 0;
  elections = 0;

  get commits(): number {
    return this.commit.commits;
  }

  constructor(
    private readonly etcd: MemoryEtcd,
    private readonly keys: EtcdKeys,
    private readonly blocks: ReadonlyMap<string, Block>,
    private readonly now: () => number,
    private readonly trace: (line: string) => void,
  ) {}

  /** Kinds not recorded (tests only: to see a check behind a more direct one at work). */
  ignored: ReadonlySet<ViolationKind> = new Set();

  private violate(kind: ViolationKind, chainId: string, message: string): void {
    if (this.ignored.has(kind)) return;
    this.violations.push({ kind, atMs: this.now(), chainId, message });
    this.trace(`VIOLATION ${kind} ${chainId}: ${message}`);
  }

  private report(chainId: string, found: readonly CommitViolation[]): void {
    for (const v of found) this.violate(v.kind, chainId, v.message);
  }

  /**
   * Invariant 1, after every step. Two unexpired leases at once are a breach when the older is a
   * lease-mode one (its holder publishes without asking anyone). An older commit-mode lease is not:
   * its holder cannot commit under a term that is over, so it publishes nothing (STALE_PUBLISH
   * judges that), and commit mode need not wait it out.
   */
  checkProducers(chains: ReadonlyMap<string, readonly SimSequencer[]>): void {
    const now = this.now();
    for (const [chainId, nodes] of chains) {
      let holder: SimSequencer | undefined;
      for (const n of nodes) {
        if (!n.leaseValid(now)) continue;
        if (holder) {
          const [older] = holder.lease!.term <= n.lease!.term ? [holder, n] : [n, holder];
          if (older.lease!.mode === 'lease') {
            this.violate('ONE_PRODUCER', chainId, `${holder.nodeId} (${holder.lease!.mode}-mode term ${holder.lease!.term}) and ${n.nodeId} (${n.lease!.mode}-mode term ${n.lease!.term}) both hold unexpired leases`);
            return;
          }
        }
        if (!holder || n.lease!.term > holder.lease!.term) holder = n;
      }
    }
  }

  /** A block became available to peers (commit mode: only after its commit). */
  published(node: SimSequencer, block: Block, how: 'produced' | 'adopted'): void {
    if (how === 'produced') this.report(node.chainId, this.commit.published(node, block));
  }

  /** Invariant 2 at the node: nothing older than a term it already obeyed. */
  accepted(node: SimSequencer, rpc: string, term: bigint): void {
    const id = `${node.chainId}/${node.nodeId}`;
    const max = this.maxAccepted.get(id) ?? 0n;
    if (term < max) this.violate('TERM_ORDER', node.chainId, `${node.nodeId} obeyed ${rpc} under term ${term} after term ${max}`);
    else this.maxAccepted.set(id, term);
  }

  /** Invariant 4: the node holds the recorded unsafe head when it becomes active. */
  activated(node: SimSequencer, term: bigint, mode: FencingMode): void {
    this.trace(`${node.chainId}/${node.nodeId} active under ${mode}-mode term ${term} at head ${node.head.number}`);
    if (mode === 'commit') this.report(node.chainId, this.commit.started(node, term));
    const kv = this.etcd.peek(this.keys.head(node.chainId));
    if (!kv) return;
    const head = JSON.parse(kv.value.toString()) as { number: number; hash: string };
    if (node.blocks[head.number]?.hash !== head.hash && !(mode === 'commit' && this.ownCommitsAbove(node, term, head.hash))) {
      this.violate('CONTINUITY', node.chainId, `${node.nodeId} made active under term ${term} at head ${node.head.number} without the recorded head ${head.number}`);
    }
  }

  /** Invariants 2, 3 and 5 on every txn etcd applies: `ran`, the ops it ran (a batch's nested ones too). */
  committed(rev: bigint, ran: readonly IRequestOp[], writer: Writer | undefined): void {
    for (const o of ran) {
      const put = o.request_put;
      if (!put?.key) continue;
      const parsed = this.keys.parseChainKey(put.key.toString());
      if (!parsed || (parsed.kind !== 'leader' && parsed.kind !== 'head')) continue;
      const { chainId, kind } = parsed;
      const prev = this.lastHead.get(chainId);
      if (writer?.commits && kind === 'head') {
        // A node's head commit: fenced on the term, not on the supervisor key.
        const leaderKv = this.etcd.peek(this.keys.leader(chainId));
        const leader = leaderKv && { term: BigInt(leaderKv.mod_revision), nodeId: (JSON.parse(leaderKv.value.toString()) as { nodeId: string }).nodeId };
        this.report(chainId, this.commit.committed(chainId, JSON.parse(put.value!.toString()), leader, prev));
      } else {
        // A txn's success branch ran: was it fenced on the chain's supervisor key, held by the writer?
        const sup = this.etcd.peek(this.keys.supervisor(chainId));
        if (!sup || sup.value.toString() !== writer?.replicaId || writer.commits) {
          this.violate('UNFENCED', chainId, `${kind} written at revision ${rev} by ${writer?.replicaId ?? '?'} while ${sup?.value.toString() ?? 'nobody'} holds the supervisor key`);
        }
      }
      if (kind === 'leader') {
        const last = this.lastTerm.get(chainId);
        if (last !== undefined && rev <= last) this.violate('TERM_ORDER', chainId, `term ${rev} not above ${last}`);
        const v = JSON.parse(put.value!.toString()) as { nodeId: string; reason: string; mode: FencingMode; previousMode?: FencingMode };
        if (last === undefined) this.elections++;
        // The same node in another mode: the chain's fencing mode was switched under it.
        else if (v.previousMode !== undefined && v.previousMode !== v.mode && this.lastLeader.get(chainId) === v.nodeId) this.modeSwitches++;
        else this.failovers[v.mode]++;
        this.lastTerm.set(chainId, rev);
        this.lastLeader.set(chainId, v.nodeId);
        this.trace(`${chainId} leader -> ${v.nodeId} ${v.mode}-mode term ${rev} by ${writer?.replicaId}: ${v.reason.slice(0, 120)}`);
      } else {
        const head = JSON.parse(put.value!.toString()) as { number: number; hash: string };
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

  /**
   * Commit mode: the recorded blocks above the node's head are its own, committed under this very
   * term, on its head. A commit of its may land after the start was sent (the lease lapsed while it
   * was on its way, and the node dropped the block); its next commit is then refused (HEAD_MISMATCH),
   * so it cannot fork the chain, and the next start carries the head to adopt.
   */
  private ownCommitsAbove(node: SimSequencer, term: bigint, hash: string): boolean {
    let b = this.blocks.get(hash);
    while (b && b.number > node.head.number) {
      if (b.nodeId !== node.nodeId || b.term !== term) return false;
      b = this.blocks.get(b.parent);
    }
    return b?.hash === node.head.hash;
  }

  private ancestorAt(hash: string, number: number): string | undefined {
    let b = this.blocks.get(hash);
    while (b && b.number > number) b = this.blocks.get(b.parent);
    return b?.number === number ? b.hash : undefined;
  }
}
