// Composition root: config -> logger -> adapters -> core -> servers. Nothing else lives here.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { credentials as grpcCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { assertTransportSecurity, minNodeLeaseTtlMs, type Config } from './config/config.js';
import { INSECURE_DEV_PRINCIPAL, RoleBindings, type Principal } from './api/access.js';
import { BatonError } from './core/errors.js';
import { probeNode } from './core/observe.js';
import type { NodeObservation } from './core/observation.js';
import type { ChainStore, NodeControl } from './core/ports.js';
import { validateChainSpec, type SpecLimits } from './core/spec.js';
import { describeChain, type ChainObservation } from './core/status.js';
import { ControlPlane } from './api/control-plane.js';
import { EtcdChainStore } from './adapters/etcd/chain-store.js';
import { createEtcdClient } from './adapters/etcd/client.js';
import { LeaderDirectory } from './adapters/etcd/leader-directory.js';
import { EventFeed } from './adapters/etcd/event-feed.js';
import { EtcdIdempotencyRecords } from './adapters/etcd/idempotency-records.js';
import { EtcdKeys } from './adapters/etcd/keys.js';
import { EtcdOperationStore } from './adapters/etcd/operation-store.js';
import { EtcdAuditLog } from './adapters/etcd/audit-log.js';
import { startGrpcApi, type GrpcApiServer } from './adapters/grpc/server.js';
import { buildApp } from './adapters/http/app.js';
import { peerCertificate, type RestAccess } from './adapters/http/access.js';
import type { GrpcAccess } from './adapters/grpc/access.js';
import { PrincipalLimits } from './adapters/security/limits.js';
import { principalName, readTlsFiles, type TlsMaterial } from './adapters/security/tls.js';
import { GrpcNodeControl } from './adapters/node/node-control.js';
import { systemClock, systemScheduler } from './adapters/system-clock.js';
import { createRootLogger, type Logger } from './adapters/telemetry/log.js';
import { instrumentNodeControl } from './adapters/telemetry/instrument.js';
import { PromMetrics } from './adapters/telemetry/metrics.js';
import { traceOperations } from './adapters/telemetry/operations.js';
import { startTracing } from './adapters/telemetry/tracing.js';
import { startOpsServer, type OpsServer } from './adapters/http/ops.js';
import { ReplicaRuntime } from './service.js';

export const OPENAPI_PATH = fileURLToPath(new URL('../openapi.yaml', import.meta.url));

export interface Service {
  readonly app: FastifyInstance;
  readonly address: string;
  /** host:port of the gRPC operator API. */
  readonly grpcAddress: string;
  /** http://host:port of /livez, /readyz and /metrics. */
  readonly opsAddress: string;
  close(): Promise<void>;
}

/** What `no-deadlines` turns every etcd and node call deadline into: a day, i.e. none. */
const UNSAFE_NO_DEADLINE_MS = 86_400_000;

