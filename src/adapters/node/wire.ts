// Conventions of the node channel shared by every implementation of the node contract.

/**
 * Trailing metadata key carrying Baton's error code next to the gRPC status, so that a caller
 * tells "stale term" from "head behind" (both FAILED_PRECONDITION) without parsing message text.
 * A node that does not send it is still understood: the status alone decides then.
 */
export const ERROR_CODE_KEY = 'baton-error-code';

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function fromHex(hex: string): Buffer {
  return Buffer.from(hex, 'hex');
}
