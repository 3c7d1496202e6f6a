// Commit mode's own invariants, judged from omniscient state like the rest of the world checker
// (checker.ts), after src/sim/checker.ts's STALE_PUBLISH:
// - a commit-mode block is published only once etcd holds it as the committed head (DESIGN: the
//   active commits every block before it gossips it);
// - a node that made a lease-mode block under term t never publishes it once a commit-mode term
//   T > t has begun (an active became active under it): the old lease-mode active has been waited
//   out before the new one started. (An old commit-mode block may still be published late: its
//   commit landed before T was written, so it lies at or below the head T began at. The rule below
//   judges it by height.);
// - a commit-mode term begins at head h with every committed block: no published commit-mode block
//   of an older term lies above h (a committed block lost, or one published without its commit).
// Plus, on every head commit etcd applies: it is under the chain's current term by its leader, and
// it extends the recorded head by exactly one block (one lineage).
import type { Block, SimSequencer } from './sequencer.js';

export type CommitViolation = { kind: 'STALE_PUBLISH' | 'UNCOMMITTED_PUBLISH' | 'UNFENCED' | 'HEAD_BACK'; message: string };

interface ChainCommits {
  /** Commit-mode activations (term, head at activation), in term order. */
  readonly starts: { term: bigint; head: number; nodeId: string }[];
  /** Published commit-mode blocks, by number. */
  readonly blocks: Map<number, Block[]>;
  /** Hashes etcd accepted as head commits. */
  readonly committed: Set<string>;
  maxBlock: number;
}

export class CommitChecks {
  private readonly chains = new Map<string, ChainCommits>();
  commits = 0;

  private chain(chainId: string): ChainCommits {
    let c = this.chains.get(chainId);
    if (!c) this.chains.set(chainId, (c = { starts: [], blocks: new Map(), committed: new Set(), maxBlock: 0 }));
    return c;
  }

  /** A node became active under a commit-mode term at its current head. */
  started(node: SimSequencer, term: bigint): CommitViolation[] {
    const c = this.chain(node.chainId);
    const head = node.head.number;
    let i = c.starts.length;
    while (i > 0 && c.starts[i - 1]!.term > term) i--;
    c.starts.splice(i, 0, { term, head, nodeId: node.nodeId });
    const out: CommitViolation[] = [];
    for (let n = head + 1; n <= c.maxBlock; n++) {
      for (const b of c.blocks.get(n) ?? []) if (b.term < term) out.push(stale(b, { term, head, nodeId: node.nodeId }));
    }
    return out;
  }

  /** A block made by `node` became available to its peers. */
  published(node: SimSequencer, block: Block): CommitViolation[] {
    const c = this.chain(node.chainId);
    const out: CommitViolation[] = [];
    const latest = c.starts[c.starts.length - 1];
    if (latest && block.mode === 'lease' && block.term < latest.term) {
      out.push({
        kind: 'STALE_PUBLISH',
        message: `${node.nodeId} published block ${block.number} of term ${block.term} after ${latest.nodeId} became active under the commit-mode term ${latest.term}`,
      });
    }
    if (block.mode !== 'commit') return out;
    if (!c.committed.has(block.hash)) {
      out.push({ kind: 'UNCOMMITTED_PUBLISH', message: `${node.nodeId} published block ${block.number} of commit-mode term ${block.term} before it was committed` });
    }
    const at = c.blocks.get(block.number);
    if (!at) c.blocks.set(block.number, [block]);
    else if (!at.includes(block)) at.push(block);
    c.maxBlock = Math.max(c.maxBlock, block.number);
    for (let i = c.starts.length - 1; i >= 0 && c.starts[i]!.term > block.term; i--) {
      const s = c.starts[i]!;
      if (s.head < block.number) out.push(stale(block, s));
    }
    return out;
  }

  /** A head commit etcd applied, against the leader key and the head recorded before it. */
  committed(
    chainId: string,
    head: { number: number; hash: string; parentHash: string; term: string; nodeId: string },
    leader: { term: bigint; nodeId: string } | undefined,
    prev: { number: number; hash: string } | undefined,
  ): CommitViolation[] {
    this.commits++;
    this.chain(chainId).committed.add(head.hash);
    const out: CommitViolation[] = [];
    if (!leader || BigInt(head.term) !== leader.term || head.nodeId !== leader.nodeId) {
      out.push({
        kind: 'UNFENCED',
        message: `head ${head.number} committed by ${head.nodeId} under term ${head.term} while the leader is ${leader ? `${leader.nodeId} under term ${leader.term}` : 'nobody'}`,
      });
    }
    if (prev && (head.number !== prev.number + 1 || head.parentHash !== prev.hash)) {
      out.push({ kind: 'HEAD_BACK', message: `committed head ${head.number} does not extend the recorded head ${prev.number} by one block` });
    }
    return out;
  }
}

function stale(b: Block, start: { term: bigint; head: number; nodeId: string }): CommitViolation {
  return {
    kind: 'STALE_PUBLISH',
    message: `block ${b.number} of term ${b.term} by ${b.nodeId} was published above head ${start.head}, where ${start.nodeId} began the commit-mode term ${start.term}`,
  };
}
