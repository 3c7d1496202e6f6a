// Validation of chain specs: everything a chain needs to be supervised safely, checked before it
// reaches etcd. Each problem names the field, so a 400 says exactly what to fix.
import { DEFAULT_POLICY, type ChainPolicy, type ChainSpec, type FencingMode, type NodeSpec } from './chain.js';
import { BatonError } from './errors.js';

export const CHAIN_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const ENDPOINT_PATTERN = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const HEX_PATTERN = /^([0-9a-f]{2})*$/;

/** Limits that depend on the service's own configuration, not on the chain. */
export interface SpecLimits {
  /** A node lease must outlive a supervisor takeover, or a replica crash stops the chain. */
  readonly minLeaseTtlMs: number;
  /** Node RPC deadline: a probe interval shorter than this would pile probes up. */
  readonly nodeDeadlineMs: number;
}

export interface ChainSpecInput {
  readonly id?: unknown;
  readonly genesisHash?: unknown;
  readonly nodes?: unknown;
  readonly policy?: unknown;
}

const SPEC_FIELDS: readonly string[] = ['id', 'genesisHash', 'nodes', 'policy'];
const NODE_FIELDS: readonly string[] = ['id', 'endpoint', 'priority', 'zone'];
const POLICY_FIELDS: readonly string[] = Object.keys(DEFAULT_POLICY);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Unknown fields are refused, never ignored: a typo ("polcy") must not silently mean "defaults". */
function refuseUnknown(value: Record<string, unknown>, known: readonly string[], at: string, problems: string[]): void {
  for (const k of Object.keys(value)) if (!known.includes(k)) problems.push(`${at}${k}: unknown field`);
}

export function validateChainSpec(input: ChainSpecInput, limits: SpecLimits): ChainSpec {
  if (!isObject(input)) throw new BatonError('INVALID_ARGUMENT', 'invalid chain spec: must be an object', { problems: ['must be an object'] });
  const problems: string[] = [];
  refuseUnknown(input, SPEC_FIELDS, '', problems);
  const id = typeof input.id === 'string' ? input.id : '';
  if (!CHAIN_ID_PATTERN.test(id)) problems.push(`id: "${String(input.id)}" must match ${CHAIN_ID_PATTERN}`);
  const genesisHash = typeof input.genesisHash === 'string' ? input.genesisHash.toLowerCase().replace(/^0x/, '') : '';
  if (input.genesisHash !== undefined && typeof input.genesisHash !== 'string') problems.push('genesisHash: must be a hex string');
  else if (!HEX_PATTERN.test(genesisHash) || genesisHash.length > 128) problems.push('genesisHash: must be hex of at most 64 bytes');
  const nodes = validateNodes(input.nodes, problems);
  const policy = validatePolicy(input.policy, limits, problems);
  if (problems.length > 0) {
    throw new BatonError('INVALID_ARGUMENT', `invalid chain spec: ${problems.join('; ')}`, { problems });
  }
  return Object.freeze({ id, genesisHash, nodes, policy });
}

function validateNodes(value: unknown, problems: string[]): NodeSpec[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push('nodes: at least one node is required');
    return [];
  }
  if (value.length > 64) problems.push('nodes: at most 64 nodes');
  const ids = new Set<string>();
  const endpoints = new Set<string>();
  return value.map((raw: unknown, i): NodeSpec => {
    if (!isObject(raw)) problems.push(`nodes[${i}]: must be an object`);
    const n = isObject(raw) ? raw : {};
    refuseUnknown(n, NODE_FIELDS, `nodes[${i}].`, problems);
    const id = typeof n.id === 'string' ? n.id : '';
    const endpoint = typeof n.endpoint === 'string' ? n.endpoint : '';
    if (!NODE_ID_PATTERN.test(id)) problems.push(`nodes[${i}].id: "${String(n.id)}" must match ${NODE_ID_PATTERN}`);
    else if (ids.has(id)) problems.push(`nodes[${i}].id: duplicate node id "${id}"`);
    ids.add(id);
    const m = ENDPOINT_PATTERN.exec(endpoint);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      problems.push(`nodes[${i}].endpoint: "${String(n.endpoint)}" must be host:port`);
    } else if (endpoints.has(endpoint)) {
      problems.push(`nodes[${i}].endpoint: duplicate endpoint "${endpoint}"`);
    }
    endpoints.add(endpoint);
    const priority = n.priority === undefined ? 0 : n.priority;
    if (!Number.isInteger(priority) || Math.abs(priority as number) > 1000) {
      problems.push(`nodes[${i}].priority: must be an integer in -1000..1000`);
    }
    const zone = n.zone === undefined ? '' : n.zone;
    if (typeof zone !== 'string' || zone.length > 63) problems.push(`nodes[${i}].zone: must be a string of at most 63 characters`);
    return Object.freeze({ id, endpoint, priority: Number(priority), zone: String(zone) });
  });
}

const POLICY_RANGES: Record<Exclude<keyof ChainPolicy, 'fencingMode'>, [number, number]> = {
  blockTimeMs: [50, 600_000],
  probeIntervalMs: [50, 60_000],
  failureThreshold: [1, 100],
  stallFactor: [2, 1000],
  leaseTtlMs: [500, 600_000],
  maxLagBlocks: [0, 1_000_000],
  antiFlapMs: [0, 86_400_000],
};

function validatePolicy(value: unknown, limits: SpecLimits, problems: string[]): ChainPolicy {
  if (value !== undefined && !isObject(value)) problems.push('policy: must be an object');
  const raw = isObject(value) ? value : {};
  refuseUnknown(raw, POLICY_FIELDS, 'policy.', problems);
  const out: Record<string, unknown> = { ...DEFAULT_POLICY };
  for (const [field, [min, max]] of Object.entries(POLICY_RANGES)) {
    const v = raw[field];
    if (v === undefined) continue;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
      problems.push(`policy.${field}: must be an integer in ${min}..${max}`);
      continue;
    }
    out[field] = v;
  }
  const mode = raw.fencingMode ?? DEFAULT_POLICY.fencingMode;
  if (mode !== 'lease' && mode !== 'commit') problems.push(`policy.fencingMode: "${String(mode)}" must be "lease" or "commit"`);
  out.fencingMode = mode as FencingMode;
  const p = out as unknown as ChainPolicy;
  // Contradictory timings.
  if (p.probeIntervalMs < limits.nodeDeadlineMs) {
    problems.push(`policy.probeIntervalMs: ${p.probeIntervalMs} is below the node RPC deadline ${limits.nodeDeadlineMs}`);
  }
  if (p.leaseTtlMs < 5 * p.probeIntervalMs) {
    problems.push(`policy.leaseTtlMs: ${p.leaseTtlMs} must be at least 5 × probeIntervalMs (${5 * p.probeIntervalMs}) so renewals arrive in time`);
  }
  if (p.leaseTtlMs < limits.minLeaseTtlMs) {
    problems.push(`policy.leaseTtlMs: ${p.leaseTtlMs} must be at least ${limits.minLeaseTtlMs} so the lease outlives a supervisor takeover`);
  }
  if (p.stallFactor * p.blockTimeMs < 2 * p.probeIntervalMs) {
    problems.push('policy.stallFactor: stallFactor × blockTimeMs must be at least 2 probe intervals to tell a stall from a slow probe');
  }
  return Object.freeze(p);
}
