// mTLS on the node channel: Baton's node client (GrpcNodeControl) with the credentials serve()
// builds from security.tls talks to a node that requires a client certificate of the same CA;
// a node of another CA, a client without a certificate, and plaintext are refused.
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { credentials, Server, ServerCredentials, status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import t from 'tap';
import { GrpcNodeControl } from '../../src/adapters/node/node-control.js';
import { CertificateAuthority } from '../../src/devstack/certs.js';
import { ControlServiceService, HealthResponse, type ControlServiceServer } from '../../src/gen/evnode/admin/v1/control.js';
import { rejection, tempDir } from './harness.js';

const dir = tempDir(t, 'node-channel');
const ca = CertificateAuthority.create(join(dir, 'ca'));
const other = CertificateAuthority.create(join(dir, 'other'));
const pem = (f: string) => readFileSync(f);

/** A node that answers Health (and only that) over mTLS; records the client certificate it saw. */
async function startNode(authority: CertificateAuthority, name: string): Promise<{ address: string; peers: string[]; close: () => void }> {
  const files = authority.issue(name, { cn: name, usage: 'server' });
  const server = new Server();
  const peers: string[] = [];
  const unimplemented = (_call: unknown, cb: sendUnaryData<never>) => cb({ code: status.UNIMPLEMENTED, details: 'not in this stub' });
  const impl: ControlServiceServer = {
    health: (call: ServerUnaryCall<unknown, HealthResponse>, cb: sendUnaryData<HealthResponse>) => {
      peers.push(String(call.getAuthContext()?.sslPeerCertificate?.subject?.CN ?? ''));
      cb(null, HealthResponse.fromPartial({ healthy: true, l2Number: 7n, chainId: 'chain-a' }));
    },
    startSequencer: unimplemented,
    stopSequencer: unimplemented,
    prepareHandoff: unimplemented,
    completeHandoff: unimplemented,
    status: unimplemented,
    renewLease: unimplemented,
  } as unknown as ControlServiceServer;
  server.addService(ControlServiceService, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createSsl(pem(authority.caFile), [{ private_key: pem(files.keyFile), cert_chain: pem(files.certFile) }], true), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  t.teardown(() => server.forceShutdown());
  return { address: `127.0.0.1:${port}`, peers, close: () => server.forceShutdown() };
}

const baton = ca.issue('baton', { cn: 'baton-r1', usage: 'both' });
const batonCreds = () => credentials.createSsl(pem(ca.caFile), pem(baton.keyFile), pem(baton.certFile));
const node = await startNode(ca, 'node-1');
const spec = (address: string) => ({ id: 'node-1', endpoint: address, priority: 0, zone: 'a' });

t.test('Baton and the node authenticate each other', async (t) => {
  const control = new GrpcNodeControl(5000, 'baton/r1', batonCreds());
  t.teardown(() => control.close());
  const report = await control.health(spec(node.address));
  t.equal(report.healthy, true);
  t.equal(report.headNumber, 7);
  t.same(node.peers, ['baton-r1'], 'the node saw Baton\'s client certificate');
});

t.test('a node whose certificate is of another CA is refused', async (t) => {
  const impostor = await startNode(other, 'node-1');
  const control = new GrpcNodeControl(3000, 'baton/r1', batonCreds());
  t.teardown(() => control.close());
  const err = await rejection(control.health(spec(impostor.address)));
  t.equal(err.code, 'NODE_UNREACHABLE');
  t.same(impostor.peers, [], 'no call reached the impostor');
});

t.test('the node refuses a client without a certificate of its CA, and plaintext', async (t) => {
  const foreign = other.issue('intruder', { cn: 'baton-r1', usage: 'client' });
  for (const [name, creds] of [
    ['no client certificate', credentials.createSsl(pem(ca.caFile))],
    ['a client certificate of another CA', credentials.createSsl(pem(ca.caFile), pem(foreign.keyFile), pem(foreign.certFile))],
    ['plaintext', credentials.createInsecure()],
  ] as const) {
    const control = new GrpcNodeControl(3000, 'baton/r1', creds);
    const err = await rejection(control.health(spec(node.address)));
    t.equal(err.code, 'NODE_UNREACHABLE', `${name}: refused`);
    control.close();
  }
  t.same(node.peers, ['baton-r1'], 'none of them reached the node');
});
