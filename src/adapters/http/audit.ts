// GET /v1/audit: the audit trail, newest first, by chain, principal and time range. Append-only:
// no route deletes records (retention is configuration: audit.maxRecords, audit.maxAgeMs).
import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../api/control-plane.js';
import { BatonError } from '../../core/errors.js';
import { parseRfc3339 } from './views.js';

function time(field: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseRfc3339(text);
  if (ms === undefined) throw new BatonError('INVALID_ARGUMENT', `${field}: ${JSON.stringify(text)} is not an RFC 3339 date-time`);
  return ms;
}

const auditQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    chain: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
    principal: { type: 'string', minLength: 1, maxLength: 255 },
    from: { type: 'string', maxLength: 64 },
    to: { type: 'string', maxLength: 64 },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
  },
} as const;

export function registerAuditRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get<{ Querystring: { chain?: string; principal?: string; from?: string; to?: string; limit: number } }>(
    '/v1/audit',
    { schema: { querystring: auditQuery } },
    async (req) => {
      const { chain, principal, from, to, limit } = req.query;
      const fromMs = time('from', from);
      const toMs = time('to', to);
      const records = await control.queryAudit({
        ...(chain !== undefined ? { chainId: chain } : {}),
        ...(principal !== undefined ? { principal } : {}),
        ...(fromMs !== undefined ? { fromMs } : {}),
        ...(toMs !== undefined ? { toMs } : {}),
        limit,
      });
      return { records };
    },
  );
}
