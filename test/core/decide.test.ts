import t from 'tap';
import { decide, type Action, type ChainSnapshot } from '../../src/core/decide.js';
import { ACTIVE, NOW, POLICY, TERM, head, leader, nodes, obs, silent, snapshot, spec } from './fixtures.js';

// Candidate lists are checked in candidates.test.ts; here an action is compared without them.
type Brief = Record<string, unknown>;
function brief(a: Action): Brief {
  switch (a.kind) {
    case 'elect':
      return { kind: a.kind, nodeId: a.nodeId };
    case 'failover':
      return { kind: a.kind, from: a.from, to: a.to, detected: a.detected };
    default:
      return { ...a };
  }
}
const briefs = (s: ChainSnapshot) => decide(s).actions.map(brief);

const DOWN = { failures: 3, error: 'connect ECONNREFUSED' };
const DOWN_WHY = '3 probes failed in a row: connect ECONNREFUSED';
const C3_OVER_A1 = 'chose c3 (head 120, priority 3); not a1: priority 1 < 3';
// Standbys nobody may pick: a1 unreachable, c3 behind.
const NO_STANDBY = [obs('a1', {}, { failures: 1, error: 'timeout' }), obs('c3', { headNumber: 95 })];
const NO_STANDBY_WHY = 'not a1: last probe failed: timeout; not c3: behind: head 95, recorded 120, max lag 2';

interface Row {
  readonly name: string;
  readonly s: ChainSnapshot;
  readonly actions: Brief[];
  readonly reason: string;
}

// Every (leader present?, leader healthy?, leader producing?, eligible standby?) combination.
const combinations: Row[] = [
  {
    name: 'no leader, eligible node: elect the best',
    s: snapshot({ leader: undefined, head: undefined, nodes: nodes(obs('a1'), obs('b2'), obs('c3')) }),
    actions: [{ kind: 'elect', nodeId: 'b2' }],
    reason: 'no leader; electing b2: chose b2 (head 120, priority 5); not c3: priority 3 < 5; not a1: priority 1 < 5',
  },
  {
    name: 'no leader, nobody eligible: nothing, with every refusal',
    s: snapshot({ leader: undefined, nodes: nodes(...NO_STANDBY, obs('b2', { healthy: false, lastError: 'syncing' })) }),
    actions: [],
    reason: `no leader and no eligible node: not a1: last probe failed: timeout; not b2: reports unhealthy: syncing; not c3: behind: head 95, recorded 120, max lag 2`,
  },
  {
    name: 'healthy, producing, eligible standby: keep it',
    s: snapshot(),
    actions: [],
    reason: 'b2 active at head 120, term 57',
  },
  {
    name: 'healthy, producing, no eligible standby: keep it',
    s: snapshot({ nodes: nodes(...NO_STANDBY, obs('b2', ACTIVE)) }),
    actions: [],
    reason: 'b2 active at head 120, term 57',
  },
  {
    name: 'healthy, not producing, eligible standby: start it, not fail over',
    s: snapshot({ nodes: nodes(obs('a1'), obs('b2'), obs('c3')), lease: { oldLeasesEndMs: NOW, lastGrantSentMs: undefined, renewIntervalMs: 1000 } }),
    actions: [{ kind: 'start', nodeId: 'b2', term: TERM }],
    reason: 'starting b2 at head 120, term 57: old leases have ended',
  },
  {
    name: 'healthy, not producing, no eligible standby: start it',
    s: snapshot({ nodes: nodes(...NO_STANDBY, obs('b2')), lease: { oldLeasesEndMs: NOW, lastGrantSentMs: undefined, renewIntervalMs: 1000 } }),
    actions: [{ kind: 'start', nodeId: 'b2', term: TERM }],
    reason: 'starting b2 at head 120, term 57: old leases have ended',
  },
  {
    name: 'unhealthy, producing, eligible standby: fail over',
    s: snapshot({ nodes: nodes(obs('a1'), obs('b2', ACTIVE, DOWN), obs('c3')) }),
    actions: [{ kind: 'failover', from: 'b2', to: 'c3', detected: DOWN_WHY }],
    reason: `b2 unhealthy (${DOWN_WHY}); failing over to c3: ${C3_OVER_A1}`,
  },
  {
    name: 'unhealthy, producing, no eligible standby: nothing, and no renewal',
    s: snapshot({ nodes: nodes(...NO_STANDBY, obs('b2', ACTIVE, DOWN)), lease: { oldLeasesEndMs: 0, lastGrantSentMs: undefined, renewIntervalMs: 1000 } }),
    actions: [],
    reason: `b2 unhealthy (${DOWN_WHY}); no eligible standby: ${NO_STANDBY_WHY}`,
  },
  {
    name: 'unhealthy, not producing, eligible standby: fail over',
    s: snapshot({ nodes: nodes(obs('a1'), obs('b2', { healthy: false, lastError: 'da unreachable' }), obs('c3')) }),
    actions: [{ kind: 'failover', from: 'b2', to: 'c3', detected: 'reports unhealthy: da unreachable' }],
    reason: `b2 unhealthy (reports unhealthy: da unreachable); failing over to c3: ${C3_OVER_A1}`,
  },
  {
    name: 'unhealthy, not producing, no eligible standby: nothing',
    s: snapshot({ nodes: nodes(...NO_STANDBY, obs('b2', { healthy: false, lastError: 'da unreachable' })) }),
    actions: [],
    reason: `b2 unhealthy (reports unhealthy: da unreachable); no eligible standby: ${NO_STANDBY_WHY}`,
  },
];

