// The real service in-process (serve(config) against a real etcd, gRPC on a free port) and
// grpc-js clients whose every call has a deadline.
import { credentials, Metadata, type CallOptions, type ServiceError } from '@grpc/grpc-js';
import type { Test } from 'tap';
import { parseConfig } from '../../../src/config/config.js';
import { EtcdCluster } from '../../../src/devstack/etcd.js';
import { serve, type Service } from '../../../src/main.js';
import { BatonServiceClient, type ChainSpec } from '../../../src/gen/baton/v1/baton.js';

export const DEADLINE_MS = 5000;

export interface Harness {
  readonly service: Service;
  readonly baton: BatonServiceClient;
  /** The service's etcd and key prefix, for tests that set up state behind its back. */
  readonly etcdEndpoints: readonly string[];
  readonly prefix: string;
  /** Closes the service now (idempotent; also done at teardown). */
  close(): Promise<void>;
}

export async function startService(t: Test, name: string): Promise<Harness> {
  const cluster = await EtcdCluster.start({ members: 1 });
  t.teardown(() => cluster.stop());
  const config = parseConfig({
    replicaId: `replica-${name}`,
    logLevel: 'error',
    etcd: { endpoints: cluster.endpoints, prefix: `/baton-${name}-${process.pid}/` },
    http: { host: '127.0.0.1', port: 0 },
    grpc: { host: '127.0.0.1', port: 0 },
    security: { insecureDev: true },
  });
  const service = await serve(config);
  const baton = new BatonServiceClient(service.grpcAddress, credentials.createInsecure());
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= service.close());
  t.teardown(async () => {
    baton.close();
    await close();
  });
  return { service, baton, close, etcdEndpoints: cluster.endpoints, prefix: `/baton-${name}-${process.pid}/` };
}

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
type UnaryMethod<Req, Res> = (req: Req, metadata: Metadata, options: Partial<CallOptions>, callback: Callback<Res>) => unknown;

/** One unary call with a deadline; rejects with the ServiceError. */
export function call<Req, Res>(method: UnaryMethod<Req, Res>, req: Req, opts: { metadata?: Metadata; deadlineMs?: number } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(req, opts.metadata ?? new Metadata(), { deadline: Date.now() + (opts.deadlineMs ?? DEADLINE_MS) }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** The error a call failed with; fails the test when it succeeded. */
export async function failure(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('the call succeeded; expected it to fail');
}

export function batonCode(err: ServiceError): string | undefined {
  return err.metadata?.get('baton-error-code')[0]?.toString();
}

/** Nothing listens on these ports: the chain stays leaderless, its nodes unreachable. */
export function chainSpec(id: string, basePort: number): ChainSpec {
  return {
    id,
    nodes: [
      { id: `${id}-1`, endpoint: `127.0.0.1:${basePort + 1}`, priority: 0, zone: 'a' },
      { id: `${id}-2`, endpoint: `127.0.0.1:${basePort + 2}`, priority: 1, zone: 'b' },
    ],
    blockTimeMs: 0,
    fencingMode: 0,
    genesisHash: Buffer.alloc(0),
    policy: { leaseTtlMs: 8000 },
  };
}

export function metadata(entries: Record<string, string>): Metadata {
  const md = new Metadata();
  for (const [k, v] of Object.entries(entries)) md.set(k, v);
  return md;
}
