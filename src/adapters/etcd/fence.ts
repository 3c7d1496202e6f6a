// The supervisor fence, as every fenced etcd write uses it: checked before a txn is built, compared
// inside the txn (create revision + value of the chain's supervisor key: a deposed supervisor,
// or a new election by the same replica, cannot write), and read back in the txn's failure branch
// to tell FENCED from any other refusal without a second request.
import type { ICompare, IKeyValue } from 'etcd3';
import { BatonError } from '../../core/errors.js';
import type { SupervisionFence } from '../../core/ports.js';
import { compare, toRevision } from './client.js';
import { assertChainId, type EtcdKeys } from './keys.js';

/** Refuses a fence that could not hold (wrong key, revision 0) before any txn is built. */
export function checkFence(keys: EtcdKeys, fence: SupervisionFence): void {
  assertChainId(fence.chainId);
  if (fence.key !== keys.supervisor(fence.chainId)) {
    throw new BatonError('INVALID_ARGUMENT', `fence key ${fence.key} is not the supervisor key of ${fence.chainId}`);
  }
  if (fence.createRevision <= 0n) throw new BatonError('INVALID_ARGUMENT', `fence revision ${fence.createRevision} is not a revision`);
}

export function fenceCompares(fence: SupervisionFence): ICompare[] {
  return [compare.createRevision(fence.key, fence.createRevision), compare.value(fence.key, fence.replicaId)];
}

/** Throws FENCED unless `sup` (the supervisor key as the failed txn read it) still matches the fence. */
export function throwIfFenced(fence: SupervisionFence, sup: IKeyValue | undefined): void {
  const holds = sup !== undefined && toRevision(sup.create_revision) === fence.createRevision && sup.value.toString() === fence.replicaId;
  if (holds) return;
  throw new BatonError('FENCED', `${fence.replicaId} no longer supervises ${fence.chainId}`, {
    chainId: fence.chainId,
    replicaId: fence.replicaId,
    holder: sup?.value.toString() ?? null,
  });
}
