// planRollback: when an override with rollbackHead may set the recorded head back, and to what.
import t from 'tap';
import { planRollback } from '../../src/core/rollback.js';
import { ACTIVE, NOW, POLICY, TERM, head, nodes, obs, silent } from './fixtures.js';

const leader = { nodeId: 'b2', term: TERM, mode: 'lease' as const, sinceMs: 0, reason: '', fromHead: 100 };
const input = (over: Partial<Parameters<typeof planRollback>[0]> = {}) => ({
  leader,
  target: 'a1',
  recorded: head(120),
  observations: nodes(silent('b2', 5, 'refused'), obs('a1', { headNumber: 117, headHash: '0xAB17', headParentHash: 'ab16', headL1Origin: 'l1-8', headTimestamp: 1_700_000_100 })),
  policy: POLICY,
  nowMs: NOW,
  ...over,
});

t.test('the leader dead, the target behind: rolled back to exactly its reported head', async (t) => {
  const plan = planRollback(input());
  t.equal(plan.kind, 'rollback');
  if (plan.kind !== 'rollback') return;
  t.same(plan.from, { number: 120, hash: 'h120' });
  t.same(plan.to, { number: 117, hash: 'ab17' }, 'hash normalised to lowercase hex without 0x');
  t.same(plan.head, { number: 117, hash: 'ab17', parentHash: 'ab16', term: TERM, nodeId: 'a1', l1Origin: 'l1-8', timestamp: 1_700_000_100 });
  t.match(plan.detail, /from 120 .* to 117/);
});

t.test('the leader producing under its term: ROLLBACK_REFUSED', async (t) => {
  const plan = planRollback(input({ observations: nodes(obs('b2', { ...ACTIVE, headNumber: 121 }), obs('a1', { headNumber: 117 })) }));
  t.match(plan, { kind: 'refused', code: 'ROLLBACK_REFUSED', message: /b2 is producing under term 57/ });
});

t.test('a stale report of the leader producing, or producing under another term, does not refuse', async (t) => {
  const stale = planRollback(input({ observations: nodes(obs('b2', ACTIVE, { at: NOW - 10_000 }), obs('a1', { headNumber: 117 })) }));
  t.equal(stale.kind, 'rollback');
  const old = planRollback(input({ observations: nodes(obs('b2', { ...ACTIVE, term: TERM - 1n }), obs('a1', { headNumber: 117 })) }));
  t.equal(old.kind, 'rollback');
});

t.test('a target that never reported: ROLLBACK_REFUSED', async (t) => {
  const plan = planRollback(input({ observations: nodes(silent('b2', 5, 'refused'), silent('a1', 3, 'refused')) }));
  t.match(plan, { kind: 'refused', code: 'ROLLBACK_REFUSED', message: /a1 has not reported/ });
});

t.test('a target at or above the recorded head, or no recorded head: nothing rolled back', async (t) => {
  t.match(planRollback(input({ recorded: head(117) })), { kind: 'none', detail: /a1 is at head 117, recorded head 117/ });
  t.match(planRollback(input({ recorded: head(100) })), { kind: 'none' });
  t.match(planRollback(input({ recorded: undefined })), { kind: 'none', detail: /no recorded head/ });
});
