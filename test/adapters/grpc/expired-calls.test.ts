// A unary call whose deadline passed while it waited in the replica's queue is answered
// DEADLINE_EXCEEDED without being run: under overload, that work is what piled up (a node whose
// commit timed out sends the next try while the first still runs). The real handlers, driven
// directly with calls whose deadline is in the past, now, or later.
import { Metadata, status, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import t from 'tap';
import type { ControlPlane } from '../../../src/api/control-plane.js';
import { batonService, type BatonServiceDeps } from '../../../src/adapters/grpc/baton-service.js';
import { ERROR_CODE_KEY } from '../../../src/adapters/node/wire.js';
import { CommitUnsafeHeadRequest } from '../../../src/gen/baton/v1/baton.js';

function fakeCall(request: unknown, deadline: Date | number): ServerUnaryCall<unknown, unknown> {
  return {
    request,
    metadata: new Metadata(),
    getDeadline: () => deadline,
    getPeer: () => '127.0.0.1:1',
    sendMetadata: () => undefined,
  } as unknown as ServerUnaryCall<unknown, unknown>;
}

t.test('CommitUnsafeHead past its deadline does nothing; before it, the commit runs', async (t) => {
  const commits: unknown[] = [];
  const control = {
    commitHead: async (c: unknown) => {
      commits.push(c);
      return { head: { number: 1, hash: 'ab', parentHash: '00', term: 5n, nodeId: 'n1', l1Origin: '', timestamp: 0 }, revision: 9n, duplicate: false };
    },
  } as unknown as ControlPlane;
  const log = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };
  const streams = { handler: () => undefined };
  const svc = batonService({ control, log, streams } as unknown as BatonServiceDeps);
  const request = CommitUnsafeHeadRequest.fromPartial({
    chainId: 'chain-a',
    nodeId: 'n1',
    term: 5n,
    head: { number: 1n, hash: Buffer.from('ab', 'hex'), parentHash: Buffer.alloc(1), term: 5n, nodeId: 'n1' },
  });
  const answer = (deadline: Date | number) =>
    new Promise<{ err: ServiceError | null; value: unknown }>((resolve) => {
      svc.commitUnsafeHead(fakeCall(request, deadline) as never, (err, value) => resolve({ err: err as ServiceError | null, value }));
    });

  const late = await answer(new Date(Date.now() - 1));
  t.equal(late.err?.code, status.DEADLINE_EXCEEDED, 'a call past its deadline: DEADLINE_EXCEEDED');
  t.same(late.err?.metadata?.get(ERROR_CODE_KEY), ['UNAVAILABLE'], 'with a stable Baton code');
  t.match(late.err?.details, /deadline passed before it was run; nothing was done/);
  t.equal(commits.length, 0, 'and nothing was committed');

  const due = await answer(new Date(Date.now() + 5000));
  t.equal(due.err, null, 'a call within its deadline runs');
  t.equal(commits.length, 1, 'and commits');
  const none = await answer(Infinity);
  t.equal(none.err, null, 'so does a call without a deadline');
  t.equal(commits.length, 2);
});
