// Operator requests over REST: every mutation is an intent made durable by the ControlPlane (one
// etcd txn) before it answers 202 with the operation; the chain's supervisor executes it and the
// operation record shows the progress. Reads: the leader (long-poll) and the operations.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ControlPlane } from '../../api/control-plane.js';
import { BatonError } from '../../core/errors.js';
import type { FencingMode } from '../../core/chain.js';
import type { OperationParams } from '../../core/operation.js';
import {
  chainIdParams,
  failoverBody,
  fencingModeBody,
  leaderQuery,
  mutationHeaders,
  operationIdParams,
  operationListQuery,
  operationQuery,
  overrideBody,
  pauseBody,
  reasonBody,
  switchoverBody,
} from './schemas.js';
import { canonicalRequest, parseRfc3339, viewOperation } from './views.js';

const noQuery = { type: 'object', additionalProperties: false, properties: {} } as const;

type ChainRequest<B> = FastifyRequest<{ Params: { id: string }; Body: B }>;

export function registerOperationRoutes(app: FastifyInstance, control: ControlPlane): void {
  /** Submits the intent; answers once it is durable. A replay answers with the first operation. */
  const accept = async (req: ChainRequest<unknown>, reply: FastifyReply, params: OperationParams) => {
    const key = req.headers['idempotency-key'];
    // The path as the route names it, so /v1/chains/chain%2Da/... and /v1/chains/chain-a/... agree.
    const path = req.routeOptions.url!.replace(':id', req.params.id);
    const { operation, replayed } = await control.submit(req.params.id, params, {
      requestId: req.id,
      idempotencyKey: typeof key === 'string' ? key : undefined,
      canonical: canonicalRequest(req.method, path, req.body),
      ...(req.audit ? { audit: req.audit } : {}),
    });
    if (replayed) void reply.header('idempotent-replayed', 'true');
    return reply.status(202).header('location', `/v1/operations/${operation.id}`).send(viewOperation(operation));
  };
  const mutation = (body: object) => ({ schema: { params: chainIdParams, querystring: noQuery, headers: mutationHeaders, body } });

  app.get<{ Params: { id: string }; Querystring: { waitForChangeFrom?: string; timeout: number } }>(
    '/v1/chains/:id/leader',
    { schema: { params: chainIdParams, querystring: leaderQuery } },
    async (req) => {
      const from = req.query.waitForChangeFrom;
      return control.leader(req.params.id, from === undefined ? undefined : BigInt(from), req.query.timeout);
    },
  );

  app.post<{ Params: { id: string }; Body: { candidate?: string; reason: string; dryRun?: boolean } }>(
    '/v1/chains/:id/failover',
    mutation(failoverBody),
    async (req, reply) => {
      const { candidate, reason, dryRun } = req.body;
      if (dryRun === true) return reply.status(200).send({ plan: await control.planFailover(req.params.id, candidate) });
      return accept(req, reply, { kind: 'failover', reason, ...(candidate !== undefined ? { candidate } : {}) });
    },
  );

  app.post<{ Params: { id: string }; Body: { target?: string; scheduledAt?: string; reason: string } }>(
    '/v1/chains/:id/switchover',
    mutation(switchoverBody),
    async (req, reply) => {
      const { target, reason } = req.body;
      const scheduledAtMs = wallMs('scheduledAt', req.body.scheduledAt);
      return accept(req, reply, {
        kind: 'switchover',
        reason,
        ...(target !== undefined ? { target } : {}),
        ...(scheduledAtMs !== undefined ? { scheduledAtMs } : {}),
      });
    },
  );

  app.post<{ Params: { id: string }; Body: { reason: string } }>('/v1/chains/:id/switchover/cancel', mutation(reasonBody), async (req, reply) =>
    accept(req, reply, { kind: 'cancel-switchover', reason: req.body.reason }),
  );

  app.post<{ Params: { id: string }; Body: { until?: string; reason: string } }>('/v1/chains/:id/pause', mutation(pauseBody), async (req, reply) => {
    const untilMs = wallMs('until', req.body.until);
    return accept(req, reply, { kind: 'pause', reason: req.body.reason, ...(untilMs !== undefined ? { untilMs } : {}) });
  });

  app.post<{ Params: { id: string }; Body: { reason: string } }>('/v1/chains/:id/resume', mutation(reasonBody), async (req, reply) =>
    accept(req, reply, { kind: 'resume', reason: req.body.reason }),
  );

  // Break-glass (permission `override`): see src/core/chain-controls.ts for what it skips and what not.
  app.post<{ Params: { id: string }; Body: { nodeId: string; reason: string; rollbackHead?: boolean } }>('/v1/chains/:id/override', mutation(overrideBody), async (req, reply) =>
    accept(req, reply, { kind: 'override', nodeId: req.body.nodeId, reason: req.body.reason, ...(req.body.rollbackHead === true ? { rollbackHead: true } : {}) }),
  );

  app.post<{ Params: { id: string }; Body: { reason: string } }>('/v1/chains/:id/override/clear', mutation(reasonBody), async (req, reply) =>
    accept(req, reply, { kind: 'clear-override', reason: req.body.reason }),
  );

  // A new term for the active in the other mode (see src/core/fencing-mode.ts).
  app.post<{ Params: { id: string }; Body: { mode: FencingMode; reason: string } }>('/v1/chains/:id/fencing-mode', mutation(fencingModeBody), async (req, reply) =>
    accept(req, reply, { kind: 'set-fencing-mode', mode: req.body.mode, reason: req.body.reason }),
  );

  app.get<{ Params: { id: string }; Querystring: { wait: number } }>(
    '/v1/operations/:id',
    { schema: { params: operationIdParams, querystring: operationQuery } },
    async (req) => viewOperation(await control.operation(req.params.id, req.query.wait)),
  );

  app.get<{ Querystring: { chain?: string; limit: number } }>('/v1/operations', { schema: { querystring: operationListQuery } }, async (req) => ({
    operations: (await control.listOperations(req.query.chain, req.query.limit)).map(viewOperation),
  }));
}

/** Wall ms of an RFC 3339 field of a body (the schema already checked its form). */
function wallMs(field: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseRfc3339(text);
  if (ms === undefined) throw new BatonError('INVALID_ARGUMENT', `${field}: ${JSON.stringify(text)} is not an RFC 3339 date-time`);
  return ms;
}
