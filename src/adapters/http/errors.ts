// The one table from domain error codes to HTTP status, and the error body every route returns:
// {code, message, details, requestId}. Clients branch on `code`.
import type { FastifyError, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { BatonError, type ErrorCode } from '../../core/errors.js';

export const HTTP_STATUS: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  NOT_SUPERVISOR: 409,
  FENCED: 409,
  STALE_TERM: 409,
  NOT_LEADER: 409,
  NOT_COMMIT_MODE: 409,
  HEAD_BEHIND: 409,
  HEAD_MISMATCH: 409,
  MISCONFIGURED: 409,
  LEASE_EXPIRED: 409,
  NOT_ACTIVE: 409,
  ALREADY_ACTIVE: 409,
  BAD_TICKET: 409,
  PAUSED: 409,
  OVERRIDDEN: 409,
  ROLLBACK_REFUSED: 409,
  IDEMPOTENCY_MISMATCH: 422,
  NOT_ELIGIBLE: 409,
  STORE_UNAVAILABLE: 503,
  NODE_UNREACHABLE: 503,
  UNAVAILABLE: 503,
  INTERNAL: 500,
  DEADLINE_EXCEEDED: 504,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
};

export interface ErrorBody {
  code: string;
  message: string;
  details: Record<string, unknown>;
  requestId: string;
}

export function errorHandler(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): void {
  let body: ErrorBody;
  let status: number;
  if (err instanceof BatonError) {
    status = HTTP_STATUS[err.code];
    // Over a rate limit: when the bucket has a token again.
    if (err.code === 'RESOURCE_EXHAUSTED' && typeof err.details.retryAfterMs === 'number') {
      void reply.header('retry-after', String(Math.max(1, Math.ceil(err.details.retryAfterMs / 1000))));
    }
    body = { code: err.code, message: err.message, details: err.details, requestId: req.id };
  } else if ('validation' in err && err.validation) {
    status = 400;
    body = {
      code: 'INVALID_ARGUMENT',
      message: err.message,
      details: { validation: err.validation },
      requestId: req.id,
    };
  } else if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    // Fastify's own client errors: bad JSON, wrong content type, body too large.
    status = err.statusCode;
    const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'INVALID_ARGUMENT';
    // Fastify's own 415 text ("Unsupported Media Type") does not say what is accepted.
    const message = status === 415 ? `request body must be application/json, got ${JSON.stringify(req.headers['content-type'] ?? '')}` : err.message;
    body = { code, message, details: {}, requestId: req.id };
  } else {
    status = 500;
    req.log.error({ err }, 'unhandled error');
    body = { code: 'INTERNAL', message: 'internal error', details: {}, requestId: req.id };
  }
  void reply.status(status).send(body);
}

/**
 * The message of a schema validation failure, naming each offending field: Ajv's own message for
 * an unknown or missing field does not say which one ("must NOT have additional properties").
 */
export function formatValidationErrors(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const problems = errors.map((e) => {
    const at = `${dataVar}${e.instancePath}`;
    const params = e.params as Record<string, unknown>;
    if (e.keyword === 'additionalProperties') return `${at}: unknown field "${String(params.additionalProperty)}"`;
    if (e.keyword === 'required') return `${at}: missing field "${String(params.missingProperty)}"`;
    return `${at} ${e.message ?? 'is invalid'}`;
  });
  return new Error(`invalid request: ${problems.join('; ')}`);
}
