import t from 'tap';
import type { ActivityEntry } from '../../src/sim/activity.js';
import { checkActivity, type ActivityLog, type Violation } from '../../src/sim/checker.js';

// Small builders for hand-made logs; `chain` defaults to chain-a.
const C = 'chain-a';
const TTL = 1000;
const hash = (n: number, chain = C, tag = '') => (n === 0 ? `genesis-${chain}` : `${chain}-h${n}${tag}`);
const at = (t: number, node: string, chain = C) => ({ t, node, chain });
const start = (t: number, node: string, chain = C): ActivityEntry => ({
  ...at(t, node, chain),
  ev: 'start',
  version: 'sim-1',
  genesis: hash(0, chain),
});
const grant = (t: number, node: string, term: string, chain = C, ev: 'lease-granted' | 'lease-renewed' = 'lease-granted'): ActivityEntry => ({
  ...at(t, node, chain),
  ev,
  term,
  ttlMs: TTL,
  expiresAt: t + TTL,
});
const renew = (t: number, node: string, term: string, chain = C) => grant(t, node, term, chain, 'lease-renewed');
const from = (t: number, node: string, term: string, head: number, chain = C): ActivityEntry => ({
  ...at(t, node, chain),
  ev: 'active-from',
  term,
  head,
});
const until = (t: number, node: string, term: string, head: number, chain = C): ActivityEntry => ({
  ...at(t, node, chain),
  ev: 'active-until',
  term,
  head,
  reason: 'handoff',
});
const expired = (t: number, node: string, term: string, chain = C): ActivityEntry => ({
  ...at(t, node, chain),
  ev: 'lease-expired',
  term,
});
const block = (t: number, node: string, term: string, n: number, chain = C, tag = '', parent = hash(n - 1, chain)): ActivityEntry => ({
  ...at(t, node, chain),
  ev: 'block',
  term,
  number: n,
  hash: hash(n, chain, tag),
  parent,
});
const byTime = (entries: ActivityEntry[]) => entries.sort((a, b) => a.t - b.t); // stable
const kinds = (vs: Violation[]) => vs.map((v) => v.kind);

// Node `node` gets `term` at t0 and produces heights lo..hi every 100 ms, renewing every 500 ms.
function tenure(node: string, term: string, t0: number, lo: number, hi: number, chain = C): ActivityEntry[] {
  const out = [grant(t0, node, term, chain), from(t0, node, term, lo - 1, chain)];
  for (let n = lo; n <= hi; n++) {
    const tb = t0 + 100 * (n - lo + 1);
    if ((tb - t0) % 500 === 0) out.push(renew(tb, node, term, chain));
    out.push(block(tb, node, term, n, chain));
  }
  return out;
}

t.test('a clean multi-node, multi-chain log passes', async (t) => {
  // chain-a: a term 5 makes 1..10 and is SIGKILLed (no active-until): its last renewal at 2000
  // bounds it at 3000, exactly when b takes over with term 9 (touching, not overlapping).
  const a = [start(0, 'a'), ...tenure('a', '5', 1000, 1, 10)];
  // b makes 11..20, hands off at 4050; c continues with term 12 from 20 and stops cleanly.
  const b = [start(0, 'b'), ...tenure('b', '9', 3000, 11, 20), until(4050, 'b', '9', 20)];
  const c = [start(0, 'c'), ...tenure('c', '12', 4050, 21, 25), until(4600, 'c', '12', 25)];
  // chain-b runs on nodes with the same names, interleaved in the same files.
  const a2 = [start(0, 'a', 'chain-b'), ...tenure('a', '7', 500, 1, 5, 'chain-b'), expired(1200, 'a', '7', 'chain-b')];
  const b2 = [start(0, 'b', 'chain-b'), ...tenure('b', '8', 1200, 6, 8, 'chain-b')];
  const dup = b.find((e) => e.ev === 'block' && e.number === 20)!;
  const logs: ActivityLog[] = [
    { file: 'a.jsonl', entries: byTime([...a, ...a2]) },
    { file: 'b.jsonl', entries: byTime([...b, ...b2]) },
    { file: 'c.jsonl', entries: c },
    { file: 'b-copy.jsonl', entries: [dup] }, // the same block recorded twice is one block
  ];
  const report = checkActivity(logs);
  t.same(report.violations, []);
  t.match(report, { logs: 4, chains: 2, nodes: 5, blocks: 33, gaps: 0, maxHeight: 25 });
  t.same(report.byKind, { OVERLAP: 0, FORK: 0, BAD_PARENT: 0, TERM_DECREASE: 0, AFTER_LEASE: 0, STALE_PUBLISH: 0 });
});

