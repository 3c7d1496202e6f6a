// The checks a node applies to commands, as pure functions of the request and the node's state.
// Each refusal is a BatonError whose code server.ts maps to a gRPC status.
import { BatonError } from '../core/errors.js';
import { HandoffTicket } from '../gen/evnode/admin/v1/control.js';
import type { BlockChain } from './chain.js';

export function leaseTtlMs(ms: bigint): number {
  if (ms <= 0n) throw new BatonError('INVALID_ARGUMENT', 'lease_ttl_ms must be > 0');
  if (ms > BigInt(Number.MAX_SAFE_INTEGER)) throw new BatonError('INVALID_ARGUMENT', `lease_ttl_ms ${ms} is too large`);
  return Number(ms);
}

/**
 * The absolute deadline of a lease-granting call (`not_after_unix_ms`, wall-clock ms; 0: none):
 * past it the call is refused and changes nothing. gRPC's own deadline is relative and counted
 * from when this process read the call, so it cannot tell a call that waited in the socket buffer
 * while the process was frozen. Returns the latest wall-clock end of the lease the call may grant.
 */
export function requireNotAfter(notAfterUnixMs: bigint, ttlMs: number, wallNow: number): number {
  if (notAfterUnixMs === 0n) return Infinity;
  const notAfter = Number(notAfterUnixMs);
  if (wallNow > notAfter) {
    throw new BatonError('DEADLINE_EXCEEDED', `call past its deadline: not_after ${notAfter} is ${wallNow - notAfter} ms ago`, { notAfter, lateMs: wallNow - notAfter });
  }
  return notAfter + ttlMs;
}

/**
 * Fencing: nothing older than the highest term the node has seen. `unsafeAcceptLowerTerms` is the
 * negative control of the drill (BATON_UNSAFE_FAULTS=accept-lower-terms): never set it otherwise.
 */
export function refuseStale(term: bigint, highest: bigint, unsafeAcceptLowerTerms = false): void {
  if (term < highest && !unsafeAcceptLowerTerms) {
    throw new BatonError('STALE_TERM', `stale term ${term} < highest ${highest}`, {
      term: term.toString(),
      highest: highest.toString(),
    });
  }
}

/** A start names (when it does) the chain the node reports and this node. */
export function requireAddressee(req: { chainId: string; nodeId: string }, chainId: string, nodeId: string): void {
  if (req.chainId !== '' && req.chainId !== chainId) {
    throw new BatonError('MISCONFIGURED', `chain id mismatch: node reports "${chainId}", start is for "${req.chainId}"`);
  }
  if (req.nodeId !== '' && req.nodeId !== nodeId) {
    throw new BatonError('MISCONFIGURED', `node id mismatch: this is "${nodeId}", start is for "${req.nodeId}"`);
  }
}

/** The node holds block `number` (with that hash, when one is given). */
export function requireHeadAtLeast(chain: BlockChain, number: number, hash: Uint8Array): void {
  const have = chain.height;
  if (have < number) throw new BatonError('HEAD_BEHIND', `head behind: have ${have} need ${number}`, { have, need: number });
  if (hash.length > 0 && !chain.at(number)!.hash.equals(hash)) {
    throw new BatonError('HEAD_MISMATCH', `head mismatch at ${number}`, { at: number });
  }
}

/** The node's head is exactly block `number` with that hash. */
export function requireHeadExactly(chain: BlockChain, number: number, hash: Uint8Array): void {
  requireHeadAtLeast(chain, number, hash);
  const have = chain.height;
  if (have !== number) throw new BatonError('HEAD_MISMATCH', `head mismatch at ${number}: have ${have}`, { at: number, have });
}

/** Decodes a handoff ticket and checks it is for this chain and (when it names one) this node. */
export function readTicket(bytes: Uint8Array, chainId: string, nodeId: string): HandoffTicket {
  const bad = (why: string) => new BatonError('BAD_TICKET', `bad ticket: ${why}`);
  if (bytes.length === 0) throw bad('empty');
  let ticket: HandoffTicket;
  try {
    ticket = HandoffTicket.decode(bytes);
  } catch (err) {
    throw bad(`cannot decode (${err instanceof Error ? err.message : String(err)})`);
  }
  if (ticket.chainId !== chainId) throw bad(`for chain "${ticket.chainId}", this node is on "${chainId}"`);
  if (ticket.targetId !== '' && ticket.targetId !== nodeId) throw bad(`for node "${ticket.targetId}", this is "${nodeId}"`);
  if (ticket.term === 0n) throw bad('term 0');
  if (ticket.l2Hash.length !== 32) throw bad(`head hash has ${ticket.l2Hash.length} bytes, not 32`);
  return ticket;
}
