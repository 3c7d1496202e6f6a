// The drill's schedule is a pure function of its seed: a failing seed replays the same faults.
import t from 'tap';
import { FAULT_KINDS, parseKinds, prng, schedule } from '../../src/drill/schedule.js';

t.test('the same seed gives the same schedule; another seed another one', async (t) => {
  const a = schedule({ seed: 42, chains: 3 }, 200);
  t.same(schedule({ seed: 42, chains: 3 }, 200), a, 'same seed, same steps');
  t.same(schedule({ seed: 42, chains: 3 }, 50), a.slice(0, 50), 'a longer run extends the same sequence');
  t.notSame(schedule({ seed: 43, chains: 3 }, 200), a, 'another seed differs');
  t.ok(new Set(a.map((s) => s.kind)).size >= FAULT_KINDS.length - 6, 'a long schedule draws almost every kind');
  t.ok(a.every((s) => s.chain >= 0 && s.chain < 3 && s.pick >= 0 && s.pick < 1 && s.holdMs >= 0), 'targets and holds in range');
});

t.test('kinds and focus restrict the schedule', async (t) => {
  const s = schedule({ seed: 1, chains: 5, kinds: ['kill-active', 'stale-command'], focusChain: 2 }, 100);
  t.ok(s.every((x) => (x.kind === 'kill-active' || x.kind === 'stale-command') && x.chain === 2));
  t.throws(() => parseKinds('kill-active,nope'), /unknown fault kind "nope"/);
});

t.test('prng is deterministic and in [0, 1)', async (t) => {
  const r1 = prng(7);
  const r2 = prng(7);
  const xs = Array.from({ length: 1000 }, () => r1());
  t.same(Array.from({ length: 1000 }, () => r2()), xs);
  t.ok(xs.every((x) => x >= 0 && x < 1));
});
