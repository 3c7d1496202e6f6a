import t from 'tap';
import { chooseTarget, rankCandidates } from '../../src/core/candidates.js';
import type { NodeSpec } from '../../src/core/chain.js';
import { NOW, head, nodes, obs, silent, spec } from './fixtures.js';

const node = (id: string, priority: number, zone: string): NodeSpec => ({ id, endpoint: `${id}:9000`, priority, zone });

t.test('the example: head first, then the ineligible by id', async (t) => {
  const r = rankCandidates(spec(), nodes(obs('a1', { headNumber: 95 }), obs('b2', { headNumber: 120 }), obs('c3', { headNumber: 118 })), head(120), [], NOW);
  t.equal(r.best, 'b2');
  t.equal(r.summary, 'chose b2 (head 120, priority 5); not c3: head 118 < 120; not a1: behind: head 95, recorded 120, max lag 2');
  t.same(r.ranking, [
    { nodeId: 'b2', eligible: true, reasons: [], headNumber: 120, priority: 5, rank: 1 },
    { nodeId: 'c3', eligible: true, reasons: [], headNumber: 118, priority: 3, rank: 2 },
    { nodeId: 'a1', eligible: false, reasons: ['behind: head 95, recorded 120, max lag 2'], headNumber: 95, priority: 1 },
  ]);
  t.notOk('rank' in r.ranking[2]!, 'ineligible candidates have no rank');
});

t.test('a higher head beats a higher priority', async (t) => {
  const r = rankCandidates(spec(), nodes(obs('a1', { headNumber: 121 }), obs('b2'), obs('c3')), head(120), [], NOW);
  t.equal(r.best, 'a1');
  t.equal(r.summary, 'chose a1 (head 121, priority 1); not b2: head 120 < 121; not c3: head 120 < 121');
});

t.test('equal heads: priority decides', async (t) => {
  const r = rankCandidates(spec(), nodes(obs('a1'), obs('b2'), obs('c3')), head(120), ['b2'], NOW);
  t.equal(r.best, 'c3');
  t.equal(r.summary, 'chose c3 (head 120, priority 3); not a1: priority 1 < 3', 'excluded nodes are not candidates at all');
  t.same(r.ranking.map((c) => c.nodeId), ['c3', 'a1']);
});

t.test('equal head and priority: a zone other than the failed leader wins', async (t) => {
  const s = spec({ nodes: [node('a1', 3, 'z1'), node('b2', 3, 'z2'), node('c3', 3, 'z1')] });
  const all = nodes(obs('a1'), obs('b2'), obs('c3'));
  const r = rankCandidates(s, all, head(120), [], NOW, 'z1');
  t.equal(r.best, 'b2', 'b2 sorts after a1 by id but is in another zone');
  t.equal(r.summary, 'chose b2 (head 120, priority 3); not a1: same zone as the failed leader (z1); not c3: same zone as the failed leader (z1)');
  const noZone = rankCandidates(s, all, head(120), [], NOW);
  t.equal(noZone.best, 'a1', 'without a failed zone, id decides');
});

t.test('everything equal: node id, stable whatever the spec order', async (t) => {
  const forward = spec({ nodes: [node('n1', 1, 'z'), node('n2', 1, 'z'), node('n3', 1, 'z')] });
  const backward = spec({ nodes: [...forward.nodes].reverse() });
  const all = nodes(obs('n1'), obs('n2'), obs('n3'));
  const a = rankCandidates(forward, all, head(120), [], NOW);
  const b = rankCandidates(backward, all, head(120), [], NOW);
  t.same(a.ranking.map((c) => c.nodeId), ['n1', 'n2', 'n3']);
  t.same(b.ranking, a.ranking);
  t.equal(a.summary, 'chose n1 (head 120, priority 1); not n2: tied with n1, which sorts first; not n3: tied with n1, which sorts first');
});

t.test('nobody eligible', async (t) => {
  const r = rankCandidates(
    spec(),
    nodes(obs('a1', { chainId: 'chain-x', headNumber: 90 }), silent('c3', 3, 'timeout')),
    head(120),
    [],
    NOW,
  );
  t.equal(r.best, undefined);
  t.equal(
    r.summary,
    'not a1: wrong chain id chain-x, want chain-a and behind: head 90, recorded 120, max lag 2; not b2: never reported; not c3: never reported (last error: timeout)',
  );
  t.same(r.ranking.map((c) => [c.nodeId, c.eligible, c.headNumber]), [['a1', false, 90], ['b2', false, undefined], ['c3', false, undefined]]);
  t.equal(rankCandidates(spec(), nodes(), head(120), ['a1', 'b2', 'c3'], NOW).summary, 'no candidates');
});

t.test('a node observed but not in the spec is never a candidate', async (t) => {
  const r = rankCandidates(spec(), nodes(obs('a1'), obs('zz', { headNumber: 500 })), head(120), [], NOW);
  t.equal(r.best, 'a1');
  t.notOk(r.ranking.some((c) => c.nodeId === 'zz'));
});

t.test('chooseTarget: the choice of dry runs and of the supervisor', async (t) => {
  // Leader d4 in z1: among equal standbys the one in another zone wins (a1 would win by id).
  const s = spec({ nodes: [node('a1', 3, 'z1'), node('b2', 3, 'z2'), node('d4', 3, 'z1')] });
  const all = nodes(obs('a1'), obs('b2'), obs('d4'));
  t.equal(chooseTarget(s, all, head(120), 'd4', undefined, NOW).to, 'b2', 'zone of the leader counts');
  t.match(chooseTarget(s, all, head(120), 'd4', 'a1', NOW), { to: 'a1', why: /a1 as requested/ });
  t.throws(() => chooseTarget(s, all, head(120), 'd4', 'zz', NOW), { code: 'NOT_FOUND' });
  t.throws(() => chooseTarget(s, all, head(120), 'd4', 'd4', NOW), { code: 'INVALID_ARGUMENT' });
  const lagging = nodes(obs('a1', { headNumber: 90 }), obs('b2', { headNumber: 90 }), obs('d4'));
  t.throws(() => chooseTarget(s, lagging, head(120), 'd4', 'a1', NOW), { code: 'NOT_ELIGIBLE', message: /a1 is not eligible: behind/ });
  t.throws(() => chooseTarget(s, lagging, head(120), 'd4', undefined, NOW), { code: 'NOT_ELIGIBLE', message: /^no eligible standby/ });
});