t.test('every leader/health/producing/standby combination', async (t) => {
  for (const row of combinations) {
    const d = decide(row.s);
    t.same(d.actions.map(brief), row.actions, `${row.name}: actions`);
    t.equal(d.reason, row.reason, `${row.name}: reason`);
  }
});

t.test('failover carries the full ranking, best first', async (t) => {
  const d = decide(snapshot({ nodes: nodes(obs('a1'), obs('b2', ACTIVE, DOWN), obs('c3', { headNumber: 118 })) }));
  const a = d.actions[0];
  if (a?.kind !== 'failover') throw new Error(`expected failover, got ${a?.kind}`);
  t.same(
    a.candidates.map((c) => [c.nodeId, c.rank, c.eligible]),
    [['a1', 1, true], ['c3', 2, true]],
    'the failed leader is not a candidate; a1 wins on head although c3 has the higher priority',
  );
});

t.test('paused', async (t) => {
  const unhealthy = snapshot({ paused: true, nodes: nodes(obs('a1'), obs('b2', ACTIVE, DOWN), obs('c3')) });
  t.same(briefs(unhealthy), [], 'no failover while paused');
  t.equal(decide(unhealthy).reason, `paused; b2 unhealthy: ${DOWN_WHY}`);

  const noLeader = snapshot({ paused: true, leader: undefined, nodes: nodes(obs('a1'), obs('b2'), obs('c3')) });
  t.same(briefs(noLeader), [], 'no election while paused');
  t.equal(decide(noLeader).reason, 'paused; no leader');

  const active = snapshot({ paused: true, lease: { oldLeasesEndMs: 0, lastGrantSentMs: undefined, renewIntervalMs: 1000 } });
  t.same(briefs(active), [{ kind: 'renew', nodeId: 'b2', term: TERM }], 'a running leader keeps its lease while paused');

  const notProducing = snapshot({ paused: true, nodes: nodes(obs('a1'), obs('b2'), obs('c3')), lease: { oldLeasesEndMs: 0, lastGrantSentMs: undefined, renewIntervalMs: 1000 } });
  t.same(briefs(notProducing), [], 'nothing is started while paused');
  t.equal(decide(notProducing).reason, 'paused; b2 not producing under term 57');

  const stray = snapshot({ paused: true, nodes: nodes(obs('a1', { producing: true, term: 56n }), obs('b2', ACTIVE), obs('c3')) });
  t.same(briefs(stray), [{ kind: 'stop', nodeIds: ['a1'], term: TERM }], 'stray producers are stopped even while paused');
});

