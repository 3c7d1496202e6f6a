// How a standby follows its peers: pull the blocks above its head and adopt those that link. When a
// peer's branch does not link (this node holds blocks the peer's branch lacks), find the common
// ancestor and switch to the peer's branch only if it ends in a higher term than this node's: a later
// term can only come from a later leader, so its branch wins, even when that leader was started on
// a block of an older term than the one this node holds at the same height; an equal or lower one
// never does. (Terms never decrease along a branch, so the last block fetched of the peer's branch
// is a lower bound of its tip's term.)
import { type BlockChain, isWellFormed, type SimBlock } from './chain.js';

export interface BlockSource {
  getBlocks(peer: string, from: number, max: number): Promise<{ blocks: SimBlock[]; headNumber: number }>;
}

export interface Reorg {
  peer: string;
  ancestor: number;
  droppedHead: number;
  droppedHash: Buffer;
}

export interface FollowContext {
  chain: BlockChain;
  source: BlockSource;
  /** Adopt only up to the peer's head minus this many blocks. */
  lagBlocks: number;
  /** Asked after every await: a node that became active, crashed or stopped following adopts nothing. */
  mayAdopt(): boolean;
  onReorg(reorg: Reorg): void;
}

export interface FollowLoopDeps {
  chain: BlockChain;
  intervalMs: number;
  peers(): readonly string[];
  getBlocks(peer: string, from: number, max: number, deadlineMs: number): Promise<{ blocks: SimBlock[]; headNumber: number }>;
  /** Whether to follow right now (a standby, not told to stop following); asked after every await. */
  following(): boolean;
  lagBlocks(): number;
  onReorg(reorg: Reorg): void;
  onError(err: unknown): void;
}

/** A follow round every interval; one round at a time. */
export class FollowLoop {
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(private readonly deps: FollowLoopDeps) {}

  start(): void {
    this.timer ??= setInterval(() => this.round(), this.deps.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private round(): void {
    const d = this.deps;
    const peers = d.peers();
    if (this.busy || peers.length === 0 || !d.following()) return;
    this.busy = true;
    // A slow or paused peer costs at most this much before the next one is tried.
    const deadlineMs = Math.max(100, Math.min(1000, 5 * d.intervalMs));
    followPeers(peers, {
      chain: d.chain,
      source: { getBlocks: (peer, from, max) => d.getBlocks(peer, from, max, deadlineMs) },
      lagBlocks: d.lagBlocks(),
      mayAdopt: () => d.following(),
      onReorg: (r) => d.onReorg(r),
    })
      .catch((err: unknown) => d.onError(err))
      .finally(() => {
        this.busy = false;
      });
  }
}

/** Blocks asked for per pull. */
export const PAGE = 256;
/** How far back a divergence is searched; deeper ones are left alone (they need an operator). */
export const MAX_REORG_DEPTH = 4096;

/**
 * One follow round: asks the peers in random order until one gives this node blocks. Unreachable
 * peers are skipped. Resolves with the number of blocks adopted.
 */
export async function followPeers(peers: readonly string[], ctx: FollowContext): Promise<number> {
  for (const peer of shuffled(peers)) {
    let adopted = 0;
    try {
      adopted = await followPeer(peer, ctx);
    } catch {
      continue; // unreachable or slow peer: the next one may do
    }
    if (adopted > 0) return adopted;
  }
  return 0;
}

export async function followPeer(peer: string, ctx: FollowContext): Promise<number> {
  const from = ctx.chain.height + 1;
  const res = await ctx.source.getBlocks(peer, from, PAGE);
  if (!ctx.mayAdopt()) return 0;
  const limit = res.headNumber - ctx.lagBlocks;
  const first = res.blocks[0];
  if (first === undefined || first.number !== from) return 0;
  if (ctx.chain.height !== from - 1) return adopt(ctx.chain, res.blocks, limit); // moved meanwhile
  if (first.parent.equals(ctx.chain.head.hash)) return adopt(ctx.chain, res.blocks, limit);
  return reorgOnto(peer, ctx, limit);
}

/** Appends the blocks that extend the head in order, skipping those it already holds. */
function adopt(chain: BlockChain, blocks: readonly SimBlock[], limit: number): number {
  let n = 0;
  for (const b of blocks) {
    if (b.number > limit) break;
    if (b.number <= chain.height) {
      if (chain.at(b.number)!.hash.equals(b.hash)) continue;
      break; // another branch: left to the next round
    }
    if (!chain.extendsHead(b)) break;
    chain.append(b);
    n++;
  }
  return n;
}

async function reorgOnto(peer: string, ctx: FollowContext, limit: number): Promise<number> {
  const { chain } = ctx;
  for (let span = 16; ; span *= 4) {
    const head = chain.height;
    const lo = Math.max(1, head - Math.min(span, MAX_REORG_DEPTH) + 1);
    const res = await ctx.source.getBlocks(peer, lo, head - lo + 1 + PAGE);
    if (!ctx.mayAdopt() || chain.height !== head) return 0; // the head moved: next round
    const blocks = res.blocks;
    if (blocks[0]?.number !== lo) return 0;
    const diverged = blocks.find((b) => b.number > head || !chain.at(b.number)!.hash.equals(b.hash));
    if (diverged === undefined || diverged.number > head) return adopt(chain, blocks, limit); // it links after all
    const d = diverged.number;
    if (!diverged.parent.equals(chain.at(d - 1)!.hash)) {
      // Diverged at or below `lo`: look further back, unless there is nowhere further to look.
      if (lo === 1 || head - lo + 1 >= MAX_REORG_DEPTH) return 0;
      continue;
    }
    const theirs = blocks[blocks.length - 1]!;
    if (!isWellFormed(diverged) || theirs.term <= chain.head.term) return 0; // our branch stands
    if (limit < d) return 0; // lagging on purpose: not that far yet
    const dropped = chain.head;
    chain.truncate(d - 1);
    ctx.onReorg({ peer, ancestor: d - 1, droppedHead: dropped.number, droppedHash: dropped.hash });
    return adopt(
      chain,
      blocks.filter((b) => b.number >= d),
      limit,
    );
  }
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
