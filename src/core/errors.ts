// The one error type of Baton. Callers branch on `code`, never on message text; the HTTP and gRPC
// status of each code live in exactly one table per surface (adapters/http, adapters/grpc).

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'NOT_SUPERVISOR'
  | 'FENCED'
  | 'STALE_TERM'
  | 'NOT_LEADER'
  /** A head commit under a lease-mode term: only a commit-mode term's node commits its blocks. */
  | 'NOT_COMMIT_MODE'
  | 'HEAD_BEHIND'
  | 'HEAD_MISMATCH'
  | 'MISCONFIGURED'
  | 'LEASE_EXPIRED'
  | 'NOT_ACTIVE'
  | 'ALREADY_ACTIVE'
  | 'BAD_TICKET'
  | 'STORE_UNAVAILABLE'
  | 'NODE_UNREACHABLE'
  | 'UNAVAILABLE'
  | 'PAUSED'
  /** A break-glass override is in force: leadership moves only by another override or after a clear. */
  | 'OVERRIDDEN'
  /** A break-glass head rollback that would discard live blocks, or has no head to roll back to. */
  | 'ROLLBACK_REFUSED'
  | 'IDEMPOTENCY_MISMATCH'
  | 'NOT_ELIGIBLE'
  | 'INTERNAL'
  /** A node refusing a lease-granting call past its absolute deadline (not_after_unix_ms). */
  | 'DEADLINE_EXCEEDED'
  // Access: no usable client identity, a role without the permission, over a per-principal limit.
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED';

export class BatonError extends Error {
  override readonly name = 'BatonError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function isBatonError(err: unknown, code?: ErrorCode): err is BatonError {
  return err instanceof BatonError && (code === undefined || err.code === code);
}