t.test('break-glass override: the forced node is kept and started whatever its health, lag or the pause', async (t) => {
  const due = { oldLeasesEndMs: 0, lastGrantSentMs: undefined, renewIntervalMs: 1000 };
  const sick = obs('b2', { ...ACTIVE, healthy: false, lastError: 'disk' });
  const unforced = snapshot({ lease: due, nodes: nodes(obs('a1'), sick, obs('c3')) });
  t.match(briefs(unforced), [{ kind: 'failover', from: 'b2', to: 'c3' }], 'without an override an unhealthy leader is failed away from');
  const forced = snapshot({ overrideNodeId: 'b2', lease: due, nodes: nodes(obs('a1'), sick, obs('c3')) });
  t.same(briefs(forced), [{ kind: 'renew', nodeId: 'b2', term: TERM }], 'forced: it reports unhealthy but keeps its lease');
  t.match(decide(forced).reason, /forced by a break-glass override/);

  const idleSick = snapshot({ overrideNodeId: 'b2', paused: true, lease: due, nodes: nodes(obs('a1'), obs('b2', { healthy: false }), obs('c3')) });
  t.same(briefs(idleSick), [{ kind: 'start', nodeId: 'b2', term: TERM }], 'forced: started although unhealthy and the chain is paused');

  const behind = snapshot({ overrideNodeId: 'b2', lease: due, nodes: nodes(obs('a1'), obs('b2', { headNumber: 100 }), obs('c3')) });
  t.same(briefs(behind), [], 'forced and behind: not replaced by the standbys ahead of it');
  t.match(decide(behind).reason, /waiting for b2 \(head 100\) to catch up to head 120/, 'and not started before it caught up (continuity is never skipped)');

  const waiting = snapshot({ overrideNodeId: 'b2', lease: { ...due, oldLeasesEndMs: NOW + 500 }, nodes: nodes(obs('a1', { producing: false, highestTerm: TERM - 1n }), obs('b2', { healthy: false }), obs('c3')) });
  t.same(briefs(waiting), [{ kind: 'stop', nodeIds: ['a1'], term: TERM }], 'forced: still waits out old leases (fencing is never skipped)');

  const dead = snapshot({ overrideNodeId: 'b2', nodes: nodes(obs('a1'), obs('b2', ACTIVE, DOWN), obs('c3')) });
  t.same(briefs(dead), [], 'forced and unreachable: no automatic failover while the override is in force');
  t.equal(decide(dead).reason, `break-glass override in force (b2 forced active); b2 unhealthy: ${DOWN_WHY}`);
});

t.test('automatic failover disabled fleet-wide', async (t) => {
  const s = snapshot({ autoFailover: false, nodes: nodes(obs('a1'), obs('b2', ACTIVE, DOWN), obs('c3')) });
  t.same(briefs(s), []);
  t.equal(decide(s).reason, `automatic failover disabled fleet-wide; b2 unhealthy: ${DOWN_WHY}`);
  const first = snapshot({ autoFailover: false, leader: undefined, nodes: nodes(obs('a1'), obs('b2'), obs('c3')) });
  t.same(briefs(first), [{ kind: 'elect', nodeId: 'b2' }], 'electing the first leader is not a failover');
});

t.test('anti-flap window', async (t) => {
  const down = nodes(obs('a1'), obs('b2', ACTIVE, DOWN), obs('c3'));
  const inWindow = snapshot({ nodes: down, lastFailoverAtMs: NOW - 12_000 });
  t.same(briefs(inWindow), []);
  t.equal(decide(inWindow).reason, `anti-flap: last failover 12000 ms ago, 18000 ms left; b2 unhealthy: ${DOWN_WHY}`);

  const lastMs = snapshot({ nodes: down, lastFailoverAtMs: NOW - 29_999 });
  t.same(briefs(lastMs), [], 'still blocked 1 ms before the window ends');
  const over = snapshot({ nodes: down, lastFailoverAtMs: NOW - 30_000 });
  t.same(briefs(over), [{ kind: 'failover', from: 'b2', to: 'c3', detected: DOWN_WHY }], 'allowed once the window is over');

  const neverProduced = snapshot({ nodes: down, lastFailoverAtMs: NOW - 1_000, leaderHasProduced: false });
  t.same(briefs(neverProduced), [{ kind: 'failover', from: 'b2', to: 'c3', detected: DOWN_WHY }], 'a leader that never produced is replaced at once');
});

