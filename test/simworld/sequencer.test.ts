// The simulated node (src/simworld/sequencer.ts), one rule at a time on a loop with no faults.
import t from 'tap';
import { isBatonError } from '../../src/core/errors.js';
import { Proc, SimLoop } from '../../src/simworld/loop.js';
import { Network } from '../../src/simworld/network.js';
import { Rng } from '../../src/simworld/random.js';
import { type Block, type CommitOutcome, type NodeRecorder, SimSequencer } from '../../src/simworld/sequencer.js';

const genesis: Block = { chainId: 'c', number: 0, hash: 'g', parent: '', term: 0n, nodeId: '', atMs: 0, mode: 'lease' };

t.test('a repeated start of the active term while its block is being committed keeps one copy of that block', async (t) => {
  const loop = new SimLoop();
  const net = new Network(loop, new Rng(1), { minLatencyMs: 1, maxLatencyMs: 1, loss: 0 });
  const made = new Map<string, Block>([[genesis.hash, genesis]]);
  let hashes = 0;
  const recorder: NodeRecorder = {
    accepted: () => undefined,
    activated: () => undefined,
    made: (b) => void made.set(b.hash, b),
    published: () => undefined,
    refused: () => undefined,
    known: (hash) => made.get(hash),
    newHash: () => `h${++hashes}`,
  };
  let answer: ((o: CommitOutcome) => void) | undefined;
  const commit = () => new Promise<CommitOutcome>((resolve) => (answer = resolve));
  const node = new SimSequencer('c', 'n1', new Proc('n1', loop), genesis, loop, net, recorder, { blockTimeMs: 100, followIntervalMs: 10_000, commit });

  node.start({ chainId: 'c', term: 5n, ttlMs: 5_000, head: undefined, reason: 'test', mode: 'commit' });
  await loop.run(100, 100, () => true);
  const block = made.get('h1');
  t.ok(block && answer, 'block 1 is made and its commit is on its way');

  // Etcd committed block 1 but its answer has not reached the node; Baton repeats the start of
  // term 5 (its first answer was lost) with the committed head: block 1 itself.
  const head = { number: 1, hash: 'h1', parentHash: 'g', term: 5n, nodeId: 'n1', l1Origin: '', timestamp: 0 };
  let refusal: unknown;
  try {
    node.start({ chainId: 'c', term: 5n, ttlMs: 5_000, head, reason: 'retry', mode: 'commit' });
  } catch (err) {
    refusal = err;
  }
  t.ok(isBatonError(refusal, 'ALREADY_ACTIVE'), 'refused as ALREADY_ACTIVE');

  answer!({ kind: 'committed' });
  await loop.run(150, 100, () => true);
  t.same(node.blocks.map((b) => [b.number, b.hash]), [[0, 'g'], [1, 'h1']], 'block 1 once, at index 1');
  t.equal(node.head.hash, 'h1', 'the head is block 1');
});