t.test('OVERLAP: b starts while a still holds its lease after a SIGKILL', async (t) => {
  const a = [start(0, 'a'), ...tenure('a', '5', 0, 1, 5)]; // last renewal at 500: bound 1500
  const b = [start(0, 'b'), ...tenure('b', '9', 1400, 6, 8)];
  const report = checkActivity([
    { file: 'a.jsonl', entries: a },
    { file: 'b.jsonl', entries: b },
  ]);
  t.same(kinds(report.violations), ['OVERLAP']);
  const [v] = report.violations;
  t.match(v, {
    chain: C,
    message: /overlap for 100 ms/,
    evidence: [
      { node: 'a', term: '5', t: 0, until: 1500, at: 'a.jsonl:3', endedBy: /^lease expiry of a\.jsonl:\d+$/ },
      { node: 'b', term: '9', t: 1400, until: 2400, at: 'b.jsonl:3', endedBy: 'lease expiry of b.jsonl:2' },
    ],
  });
});

t.test('OVERLAP: an explicit active-until ends the interval; touching is fine', async (t) => {
  const a = [grant(0, 'a', '5'), from(0, 'a', '5', 0), block(100, 'a', '5', 1), until(500, 'a', '5', 1)];
  const touching = [grant(500, 'b', '9'), from(500, 'b', '9', 1), block(600, 'b', '9', 2)];
  t.same(checkActivity([{ file: 'a', entries: a }, { file: 'b', entries: touching }]).violations, []);
  const early = [grant(499, 'b', '9'), from(499, 'b', '9', 1), block(600, 'b', '9', 2)];
  const report = checkActivity([{ file: 'a', entries: a }, { file: 'b', entries: early }]);
  t.same(kinds(report.violations), ['OVERLAP']);
  t.match(report.violations[0]!.evidence, [{ node: 'a', until: 500, endedBy: 'a:4' }, { node: 'b', t: 499 }]);
});

t.test('FORK: two hashes at one height', async (t) => {
  const a = [grant(0, 'a', '5'), from(0, 'a', '5', 0), block(100, 'a', '5', 1), block(200, 'a', '5', 2), until(300, 'a', '5', 2)];
  const b = [grant(300, 'b', '9'), from(300, 'b', '9', 1), block(400, 'b', '9', 2, C, 'x'), until(500, 'b', '9', 2)];
  const report = checkActivity([{ file: 'a', entries: a }, { file: 'b', entries: b }]);
  t.same(kinds(report.violations), ['FORK']);
  t.match(report.violations[0], {
    message: /^height 2 has 2 hashes/,
    evidence: [
      { node: 'a', height: 2, hash: hash(2), term: '5', at: 'a:4' },
      { node: 'b', height: 2, hash: hash(2, C, 'x'), term: '9', at: 'b:3' },
    ],
  });
  t.equal(report.blocks, 3);
});

