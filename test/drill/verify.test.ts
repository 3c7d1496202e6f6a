// The drill's etcd history scan, on made-up histories: it must see a term written over a stale
// one (lost update), a leader write by a replica that did not hold the supervisor key (unfenced),
// a head that went back, and a head recorded under a term that was not current.
import t from 'tap';
import { checkEtcdHistory } from '../../src/drill/verify.js';

const P = '/baton/';
const put = (key: string, value: unknown, rev: number) => ({ type: 'put' as const, key: P + key, value: JSON.stringify(value), rev: BigInt(rev) });
const hist = (prev: number) => `chains/c1/history/${String(prev).padStart(20, '0')}`;

t.test('a clean history passes', async (t) => {
  const r = checkEtcdHistory([
    { type: 'put' as const, key: `${P}supervisors/c1`, value: 'r1', rev: 2n },
    put('chains/c1/leader', { nodeId: 'n1' }, 5),
    put(hist(0), { supervisor: 'r1' }, 5),
    put('chains/c1/head', { number: 3, term: '5' }, 6),
    put('chains/c1/leader', { nodeId: 'n2' }, 9),
    put(hist(5), { supervisor: 'r1' }, 9),
    put('chains/c1/head', { number: 4, term: '9' }, 10),
  ]);
  t.same(r.violations, []);
  t.equal(r.terms, 2);
});

t.test('lost update, unfenced write, head back, head under a stale term', async (t) => {
  const sup = (v: string, rev: number) => ({ type: 'put' as const, key: `${P}supervisors/c1`, value: v, rev: BigInt(rev) });
  const r = checkEtcdHistory([
    sup('r1', 2),
    put('chains/c1/leader', { nodeId: 'n1' }, 5),
    put(hist(0), { supervisor: 'r1' }, 5),
    put('chains/c1/head', { number: 7, term: '5' }, 6),
    sup('r2', 7),
    put('chains/c1/leader', { nodeId: 'n2' }, 9),
    put(hist(5), { supervisor: 'r2' }, 9),
    // r1 woke up and wrote over term 5, which is no longer current, without holding the key.
    put('chains/c1/leader', { nodeId: 'n3' }, 11),
    put(hist(5), { supervisor: 'r1' }, 11),
    put('chains/c1/head', { number: 6, term: '9' }, 12),
  ]);
  const kinds = r.violations.map((v) => v.kind).sort();
  t.same(kinds, ['HEAD_BACK', 'HEAD_TERM', 'LOST_UPDATE', 'UNFENCED_WRITE'], r.violations.map((v) => v.message).join('\n'));
});

// A break-glass override with rollbackHead writes the lower head in the txn of its new term, with
// an override record naming exactly that rollback: accepted. Any other decrease is still reported.
const rolledBack = (over: { from?: { number: number; hash: string }; to?: { number: number; hash: string }; rev?: number } = {}) => {
  const rev = over.rev ?? 9;
  return [
    { type: 'put' as const, key: `${P}supervisors/c1`, value: 'r1', rev: 2n },
    put('chains/c1/leader', { nodeId: 'n1' }, 5),
    put(hist(0), { supervisor: 'r1' }, 5),
    put('chains/c1/head', { number: 7, hash: 'aa07', term: '5' }, 6),
    put('chains/c1/leader', { nodeId: 'n2' }, 9),
    put(hist(5), { supervisor: 'r1' }, 9),
    put('chains/c1/override', { nodeId: 'n2', reason: 'INC-1', sinceMs: 1, operationId: 'op-1', rolledBackFrom: over.from ?? { number: 7, hash: 'aa07' }, rolledBackTo: over.to ?? { number: 4, hash: 'bb04' } }, 9),
    put('chains/c1/head', { number: 4, hash: 'bb04', term: '5' }, rev),
    put('chains/c1/head', { number: 5, hash: 'bb05', term: '9' }, 12),
  ];
};

t.test('a head rollback authorised by an override record of the same revision passes', async (t) => {
  const r = checkEtcdHistory(rolledBack());
  t.same(r.violations, []);
  t.equal(r.heads, 3);
});

t.test('a decrease the override record does not name exactly is still HEAD_BACK', async (t) => {
  for (const [name, events] of [
    ['another target number', rolledBack({ to: { number: 3, hash: 'bb04' } })],
    ['another target hash', rolledBack({ to: { number: 4, hash: 'cc04' } })],
    ['another replaced head', rolledBack({ from: { number: 8, hash: 'aa07' } })],
    ['written in a later revision than the override', rolledBack({ rev: 10 })],
  ] as const) {
    const kinds = checkEtcdHistory(events).violations.map((v) => v.kind);
    t.ok(kinds.includes('HEAD_BACK'), `${name}: ${kinds.join(', ')}`);
  }
  const unauthorised = rolledBack().filter((e) => !e.key.endsWith('/override'));
  t.same(checkEtcdHistory(unauthorised).violations.map((v) => v.kind).sort(), ['HEAD_BACK', 'HEAD_TERM'], 'no override record: a plain decrease');
});
