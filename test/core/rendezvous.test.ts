import t from 'tap';
import { rendezvousOwner } from '../../src/core/rendezvous.js';

const chains = Array.from({ length: 1000 }, (_, i) => `chain-${i}`);
const owners = (replicas: readonly string[]) => new Map(chains.map((c) => [c, rendezvousOwner(c, replicas)]));

t.test('no replicas, one replica', async (t) => {
  t.equal(rendezvousOwner('chain-a', []), undefined);
  t.equal(rendezvousOwner('chain-a', ['r1']), 'r1');
});

t.test('deterministic and independent of list order', async (t) => {
  const a = owners(['r1', 'r2', 'r3']);
  const b = owners(['r3', 'r1', 'r2']);
  t.same([...a], [...b]);
  t.same([...owners(['r1', 'r2', 'r3'])], [...a]);
});

t.test('1,000 chains spread evenly over 3 replicas', async (t) => {
  const counts = new Map<string, number>();
  for (const owner of owners(['baton-0', 'baton-1', 'baton-2']).values()) counts.set(owner!, (counts.get(owner!) ?? 0) + 1);
  t.same([...counts.keys()].sort(), ['baton-0', 'baton-1', 'baton-2']);
  for (const [replica, n] of counts) t.ok(n >= 250 && n <= 420, `${replica} owns ${n}`);
});

t.test('removing a replica moves only the chains it owned', async (t) => {
  const before = owners(['r1', 'r2', 'r3']);
  const after = owners(['r1', 'r3']);
  const orphans = chains.filter((c) => before.get(c) === 'r2');
  const shuffled = chains.filter((c) => before.get(c) !== 'r2' && after.get(c) !== before.get(c));
  t.same(shuffled, [], 'chains of the survivors stay where they were');
  t.ok(orphans.length > 0, `${orphans.length} chains were on r2`);
  t.same([...new Set(orphans.map((c) => after.get(c)))].sort(), ['r1', 'r3'], 'its chains spread over both survivors');
});

t.test('adding a replica only takes chains, never shuffles the others', async (t) => {
  const before = owners(['r1', 'r2']);
  const after = owners(['r1', 'r2', 'r3']);
  t.same(chains.filter((c) => after.get(c) !== before.get(c) && after.get(c) !== 'r3'), []);
  t.ok([...after.values()].filter((o) => o === 'r3').length > 250);
});
