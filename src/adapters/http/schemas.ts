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

// ---- operator requests (intents) and the reads that go with them ----

const nodeId = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' } as const;
const reason = { type: 'string', minLength: 1, maxLength: 1000 } as const;
/** RFC 3339; the `date-time` format is checked by parseRfc3339 (registered on the body validator). */
const dateTime = { type: 'string', format: 'date-time', maxLength: 64 } as const;

export const failoverBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: { candidate: nodeId, reason, dryRun: { type: 'boolean' } },
} as const;

export const switchoverBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: { target: nodeId, scheduledAt: dateTime, reason },
} as const;

export const pauseBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: { until: dateTime, reason },
} as const;

/** Break-glass: the node to force active, and why (both required); rollbackHead: see core/rollback.ts. */
export const overrideBody = {
  type: 'object',
  required: ['nodeId', 'reason'],
  additionalProperties: false,
  properties: { nodeId, reason, rollbackHead: { type: 'boolean' } },
} as const;

/** The fencing mode to switch the chain to, and why (both required). */
export const fencingModeBody = {
  type: 'object',
  required: ['mode', 'reason'],
  additionalProperties: false,
  properties: { mode: { type: 'string', enum: ['lease', 'commit'] }, reason },
} as const;

/** resume and switchover/cancel: only a reason. */
export const reasonBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: { reason },
} as const;

/** Headers of a mutation: other headers are allowed, an Idempotency-Key must be printable ASCII. */
export const mutationHeaders = {
  type: 'object',
  properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e][\\x20-\\x7e]*$' } },
} as const;

export const chainListQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { filter: { type: 'string', enum: ['leaderless', 'paused', 'degraded', 'failing-over'] } },
} as const;

export const MAX_WAIT_MS = 60_000;

export const leaderQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    waitForChangeFrom: { type: 'string', pattern: '^(0|[1-9][0-9]{0,19})$' },
    timeout: { type: 'integer', minimum: 0, maximum: MAX_WAIT_MS, default: 30_000 },
  },
} as const;

export const operationIdParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' } },
} as const;

export const operationQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { wait: { type: 'integer', minimum: 0, maximum: MAX_WAIT_MS, default: 0 } },
} as const;

export const operationListQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    chain: chainIdParams.properties.id,
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
  },
} as const;

/** Last-Event-ID: `<etcd revision>-<index>` as the stream sent it. */
export const EVENT_ID_PATTERN = '^[0-9]{1,20}-[0-9]{1,6}$';

export const eventsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    chain: chainIdParams.properties.id,
    lastEventId: { type: 'string', pattern: EVENT_ID_PATTERN },
  },
} as const;

export const eventsHeaders = {
  type: 'object',
  properties: { 'last-event-id': { type: 'string', pattern: EVENT_ID_PATTERN } },
} as const;