t.test('stray producers are stopped under the leader term, first', async (t) => {
  const s = snapshot({
    nodes: nodes(obs('a1', { producing: true, term: 56n }), obs('b2', ACTIVE), obs('c3', { producing: true, term: 55n })),
    lease: { oldLeasesEndMs: 0, lastGrantSentMs: undefined, renewIntervalMs: 1000 },
  });
  t.same(briefs(s), [
    { kind: 'stop', nodeIds: ['a1', 'c3'], term: TERM },
    { kind: 'renew', nodeId: 'b2', term: TERM },
  ]);
  t.equal(decide(s).reason, 'b2 active at head 120, term 57; stopping stray producers a1, c3');

  const one = snapshot({ nodes: nodes(obs('a1'), obs('b2', ACTIVE, DOWN), obs('c3', { producing: true, term: 55n })) });
  t.same(briefs(one), [
    { kind: 'stop', nodeIds: ['c3'], term: TERM },
    { kind: 'failover', from: 'b2', to: 'c3', detected: DOWN_WHY },
  ], 'alongside a failover too');
  t.match(decide(one).reason, /; stopping stray producer c3$/);

  const stale = snapshot({ nodes: nodes(obs('a1', { producing: true, term: 56n }, { at: NOW - 751 }), obs('b2', ACTIVE), obs('c3')) });
  t.same(briefs(stale), [], 'a stale report of producing is not acted on');

  const noRecord = snapshot({ leader: undefined, nodes: nodes(obs('a1', { producing: true, term: 56n }), obs('b2'), obs('c3')) });
  t.same(briefs(noRecord), [{ kind: 'elect', nodeId: 'b2' }], 'no term to stop under without a leader record');
  t.match(decide(noRecord).reason, /; producing without a leader record: a1$/);
});

t.test('old leases: wait, or start when every other node confirmed the term', async (t) => {
  const lease = { oldLeasesEndMs: NOW + 1200, lastGrantSentMs: undefined, renewIntervalMs: 1000 };
  const waiting = snapshot({ lease, nodes: nodes(obs('a1', { highestTerm: 56n }), obs('b2'), obs('c3')) });
  t.same(briefs(waiting), [{ kind: 'stop', nodeIds: ['a1'], term: TERM }], 'stops only the node that has not seen the term');
  t.equal(decide(waiting).reason, 'waiting 1200 ms for old leases before starting b2; not confirmed stopped: a1');

  const confirmed = snapshot({ lease, nodes: nodes(obs('a1', { highestTerm: 58n }), obs('b2'), obs('c3')) });
  t.same(briefs(confirmed), [{ kind: 'start', nodeId: 'b2', term: TERM }]);
  t.equal(decide(confirmed).reason, 'starting b2 at head 120, term 57: every other node saw the term and is not producing');

  const unprobed = snapshot({ lease, nodes: nodes(obs('b2'), obs('c3')) });
  t.same(briefs(unprobed), [{ kind: 'stop', nodeIds: ['a1'], term: TERM }], 'a node never probed is not confirmed');

  const staleButSaw = snapshot({ lease, nodes: nodes(obs('a1'), obs('b2'), obs('c3', {}, { failures: 1, error: 'timeout' })) });
  t.same(briefs(staleButSaw), [], 'a stale report does not confirm; its node saw the term, so it is not stopped again');
  t.equal(decide(staleButSaw).reason, 'waiting 1200 ms for old leases before starting b2; not confirmed stopped: c3');

  const producingOld = snapshot({ lease, nodes: nodes(obs('a1', { producing: true, term: 56n, highestTerm: 56n }), obs('b2'), obs('c3')) });
  t.same(briefs(producingOld), [{ kind: 'stop', nodeIds: ['a1'], term: TERM }], 'one stop for the stray that is also unconfirmed');

  const ended = snapshot({ lease: { ...lease, oldLeasesEndMs: NOW }, nodes: nodes(obs('a1', { highestTerm: 56n }), obs('b2'), obs('c3')) });
  t.same(briefs(ended), [{ kind: 'start', nodeId: 'b2', term: TERM }], 'exactly at the end of the old leases');

  const single = snapshot({ lease, spec: spec({ nodes: [{ id: 'b2', endpoint: 'b2:9000', priority: 5, zone: 'z2' }] }), nodes: nodes(obs('b2')) });
  t.same(briefs(single), [{ kind: 'start', nodeId: 'b2', term: TERM }], 'a single-node chain has nobody to wait for');
});

