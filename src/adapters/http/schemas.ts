// JSON schemas of request bodies and parameters. Unknown fields are rejected (additionalProperties
// false, and Ajv's removeAdditional is off), never silently stripped. openapi.yaml describes the
// same shapes; test/adapters/http checks responses against it.

export const chainIdParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } },
} as const;

const nodeSpec = {
  type: 'object',
  required: ['id', 'endpoint'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 63 },
    endpoint: { type: 'string', minLength: 3, maxLength: 255 },
    priority: { type: 'integer' },
    zone: { type: 'string', maxLength: 63 },
  },
} as const;

const policy = {
  type: 'object',
  additionalProperties: false,
  properties: {
    blockTimeMs: { type: 'integer' },
    probeIntervalMs: { type: 'integer' },
    failureThreshold: { type: 'integer' },
    stallFactor: { type: 'integer' },
    leaseTtlMs: { type: 'integer' },
    maxLagBlocks: { type: 'integer' },
    antiFlapMs: { type: 'integer' },
    fencingMode: { type: 'string', enum: ['lease', 'commit'] },
  },
} as const;

export const chainSpecBody = {
  type: 'object',
  required: ['nodes'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    genesisHash: { type: 'string', maxLength: 130 },
    nodes: { type: 'array', minItems: 1, maxItems: 64, items: nodeSpec },
    policy,
  },
} as const;

export const fleetSettingsBody = {
  type: 'object',
  required: ['autoFailover', 'maxConcurrentFailovers'],
  additionalProperties: false,
  properties: {
    autoFailover: { type: 'boolean' },
    maxConcurrentFailovers: { type: 'integer', minimum: 1, maximum: 1000 },
  },
} as const;

export const historyQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 } },
} as const;
