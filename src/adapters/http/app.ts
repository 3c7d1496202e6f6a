// The REST API, as a Fastify app built from its dependencies (the entry point only wires and
// listens; tests build the same app and call it with inject).
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { BatonError } from '../../core/errors.js';
import type { ChainStore } from '../../core/ports.js';
import { validateChainSpec, type SpecLimits } from '../../core/spec.js';
import { viewTermRecord, type ChainView } from '../../core/status.js';
import { errorHandler, formatValidationErrors } from './errors.js';
import { chainIdParams, chainSpecBody, fleetSettingsBody, historyQuery } from './schemas.js';

export interface ApiDeps {
  readonly store: ChainStore;
  /** The operator's view of a chain (with node health), or undefined when it does not exist. */
  readonly describe: (chainId: string) => Promise<ChainView | undefined>;
  readonly limits: SpecLimits;
  readonly ready: () => { ready: boolean; why: string };
  readonly replicaId: string;
  readonly logger?: Logger;
  readonly openapiPath: string;
}

export const BODY_LIMIT_BYTES = 256 * 1024;

export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger | undefined,
    disableRequestLogging: true,
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: () => crypto.randomUUID(),
    schemaErrorFormatter: formatValidationErrors,
  });
  // Bodies are JSON and are validated as sent: a wrong type is refused, never coerced ("5" is not
  // 5, {..} is not [{..}]), and unknown fields are refused, never stripped. Only path and query
  // values, which are always strings on the wire, are converted to the declared types.
  const bodyAjv = new Ajv({ removeAdditional: false, useDefaults: false, coerceTypes: false, allErrors: true });
  const urlAjv = new Ajv({ removeAdditional: false, useDefaults: true, coerceTypes: true, allErrors: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : urlAjv).compile(schema));
  // No route takes text: a text/plain body gets 415 like any other non-JSON body.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ code: 'NOT_FOUND', message: `no route ${req.method} ${req.url}`, details: {}, requestId: req.id });
  });
  app.addHook('onSend', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });
  const openapi = readFileSync(deps.openapiPath, 'utf8');

  app.get('/livez', async () => ({ status: 'ok', replica: deps.replicaId }));
  app.get('/readyz', async (_req, reply) => {
    const r = deps.ready();
    return reply.status(r.ready ? 200 : 503).send({ status: r.ready ? 'ready' : 'not ready', why: r.why, replica: deps.replicaId });
  });
  app.get('/openapi.yaml', async (_req, reply) => reply.type('application/yaml').send(openapi));

  app.get('/v1/chains', async () => {
    const specs = await deps.store.listSpecs();
    const chains = await Promise.all(
      specs.map(async (spec) => {
        const s = await deps.store.read(spec.id);
        return {
          id: spec.id,
          leader: s?.leader?.nodeId ?? null,
          term: s?.leader?.term.toString() ?? null,
          headNumber: s?.head?.number ?? null,
          supervisor: s?.supervisor ?? null,
          nodes: spec.nodes.length,
          fencingMode: spec.policy.fencingMode,
        };
      }),
    );
    return { chains, count: chains.length };
  });

  app.get<{ Params: { id: string } }>('/v1/chains/:id', { schema: { params: chainIdParams } }, async (req) => {
    const view = await deps.describe(req.params.id);
    if (!view) throw new BatonError('NOT_FOUND', `chain ${req.params.id} does not exist`);
    return view;
  });

  app.put<{ Params: { id: string }; Body: Record<string, unknown> }>(
    '/v1/chains/:id',
    { schema: { params: chainIdParams, body: chainSpecBody } },
    async (req, reply) => {
      if (req.body.id !== undefined && req.body.id !== req.params.id) {
        throw new BatonError('INVALID_ARGUMENT', `body id "${String(req.body.id)}" does not match path id "${req.params.id}"`);
      }
      const spec = validateChainSpec({ ...req.body, id: req.params.id }, deps.limits);
      const existed = (await deps.store.getSpec(spec.id)) !== undefined;
      await deps.store.putSpec(spec);
      return reply.status(existed ? 200 : 201).send(spec);
    },
  );

  app.delete<{ Params: { id: string } }>('/v1/chains/:id', { schema: { params: chainIdParams } }, async (req, reply) => {
    if (!(await deps.store.deleteChain(req.params.id))) throw new BatonError('NOT_FOUND', `chain ${req.params.id} does not exist`);
    return reply.status(204).send();
  });

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
    { schema: { body: fleetSettingsBody } },
    async (req) => {
      await deps.store.putFleetSettings(req.body);
      return deps.store.getFleetSettings();
    },
  );

  return app;
}