t.test('a start is not re-sent before the renew interval', async (t) => {
  const base = { nodes: nodes(obs('a1'), obs('b2'), obs('c3')) };
  const recent = snapshot({ ...base, lease: { oldLeasesEndMs: 0, lastGrantSentMs: NOW - 300, renewIntervalMs: 1000 } });
  t.same(briefs(recent), []);
  t.equal(decide(recent).reason, 'started b2 at head 120, term 57 300 ms ago; waiting for it to report producing');
  const due = snapshot({ ...base, lease: { oldLeasesEndMs: 0, lastGrantSentMs: NOW - 1000, renewIntervalMs: 1000 } });
  t.same(briefs(due), [{ kind: 'start', nodeId: 'b2', term: TERM }]);
});

t.test('leader not producing and behind the recorded head', async (t) => {
  const lease = { oldLeasesEndMs: 0, lastGrantSentMs: undefined, renewIntervalMs: 1000 };
  const detected = 'not producing and behind: head 95, recorded 120';
  const ahead = snapshot({ lease, nodes: nodes(obs('a1', { headNumber: 119 }), obs('b2', { headNumber: 95 }), obs('c3')) });
  t.same(briefs(ahead), [{ kind: 'failover', from: 'b2', to: 'c3', detected }]);
  t.equal(decide(ahead).reason, `b2 ${detected}; failing over to c3: chose c3 (head 120, priority 3); not a1: head 119 < 120`);

  const nobody = snapshot({ lease, nodes: nodes(obs('a1', { headNumber: 95 }), obs('b2', { headNumber: 95 }), obs('c3', { headNumber: 90 })) });
  t.same(briefs(nobody), [{ kind: 'start', nodeId: 'b2', term: TERM }], 'no eligible standby: start it anyway, the node catches up first');
  t.equal(decide(nobody).reason, `b2 ${detected}; no eligible standby ahead of it; starting b2 at head 95, term 57: old leases have ended`);

  const level = snapshot({ lease, nodes: nodes(obs('a1', { headNumber: 118 }), obs('b2', { headNumber: 119 }), obs('c3', { headNumber: 119 })) });
  t.same(briefs(level), [{ kind: 'start', nodeId: 'b2', term: TERM }], 'standbys eligible but not ahead of the leader: no churn');

  const disabled = snapshot({ lease, autoFailover: false, nodes: ahead.nodes });
  t.same(briefs(disabled), [], 'failover blocked, and a stopped node is ahead: wait for the leader to catch up');
  t.equal(decide(disabled).reason, `b2 ${detected}; automatic failover disabled fleet-wide; waiting for b2 (head 95) to catch up to head 120 of a1, c3 before starting it`);
});

t.test('a leader is not started below the head of a node that stopped ahead of it', async (t) => {
  const lease = { oldLeasesEndMs: 0, lastGrantSentMs: undefined, renewIntervalMs: 1000 };
  const behind = snapshot({ lease, head: head(100), nodes: nodes(obs('a1', { headNumber: 103 }), obs('b2', { headNumber: 101 }), obs('c3', { headNumber: 101 })) });
  t.same(briefs(behind), [], 'a1 stopped at 103: b2 at 101 would fork at 102');
  t.match(decide(behind).reason, /waiting for b2 \(head 101\) to catch up to head 103 of a1/);
  const caughtUp = snapshot({ lease, head: head(100), nodes: nodes(obs('a1', { headNumber: 103 }), obs('b2', { headNumber: 103 }), obs('c3', { headNumber: 101 })) });
  t.same(briefs(caughtUp), [{ kind: 'start', nodeId: 'b2', term: TERM }], 'caught up: start it');
  const foreign = snapshot({ lease, head: head(100), nodes: nodes(obs('a1', { headNumber: 500, chainId: 'other-chain' }), obs('b2', { headNumber: 101 }), obs('c3', { headNumber: 101 })) });
  t.same(briefs(foreign), [{ kind: 'start', nodeId: 'b2', term: TERM }], 'a node of another chain does not hold it back');
});

t.test('renew cadence', async (t) => {
  const at = (lastGrantSentMs: number | undefined) => briefs(snapshot({ lease: { oldLeasesEndMs: 0, lastGrantSentMs, renewIntervalMs: 1000 } }));
  const renew = [{ kind: 'renew', nodeId: 'b2', term: TERM }];
  t.same(at(undefined), renew, 'never granted by this supervisor');
  t.same(at(NOW - 999), [], '1 ms before the interval');
  t.same(at(NOW - 1000), renew, 'exactly at the interval');
  t.same(at(NOW - 4000), renew);
});

