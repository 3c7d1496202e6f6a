// The one table from Baton's error codes to gRPC status on the operator API, and the one function
// that turns any error into what a call answers: the status, the message, and Baton's own code in
// the trailing metadata (`baton-error-code`), so that clients tell codes that share a status apart
// without reading message text.
import { status as S, Metadata, type StatusObject } from '@grpc/grpc-js';
import { BatonError, type ErrorCode } from '../../core/errors.js';
import { ERROR_CODE_KEY } from '../node/wire.js';

/**
 * - CONFLICT is another leadership operation (or a concurrent write) in the way: ABORTED, retry
 *   once it is done.
 * - PAUSED, OVERRIDDEN, NOT_ELIGIBLE and the fencing and continuity refusals need the chain or the node to
 *   change first: FAILED_PRECONDITION.
 * - IDEMPOTENCY_MISMATCH is FAILED_PRECONDITION: the request is valid by itself, but the key is
 *   bound to another request; retrying the same call with that key keeps failing until it expires.
 * - NOT_SUPERVISOR and the unavailable dependencies are UNAVAILABLE: another try (or replica) may
 *   succeed.
 */
export const GRPC_STATUS: Readonly<Record<ErrorCode, S>> = {
  INVALID_ARGUMENT: S.INVALID_ARGUMENT,
  NOT_FOUND: S.NOT_FOUND,
  CONFLICT: S.ABORTED,
  NOT_SUPERVISOR: S.UNAVAILABLE,
  FENCED: S.FAILED_PRECONDITION,
  STALE_TERM: S.FAILED_PRECONDITION,
  NOT_LEADER: S.FAILED_PRECONDITION,
  NOT_COMMIT_MODE: S.FAILED_PRECONDITION,
  HEAD_BEHIND: S.FAILED_PRECONDITION,
  HEAD_MISMATCH: S.FAILED_PRECONDITION,
  MISCONFIGURED: S.FAILED_PRECONDITION,
  LEASE_EXPIRED: S.FAILED_PRECONDITION,
  NOT_ACTIVE: S.FAILED_PRECONDITION,
  ALREADY_ACTIVE: S.ALREADY_EXISTS,
  BAD_TICKET: S.FAILED_PRECONDITION,
  STORE_UNAVAILABLE: S.UNAVAILABLE,
  NODE_UNREACHABLE: S.UNAVAILABLE,
  UNAVAILABLE: S.UNAVAILABLE,
  PAUSED: S.FAILED_PRECONDITION,
  OVERRIDDEN: S.FAILED_PRECONDITION,
  ROLLBACK_REFUSED: S.FAILED_PRECONDITION,
  IDEMPOTENCY_MISMATCH: S.FAILED_PRECONDITION,
  NOT_ELIGIBLE: S.FAILED_PRECONDITION,
  INTERNAL: S.INTERNAL,
  DEADLINE_EXCEEDED: S.DEADLINE_EXCEEDED,
  UNAUTHENTICATED: S.UNAUTHENTICATED,
  PERMISSION_DENIED: S.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: S.RESOURCE_EXHAUSTED,
};

/** What a failed call answers. An error that is not a BatonError is a bug: its text stays in the log. */
export function toServiceError(err: unknown): Partial<StatusObject> {
  const metadata = new Metadata();
  if (err instanceof BatonError) {
    metadata.set(ERROR_CODE_KEY, err.code);
    return { code: GRPC_STATUS[err.code], details: err.message, metadata };
  }
  metadata.set(ERROR_CODE_KEY, 'INTERNAL');
  return { code: S.INTERNAL, details: 'internal error', metadata };
}
