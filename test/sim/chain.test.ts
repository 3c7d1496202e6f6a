// In-process tests of the pieces under a simulated node: block hashing and linking, following and
// reorg rules, and the synchronous activity log.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ActivityLog, activityLogPath, parseActivityLog } from '../../src/sim/activity-log.js';
import { BlockChain, blockHash, genesisHashOf, isWellFormed } from '../../src/sim/chain.js';
import { followPeer, type FollowContext, type Reorg } from '../../src/sim/follower.js';

function grow(chain: BlockChain, n: number, term: bigint, nodeId: string, t0 = 1_000): void {
  for (let i = 0; i < n; i++) chain.append(chain.next(term, nodeId, t0 + chain.height * 100));
}

function fork(from: BlockChain, upTo: number): BlockChain {
  const c = new BlockChain(from.genesisHash);
  for (let i = 1; i <= upTo; i++) c.append(from.at(i)!);
  return c;
}

function follow(chain: BlockChain, peer: BlockChain, lagBlocks = 0): { ctx: FollowContext; reorgs: Reorg[] } {
  const reorgs: Reorg[] = [];
  const ctx: FollowContext = {
    chain,
    lagBlocks,
    source: {
      getBlocks: async (_p, from, max) => ({ blocks: peer.range(Math.max(1, from), max), headNumber: peer.height }),
    },
    mayAdopt: () => true,
    onReorg: (r) => reorgs.push(r),
  };
  return { ctx, reorgs };
}

t.test('blocks hash every field (time in whole seconds) and link to their parent', async (t) => {
  const g = genesisHashOf('chain-a');
  t.equal(g.length, 32);
  t.not(g.toString('hex'), genesisHashOf('chain-b').toString('hex'));
  const base = blockHash(g, 1, 5n, 'a1', 1000);
  t.equal(base.length, 32);
  for (const other of [
    blockHash(Buffer.alloc(32), 1, 5n, 'a1', 1000),
    blockHash(g, 2, 5n, 'a1', 1000),
    blockHash(g, 1, 6n, 'a1', 1000),
    blockHash(g, 1, 5n, 'a2', 1000),
    blockHash(g, 1, 5n, 'a1', 2000), // whole seconds: the unsafe head Baton records carries no more
  ]) {
    t.not(other.toString('hex'), base.toString('hex'));
  }
  const c = new BlockChain(g);
  const b1 = c.next(5n, 'a1', 1000);
  t.ok(isWellFormed(b1));
  t.ok(c.extendsHead(b1));
  c.append(b1);
  t.equal(c.height, 1);
  t.notOk(c.extendsHead(b1), 'the same block does not extend twice');
  t.notOk(c.extendsHead({ ...c.next(5n, 'a1', 1100), hash: Buffer.alloc(32, 1) }), 'a wrong hash is refused');
  t.throws(() => c.append({ ...b1, number: 5 }));
  grow(c, 4, 5n, 'a1');
  c.truncate(2);
  t.equal(c.height, 2);
  c.truncate(-3);
  t.equal(c.height, 0, 'genesis is never dropped');
});

t.test('a standby adopts linking blocks, up to the lag', async (t) => {
  const g = genesisHashOf('chain-a');
  const active = new BlockChain(g);
  grow(active, 20, 1n, 'a1');
  const standby = new BlockChain(g);
  const { ctx } = follow(standby, active, 5);
  t.equal(await followPeer('p', ctx), 15);
  t.equal(standby.height, 15);
  t.equal(await followPeer('p', ctx), 0, 'nothing more within the lag');
  ctx.lagBlocks = 0;
  t.equal(await followPeer('p', ctx), 5);
  t.equal(standby.head.hash.toString('hex'), active.head.hash.toString('hex'));
  ctx.mayAdopt = () => false;
  grow(active, 3, 1n, 'a1');
  t.equal(await followPeer('p', ctx), 0, 'a node that became active adopts nothing');
});

t.test('a diverged standby switches only to a higher-term branch', async (t) => {
  const g = genesisHashOf('chain-a');
  const old = new BlockChain(g);
  grow(old, 30, 1n, 'a1'); // the old active reached 30 under term 1
  const standby = fork(old, 30);
  const newer = fork(old, 27); // the new active continued from 27 under term 2
  grow(newer, 8, 2n, 'a2', 50_000);
  const { ctx, reorgs } = follow(standby, newer);
  t.equal(await followPeer('p', ctx), 8);
  t.same(reorgs.map((r) => [r.ancestor, r.droppedHead]), [[27, 30]]);
  t.equal(standby.height, 35);
  t.equal(standby.head.hash.toString('hex'), newer.head.hash.toString('hex'));

  // The other way round: the peer's branch has a lower term, ours stands.
  const lower = fork(old, 27);
  grow(lower, 8, 1n, 'a3', 90_000);
  const keep = fork(old, 30);
  const f2 = follow(keep, lower);
  t.equal(await followPeer('p', f2.ctx), 0);
  t.equal(keep.height, 30);
  t.same(f2.reorgs, []);

  // The branch ending in the later term wins even where its first divergent block is older: a
  // leader of term 3 was started on the old active's block 28 (term 1), while this standby holds
  // 28..30 from a term-2 leader that the term-3 one replaced.
  const base = fork(old, 27);
  const mine = fork(base, 27);
  grow(mine, 3, 2n, 'a2', 60_000);
  const later = fork(base, 27);
  grow(later, 1, 1n, 'a1', 61_000);
  grow(later, 7, 3n, 'a3', 62_000);
  const f5 = follow(mine, later);
  t.equal(await followPeer('p', f5.ctx), 8, 'it switches to the branch that ends in term 3');
  t.same(f5.reorgs.map((r) => [r.ancestor, r.droppedHead]), [[27, 30]]);
  t.equal(mine.head.hash.toString('hex'), later.head.hash.toString('hex'));

  // A divergence deeper than the first search window is found too.
  const deepStandby = fork(old, 30);
  const deep = fork(old, 5);
  grow(deep, 40, 3n, 'a4', 120_000);
  const f3 = follow(deepStandby, deep);
  t.equal(await followPeer('p', f3.ctx), 40);
  t.same(f3.reorgs.map((r) => r.ancestor), [5]);

  // A lag keeps it from switching before the peer is far enough ahead.
  const lagging = fork(old, 30);
  const f4 = follow(lagging, newer, 10);
  t.equal(await followPeer('p', f4.ctx), 0);
  t.equal(lagging.height, 30);
});

t.test('the activity log is written line by line, synchronously', async (t) => {
  const dir = t.testdir();
  const path = activityLogPath(dir, 'chain-a', 'a1');
  t.equal(path, join(dir, 'chain-a', 'a1.jsonl'));
  t.throws(() => activityLogPath(dir, '../x', 'a1'));
  const log = new ActivityLog(path);
  log.append({ t: 1, chain: 'chain-a', node: 'a1', ev: 'start', version: 'v', genesis: 'aa' });
  t.equal(readFileSync(path, 'utf8').split('\n').length, 2, 'on disk before append returns');
  log.append({ t: 2, chain: 'chain-a', node: 'a1', ev: 'lease-expired', term: '7' });
  log.close();
  log.append({ t: 3, chain: 'chain-a', node: 'a1', ev: 'lease-expired', term: '8' });
  const text = readFileSync(path, 'utf8');
  t.same(parseActivityLog(text).map((e) => e.t), [1, 2], 'a closed log writes nothing');
  t.same(parseActivityLog(text + '{"t":4,"cha').length, 2, 'a torn last line is ignored');
  t.throws(() => parseActivityLog('{bad\n' + text));
});
