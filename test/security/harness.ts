// serve(config) in-process with mTLS on REST and gRPC against a real etcd, with certificates minted
// by openssl for one principal per role (and the broken ones the refusal tests need), plus REST and
// gRPC clients that present a given certificate.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import type { Test } from 'tap';
import { parseConfig, type RoleBinding } from '../../src/config/config.js';
import { httpsCall } from '../../src/devstack/baton.js';
import { CertificateAuthority, type CertFiles } from '../../src/devstack/certs.js';
import { EtcdCluster } from '../../src/devstack/etcd.js';
import { serve, type Service } from '../../src/main.js';
import { BatonServiceClient } from '../../src/gen/baton/v1/baton.js';
import { Etcd3 } from 'etcd3';
import { auditRecords } from './audit-assert.js';

export const DEADLINE_MS = 8000;

/** One principal per role; `node-a1` is node chain-a-1 of chain-a. */
export const PRINCIPALS = {
  viewer: ['viewer'],
  operator: ['operator'],
  admin: ['admin'],
  breakglass: ['breakglass'],
  'node-a1': ['node'],
  nobody: [],
} as const;
export type PrincipalName = keyof typeof PRINCIPALS;

export const BINDINGS: RoleBinding[] = [
  { principal: 'viewer', roles: ['viewer'] },
  { principal: 'operator', roles: ['operator'] },
  { principal: 'admin', roles: ['admin'] },
  { principal: 'breakglass', roles: ['breakglass'] },
  { principal: 'node-a1', roles: ['node'], node: { chainId: 'chain-a', nodeId: 'chain-a-1' } },
  // `nobody` has a valid certificate and no binding.
  // Outside the matrix: a second operator, and an admin with every operator role.
  { principal: 'operator-2', roles: ['operator'] },
  { principal: 'root', roles: ['viewer', 'operator', 'admin', 'breakglass'] },
];

export interface Identity {
  readonly files: CertFiles & { caFile: string };
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface SecureHarness {
  readonly service: Service;
  readonly ca: CertificateAuthority;
  readonly cluster: EtcdCluster;
  readonly prefix: string;
  /** A certificate of the test CA (minted once per name). */
  identity(name: string, opts?: Parameters<CertificateAuthority['issue']>[1]): Identity;
  /** REST over mTLS as `who` (undefined: no client certificate). */
  rest(who: Identity | undefined, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  /** A gRPC client presenting `who`'s certificate (closed at teardown). */
  grpc(who: Identity | undefined): BatonServiceClient;
  /**
   * The shared assertion, as the last subtest of a file: every mutating REST request this harness
   * sent (and that reached a route) left exactly one audit record, and no request left two.
   */
  assertEveryMutationAudited(t: Test): void;
}

export async function startSecureService(t: Test, name: string, extra: Record<string, unknown> = {}): Promise<SecureHarness> {
  const dir = tempDir(t, name);
  const ca = CertificateAuthority.create(join(dir, 'ca'));
  const server = ca.issue('server', { cn: 'baton-server', usage: 'both' });
  const cluster = await EtcdCluster.start({ members: 1 });
  t.teardown(() => cluster.stop());
  const prefix = `/baton-${name}-${process.pid}/`;
  const config = parseConfig({
    replicaId: `replica-${name}`,
    logLevel: 'error',
    etcd: { endpoints: cluster.endpoints, prefix },
    http: { host: '127.0.0.1', port: 0 },
    grpc: { host: '127.0.0.1', port: 0 },
    ...extra,
    security: { tls: { caFile: ca.caFile, ...server }, bindings: BINDINGS, insecureNodeChannel: true },
  });
  const service = await serve(config);
  t.teardown(() => service.close());
  const identities = new Map<string, Identity>();
  const identity = (n: string, opts?: Parameters<CertificateAuthority['issue']>[1]): Identity => {
    let id = identities.get(n);
    if (!id) {
      const files = { caFile: ca.caFile, ...ca.issue(`client-${n}`, opts ?? { cn: n, usage: 'client' }) };
      id = { files, ca: readFileSync(ca.caFile), cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
      identities.set(n, id);
    }
    return id;
  };
  const caPem = readFileSync(ca.caFile);
  const mutations: string[] = [];
  const clients: BatonServiceClient[] = [];
  t.teardown(() => clients.forEach((c) => c.close()));
  return {
    service,
    ca,
    cluster,
    prefix,
    identity,
    async rest(who, method, path, body, headers) {
      const res = await httpsCall(`${service.address}${path}`, method, body, who ?? { ca: caPem }, DEADLINE_MS, headers);
      const id = res.headers['x-request-id'];
      // Rate-limited requests are not audited (a flood must not write to etcd); no route, no record.
      // Head commits are data-plane calls: only their refusals by the access layer are audited.
      const dataPlane = path.endsWith('/head') && res.status !== 401 && res.status !== 403;
      if (method !== 'GET' && typeof id === 'string' && res.status !== 429 && !dataPlane && !/no route/.test(res.text)) mutations.push(id);
      let parsed: unknown;
      try {
        parsed = res.text ? JSON.parse(res.text) : undefined;
      } catch {
        parsed = res.text;
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    assertEveryMutationAudited(t) {
      t.test('every mutation left exactly one audit record', async (t) => {
        const etcd = new Etcd3({ hosts: cluster.endpoints });
        try {
          const records = await auditRecords(etcd, prefix);
          const perRequest = new Map<string, number>();
          for (const r of records) perRequest.set(r.requestId, (perRequest.get(r.requestId) ?? 0) + 1);
          t.same([...perRequest].filter(([, n]) => n > 1), [], 'no request has two records');
          t.same(mutations.filter((id) => perRequest.get(id) !== 1), [], `each of ${mutations.length} mutations has one`);
        } finally {
          etcd.close();
        }
      });
    },
    grpc(who) {
      const creds = who ? credentials.createSsl(who.ca, who.key, who.cert) : credentials.createSsl(caPem);
      const c = new BatonServiceClient(service.grpcAddress, creds);
      clients.push(c);
      return c;
    },
  };
}

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
type UnaryMethod<Req, Res> = (req: Req, metadata: Metadata, options: Partial<CallOptions>, callback: Callback<Res>) => unknown;

/** One unary call with a deadline; rejects with the ServiceError. */
export function call<Req, Res>(method: UnaryMethod<Req, Res>, req: Req, opts: { metadata?: Metadata; deadlineMs?: number } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(req, opts.metadata ?? new Metadata(), { deadline: Date.now() + (opts.deadlineMs ?? DEADLINE_MS) }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** The error a promise rejected with (fails loudly when it resolved). */
export async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a refusal, the call succeeded');
}

/** A fresh directory under the system temp dir, removed at teardown. */
export function tempDir(t: Test, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `baton-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
