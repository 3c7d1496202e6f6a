// Group commit, with a stand-in for etcd: a lone commit goes out at once; commits arriving while
// a request is on its way go out together, at most one per chain and at most maxBatch; each gets
// its own inner outcome; a failed request fails exactly the commits it carried.
import t from 'tap';
import type { ITxnRequest, ITxnResponse } from 'etcd3';
import { CommitBatcher } from '../../../src/adapters/etcd/commit-batcher.js';

/** A stand-in etcd that holds each request until released, then succeeds inner txns whose key is not "fail". */
function heldEtcd() {
  const sent: ITxnRequest[] = [];
  const waiting: (() => void)[] = [];
  let revision = 100;
  const send = (req: ITxnRequest) =>
    new Promise<ITxnResponse>((resolve, reject) => {
      sent.push(req);
      waiting.push(() => {
        revision++;
        const header = { revision: String(revision) } as ITxnResponse['header'];
        const outcome = (r: ITxnRequest) => !String(r.compare?.[0]?.key ?? '').includes('fail');
        if (String(req.compare?.[0]?.key ?? '') === 'boom') return reject(new Error('etcd went away'));
        if (req.success?.some((o) => 'request_txn' in o)) {
          const responses = req.success.map((o) => ({ response_txn: { succeeded: outcome(o.request_txn!), responses: [], header } }));
          resolve({ header, succeeded: true, responses } as unknown as ITxnResponse);
        } else {
          resolve({ header, succeeded: outcome(req), responses: [] } as unknown as ITxnResponse);
        }
      });
    });
  const release = async () => {
    while (waiting.length === 0) await new Promise((r) => setImmediate(r));
    waiting.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { sent, send, release };
}

const txn = (key: string): ITxnRequest => ({ compare: [{ key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: '1' }], success: [] });

t.test('batches what arrives meanwhile, one commit per chain, each with its own outcome', async (t) => {
  const etcd = heldEtcd();
  const b = new CommitBatcher(etcd.send, 3);
  const first = b.submit('a', txn('a'));
  t.equal(etcd.sent.length, 1, 'a lone commit goes out at once');
  const queued = [b.submit('b', txn('b')), b.submit('c', txn('fail-c')), b.submit('b', txn('b2')), b.submit('d', txn('d')), b.submit('e', txn('e'))];
  t.equal(etcd.sent.length, 1, 'nothing more while the first is on its way');
  await etcd.release();
  t.match(await first, { succeeded: true, revision: '101' });
  t.equal(etcd.sent.length, 2, 'the queue went out as the next request');
  t.same(etcd.sent[1]!.success!.map((o) => String(o.request_txn!.compare![0]!.key)), ['b', 'fail-c', 'd'], 'b once (its second commit waits), capped at 3');
  await etcd.release();
  t.match(await queued[0], { succeeded: true, revision: '102' });
  t.match(await queued[1], { succeeded: false, revision: '102' }, "one inner txn's failure is its own");
  t.match(await queued[3], { succeeded: true, revision: '102' });
  t.equal(etcd.sent.length, 3);
  t.same(etcd.sent[2]!.success!.map((o) => String(o.request_txn!.compare![0]!.key)), ['b2', 'e'], "b's second commit, in order, with the rest");
  await etcd.release();
  t.match(await queued[2], { succeeded: true, revision: '103' });
  t.match(await queued[4], { succeeded: true });
});

t.test('a failed request fails the commits it carried, and only those', async (t) => {
  const etcd = heldEtcd();
  const b = new CommitBatcher(etcd.send);
  const doomed = t.rejects(b.submit('x', txn('boom')), /etcd went away/);
  const next = b.submit('y', txn('y'));
  await etcd.release();
  await doomed;
  await etcd.release();
  t.match(await next, { succeeded: true }, 'the next batch goes out regardless');
});

t.test('a commit that waited longer than maxWaitMs for its batch is refused, not sent', async (t) => {
  const etcd = heldEtcd();
  let clock = 0;
  const b = new CommitBatcher(etcd.send, 64, 1000, () => clock);
  const first = b.submit('a', txn('a1'));
  // While the first request is held: an old commit of chain b, and a young one of chain c.
  const old = b.submit('b', txn('b1')).then(() => 'sent', (err: unknown) => err);
  clock = 600;
  const young = b.submit('c', txn('c1'));
  clock = 1001; // b waited 1001 ms, c 401 ms
  await etcd.release();
  t.same(await first, { succeeded: true, responses: [], revision: '101' }, 'the held one completes');
  t.match(await old, { code: 'STORE_UNAVAILABLE', message: /commit of b waited 1001 ms for its batch \(limit 1000\); not sent/ }, 'the old one is refused');
  await etcd.release();
  t.match(await young, { succeeded: true }, 'the young one goes out');
  t.equal(etcd.sent.length, 2, 'two requests: the first, then the young commit alone');
  t.notOk(JSON.stringify(etcd.sent[1]).includes(JSON.stringify(Buffer.from('b1'))), 'the refused commit was not in any request');
});
