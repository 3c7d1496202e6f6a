// Terms are etcd revisions: unsigned 64-bit, bigint end to end, 0 never valid.
// On the node wire a term travels as the lease token: exactly 8 bytes, big-endian.
import { BatonError } from './errors.js';

export type Term = bigint;

export const MAX_TERM: Term = (1n << 64n) - 1n;

export function parseTerm(value: string | bigint | number): Term {
  let term: bigint;
  try {
    term = BigInt(value);
  } catch {
    throw new BatonError('INVALID_ARGUMENT', `term ${String(value)} is not an integer`);
  }
  if (term <= 0n || term > MAX_TERM) {
    throw new BatonError('INVALID_ARGUMENT', `term ${term} is outside 1..2^64-1`);
  }
  return term;
}

export function termToToken(term: Term): Uint8Array {
  const token = new Uint8Array(8);
  new DataView(token.buffer).setBigUint64(0, parseTerm(term));
  return token;
}

export function tokenToTerm(token: Uint8Array): Term {
  if (token.length !== 8) {
    throw new BatonError('INVALID_ARGUMENT', `lease token must be 8 bytes, got ${token.length}`);
  }
  const term = new DataView(token.buffer, token.byteOffset, 8).getBigUint64(0);
  if (term === 0n) throw new BatonError('INVALID_ARGUMENT', 'term 0 is never valid');
  return term;
}
