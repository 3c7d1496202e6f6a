// The gRPC listener of the operator API: baton.v1.BatonService, the standard health service
// (SERVING exactly when /readyz says ready) and server reflection, on one port. The entry point
// only starts and closes it.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type { EventFeed } from '../etcd/event-feed.js';
import type { Logger } from '../telemetry/log.js';
import { BatonServiceService } from '../../gen/baton/v1/baton.js';
import { ServerReflectionService as ReflectionV1 } from '../../gen/grpc/reflection/v1/reflection.js';
import { ServerReflectionService as ReflectionV1Alpha } from '../../gen/grpc/reflection/v1alpha/reflection.js';
import type { TlsMaterial } from '../security/tls.js';
import { guardService, INSECURE_GRPC_ACCESS, type GrpcAccess } from './access.js';
import { batonService, type BatonServiceDeps } from './baton-service.js';
import { REFLECTION_SERVICES, ReflectionService } from './reflection.js';
import { EventStreams } from './watch-events.js';
import { traceGrpcService } from '../telemetry/grpc.js';

export interface GrpcApiDeps extends Omit<BatonServiceDeps, 'streams' | 'log'> {
  /** The event feed behind WatchEvents. */
  readonly events: Pick<EventFeed, 'subscribe'>;
  /** Readiness of this replica, the same answer as /readyz; the health service reports it. */
  readonly ready: () => { ready: boolean; why: string };
  readonly logger: Logger;
  /** mTLS (a client certificate from this CA is required); plaintext when absent. */
  readonly tls?: TlsMaterial;
  /** Who calls, limits, audit of refusals (default: everybody is the insecure-dev principal). */
  readonly access?: GrpcAccess;
  /** Largest request message (default MAX_REQUEST_BYTES). */
  readonly maxRequestBytes?: number;
}

export interface GrpcApiServer {
  /** host:port it listens on (the bound port when 0 was asked). */
  readonly address: string;
  readonly state: 'serving' | 'closing' | 'closed';
  /** Ends open event streams (UNAVAILABLE: resume elsewhere), then waits for calls up to `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

export const BATON_SERVICE = 'baton.v1.BatonService';
export const HEALTH_SERVICE = 'grpc.health.v1.Health';
/** Same limit as the REST body: requests are small; a large one is a mistake or an attack. */
export const MAX_REQUEST_BYTES = 256 * 1024;
const HEALTH_REFRESH_MS = 1000;
const DEFAULT_GRACE_MS = 2000;

export async function startGrpcApi(deps: GrpcApiDeps, listen: { host: string; port: number }): Promise<GrpcApiServer> {
  const log = deps.logger;
  const server = new Server({ 'grpc.max_receive_message_length': deps.maxRequestBytes ?? MAX_REQUEST_BYTES });
  const streams = new EventStreams(deps.events, log);
  // Traced outermost, so a refused call is in the caller's trace too.
  const guarded = guardService(BatonServiceService, batonService({ ...deps, streams, log }), deps.access ?? INSECURE_GRPC_ACCESS, log);
  server.addService(BatonServiceService, traceGrpcService(BATON_SERVICE, BatonServiceService, guarded));

  // '' is the whole server, by the health protocol's convention.
  const health = new HealthImplementation({ '': 'NOT_SERVING', [BATON_SERVICE]: 'NOT_SERVING' });
  health.addToServer(server);
  const setHealth = (status: ServingStatus): void => {
    health.setStatus('', status);
    health.setStatus(BATON_SERVICE, status);
  };
  let lastReady: boolean | undefined;
  const refreshHealth = (): void => {
    const r = deps.ready();
    if (r.ready === lastReady) return;
    lastReady = r.ready;
    setHealth(r.ready ? 'SERVING' : 'NOT_SERVING');
    log.info({ ready: r.ready, why: r.why }, 'grpc health changed');
  };

  const reflection = new ReflectionService([BATON_SERVICE, HEALTH_SERVICE, ...REFLECTION_SERVICES]);
  server.addService(ReflectionV1, { serverReflectionInfo: reflection.handler });
  server.addService(ReflectionV1Alpha, { serverReflectionInfo: reflection.handler });

  const hostPart = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const port = await new Promise<number>((resolve, reject) => {
    // mTLS: the handshake refuses a missing, foreign, expired or not-yet-valid client certificate.
    const credentials = deps.tls
      ? ServerCredentials.createSsl(deps.tls.ca, [{ private_key: deps.tls.key, cert_chain: deps.tls.cert }], true)
      : ServerCredentials.createInsecure();
    server.bindAsync(`${hostPart}:${listen.port}`, credentials, (err, p) => (err ? reject(err) : resolve(p)));
  });
  const address = `${hostPart}:${port}`;
  refreshHealth();
  const timer = setInterval(refreshHealth, HEALTH_REFRESH_MS);
  timer.unref();

  let state: GrpcApiServer['state'] = 'serving';
  let closing: Promise<void> | undefined;
  return {
    address,
    get state() {
      return state;
    },
    close(graceMs = DEFAULT_GRACE_MS) {
      closing ??= new Promise<void>((resolve) => {
        state = 'closing';
        clearInterval(timer);
        setHealth('NOT_SERVING');
        streams.closeAll();
        const done = (): void => {
          clearTimeout(force);
          state = 'closed';
          resolve();
        };
        const force = setTimeout(() => {
          server.forceShutdown();
          done();
        }, graceMs);
        server.tryShutdown(done);
      });
      return closing;
    },
  };
}
