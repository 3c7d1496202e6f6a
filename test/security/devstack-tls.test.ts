// The devstack's TLS mode (the demo's and scenario tests' way to run with mTLS): real `baton serve`
// and `baton sim` processes with certificates minted by openssl, mTLS on every channel: the REST
// API, Baton's commands to the nodes (each node requires a client certificate of the CA) and the
// commit-mode nodes' commits to Baton (each presents its own certificate, bound to the node role
// for that one node). Chains elect and fail over with no plaintext anywhere.
import { readFileSync } from 'node:fs';
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import t from 'tap';
import { createControlClient } from '../../src/adapters/node/grpc.js';
import { GrpcNodeControl } from '../../src/adapters/node/node-control.js';
import { isBatonError } from '../../src/core/errors.js';
import { CertificateAuthority } from '../../src/devstack/certs.js';
import { waitFor } from '../../src/devstack/process.js';
import { GrpcHeadCommitter } from '../../src/sim/committer.js';
import { startStack } from '../helpers/stack.js';
import { tempDir } from './harness.js';

const stack = await startStack(t, {
  replicas: 1,
  tls: true,
  chains: [
    { id: 'chain-a', nodes: ['a1', 'a2'] },
    { id: 'chain-c', nodes: ['c1', 'c2'], policy: { fencingMode: 'commit' } },
  ],
});
const tls = stack.tls!;
const pem = (f: string) => readFileSync(f);
const creds = (files: { caFile: string; certFile: string; keyFile: string }): ChannelCredentials =>
  credentials.createSsl(pem(files.caFile), pem(files.keyFile), pem(files.certFile));

