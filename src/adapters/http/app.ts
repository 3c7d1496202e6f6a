// The REST API, as a Fastify app built from its dependencies (the entry point only wires and
// listens; tests build the same app and call it with inject).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { Ajv } from 'ajv';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { ChainFilter, ControlPlane } from '../../api/control-plane.js';
import { BatonError } from '../../core/errors.js';
import type { ChainStore } from '../../core/ports.js';
import { validateChainSpec, type SpecLimits } from '../../core/spec.js';
import { viewTermRecord, type ChainView } from '../../core/status.js';
import type { TlsMaterial } from '../security/tls.js';
import { INSECURE_REST_ACCESS, registerAccess, type RestAccess } from './access.js';
import { httpTracing } from '../telemetry/http.js';
import { registerAuditRoutes } from './audit.js';
import { registerDocs } from './docs.js';
import { errorHandler, formatValidationErrors } from './errors.js';
import { registerEventRoutes, SSE_HEARTBEAT_MS, type EventSource } from './events.js';
import { registerHeadRoutes } from './heads.js';
import { registerOperationRoutes } from './operations.js';
import { chainIdParams, chainListQuery, chainSpecBody, fleetSettingsBody, historyQuery, mutationHeaders } from './schemas.js';
import { canonicalRequest, parseRfc3339 } from './views.js';
import type { EtcdIdempotencyRecords, RecordedResponse } from '../etcd/idempotency-records.js';

export interface ApiDeps {
  readonly store: ChainStore;
  /** Operator requests and the reads that go with them (shared with the gRPC surface). */
  readonly control: ControlPlane;
  /** The event stream behind GET /v1/events. */
  readonly events: EventSource;
  /** Interval of the SSE heartbeat comment (default 15 s). */
  readonly sseHeartbeatMs?: number;
  /** The operator's view of a chain (with node health), or undefined when it does not exist. */
  readonly describe: (chainId: string) => Promise<ChainView | undefined>;
  readonly limits: SpecLimits;
  readonly ready: () => { ready: boolean; why: string };
  readonly replicaId: string;
  readonly logger?: Logger;
  readonly openapiPath: string;
  /** Replays of PUT/DELETE under an Idempotency-Key. */
  readonly idempotency: EtcdIdempotencyRecords;
  /** Serve HTTPS requiring a client certificate from this CA (mTLS); plaintext when absent. */
  readonly tls?: TlsMaterial;
  /** Who calls, limits, audit of refusals (default: everybody is the insecure-dev principal). */
  readonly access?: RestAccess;
  /** Largest request body (default BODY_LIMIT_BYTES). */
  readonly bodyLimitBytes?: number;
  /** One span per request (continuing a caller's traceparent); the trace id in every response. */
  readonly traced?: boolean;
}

