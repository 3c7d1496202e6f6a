import t from 'tap';
import { healthSummary, isFresh, judgeActive, judgeStandby, standbyMaxAgeMs } from '../../src/core/health.js';
import { ACTIVE, NOW, POLICY, head, obs, silent, spec } from './fixtures.js';

t.test('judgeActive: failure threshold', async (t) => {
  t.same(judgeActive(obs('b2', ACTIVE, { failures: 2, error: 'timeout' }), POLICY, NOW), { healthy: true, why: 'healthy' }, 'below the threshold');
  t.same(judgeActive(obs('b2', ACTIVE, { failures: 3, error: 'timeout' }), POLICY, NOW), { healthy: false, why: '3 probes failed in a row: timeout' });
  t.same(judgeActive(silent('b2', 4, 'connect ECONNREFUSED'), POLICY, NOW), { healthy: false, why: '4 probes failed in a row: connect ECONNREFUSED' });
});

t.test('judgeActive: never reported', async (t) => {
  t.same(judgeActive(undefined, POLICY, NOW), { healthy: false, why: 'never reported' });
  t.same(judgeActive(silent('b2', 1, 'timeout'), POLICY, NOW), { healthy: false, why: 'never reported (last error: timeout)' });
});

t.test('judgeActive: its own report', async (t) => {
  t.same(judgeActive(obs('b2', { ...ACTIVE, healthy: false, lastError: 'da unreachable' }), POLICY, NOW), { healthy: false, why: 'reports unhealthy: da unreachable' });
  t.same(judgeActive(obs('b2', { healthy: false }), POLICY, NOW), { healthy: false, why: 'reports unhealthy: no error given' });
});

t.test('judgeActive: stall boundary is stallFactor × blockTime', async (t) => {
  t.same(judgeActive(obs('b2', { ...ACTIVE, headNumber: 120 }, { advancedAt: NOW - 5000 }), POLICY, NOW), { healthy: true, why: 'healthy' }, 'exactly at the limit');
  t.same(judgeActive(obs('b2', { ...ACTIVE, headNumber: 120 }, { advancedAt: NOW - 5200 }), POLICY, NOW), {
    healthy: false,
    why: 'head 120 has not advanced for 5200 ms (limit 5000)',
  });
  const fast = { ...POLICY, blockTimeMs: 200 };
  t.equal(judgeActive(obs('b2', ACTIVE, { advancedAt: NOW - 1001 }), fast, NOW).why, 'head 120 has not advanced for 1001 ms (limit 1000)', 'limit follows the policy');
  t.equal(judgeActive(obs('b2', {}, { advancedAt: NOW - 60_000 }), POLICY, NOW).healthy, true, 'a node not producing cannot stall');
  t.same(
    judgeActive(obs('b2', { ...ACTIVE, headNumber: 120 }, { advancedAt: NOW - 5200, failures: 1, error: 'timeout' }), POLICY, NOW),
    { healthy: true, why: 'healthy' },
    'after a failed probe the old report is not a stall: the failure threshold judges that',
  );
});

t.test('isFresh', async (t) => {
  t.ok(isFresh(obs('a1', {}, { at: NOW - 750 }), POLICY, NOW), '3 probe intervals old');
  t.notOk(isFresh(obs('a1', {}, { at: NOW - 751 }), POLICY, NOW));
  t.notOk(isFresh(obs('a1', {}, { failures: 1 }), POLICY, NOW), 'last probe failed');
  t.notOk(isFresh(silent('a1', 1, 'x'), POLICY, NOW));
  t.notOk(isFresh(undefined, POLICY, NOW));
});

t.test('judgeStandby: eligible', async (t) => {
  t.same(judgeStandby(obs('a1'), spec(), head(120), NOW), { eligible: true, reasons: [] });
  t.same(judgeStandby(obs('a1', { headNumber: 118 }), spec(), head(120), NOW), { eligible: true, reasons: [] }, 'exactly max lag behind');
  t.same(judgeStandby(obs('a1', { headNumber: 3 }), spec(), undefined, NOW), { eligible: true, reasons: [] }, 'nothing recorded: no lag check');
  t.same(judgeStandby(obs('a1', { genesisHash: 'anything' }), spec({ genesisHash: '' }), head(120), NOW), { eligible: true, reasons: [] }, 'genesis not checked when the spec has none');
  t.same(judgeStandby(obs('a1', { genesisHash: 'abcd' }), spec({ genesisHash: '0xABCD' }), head(120), NOW), { eligible: true, reasons: [] }, 'genesis compared as hex');
});

t.test('judgeStandby: a quiet standby is probed every fourth round, so its report may be three of those old', async (t) => {
  t.equal(standbyMaxAgeMs(POLICY), 3000, '3 × 4 × 250 ms');
  t.same(judgeStandby(obs('a1', {}, { at: NOW - 3000 }), spec(), head(120), NOW), { eligible: true, reasons: [] }, 'exactly at the limit');
  t.same(judgeStandby(obs('a1', {}, { at: NOW - 1000 }), spec(), head(120), NOW), { eligible: true, reasons: [] }, 'older than the active may be (750 ms)');
});

t.test('judgeStandby: each refusal', async (t) => {
  const cases: [string, ReturnType<typeof obs> | undefined, string][] = [
    ['never probed', undefined, 'never reported'],
    ['never answered', silent('a1', 2, 'connect ECONNREFUSED'), 'never reported (last error: connect ECONNREFUSED)'],
    ['last probe failed', obs('a1', {}, { failures: 1, error: 'timeout' }), 'last probe failed: timeout'],
    ['stale', obs('a1', {}, { at: NOW - 3001 }), 'report is 3001 ms old (limit 3000)'],
    ['unhealthy', obs('a1', { healthy: false, lastError: 'syncing' }), 'reports unhealthy: syncing'],
    ['chain id', obs('a1', { chainId: 'chain-x' }), 'wrong chain id chain-x, want chain-a'],
    ['genesis', obs('a1', { genesisHash: 'g9' }), 'wrong genesis g9, want g0'],
    ['behind', obs('a1', { headNumber: 117 }), 'behind: head 117, recorded 120, max lag 2'],
  ];
  for (const [name, o, reason] of cases) {
    t.same(judgeStandby(o, spec(), head(120), NOW), { eligible: false, reasons: [reason] }, name);
  }
});

t.test('judgeStandby: lists every failed condition', async (t) => {
  const o = obs('a1', { healthy: false, lastError: 'syncing', chainId: 'chain-x', genesisHash: 'g9', headNumber: 95 }, { at: NOW - 4000, failures: 2, error: 'timeout' });
  t.same(judgeStandby(o, spec(), head(120), NOW).reasons, [
    'last 2 probes failed: timeout',
    'report is 4000 ms old (limit 3000)',
    'reports unhealthy: syncing',
    'wrong chain id chain-x, want chain-a',
    'wrong genesis g9, want g0',
    'behind: head 95, recorded 120, max lag 2',
  ]);
});

t.test('healthSummary: what the event stream sees of each node', async (t) => {
  const s = spec();
  const summary = healthSummary(s, new Map([
    ['a1', obs('a1', { ...ACTIVE })],
    ['b2', obs('b2', { healthy: false }, { failures: 2, error: 'slow' })],
    ['c3', silent('c3', 3, 'refused')],
  ]));
  t.same(summary, [
    { nodeId: 'a1', reachable: true, healthy: true, producing: true },
    { nodeId: 'b2', reachable: true, healthy: false, producing: false },
    { nodeId: 'c3', reachable: false, healthy: false, producing: false },
  ]);
});