t.test('record-head only when the leader is above the recorded head', async (t) => {
  const withHead = (leaderHead: number, recorded: number | undefined) =>
    briefs(snapshot({ head: recorded === undefined ? undefined : head(recorded), nodes: nodes(obs('a1'), obs('b2', { ...ACTIVE, headNumber: leaderHead }), obs('c3')) }));
  t.same(withHead(121, 120), [{ kind: 'record-head', nodeId: 'b2', headNumber: 121, headHash: 'h121' }]);
  t.same(withHead(120, 120), [], 'equal: nothing to record');
  t.same(withHead(119, 120), [], 'never records a lower head');
  t.same(withHead(7, undefined), [{ kind: 'record-head', nodeId: 'b2', headNumber: 7, headHash: 'h7' }], 'nothing recorded yet');
  const under = snapshot({ head: head(120), nodes: nodes(obs('a1'), obs('b2', { ...ACTIVE, term: 56n, headNumber: 125 }), obs('c3')) });
  t.notOk(briefs(under).some((a) => a.kind === 'record-head'), 'a head produced under another term is not recorded');
});

t.test('stall detection boundary', async (t) => {
  const atLimit = snapshot({ nodes: nodes(obs('a1'), obs('b2', ACTIVE, { advancedAt: NOW - 5000 }), obs('c3')) });
  t.equal(decide(atLimit).reason, 'b2 active at head 120, term 57', 'exactly at the limit: still healthy');
  const over = snapshot({ nodes: nodes(obs('a1'), obs('b2', ACTIVE, { advancedAt: NOW - 5001 }), obs('c3')) });
  const why = 'head 120 has not advanced for 5001 ms (limit 5000)';
  t.same(briefs(over), [{ kind: 'failover', from: 'b2', to: 'c3', detected: why }]);
  t.equal(decide(over).reason, `b2 unhealthy (${why}); failing over to c3: ${C3_OVER_A1}`);
});

t.test('failure threshold boundary', async (t) => {
  const lease = { oldLeasesEndMs: 0, lastGrantSentMs: undefined, renewIntervalMs: 1000 };
  const two = snapshot({ lease, nodes: nodes(obs('a1'), obs('b2', ACTIVE, { failures: 2, error: 'timeout', at: NOW - 500 }), obs('c3')) });
  t.same(briefs(two), [{ kind: 'renew', nodeId: 'b2', term: TERM }], '2 failures: the last report still stands');
  const three = snapshot({ lease, nodes: nodes(obs('a1'), obs('b2', ACTIVE, { failures: 3, error: 'timeout', at: NOW - 750 }), obs('c3')) });
  t.same(briefs(three), [{ kind: 'failover', from: 'b2', to: 'c3', detected: '3 probes failed in a row: timeout' }], 'and never renewed');
});

t.test('misconfigured, behind and unreachable standbys are never chosen', async (t) => {
  const s = snapshot({
    spec: spec({
      nodes: [
        ...spec().nodes,
        { id: 'd4', endpoint: 'd4:9000', priority: 9, zone: 'z4' },
        { id: 'e5', endpoint: 'e5:9000', priority: 9, zone: 'z5' },
        { id: 'f6', endpoint: 'f6:9000', priority: 9, zone: 'z6' },
      ],
    }),
    nodes: nodes(
      obs('a1', { headNumber: 117 }),
      obs('b2', ACTIVE, DOWN),
      obs('c3', { chainId: 'chain-x', headNumber: 130 }),
      obs('d4', { genesisHash: 'g9', headNumber: 130 }),
      obs('e5', { headNumber: 130 }, { failures: 2, error: 'deadline exceeded', at: NOW - 500 }),
      silent('f6', 1, 'connect ECONNREFUSED'),
    ),
  });
  t.same(briefs(s), [], 'every standby is refused, whatever its priority or head');
  t.equal(
    decide(s).reason,
    `b2 unhealthy (${DOWN_WHY}); no eligible standby: ` +
      'not a1: behind: head 117, recorded 120, max lag 2; ' +
      'not c3: wrong chain id chain-x, want chain-a; ' +
      'not d4: wrong genesis g9, want g0; ' +
      'not e5: last 2 probes failed: deadline exceeded; ' +
      'not f6: never reported (last error: connect ECONNREFUSED)',
  );

  const oneGood = snapshot({ ...s, nodes: new Map([...s.nodes, ['a1', obs('a1', { headNumber: 118 })]]) });
  t.same(briefs(oneGood), [{ kind: 'failover', from: 'b2', to: 'a1', detected: DOWN_WHY }], 'the only eligible one wins despite the lowest priority and head');
});

