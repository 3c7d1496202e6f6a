// Shape checks on what the store persists, so that a bad value is refused (INVALID_ARGUMENT) before
// it reaches etcd instead of breaking every later read. They belong to the domain; they live here
// until core grows its own validators, and a fake store should call the same functions.
import type { ChainSpec, FencingMode, UnsafeHead } from '../../core/chain.js';
import type { FleetSettings, NewLeader } from '../../core/ports.js';
import { BatonError } from '../../core/errors.js';
import { assertChainId } from './keys.js';

const HEX = /^[0-9a-f]*$/;
const MODES: readonly FencingMode[] = ['lease', 'commit'];

function invalid(message: string): never {
  throw new BatonError('INVALID_ARGUMENT', message);
}

function isCount(n: unknown, min = 0): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= min;
}

function nonEmpty(s: unknown): s is string {
  return typeof s === 'string' && s.length > 0 && s.length <= 256;
}

export function validateChainSpec(spec: ChainSpec): void {
  if (typeof spec !== 'object' || spec === null) invalid('chain spec must be an object');
  assertChainId(spec.id);
  if (typeof spec.genesisHash !== 'string' || !HEX.test(spec.genesisHash)) invalid(`chain ${spec.id}: genesisHash must be lowercase hex or empty`);
  if (!Array.isArray(spec.nodes) || spec.nodes.length === 0) invalid(`chain ${spec.id}: at least one node is required`);
  const ids = new Set<string>();
  for (const node of spec.nodes) {
    if (!nonEmpty(node?.id)) invalid(`chain ${spec.id}: every node needs an id`);
    if (ids.has(node.id)) invalid(`chain ${spec.id}: node id ${node.id} appears twice`);
    ids.add(node.id);
    if (!nonEmpty(node.endpoint)) invalid(`chain ${spec.id}: node ${node.id} needs an endpoint`);
    if (typeof node.priority !== 'number' || !Number.isFinite(node.priority)) invalid(`chain ${spec.id}: node ${node.id} priority must be a number`);
    if (typeof node.zone !== 'string') invalid(`chain ${spec.id}: node ${node.id} zone must be a string`);
  }
  const p = spec.policy;
  if (typeof p !== 'object' || p === null) invalid(`chain ${spec.id}: policy is required`);
  for (const field of ['blockTimeMs', 'probeIntervalMs', 'failureThreshold', 'stallFactor', 'leaseTtlMs'] as const) {
    if (!isCount(p[field], 1)) invalid(`chain ${spec.id}: policy.${field} must be a positive integer`);
  }
  for (const field of ['maxLagBlocks', 'antiFlapMs'] as const) {
    if (!isCount(p[field])) invalid(`chain ${spec.id}: policy.${field} must be a non-negative integer`);
  }
  if (!MODES.includes(p.fencingMode)) invalid(`chain ${spec.id}: policy.fencingMode must be one of ${MODES.join(', ')}`);
}

export function validateNewLeader(next: NewLeader): void {
  if (!nonEmpty(next.nodeId)) invalid('new leader needs a node id');
  if (!isCount(next.fromHead)) invalid('new leader fromHead must be a non-negative integer');
  if (!MODES.includes(next.mode)) invalid(`new leader mode must be one of ${MODES.join(', ')}`);
  if (typeof next.reason !== 'string') invalid('new leader needs a reason');
  const o = next.override;
  if (o !== undefined) {
    if (o.nodeId !== next.nodeId) invalid('an override record must name the new leader');
    if (typeof o.reason !== 'string' || o.reason === '' || o.reason.length > 1024) invalid('an override needs a reason of 1..1024 characters');
    if (!isCount(o.sinceMs)) invalid('override sinceMs must be wall-clock milliseconds');
    if (!nonEmpty(o.operationId)) invalid('an override needs its operation id');
  }
  // A rollback is break-glass only, and says what it did in the override record it comes with.
  const r = next.rollback;
  if (r !== undefined) {
    if (!o || !o.rolledBackFrom || !o.rolledBackTo) invalid('a head rollback needs an override record naming rolledBackFrom and rolledBackTo');
    validateHead(r.head);
    if (r.head.nodeId !== next.nodeId) invalid('a rolled-back head must be held by the new leader');
    if (typeof r.expectedRevision !== 'bigint' || r.expectedRevision <= 0n) invalid('a head rollback needs the revision of the head it replaces');
    if (o.rolledBackTo.number !== r.head.number || o.rolledBackTo.hash !== r.head.hash) invalid('rolledBackTo must be the head written');
    if (o.rolledBackFrom.number <= r.head.number) invalid('a head rollback must set the head lower');
  }
}

export function validateHead(head: UnsafeHead): void {
  if (!isCount(head.number)) invalid('head number must be a non-negative integer');
  if (typeof head.hash !== 'string' || !HEX.test(head.hash)) invalid('head hash must be lowercase hex');
  if (typeof head.parentHash !== 'string' || !HEX.test(head.parentHash)) invalid('head parentHash must be lowercase hex');
  // Genesis was produced under no term, so 0n is allowed here (it is never compared in a txn).
  if (typeof head.term !== 'bigint' || head.term < 0n) invalid('head term must be a non-negative bigint');
  if (!nonEmpty(head.nodeId)) invalid('head needs a node id');
  if (typeof head.l1Origin !== 'string') invalid('head l1Origin must be a string');
  if (!isCount(head.timestamp)) invalid('head timestamp must be a non-negative integer');
}

export function validateFleetSettings(settings: FleetSettings): void {
  if (typeof settings.autoFailover !== 'boolean') invalid('autoFailover must be a boolean');
  if (!isCount(settings.maxConcurrentFailovers)) invalid('maxConcurrentFailovers must be a non-negative integer');
}