t.test('the stack serves HTTPS with client certificates and elects a leader over the mTLS node channel', async (t) => {
  t.match(stack.replicas[0]!.url, /^https:\/\//);
  const leader = await stack.waitForProducingLeader('chain-a', 30_000);
  t.ok(['a1', 'a2'].includes(leader.nodeId));
  const res = await fetch(`${stack.replicas[0]!.url}/v1/chains`, { signal: AbortSignal.timeout(5000) }).catch((err: Error) => err);
  t.ok(res instanceof Error, 'a client without a certificate is refused');
  const config = JSON.parse(readFileSync(`${stack.opts.dir}/r1.config.json`, 'utf8')) as { security: Record<string, unknown> };
  t.equal(config.security.insecureNodeChannel, false, 'the replica runs without insecureNodeChannel');
});

t.test('a node refuses Baton\'s node client without a client certificate of its CA, and plaintext', async (t) => {
  const address = stack.node('chain-a', 'a1').address;
  const a1 = { id: 'a1', endpoint: address, priority: 0, zone: 'z' };
  const other = CertificateAuthority.create(tempDir(t, 'other-ca'));
  const foreign = other.issue('intruder', { cn: 'baton-replica', usage: 'client' });
  const attempts: [string, ChannelCredentials][] = [
    ['no client certificate', credentials.createSsl(pem(tls.ca.caFile))],
    ['a client certificate of another CA', credentials.createSsl(pem(tls.ca.caFile), pem(foreign.keyFile), pem(foreign.certFile))],
    ['plaintext', credentials.createInsecure()],
  ];
  for (const [what, c] of attempts) {
    const control = new GrpcNodeControl(2000, 'baton/test', c);
    const err = await control.health(a1).then(() => undefined, (e: Error) => e);
    control.close();
    t.ok(isBatonError(err, 'NODE_UNREACHABLE'), `${what}: refused (${err?.message.split('\n')[0]})`);
  }
  const control = new GrpcNodeControl(2000, 'baton/test', creds(tls.security.server));
  t.equal((await control.health(a1)).chainId, 'chain-a', 'Baton\'s own certificate is served');
  control.close();
  const sim = createControlClient(address, { deadlineMs: 2000, credentials: credentials.createInsecure() });
  t.ok(await sim.status().then(() => false, () => true), 'a plain gRPC client (grpcurl -plaintext) is refused too');
  sim.close();
});

t.test('commit mode: nodes commit over mTLS as themselves, and never as another node', async (t) => {
  const leader = await stack.waitForProducingLeader('chain-c', 30_000);
  const first = (await stack.api().getChain('chain-c')).body.unsafeHead?.number ?? 0;
  const head = await waitFor('committed heads to advance', async () => {
    const n = (await stack.api().getChain('chain-c')).body.unsafeHead?.number ?? 0;
    return n >= first + 3 ? n : undefined;
  }, 15_000, 100);
  t.ok(head >= first + 3, `the leader ${leader.nodeId} commits its blocks with its own certificate (head ${first} -> ${head})`);

  // The real committer of a node, with c1's certificate, committing a block as c2: refused by the
  // access layer (PERMISSION_DENIED), audited, nothing written.
  const c1 = tls.nodes.get('chain-c/c1')!;
  const committer = new GrpcHeadCommitter(stack.batonEndpoints(), creds(c1));
  t.teardown(() => committer.close());
  const block = { number: head + 1, hash: Buffer.alloc(32, 7), parent: Buffer.alloc(32, 1), term: leader.term, nodeId: 'c2', timeMs: Date.now(), l1Origin: 'l1' };
  const asOther = await committer.commit('chain-c', block, 3000);
  t.equal(asOther.kind, 'retry', 'not committed');
  t.match(asOther.kind === 'retry' ? asOther.reason : '', /PERMISSION_DENIED|may commit only as node c1/, 'refused: c1 may commit only as c1');
  const records = await waitFor('the denied commit in the audit trail', async () => {
    const res = await stack.api().request<{ records: { principal: string; action: string; outcome: string }[] }>('GET', '/v1/audit?chain=chain-c&limit=50');
    const found = res.body.records.filter((r) => r.principal === 'node-chain-c-c1' && r.action === 'CommitUnsafeHead' && r.outcome === 'denied');
    return found.length > 0 ? found : undefined;
  }, 10_000, 100);
  t.equal(records.length, 1, 'one denied record');

  // The same certificate committing as itself under a term that is not its own is let through the
  // access layer and fenced by the store: its identity is accepted, its term is not.
  const asItself = await committer.commit('chain-c', { ...block, nodeId: 'c1', term: 1n }, 3000);
  t.equal(asItself.kind, 'fenced', `as itself: past the access layer, refused by the fence (${JSON.stringify(asItself)})`);
});

t.test('failover over the mTLS node channel: the leader dies, the other node takes over', async (t) => {
  const before = await stack.waitForProducingLeader('chain-a', 30_000);
  await stack.simProcess('chain-a', before.nodeId).kill();
  const after = await stack.waitForProducingLeader('chain-a', 30_000, before.nodeId);
  t.not(after.nodeId, before.nodeId, `${after.nodeId} took over`);
  t.ok(after.term > before.term, `under a new term ${after.term} > ${before.term}`);
});

t.test('the operator CLI speaks mTLS with --ca --cert --key', async (t) => {
  const { runCtl } = await import('../../src/cli/ctl.js');
  const client = tls.security.client;
  const run = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCtl(args, {
      out: (s) => out.push(s),
      err: (s) => err.push(s),
      env: { USER: 'tester' },
      isTTY: false,
      nowMs: () => Date.now(),
      fetch: (input, init) => fetch(input, init),
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const url = stack.replicas[0]!.url;
  const listed = await run(['list', '--json', '--url', url, '--ca', client.caFile, '--cert', client.certFile, '--key', client.keyFile]);
  t.equal(listed.code, 0, listed.err);
  t.match(JSON.parse(listed.out), { chains: [{ id: 'chain-a' }] });
  const paused = await run(['pause', 'chain-a', '--url', url, '--ca', client.caFile, '--cert', client.certFile, '--key', client.keyFile, '--json']);
  t.equal(paused.code, 0, paused.err);
  const resumed = await run(['resume', 'chain-a', '--url', url, '--ca', client.caFile, '--cert', client.certFile, '--key', client.keyFile, '--json']);
  t.equal(resumed.code, 0, resumed.err);
  const plain = await run(['list', '--url', url, '--timeout', '3000']);
  t.equal(plain.code, 3, 'without a client certificate Baton is unreachable');
  const half = await run(['list', '--url', url, '--ca', client.caFile]);
  t.equal(half.code, 2, '--ca without --cert and --key is a usage error');
});