export async function serve(config: Config): Promise<Service> {
  assertTransportSecurity(config);
  const log = createRootLogger(config.logLevel).child({ replica: config.replicaId });
  const security = securityOf(config, log);
  // Telemetry first: the adapters below report into it.
  const tracing = startTracing({ replicaId: config.replicaId });
  const metrics = new PromMetrics({ replicaId: config.replicaId });
  // Negative controls of the drill only (config.unsafe, from BATON_UNSAFE_FAULTS): deliberately broken.
  const unsafe = new Set(config.unsafe);
  if (unsafe.size > 0) log.warn({ unsafe: [...unsafe] }, 'UNSAFE FAULTS ENABLED: this replica is deliberately broken (drill negative control only)');
  const noDeadlines = unsafe.has('no-deadlines');
  const client = createEtcdClient({
    endpoints: config.etcd.endpoints,
    callTimeoutMs: noDeadlines ? UNSAFE_NO_DEADLINE_MS : config.etcd.callDeadlineMs,
    observer: metrics,
  });
  const keys = new EtcdKeys(config.etcd.prefix);
  // A head commit waits for its batch no longer than an etcd call may take (commit-batcher.ts).
  const store = new EtcdChainStore(client, keys, { unsafeNoFenceCompare: unsafe.has('no-fence-compare'), commitMaxWaitMs: config.etcd.callDeadlineMs });
  // New operations carry the trace of the request that made them; operations are counted.
  const ops = traceOperations(new EtcdOperationStore(client, keys), tracing.tracer, metrics);
  const grpcNodes = new GrpcNodeControl(noDeadlines ? UNSAFE_NO_DEADLINE_MS : config.node.rpcDeadlineMs, `baton/${config.replicaId}`, security.nodeCredentials);
  // Leader lookups (what leader-aware proxies poll) are answered from a watch, not an etcd read.
  const leaders = new LeaderDirectory(client, keys, config.etcd.callDeadlineMs, log.child({ component: 'leader-directory' }));
  // Every node call is labelled with its chain: a look-up in the directory's index, not a walk
  // over every supervised chain (that walk, on every probe, grew with the square of the fleet).
  const nodes = instrumentNodeControl(grpcNodes, metrics, (node) => leaders.chainOfNode(node.id, node.endpoint));
  const principalLimits = new PrincipalLimits(config.limits);
  const audit = new EtcdAuditLog(client, keys, systemClock, config.audit);
  // Every replica sweeps: deleting records out of retention is idempotent (see audit-log.ts).
  const auditSweep = setInterval(() => {
    audit.sweep().then(
      (n) => n > 0 && log.info({ deleted: n }, 'audit records out of retention swept'),
      (err: unknown) => log.warn({ err }, 'audit sweep failed'),
    );
  }, config.audit.sweepIntervalMs);
  auditSweep.unref();
  const limits: SpecLimits = { minLeaseTtlMs: minNodeLeaseTtlMs(config), nodeDeadlineMs: config.node.rpcDeadlineMs };

  let runtime: ReplicaRuntime | undefined;
  let app: FastifyInstance | undefined;
  let grpc: GrpcApiServer | undefined;
  let opsServer: OpsServer | undefined;
  let address: string;
  let grpcAddress: string;
  try {
    if (config.chainsFile) await declareChains(config.chainsFile, store, limits, log);
    await leaders.start();

    const rt = new ReplicaRuntime({
      config, client, keys, store, ops, nodes, clock: systemClock, scheduler: systemScheduler, log,
      tracer: tracing.tracer,
      metrics,
      chainFeed: leaders,
    });
    runtime = rt;
    metrics.bind({
      ready: () => rt.ready(),
      supervisedChains: () => rt.supervisedChains(),
      statusOf: (chainId) => rt.statusOf(chainId),
      recordedHead: (chainId) => leaders.headOf(chainId),
      monoMs: () => systemClock.monoMs(),
      wallMs: () => systemClock.wallMs(),
    });
    // Probes and scrapes are answered from the start (not ready until the etcd session is proven).
    opsServer = await startOpsServer(
      { replicaId: config.replicaId, ready: () => rt.ready(), metrics: async () => ({ contentType: metrics.contentType, text: await metrics.text() }) },
      config.ops,
    );
    const observeChain = (chainId: string) => observe(chainId, store, nodes, rt);
    const describeChainNow = async (chainId: string) => {
      const observed = await observeChain(chainId);
      return observed && describeChain(observed);
    };
    const events = new EventFeed(client, keys);
    // One application layer behind both surfaces.
    const control = new ControlPlane({ store, ops, events, clock: systemClock, observe: observeChain, leaders, audit });
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
      tls: security.tls,
      access: { authenticate: (req) => security.authenticate(peerCertificate(req)), limits: principalLimits, audit } satisfies RestAccess,
      bodyLimitBytes: config.limits.bodyBytes,
      traced: true,
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
        tls: security.tls,
        access: { authenticate: (call) => security.authenticate(call.getAuthContext()?.sslPeerCertificate), limits: principalLimits, audit } satisfies GrpcAccess,
        maxRequestBytes: config.limits.bodyBytes,
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
    await opsServer?.close().catch(() => undefined);
    await leaders.close();
    metrics.close();
    clearInterval(auditSweep);
    nodes.close();
    await client.close();
    throw err;
  }
  const started = { runtime, app, grpc, opsServer };
  const opsAddress = opsServer.address;
  log.info({ address, grpcAddress, opsAddress, etcd: config.etcd.endpoints, tracesTo: tracing.exportTo }, 'baton serving');

  return {
    app: started.app,
    address,
    grpcAddress,
    opsAddress,
    async close() {
      await started.runtime.close();
      await started.app.close();
      await started.grpc.close();
      await started.opsServer.close();
      await leaders.close();
      metrics.close();
      clearInterval(auditSweep);
      nodes.close();
      await client.close();
      await tracing.flush();
    },
  };
}

interface Security {
  /** Listener mTLS material; undefined in insecure dev mode. */
  readonly tls: TlsMaterial | undefined;
  readonly nodeCredentials: ChannelCredentials | undefined;
  /** The principal of a verified client certificate (undefined: refused). */
  authenticate(cert: import('node:tls').PeerCertificate | undefined): Principal | undefined;
}

/** Transport security and identities from the config; shouts when there is none. */
function securityOf(config: Config, log: Logger): Security {
  const { insecureDev, tls, nodeTls, insecureNodeChannel, bindings } = config.security;
  if (insecureDev) {
    const warning =
      'INSECURE DEV MODE: REST, gRPC and the node channel are PLAINTEXT and UNAUTHENTICATED; every caller has every role. Never run this in production.';
    log.warn({ security: 'insecure-dev' }, warning);
    process.emitWarning(warning, { code: 'BATON_INSECURE_DEV' });
    return { tls: undefined, nodeCredentials: undefined, authenticate: () => INSECURE_DEV_PRINCIPAL };
  }
  const material = readTlsFiles(tls!);
  const node = nodeTls ? readTlsFiles(nodeTls) : material;
  if (insecureNodeChannel) log.warn({ security: 'insecure-node-channel' }, 'INSECURE NODE CHANNEL: commands to nodes travel in PLAINTEXT without mutual authentication');
  const roles = new RoleBindings(bindings);
  return {
    tls: material,
    nodeCredentials: insecureNodeChannel ? undefined : grpcCredentials.createSsl(node.ca, node.key, node.cert),
    authenticate: (cert) => {
      const name = principalName(cert, Date.now());
      return name === undefined ? undefined : roles.principal(name);
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
