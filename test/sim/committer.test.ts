// The simulated node's committer over real gRPC: which Baton endpoint a chain's commits go to
// first (spread over the replicas by chain id), moving on when one does not answer, and which
// refusals end the term.
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { ERROR_CODE_KEY } from '../../src/adapters/node/wire.js';
import { BatonServiceService, CommitUnsafeHeadResponse, type CommitUnsafeHeadRequest } from '../../src/gen/baton/v1/baton.js';
import type { SimBlock } from '../../src/sim/chain.js';
import { GrpcHeadCommitter } from '../../src/sim/committer.js';

interface FakeReplica {
  readonly endpoint: string;
  /** Chain ids of the commits it answered, in order. */
  readonly chains: string[];
  refuseWith: string | undefined;
  stop(): Promise<void>;
}

/** A gRPC server with only CommitUnsafeHead, on a random loopback port. */
async function replica(): Promise<FakeReplica> {
  const server = new grpc.Server();
  const r: FakeReplica = {
    endpoint: '',
    chains: [],
    refuseWith: undefined,
    stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
  const commitUnsafeHead: grpc.handleUnaryCall<CommitUnsafeHeadRequest, unknown> = (call, callback) => {
    r.chains.push(call.request.chainId);
    if (r.refuseWith === undefined) return callback(null, CommitUnsafeHeadResponse.fromPartial({ revision: 1n }));
    const metadata = new grpc.Metadata();
    metadata.set(ERROR_CODE_KEY, r.refuseWith);
    callback({ code: grpc.status.FAILED_PRECONDITION, details: `refused: ${r.refuseWith}`, metadata });
  };
  server.addService(BatonServiceService, { commitUnsafeHead } as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return Object.assign(r, { endpoint: `127.0.0.1:${port}` });
}

function block(n: number): SimBlock {
  return { number: n, hash: Buffer.alloc(32, n), parent: Buffer.alloc(32, n - 1), term: 7n, nodeId: 'n1', timeMs: Date.now(), l1Origin: 'l1' };
}

t.test('chains spread their commits over the replicas; one chain always starts at the same one', async (t) => {
  const replicas = await Promise.all([replica(), replica(), replica()]);
  t.teardown(() => Promise.all(replicas.map((r) => r.stop())));
  const endpoints = replicas.map((r) => r.endpoint);
  const chains = Array.from({ length: 30 }, (_, i) => `chain-${i}`);
  const outcomes = [];
  for (const chain of chains) {
    const committer = new GrpcHeadCommitter(endpoints, undefined, chain);
    t.teardown(() => committer.close());
    outcomes.push((await committer.commit(chain, block(1), 2000)).kind);
  }
  t.same(new Set(outcomes), new Set(['committed']), 'every first try committed');
  const counts = replicas.map((r) => r.chains.length);
  t.comment(`first commits per replica: ${counts.join(', ')}`);
  t.ok(counts.every((n) => n >= 3), `every replica serves some chains (${counts.join(', ')})`);

  const again = new GrpcHeadCommitter(endpoints, undefined, 'chain-7');
  t.teardown(() => again.close());
  const first = replicas.findIndex((r) => r.chains.includes('chain-7'));
  await again.commit('chain-7', block(2), 2000);
  t.equal(replicas[first]!.chains.filter((c) => c === 'chain-7').length, 2, 'another node of chain-7 starts at the same replica');
});

t.test('a replica that does not answer: retry, and the next try goes to another', async (t) => {
  const live = await replica();
  t.teardown(() => live.stop());
  const dead = await replica();
  await dead.stop();
  // Whichever endpoint the chain starts at, at most one try fails before a commit lands.
  const committer = new GrpcHeadCommitter([dead.endpoint, live.endpoint], undefined, 'chain-x');
  t.teardown(() => committer.close());
  const outcomes = [await committer.commit('chain-x', block(1), 1000), await committer.commit('chain-x', block(1), 1000)];
  t.ok(outcomes.some((o) => o.kind === 'committed'), `committed within two tries: ${outcomes.map((o) => o.kind).join(', ')}`);
  t.ok(outcomes.every((o) => o.kind !== 'fenced'), 'an unreachable replica never ends the term');
});

t.test('a fencing refusal ends the term; any other refusal is retried', async (t) => {
  const r = await replica();
  t.teardown(() => r.stop());
  const committer = new GrpcHeadCommitter([r.endpoint], undefined, 'chain-y');
  t.teardown(() => committer.close());
  for (const code of ['STALE_TERM', 'NOT_LEADER', 'NOT_COMMIT_MODE', 'HEAD_MISMATCH']) {
    r.refuseWith = code;
    t.match(await committer.commit('chain-y', block(3), 2000), { kind: 'fenced', code }, code);
  }
  r.refuseWith = 'RATE_LIMITED';
  t.match(await committer.commit('chain-y', block(3), 2000), { kind: 'retry' }, 'another code: try again');
});
