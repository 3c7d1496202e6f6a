// mTLS on REST and gRPC with certificates minted by openssl: the right certificate is served; no
// certificate, one from another CA, an expired or not-yet-valid one, one without client-auth usage
// and plaintext are all refused.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, status } from '@grpc/grpc-js';
import t from 'tap';
import { httpsCall } from '../../src/devstack/baton.js';
import { CertificateAuthority } from '../../src/devstack/certs.js';
import { BatonServiceClient } from '../../src/gen/baton/v1/baton.js';
import { call, DEADLINE_MS, rejection, startSecureService, tempDir, type Identity } from './harness.js';

const h = await startSecureService(t, 'mtls');
const day = 24 * 3600_000;

t.test('a certificate of the CA with a bound principal is served', async (t) => {
  const viewer = h.identity('viewer');
  const res = await h.rest(viewer, 'GET', '/v1/chains');
  t.equal(res.status, 200);
  t.match(h.service.address, /^https:\/\//, 'the REST listener speaks HTTPS');
  const list = await call(h.grpc(viewer).listChains.bind(h.grpc(viewer)), { filter: 0 });
  t.same(list.summaries, []);
});

// Certificates the TLS handshake itself must refuse.
const other = CertificateAuthority.create(join(tempDir(t, 'other-ca'), 'ca'));
const otherFiles = other.issue('intruder', { cn: 'admin', usage: 'client' });
const foreign: Identity = {
  files: { caFile: other.caFile, ...otherFiles },
  ca: readFileSync(h.ca.caFile), // trusts the server, presents a certificate of another CA
  cert: readFileSync(otherFiles.certFile),
  key: readFileSync(otherFiles.keyFile),
};
const cases: [string, Identity | undefined][] = [
  ['no client certificate', undefined],
  ['a certificate from another CA (with a bound name)', foreign],
  ['an expired certificate', h.identity('expired', { cn: 'admin', usage: 'client', notBefore: new Date(Date.now() - 3 * day), notAfter: new Date(Date.now() - day) })],
  ['a not-yet-valid certificate', h.identity('future', { cn: 'admin', usage: 'client', notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 2 * day) })],
  ['a certificate without client-auth usage', h.identity('server-only', { cn: 'admin', usage: 'server' })],
];

for (const [name, who] of cases) {
  t.test(`REST refuses ${name}`, async (t) => {
    const err = await rejection(h.rest(who, 'GET', '/v1/chains'));
    t.ok(err instanceof Error, `the connection is refused (${(err as Error).message})`);
  });
  t.test(`gRPC refuses ${name}`, async (t) => {
    const c = h.grpc(who);
    const err = await rejection(call(c.listChains.bind(c), { filter: 0 }));
    t.equal(err.code, status.UNAVAILABLE, `the channel is refused (${err.details})`);
  });
}

t.test('a certificate that names no principal is UNAUTHENTICATED', async (t) => {
  const anonymous = h.identity('anonymous', { usage: 'client', sans: [] });
  const res = await h.rest(anonymous, 'GET', '/v1/chains');
  t.equal(res.status, 401);
  t.equal(res.body.code, 'UNAUTHENTICATED');
  const c = h.grpc(anonymous);
  const err = await rejection(call(c.listChains.bind(c), { filter: 0 }));
  t.equal(err.code, status.UNAUTHENTICATED);
});

t.test('a SAN-only certificate names its principal by the SAN', async (t) => {
  const spiffe = h.identity('spiffe', { usage: 'client', sans: ['URI:spiffe://baton/viewer'] });
  const res = await h.rest(spiffe, 'GET', '/v1/chains');
  t.equal(res.status, 403, 'authenticated, but the SAN is not bound to a role');
  t.match(res.body.message, /spiffe:\/\/baton\/viewer/);
});

t.test('plaintext is refused on both listeners', async (t) => {
  const plainUrl = h.service.address.replace(/^https:/, 'http:');
  const err = await rejection(fetch(`${plainUrl}/v1/chains`, { signal: AbortSignal.timeout(DEADLINE_MS) }));
  t.ok(err instanceof Error, `REST over plaintext fails (${(err as Error).message})`);
  const plain = new BatonServiceClient(h.service.grpcAddress, credentials.createInsecure());
  t.teardown(() => plain.close());
  const gerr = await rejection(call(plain.listChains.bind(plain), { filter: 0 }));
  t.equal(gerr.code, status.UNAVAILABLE);
});

t.test('the server presents a certificate of the CA (a client pinning another CA refuses it)', async (t) => {
  const viewer = h.identity('viewer');
  const err = await rejection(httpsCall(`${h.service.address}/v1/chains`, 'GET', undefined, { ca: readFileSync(other.caFile), cert: viewer.cert, key: viewer.key }, DEADLINE_MS));
  t.match((err as Error).message, /certificate/);
});
