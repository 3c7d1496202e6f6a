// Composition root: config -> logger -> adapters -> core -> servers. Nothing else lives here.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { minNodeLeaseTtlMs, type Config } from './config/config.js';
import { BatonError } from './core/errors.js';
import { probeNode } from './core/observe.js';
import type { NodeObservation } from './core/observation.js';
import type { ChainStore, NodeControl } from './core/ports.js';
import { validateChainSpec, type SpecLimits } from './core/spec.js';
import { describeChain, type ChainObservation } from './core/status.js';
import { ControlPlane } from './api/control-plane.js';
import { EtcdChainStore } from './adapters/etcd/chain-store.js';
import { createEtcdClient } from './adapters/etcd/client.js';
import { EventFeed } from './adapters/etcd/event-feed.js';
import { EtcdIdempotencyRecords } from './adapters/etcd/idempotency-records.js';
import { EtcdKeys } from './adapters/etcd/keys.js';
import { EtcdOperationStore } from './adapters/etcd/operation-store.js';
import { startGrpcApi, type GrpcApiServer } from './adapters/grpc/server.js';
import { buildApp } from './adapters/http/app.js';
import { GrpcNodeControl } from './adapters/node/node-control.js';
import { systemClock, systemScheduler } from './adapters/system-clock.js';
import { createRootLogger, type Logger } from './adapters/telemetry/log.js';
import { ReplicaRuntime } from './service.js';

export const OPENAPI_PATH = fileURLToPath(new URL('../openapi.yaml', import.meta.url));

export interface Service {
  readonly app: FastifyInstance;
  readonly address: string;
  /** host:port of the gRPC operator API. */
  readonly grpcAddress: string;
  close(): Promise<void>;
}

export async function serve(config: Config): Promise<Service> {
  const log = createRootLogger(config.logLevel).child({ replica: config.replicaId });
  const client = createEtcdClient({ endpoints: config.etcd.endpoints, callTimeoutMs: config.etcd.callDeadlineMs });
  const keys = new EtcdKeys(config.etcd.prefix);
  const store = new EtcdChainStore(client, keys);
  const ops = new EtcdOperationStore(client, keys);
  const nodes = new GrpcNodeControl(config.node.rpcDeadlineMs, `baton/${config.replicaId}`);
  const limits: SpecLimits = { minLeaseTtlMs: minNodeLeaseTtlMs(config), nodeDeadlineMs: config.node.rpcDeadlineMs };

  let runtime: ReplicaRuntime | undefined;
  let app: FastifyInstance | undefined;
  let grpc: GrpcApiServer | undefined;
  let address: string;
  let grpcAddress: string;
  try {
    if (config.chainsFile) await declareChains(config.chainsFile, store, limits, log);

    const rt = new ReplicaRuntime({ config, client, keys, store, ops, nodes, clock: systemClock, scheduler: systemScheduler, log });
    runtime = rt;
    const observeChain = (chainId: string) => observe(chainId, store, nodes, rt);
    const describeChainNow = async (chainId: string) => {
      const observed = await observeChain(chainId);
      return observed && describeChain(observed);
    };
    const events = new EventFeed(client, keys);
    // One application layer behind both surfaces.
    const control = new ControlPlane({ store, ops, events, clock: systemClock, observe: observeChain });
    app = await buildApp({
      store,
      control,
      events,
      describe: describeChainNow,
      limits,
      ready: () => rt.ready(),
      replicaId: config.replicaId,
      logger: log.child({ component: 'http' }),
      openapiPath: OPENAPI_PATH,
      idempotency: new EtcdIdempotencyRecords(client, keys, systemClock),
    });
    address = await app.listen({ host: config.http.host, port: config.http.port });
    grpc = await startGrpcApi(
      {
        control,
        store,
        describe: describeChainNow,
        limits,
        events,
        ready: () => rt.ready(),
        logger: log.child({ component: 'grpc' }),
      },
      config.grpc,
    );
    grpcAddress = grpc.address;
    await rt.start();
  } catch (err) {
    // A service that failed to start holds nothing open: a caller that handles the error (a
    // test, a supervisor process) must not be left with a live etcd client, listener or lease.
    await runtime?.close().catch(() => undefined);
    await app?.close().catch(() => undefined);
    await grpc?.close();
    nodes.close();
    await client.close();
    throw err;
  }
  const started = { runtime, app, grpc };
  log.info({ address, grpcAddress, etcd: config.etcd.endpoints }, 'baton serving');

  return {
    app: started.app,
    address,
    grpcAddress,
    async close() {
      await started.runtime.close();
      await started.app.close();
      await started.grpc.close();
      nodes.close();
      await client.close();
    },
  };
}

/** Chains declared in a file at startup, applied like PUT /v1/chains/{id}. */
async function declareChains(file: string, store: ChainStore, limits: SpecLimits, log: Logger): Promise<void> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new BatonError('INVALID_ARGUMENT', `chains file ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!Array.isArray(raw)) throw new BatonError('INVALID_ARGUMENT', `chains file ${file}: must be a JSON array of chain specs`);
  // Every spec is checked (same rules as PUT, unknown fields refused) before anything is written.
  const specs = raw.map((entry: unknown, i) => {
    try {
      return validateChainSpec(entry as Record<string, unknown>, limits);
    } catch (err) {
      if (err instanceof BatonError) throw new BatonError(err.code, `chains file ${file}: chains[${i}]: ${err.message}`, { ...err.details, index: i });
      throw err;
    }
  });
  const seen = new Set<string>();
  for (const [i, spec] of specs.entries()) {
    if (seen.has(spec.id)) throw new BatonError('INVALID_ARGUMENT', `chains file ${file}: chains[${i}]: chain ${spec.id} is declared twice`, { index: i });
    seen.add(spec.id);
  }
  for (const spec of specs) await store.putSpec(spec);
  log.info({ file, chains: specs.map((s) => s.id) }, 'declared chains from file');
}

/** The supervisor's live observations when this replica supervises the chain, else a fresh probe. */
async function observe(chainId: string, store: ChainStore, nodes: NodeControl, runtime: ReplicaRuntime): Promise<ChainObservation | undefined> {
  const state = await store.read(chainId);
  if (!state) return undefined;
  const [lastFailover] = await store.history(chainId, 1);
  const local = runtime.statusOf(chainId);
  const now = systemClock.monoMs();
  let observations: ReadonlyMap<string, NodeObservation>;
  if (local) {
    observations = local.nodes;
  } else {
    const probed = await Promise.all(
      state.spec.nodes.map(async (n): Promise<[string, NodeObservation]> => [n.id, await probeNode(nodes, n, undefined, () => now)]),
    );
    observations = new Map(probed);
  }
  return { state, observations, nowMs: now, lastFailover, decision: local?.lastReason, wallMs: systemClock.wallMs() };
}

/** Runs until SIGTERM/SIGINT, then shuts down gracefully (supervisor keys handed back). */
export async function runUntilSignalled(config: Config): Promise<number> {
  const service = await serve(config);
  return new Promise((resolve) => {
    closeWithGrace({ delay: 10_000 }, async ({ err }) => {
      if (err) console.error(err);
      await service.close();
      resolve(err ? 1 : 0);
    });
  });
}
