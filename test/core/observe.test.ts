import t from 'tap';
import { observeFailure, observeSuccess } from '../../src/core/observe.js';
import { report } from './fixtures.js';

t.test('first report starts the stall clock', async (t) => {
  const o = observeSuccess(undefined, 'a1', report({ headNumber: 10 }), 1000);
  t.same(o, { nodeId: 'a1', report: report({ headNumber: 10 }), reportAtMs: 1000, consecutiveFailures: 0, lastProbeError: '', headAdvancedAtMs: 1000 });
  t.ok(Object.isFrozen(o));
});

t.test('headAdvancedAtMs moves only when the head increases', async (t) => {
  const o1 = observeSuccess(undefined, 'a1', report({ headNumber: 10 }), 1000);
  const same = observeSuccess(o1, 'a1', report({ headNumber: 10 }), 1250);
  t.equal(same.headAdvancedAtMs, 1000, 'same head: kept');
  t.equal(same.reportAtMs, 1250, 'but the report time moves');
  const lower = observeSuccess(same, 'a1', report({ headNumber: 9 }), 1500);
  t.equal(lower.headAdvancedAtMs, 1000, 'lower head: kept');
  const higher = observeSuccess(lower, 'a1', report({ headNumber: 10 }), 1750);
  t.equal(higher.headAdvancedAtMs, 1750, 'above the last report: advanced');
  t.equal(o1.headAdvancedAtMs, 1000, 'earlier values are not mutated');
});

t.test('the stall clock restarts when the node starts producing or changes term', async (t) => {
  const follower = observeSuccess(undefined, 'b2', report({ headNumber: 50 }), 1000);
  const started = observeSuccess(follower, 'b2', report({ headNumber: 50, producing: true, term: 7n }), 9000);
  t.equal(started.headAdvancedAtMs, 9000, 'time spent following is not a stall');
  const still = observeSuccess(started, 'b2', report({ headNumber: 50, producing: true, term: 7n }), 9250);
  t.equal(still.headAdvancedAtMs, 9000, 'producing under the same term without progress: kept');
  const newTerm = observeSuccess(still, 'b2', report({ headNumber: 50, producing: true, term: 8n }), 9500);
  t.equal(newTerm.headAdvancedAtMs, 9500);
});

t.test('failures count up and keep the last report', async (t) => {
  const ok = observeSuccess(undefined, 'a1', report({ headNumber: 10 }), 1000);
  const f1 = observeFailure(ok, 'a1', 'timeout', 1250);
  const f2 = observeFailure(f1, 'a1', 'connect ECONNREFUSED', 1500);
  t.same(f2, { nodeId: 'a1', report: report({ headNumber: 10 }), reportAtMs: 1000, consecutiveFailures: 2, lastProbeError: 'connect ECONNREFUSED', headAdvancedAtMs: 1000 });
  const back = observeSuccess(f2, 'a1', report({ headNumber: 10 }), 1750);
  t.equal(back.consecutiveFailures, 0, 'a success resets the count');
  t.equal(back.lastProbeError, '');
  t.equal(back.headAdvancedAtMs, 1000, 'failures do not touch the stall clock');
});

t.test('a node that never answered', async (t) => {
  const f = observeFailure(undefined, 'f6', 'connect ECONNREFUSED', 500);
  t.equal(f.report, undefined);
  t.equal(f.consecutiveFailures, 1);
  t.equal(f.lastProbeError, 'connect ECONNREFUSED');
  const first = observeSuccess(f, 'f6', report({ headNumber: 3 }), 750);
  t.equal(first.headAdvancedAtMs, 750, 'its first report starts the stall clock');
  t.equal(first.consecutiveFailures, 0);
});
