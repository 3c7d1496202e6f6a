// Grants go out with a deadline that ends with this replica's proof, and not at all without one;
// reads and stops are left alone.
import t from 'tap';
import type { NodeCallOptions, NodeControl } from '../../src/core/ports.js';
import { boundByProof } from '../../src/core/proof-bound.js';

function recording() {
  const calls: { what: string; options: NodeCallOptions | undefined }[] = [];
  const nodes: NodeControl = {
    deadlineMs: 250,
    health: async () => ({}) as never,
    start: async (_n, _g, options) => void calls.push({ what: 'start', options }),
    renew: async (_n, _t, _ttl, options) => void calls.push({ what: 'renew', options }),
    stop: async () => void calls.push({ what: 'stop', options: undefined }),
    prepareHandoff: async () => ({}) as never,
    completeHandoff: async (_n, _tk, _t, _ttl, _m, options) => void calls.push({ what: 'complete', options }),
  };
  return { nodes, calls };
}

const node = { id: 'n1', endpoint: '127.0.0.1:1', priority: 0, zone: '' };
const grant = { chainId: 'c', term: 5n, ttlMs: 3000, head: undefined, reason: 'r', mode: 'lease' as const };

t.test('a grant never outlives the proof', async (t) => {
  const { nodes, calls } = recording();
  let now = 10_000;
  const proof = { provenUntilMs: () => 11_000 };
  // The wall clock reads 1.7e12 + mono: the same instant travels on both.
  const WALL = 1_700_000_000_000;
  const bounded = boundByProof(nodes, proof, { monoMs: () => now, wallMs: () => WALL + now });
  await bounded.start(node, grant);
  t.same(calls.pop(), { what: 'start', options: { notAfterMonoMs: 10_250, notAfterWallMs: WALL + 10_250 } }, 'plenty of proof: the adapter deadline, as an instant');
  now = 10_920;
  await bounded.renew(node, 5n, 3000);
  t.same(calls.pop(), { what: 'renew', options: { notAfterMonoMs: 11_000, notAfterWallMs: WALL + 11_000 } }, 'little proof left: the call ends with it');
  await bounded.completeHandoff(node, { ticket: new Uint8Array(), term: 4n, headNumber: 1, headHash: '' }, 5n, 3000, 'commit');
  t.same(calls.pop(), { what: 'complete', options: { notAfterMonoMs: 11_000, notAfterWallMs: WALL + 11_000 } });
  now = 10_998;
  await t.rejects(bounded.start(node, grant), { code: 'FENCED' }, 'no proof: FENCED');
  t.same(calls, [], 'and nothing was sent');
  await bounded.stop(node, 6n, 'stop');
  t.same(calls.pop(), { what: 'stop', options: undefined }, 'a stop is not a grant: it goes out as it is');
});