t.test('BAD_PARENT: a block that does not extend the one below it', async (t) => {
  const a = [
    grant(0, 'a', '5'),
    from(0, 'a', '5', 0),
    block(100, 'a', '5', 1, C, '', 'unknowable-genesis'), // lowest height: parent not checked
    block(200, 'a', '5', 2),
    block(300, 'a', '5', 3, C, '', 'not-h2'),
    block(500, 'a', '5', 5, C, '', 'whatever'), // height 4 unrecorded: nothing to compare
  ];
  const report = checkActivity([{ file: 'a', entries: a }]);
  t.same(kinds(report.violations), ['BAD_PARENT']);
  t.match(report.violations[0], {
    message: /block 3 .* has parent not-h2, but height 2 is block 2/,
    evidence: [
      { node: 'a', height: 3, parent: 'not-h2', at: 'a:5' },
      { node: 'a', height: 2, hash: hash(2), at: 'a:4' },
    ],
  });
  t.equal(report.gaps, 1);
});

t.test('TERM_DECREASE: a lower term above a higher one, also across a gap', async (t) => {
  const a = [grant(0, 'a', '9'), from(0, 'a', '9', 0), block(100, 'a', '9', 1), block(200, 'a', '9', 2), until(300, 'a', '9', 2)];
  const b = [grant(300, 'b', '5'), from(300, 'b', '5', 2), block(400, 'b', '5', 3), block(500, 'b', '5', 4), until(600, 'b', '5', 4)];
  const report = checkActivity([{ file: 'a', entries: a }, { file: 'b', entries: b }]);
  t.same(kinds(report.violations), ['TERM_DECREASE']); // block 4 is not below block 3's term
  t.match(report.violations[0]!.evidence, [
    { node: 'b', height: 3, term: '5', at: 'b:3' },
    { node: 'a', height: 2, term: '9', at: 'a:4' },
  ]);

  const gap = [grant(300, 'b', '5'), from(300, 'b', '5', 2), block(400, 'b', '5', 4, C, '', 'x')];
  const across = checkActivity([{ file: 'a', entries: a }, { file: 'b', entries: gap }]);
  t.same(kinds(across.violations), ['TERM_DECREASE']);
  t.match(across, { gaps: 1, violations: [{ evidence: [{ height: 4 }, { height: 2 }] }] });
});

t.test('terms are compared as uint64, not as JS numbers', async (t) => {
  const [hi, lo] = ['9007199254740993', '9007199254740992'];
  t.equal(Number(hi), Number(lo), 'as numbers these two terms are equal');
  const run = (first: string, second: string) =>
    checkActivity([
      { file: 'a', entries: [grant(0, 'a', first), from(0, 'a', first, 0), block(100, 'a', first, 1), until(200, 'a', first, 1)] },
      { file: 'b', entries: [grant(200, 'b', second), from(200, 'b', second, 1), block(300, 'b', second, 2)] },
    ]);
  t.same(kinds(run(hi, lo).violations), ['TERM_DECREASE']);
  t.same(run(lo, hi).violations, []);
  // A lease of term 2^53+1 does not cover a block of term 2^53.
  const mixed = [grant(0, 'a', hi), from(0, 'a', hi, 0), block(100, 'a', lo, 1)];
  t.same(kinds(checkActivity([{ file: 'a', entries: mixed }]).violations), ['AFTER_LEASE']);
});

t.test('AFTER_LEASE: blocks made without an unexpired lease of their term', async (t) => {
  const cases: [string, ActivityEntry[], RegExp][] = [
    ['before any grant', [from(0, 'a', '5', 0), block(100, 'a', '5', 1)], /no lease of term 5/],
    ['at lease expiry', [grant(0, 'a', '5'), from(0, 'a', '5', 0), block(1000, 'a', '5', 1)], /expired at 1000 \(a:1\)/],
    ['after active-until', [grant(0, 'a', '5'), from(0, 'a', '5', 0), until(200, 'a', '5', 0), block(300, 'a', '5', 1)], /ended at a:3/],
    ['after lease-expired', [grant(0, 'a', '5'), from(0, 'a', '5', 0), expired(200, 'a', '5'), block(300, 'a', '5', 1)], /ended at a:3/],
    ['after a restart', [grant(0, 'a', '5'), from(0, 'a', '5', 0), start(200, 'a'), block(300, 'a', '5', 1)], /no lease/],
    ['under another term', [grant(0, 'a', '5'), from(0, 'a', '5', 0), block(100, 'a', '6', 1)], /no lease of term 6/],
  ];
  for (const [name, entries, why] of cases) {
    const report = checkActivity([{ file: 'a', entries }]);
    t.same(kinds(report.violations), ['AFTER_LEASE'], name);
    t.match(report.violations[0], { message: why, evidence: [{ node: 'a', height: 1, at: `a:${entries.length}` }] }, name);
  }
  const inTime = [grant(0, 'a', '5'), from(0, 'a', '5', 0), block(999, 'a', '5', 1), renew(999, 'a', '5'), block(1500, 'a', '5', 2)];
  t.same(checkActivity([{ file: 'a', entries: inTime }]).violations, [], 'renewed in time');
});