t.test('leader unknown to this supervisor', async (t) => {
  const unprobed = snapshot({ nodes: nodes(obs('a1'), obs('c3')) });
  t.same(briefs(unprobed), [], 'no failover before its first probe result');
  t.equal(decide(unprobed).reason, 'waiting for the first probe of b2');

  const removed = snapshot({ leader: leader('z9'), nodes: nodes(obs('a1'), obs('b2'), obs('c3')) });
  t.same(briefs(removed), [{ kind: 'failover', from: 'z9', to: 'b2', detected: 'not in the chain spec' }]);
});

t.test('ranking passes the failed leader zone', async (t) => {
  const s = snapshot({
    spec: spec({
      nodes: [
        { id: 'a1', endpoint: 'a1:9000', priority: 3, zone: 'z2' },
        { id: 'b2', endpoint: 'b2:9000', priority: 5, zone: 'z2' },
        { id: 'c3', endpoint: 'c3:9000', priority: 3, zone: 'z3' },
      ],
    }),
    nodes: nodes(obs('a1'), obs('b2', ACTIVE, DOWN), obs('c3')),
  });
  t.same(briefs(s), [{ kind: 'failover', from: 'b2', to: 'c3', detected: DOWN_WHY }], 'a1 sorts first by id but shares the failed zone');
  t.match(decide(s).reason, /not a1: same zone as the failed leader \(z2\)$/);
});

t.test('decide does not mutate its snapshot', async (t) => {
  const s = snapshot({ nodes: nodes(obs('a1'), obs('b2', ACTIVE, DOWN), obs('c3')) });
  const before = JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Map ? [...v] : v));
  decide(s);
  const after = JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Map ? [...v] : v));
  t.equal(after, before);
  t.same(decide(s), decide(s), 'same snapshot, same decision');
});

t.test('a new supervisor does not fail over a leader whose first probes failed below the threshold', async (t) => {
  const lease = { oldLeasesEndMs: 0, lastGrantSentMs: undefined, renewIntervalMs: 1000 };
  const slow = snapshot({ lease, nodes: nodes(obs('a1'), silent('b2', 2, 'deadline exceeded'), obs('c3')) });
  t.same(briefs(slow), [], 'two timed-out probes of a never-heard leader: wait');
  t.match(decide(slow).reason, /waiting for the first probe of b2/);
  const dead = snapshot({ lease, nodes: nodes(obs('a1'), silent('b2', 3, 'deadline exceeded'), obs('c3')) });
  t.equal(briefs(dead)[0]?.kind, 'failover', 'at the threshold it is unhealthy like any leader');
});

t.test('commit mode: the node commits its own heads; a changed fencing mode gets the same active a new term', async (t) => {
  const commitSpec = spec({ policy: { ...POLICY, fencingMode: 'commit' } });
  const inCommit = snapshot({ spec: commitSpec, leader: { ...leader(), mode: 'commit' }, nodes: nodes(obs('a1'), obs('b2', { ...ACTIVE, headNumber: 125 }), obs('c3')) });
  t.notOk(briefs(inCommit).some((a) => a.kind === 'record-head'), 'no record-head: the head in etcd is what the node committed');

  const switching = decide(snapshot({ spec: commitSpec }));
  t.same(switching.actions, [{ kind: 'switch-mode', nodeId: 'b2', from: TERM, mode: 'commit' }], 'a lease-mode term on a commit-mode chain');
  t.match(switching.reason, /lease-mode term 57; the chain is now in commit mode: new term for b2/);
  t.same(decide(snapshot({ spec: commitSpec, paused: true })).actions.filter((a) => a.kind === 'switch-mode'), [], 'not while paused');
  t.same(decide(snapshot({ leader: { ...leader(), mode: 'commit' } })).actions[0], { kind: 'switch-mode', nodeId: 'b2', from: TERM, mode: 'lease' }, 'and back');
});
