// The world checker's commit-mode rules (src/simworld/commit-checks.ts), each shown failing on bad
// input and quiet on good input.
import t from 'tap';
import { CommitChecks } from '../../src/simworld/commit-checks.js';
import type { Block, SimSequencer } from '../../src/simworld/sequencer.js';

const node = (nodeId: string, head: number) => ({ chainId: 'c', nodeId, head: { number: head } }) as unknown as SimSequencer;
const block = (number: number, term: bigint, nodeId: string, mode: Block['mode'] = 'commit'): Block => ({
  chainId: 'c',
  number,
  hash: `h${number}-${term}`,
  parent: `h${number - 1}`,
  term,
  nodeId,
  atMs: 0,
  mode,
});
const kinds = (vs: { kind: string }[]) => vs.map((v) => v.kind);
/** Commits `b` (as etcd would have, before a correct node publishes it), then returns it. */
const committed = (c: CommitChecks, b: Block): Block => {
  c.committed('c', { number: b.number, hash: b.hash, parentHash: b.parent, term: String(b.term), nodeId: b.nodeId }, { term: b.term, nodeId: b.nodeId }, undefined);
  return b;
};

t.test('a commit-mode block published before etcd committed it', async (t) => {
  const c = new CommitChecks();
  const b = block(5, 10n, 'n1');
  t.same(kinds(c.published(node('n1', 4), b)), ['UNCOMMITTED_PUBLISH'], 'not committed yet');
  c.committed('c', { number: 5, hash: b.hash, parentHash: 'h4', term: '10', nodeId: 'n1' }, { term: 10n, nodeId: 'n1' }, { number: 4, hash: 'h4' });
  t.same(c.published(node('n1', 4), b), [], 'once committed');
  t.same(c.published(node('n1', 4), block(6, 10n, 'n1', 'lease')), [], 'a lease-mode block needs no commit');
});

t.test('an old-term block published after a newer commit-mode term began', async (t) => {
  const c = new CommitChecks();
  t.same(c.published(node('n1', 4), block(5, 10n, 'n1', 'lease')), [], 'before any commit-mode term: fine');
  t.same(c.started(node('n2', 5), 20n), [], 'n2 begins term 20 at head 5, nothing above it');
  t.same(kinds(c.published(node('n1', 5), block(6, 10n, 'n1', 'lease'))), ['STALE_PUBLISH'], 'a lease-mode block of term 10 after that');
  t.same(c.published(node('n2', 5), committed(c, block(6, 20n, 'n2'))), [], 'the new term\'s own block');
});

t.test('a commit-mode term that begins below a published block of an older term', async (t) => {
  const c = new CommitChecks();
  t.same(c.published(node('n1', 6), committed(c, block(7, 10n, 'n1'))), [], 'n1 publishes block 7 under term 10');
  t.same(kinds(c.started(node('n2', 6), 20n)), ['STALE_PUBLISH'], 'n2 begins term 20 at head 6: block 7 is lost');
  t.same(c.started(node('n3', 7), 30n), [], 'a term that begins at head 7 holds it');

  const d = new CommitChecks();
  d.started(node('n2', 6), 20n);
  t.same(kinds(d.published(node('n1', 6), committed(d, block(7, 10n, 'n1')))), ['STALE_PUBLISH'], 'the other order: published late, above the head');
  // Committed before term 20 was written, its answer late: at or below the head, so no harm.
  t.same(d.published(node('n1', 5), committed(d, block(6, 10n, 'n1'))), [], 'an old commit-mode block published late at the head is fine');
  t.same(d.published(node('n1', 6), block(6, 5n, 'n1', 'lease')).length, 1, 'an old lease-mode block at or below the head is judged by time only');
});

t.test('a head commit must be under the current term by its leader, one block on the recorded head', async (t) => {
  const c = new CommitChecks();
  const head = (number: number, parentHash: string, term: string, nodeId = 'n1') => ({ number, hash: `h${number}`, parentHash, term, nodeId });
  const leader = { term: 10n, nodeId: 'n1' };
  t.same(c.committed('c', head(5, 'h4', '10'), leader, { number: 4, hash: 'h4' }), [], 'the next block under the current term');
  t.same(kinds(c.committed('c', head(5, 'h4', '9'), leader, { number: 4, hash: 'h4' })), ['UNFENCED'], 'under an older term');
  t.same(kinds(c.committed('c', head(5, 'h4', '10', 'n2'), leader, { number: 4, hash: 'h4' })), ['UNFENCED'], 'by another node');
  t.same(kinds(c.committed('c', head(6, 'h5', '10'), leader, { number: 4, hash: 'h4' })), ['HEAD_BACK'], 'a gap');
  t.same(kinds(c.committed('c', head(5, 'hx', '10'), leader, { number: 4, hash: 'h4' })), ['HEAD_BACK'], 'on another parent');
  t.equal(c.commits, 5, 'every commit counted');
});