t.test('evidence cites the real line numbers when given', async (t) => {
  const entries = [from(0, 'a', '5', 0), block(100, 'a', '5', 1)];
  const report = checkActivity([{ file: 'x.jsonl', entries, lines: [3, 7] }]);
  t.match(report.violations[0], { kind: 'AFTER_LEASE', evidence: [{ at: 'x.jsonl:7' }] });
});

t.test('commit mode: an overlapping deposed active is fine while it publishes nothing; a stale block above the new start is STALE_PUBLISH', async (t) => {
  const commitFrom = (tt: number, node: string, term: string, head: number): ActivityEntry => ({ ...at(tt, node), ev: 'active-from', term, head, mode: 'commit' });
  const adopt = (tt: number, node: string, term: string, n: number, producer: string): ActivityEntry => ({
    ...at(tt, node),
    ev: 'adopt',
    term,
    number: n,
    hash: hash(n),
    parent: hash(n - 1),
    from: producer,
  });
  // a1 (term 5) commits 1..3, never sends block 3, keeps its lease until 2000; a2 gets term 9 at
  // 1000, adopts the committed block 3 and goes on from there.
  const a1: ActivityEntry[] = [start(0, 'a1'), grant(0, 'a1', '5'), commitFrom(0, 'a1', '5', 0), block(100, 'a1', '5', 1), block(200, 'a1', '5', 2)];
  const a2: ActivityEntry[] = [start(0, 'a2'), adopt(1000, 'a2', '5', 3, 'a1'), grant(1000, 'a2', '9'), commitFrom(1000, 'a2', '9', 3), block(1100, 'a2', '9', 4), block(1200, 'a2', '9', 5)];
  const clean = checkActivity([
    { file: 'a1.jsonl', entries: a1 },
    { file: 'a2.jsonl', entries: a2 },
  ]);
  t.same(clean.violations, [], 'overlapping commit-mode tenures, one lineage: clean');
  t.equal(clean.blocks, 5, 'the adopted block counts as a block of the chain');

  // The same, but a1 published block 4 of term 5 after a2 had begun term 9 from head 3.
  const stale = checkActivity([
    { file: 'a1.jsonl', entries: [...a1, block(1150, 'a1', '5', 4, C, 'x')] },
    { file: 'a2.jsonl', entries: a2 },
  ]);
  t.ok(kinds(stale.violations).includes('STALE_PUBLISH'), 'a block of the old term above the new start is caught');
  t.equal(stale.byKind.STALE_PUBLISH, 1);
  t.match(stale.violations.find((v) => v.kind === 'STALE_PUBLISH')!.message, /block 4 .* by a1 term 5 .*above head 3, where term 9 began/);

  // Lease-mode tenures that overlap are still OVERLAP, whatever commit-mode tenures do.
  const leaseOverlap = checkActivity([{ file: 'x.jsonl', entries: byTime([...tenure('a1', '5', 0, 1, 3), ...tenure('a2', '9', 150, 4, 5)]) }]);
  t.ok(kinds(leaseOverlap.violations).includes('OVERLAP'), 'lease mode keeps the overlap check');
});