export const BODY_LIMIT_BYTES = 256 * 1024;
export const REQUEST_RECEIVE_DEADLINE_MS = 30_000;

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger | undefined,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimitBytes ?? BODY_LIMIT_BYTES,
    // A request (headers and body; not the answer, so not an event stream) must arrive within this.
    requestTimeout: REQUEST_RECEIVE_DEADLINE_MS,
    // mTLS: the handshake refuses a missing, foreign, expired or not-yet-valid client certificate.
    ...(deps.tls
      ? { https: { ca: deps.tls.ca, cert: deps.tls.cert, key: deps.tls.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' as const } }
      : {}),
    genReqId: () => crypto.randomUUID(),
    schemaErrorFormatter: formatValidationErrors,
  });
  // Before any hook or route: it instruments what is declared after it.
  if (deps.traced) await app.register(httpTracing());
  // Bodies are JSON and are validated as sent: a wrong type is refused, never coerced ("5" is not
  // 5, {..} is not [{..}]), and unknown fields are refused, never stripped. Only path and query
  // values, which are always strings on the wire, are converted to the declared types.
  const bodyAjv = new Ajv({ removeAdditional: false, useDefaults: false, coerceTypes: false, allErrors: true });
  bodyAjv.addFormat('date-time', { type: 'string', validate: (s: string) => parseRfc3339(s) !== undefined });
  const urlAjv = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: true, allErrors: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : urlAjv).compile(schema));
  // No route takes text: a text/plain body gets 415 like any other non-JSON body.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(errorHandler);
  registerAccess(app, deps.access ?? INSECURE_REST_ACCESS);
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}`, details: {}, requestId: req.id });
  });
  // A connection that has not sent a byte (HTTP clients open spare ones) is not idle to Node, so
  // app.close() would wait out its headers timeout (about a minute); it has nothing in flight.
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  app.addHook('preClose', async () => {
    for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy();
  });
  app.addHook('onSend', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });
  const openapi = readFileSync(deps.openapiPath, 'utf8');
  await registerDocs(app, deps.openapiPath);

  app.get('/livez', async () => ({ status: 'ok', replica: deps.replicaId }));
  app.get('/readyz', async (_req, reply) => {
    const r = deps.ready();
    return reply.status(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not ready', why: r.why, replica: deps.replicaId });
  });
  app.get('/openapi.yaml', async (_req, reply) => reply.type('application/yaml').send(openapi));

  app.get<{ Querystring: { filter?: ChainFilter } }>('/v1/chains', { schema: { querystring: chainListQuery } }, async (req) => {
    const { chains, counts } = await deps.control.listChains(req.query.filter);
    return { chains, count: chains.length, counts };
  });

  app.get<{ Params: { id: string } }>('/v1/chains/:id', { schema: { params: chainIdParams } }, async (req) => {
    const view = await deps.describe(req.params.id);
    if (!view) throw new BatonError('NOT_FOUND', `chain ${req.params.id} does not exist`);
    return view;
  });

  /** Runs a plain mutation once per Idempotency-Key (when one is sent) and answers its response. */
  const once = async (req: FastifyRequest, reply: FastifyReply, apply: () => Promise<RecordedResponse>): Promise<FastifyReply> => {
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string') {
      const r = await apply();
      return reply.status(r.status).send(r.body);
    }
    const hash = createHash('sha256').update(canonicalRequest(req.method, req.url, req.body)).digest('hex');
    // A key is its principal's own (except in insecure dev mode, where everybody is one principal).
    const principal = req.principal && !req.principal.unrestricted ? req.principal.name : undefined;
    const r = await deps.idempotency.once(key, hash, apply, principal);
    if (r.replayed) void reply.header('idempotent-replayed', 'true');
    return reply.status(r.status).send(r.body);
  };

  app.put<{ Params: { id: string }; Body: Record<string, unknown> }>(
    '/v1/chains/:id',
    { schema: { params: chainIdParams, body: chainSpecBody, headers: mutationHeaders } },
    async (req, reply) => {
      if (req.body.id !== undefined && req.body.id !== req.params.id) {
        throw new BatonError('INVALID_ARGUMENT', `body id "${String(req.body.id)}" does not match path id "${req.params.id}"`);
      }
      const spec = validateChainSpec({ ...req.body, id: req.params.id }, deps.limits);
      return once(req, reply, async () => {
        const { created } = await deps.control.putChain(spec, { audit: req.audit ?? undefined });
        return { status: created ? 201 : 200, body: spec };
      });
    },
  );

  app.delete<{ Params: { id: string } }>('/v1/chains/:id', { schema: { params: chainIdParams, headers: mutationHeaders } }, async (req, reply) =>
    once(req, reply, async () => {
      await deps.control.deleteChain(req.params.id, { audit: req.audit ?? undefined });
      return { status: 204, body: undefined };
    }),
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number } }>(
    '/v1/chains/:id/history',
    { schema: { params: chainIdParams, querystring: historyQuery } },
    async (req) => {
      if (!(await deps.store.getSpec(req.params.id))) throw new BatonError('NOT_FOUND', `chain ${req.params.id} does not exist`);
      const terms = await deps.store.history(req.params.id, req.query.limit);
      return { terms: terms.map(viewTermRecord) };
    },
  );

  app.get('/v1/fleet/settings', async () => deps.store.getFleetSettings());
  app.put<{ Body: { autoFailover: boolean; maxConcurrentFailovers: number } }>(
    '/v1/fleet/settings',
    { schema: { body: fleetSettingsBody, headers: mutationHeaders } },
    async (req, reply) =>
      once(req, reply, async () => {
        return { status: 200, body: await deps.control.putFleetSettings(req.body, { audit: req.audit ?? undefined }) };
      }),
  );

  registerOperationRoutes(app, deps.control);
  registerHeadRoutes(app, deps.control);
  registerEventRoutes(app, deps.events, deps.sseHeartbeatMs ?? SSE_HEARTBEAT_MS);
  registerAuditRoutes(app, deps.control);
  return app;
}
