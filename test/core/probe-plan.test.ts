import t from 'tap';
import { nodesToProbe, steadyProbesPerS, type ProbePlanInput } from '../../src/core/probe-plan.js';
import { ACTIVE, NOW, POLICY, leader, nodes, obs, silent, spec } from './fixtures.js';

// b2 leads under TERM; a1 and c3 are quiet standbys. Probes every 250 ms, so a quiet standby is due
// 1000 − 125 ms after its last report.
function plan(over: Partial<ProbePlanInput> = {}): string[] {
  const input: ProbePlanInput = {
    spec: spec(),
    leader: leader(),
    nodes: nodes(obs('a1', {}, { at: NOW - 250 }), obs('b2', ACTIVE), obs('c3', {}, { at: NOW - 250 })),
    nowMs: NOW,
    busy: false,
    ...over,
  };
  return nodesToProbe(input).map((n) => n.id);
}

t.test('steady chain: the active every round, quiet standbys only when due', async (t) => {
  t.same(plan(), ['b2']);
  t.same(plan({ nodes: nodes(obs('a1', {}, { at: NOW - 875 }), obs('b2', ACTIVE), obs('c3', {}, { at: NOW - 874 })) }), ['a1', 'b2'], 'due at 875 ms');
  t.same(plan({ nodes: nodes(obs('a1', {}, { at: NOW - 5000 }), obs('b2', ACTIVE), obs('c3', {}, { at: NOW - 5000 })) }), ['a1', 'b2', 'c3']);
});

t.test('a standby that is not quiet is asked every round', async (t) => {
  const steadyLeader = obs('b2', ACTIVE);
  const c3 = obs('c3', {}, { at: NOW - 100 });
  t.same(plan({ nodes: nodes(obs('a1', {}, { at: NOW - 100, failures: 1, error: 'timeout' }), steadyLeader, c3) }), ['a1', 'b2'], 'its last probe failed');
  t.same(plan({ nodes: nodes(silent('a1', 2, 'refused'), steadyLeader, c3) }), ['a1', 'b2'], 'never answered');
  t.same(plan({ nodes: nodes(obs('a1', { producing: true, term: 56n }, { at: NOW - 100 }), steadyLeader, c3) }), ['a1', 'b2'], 'producing (a stray)');
  t.same(plan({ nodes: nodes(obs('a1', { highestTerm: 56n }, { at: NOW - 100 }), steadyLeader, c3) }), ['a1', 'b2'], 'has not seen the term');
  t.same(plan({ nodes: nodes(steadyLeader, c3) }), ['a1', 'b2'], 'never probed');
});

t.test('every node every round while anything is in doubt', async (t) => {
  const all = ['a1', 'b2', 'c3'];
  const standbys = [obs('a1', {}, { at: NOW - 100 }), obs('c3', {}, { at: NOW - 100 })] as const;
  const withLeader = (b2: ReturnType<typeof obs>): Partial<ProbePlanInput> => ({ nodes: nodes(standbys[0], b2, standbys[1]) });
  t.same(plan({ busy: true }), all, 'a leader change or an operation under way');
  t.same(plan({ leader: undefined }), all, 'no leader');
  t.same(plan(withLeader(obs('b2', ACTIVE, { failures: 1, error: 'timeout' }))), all, 'the active missed one probe');
  t.same(plan({ nodes: nodes(...standbys) }), all, 'the active never probed');
  t.same(plan(withLeader(obs('b2', { ...ACTIVE, healthy: false }))), all, 'the active reports unhealthy');
  t.same(plan(withLeader(obs('b2', {}))), all, 'the active is not producing');
  t.same(plan(withLeader(obs('b2', { ...ACTIVE, term: 56n }))), all, 'producing under another term');
  t.same(plan(withLeader(obs('b2', ACTIVE, { advancedAt: NOW - 2500 }))), ['b2'], 'head still for exactly half the stall limit');
  t.same(plan(withLeader(obs('b2', ACTIVE, { advancedAt: NOW - 2501 }))), all, 'head still for more than half the stall limit');
});

t.test('what the plan costs a steady chain', async (t) => {
  t.equal(steadyProbesPerS(POLICY, 3), 6, 'the active 4 times a second, each of 2 standbys once');
  t.equal(steadyProbesPerS({ ...POLICY, probeIntervalMs: 500 }, 3), 3);
});
