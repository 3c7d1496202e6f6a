// The service configuration: one schema, loaded once (file, then environment on top), validated,
// frozen. Bad or contradictory values refuse to start with a message naming the field.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';

export interface Config {
  readonly replicaId: string;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  readonly etcd: {
    readonly endpoints: readonly string[];
    readonly prefix: string;
    /** Deadline of every unary etcd call. */
    readonly callDeadlineMs: number;
  };
  readonly replica: {
    /** TTL of this replica's one etcd lease (supervisor keys, registry). */
    readonly leaseTtlS: number;
    /** Stop acting this long before the lease could expire (send time of last acked keepalive + TTL − margin). */
    readonly fenceMarginMs: number;
    /** A free chain not taken by its preferred owner within this long is taken by anyone. */
    readonly takeoverGraceMs: number;
    readonly resyncMs: number;
  };
  readonly node: {
    /** Deadline of every node RPC; also part of every lease bound (send + deadline + skew + TTL). */
    readonly rpcDeadlineMs: number;
    /**
     * How far a node's wall clock may be behind this replica's: a node judges a grant's absolute
     * deadline (not_after_unix_ms) on its wall clock, so lease-mode bounds add this much.
     */
    readonly maxClockSkewMs: number;
  };
  readonly http: { readonly host: string; readonly port: number };
  readonly grpc: { readonly host: string; readonly port: number };
  /** /livez, /readyz and /metrics, plain HTTP (probes and scrapers have no client certificate); port 0: any free port. */
  readonly ops: { readonly host: string; readonly port: number };
  /** Chains declared at startup (JSON array of chain specs), applied with PUT semantics. */
  readonly chainsFile: string | undefined;
  readonly security: SecurityConfig;
  readonly audit: AuditConfig;
  readonly limits: LimitsConfig;
  /**
   * Deliberately broken behaviour for the drill's negative controls only (BATON_UNSAFE_FAULTS);
   * empty in every real deployment, and logged loudly at start when not.
   */
  readonly unsafe: readonly UnsafeFault[];
}

/** The unsafe switches a replica knows; `accept-lower-terms` is the simulated node's (baton sim). */
export const UNSAFE_FAULTS = ['no-fence-compare', 'no-deadlines', 'overlapping-ticks', 'accept-lower-terms'] as const;
export type UnsafeFault = (typeof UNSAFE_FAULTS)[number];

export type RoleName = 'viewer' | 'operator' | 'admin' | 'breakglass' | 'node';
export const ROLE_NAMES: readonly RoleName[] = ['viewer', 'operator', 'admin', 'breakglass', 'node'];

export interface TlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** Roles of one principal (the subject CN, else the first SAN, of its client certificate). */
export interface RoleBinding {
  readonly principal: string;
  readonly roles: readonly RoleName[];
  /** With the node role: the one node this principal speaks for. */
  readonly node?: { readonly chainId: string; readonly nodeId: string };
}

export interface SecurityConfig {
  /** Plaintext everywhere, every caller one all-powerful principal: development only, logged loudly. */
  readonly insecureDev: boolean;
  /** mTLS of the REST and gRPC listeners (and, unless nodeTls is set, of the node channel). */
  readonly tls: TlsFiles | undefined;
  /** Client side of the node channel; defaults to `tls`. */
  readonly nodeTls: TlsFiles | undefined;
  /** INSECURE: plaintext node channel while the API uses mTLS (for nodes that cannot serve TLS at all); logged loudly. */
  readonly insecureNodeChannel: boolean;
  readonly bindings: readonly RoleBinding[];
}

export interface AuditConfig {
  /** Records beyond the newest `maxRecords` are swept. */
  readonly maxRecords: number;
  /** Records older than this are swept. */
  readonly maxAgeMs: number;
  readonly sweepIntervalMs: number;
}

export interface LimitsConfig {
  /** Largest request body (REST) or message (gRPC). */
  readonly bodyBytes: number;
  /** Sustained requests per second per principal (token bucket), and the bucket size. */
  readonly ratePerSecond: number;
  readonly burst: number;
  /** Concurrent long-polls (leader, operation waits) and event streams per principal. */
  readonly maxWaitsPerPrincipal: number;
  readonly maxStreamsPerPrincipal: number;
}

export type ConfigInput = { [K in keyof Config]?: Config[K] extends object ? Record<string, unknown> | unknown[] : unknown };

export const DEFAULTS = {
  logLevel: 'info',
  etcd: { endpoints: ['http://127.0.0.1:2379'], prefix: '/baton/', callDeadlineMs: 2000 },
  replica: { leaseTtlS: 3, fenceMarginMs: 500, takeoverGraceMs: 2000, resyncMs: 5000 },
  node: { rpcDeadlineMs: 250, maxClockSkewMs: 100 },
  http: { host: '127.0.0.1', port: 8080 },
  grpc: { host: '127.0.0.1', port: 9090 },
  ops: { host: '127.0.0.1', port: 0 },
  security: { insecureDev: false, tls: undefined, nodeTls: undefined, insecureNodeChannel: false, bindings: [] },
  audit: { maxRecords: 100_000, maxAgeMs: 90 * 24 * 3600 * 1000, sweepIntervalMs: 60_000 },
  limits: { bodyBytes: 256 * 1024, ratePerSecond: 50, burst: 100, maxWaitsPerPrincipal: 16, maxStreamsPerPrincipal: 8 },
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Environment variables that override the file, and the field each sets. */
const ENV: Record<string, string> = {
  BATON_REPLICA_ID: 'replicaId',
  BATON_LOG_LEVEL: 'logLevel',
  BATON_ETCD_ENDPOINTS: 'etcd.endpoints',
  BATON_ETCD_PREFIX: 'etcd.prefix',
  BATON_ETCD_DEADLINE_MS: 'etcd.callDeadlineMs',
  BATON_REPLICA_LEASE_TTL_S: 'replica.leaseTtlS',
  BATON_FENCE_MARGIN_MS: 'replica.fenceMarginMs',
  BATON_TAKEOVER_GRACE_MS: 'replica.takeoverGraceMs',
  BATON_NODE_DEADLINE_MS: 'node.rpcDeadlineMs',
  BATON_NODE_MAX_CLOCK_SKEW_MS: 'node.maxClockSkewMs',
  BATON_HTTP_HOST: 'http.host',
  BATON_HTTP_PORT: 'http.port',
  BATON_GRPC_HOST: 'grpc.host',
  BATON_GRPC_PORT: 'grpc.port',
  BATON_OPS_HOST: 'ops.host',
  BATON_OPS_PORT: 'ops.port',
  BATON_CHAINS_FILE: 'chainsFile',
  BATON_INSECURE_DEV: 'security.insecureDev',
  BATON_UNSAFE_FAULTS: 'unsafe',
};

export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, string> }): Config {
  let raw: Record<string, unknown> = {};
  if (opts.file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(opts.file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${opts.file}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`config file ${opts.file}: must hold a JSON object of settings`);
    }
    raw = parsed as Record<string, unknown>;
  }
  const flat: Record<string, string> = {};
  for (const [name, field] of Object.entries(ENV)) {
    const v = opts.env?.[name];
    if (v !== undefined && v !== '') flat[field] = v;
  }
  Object.assign(flat, opts.overrides ?? {});
  for (const [field, value] of Object.entries(flat)) setPath(raw, field, value);
  return parseConfig(raw);
}

function setPath(obj: Record<string, unknown>, path: string, value: string): void {
  const parts = path.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

export function parseConfig(raw: Record<string, unknown>): Config {
  const known = new Set(['replicaId', 'logLevel', 'etcd', 'replica', 'node', 'http', 'grpc', 'ops', 'chainsFile', 'security', 'audit', 'limits', 'unsafe']);
  for (const k of Object.keys(raw)) if (!known.has(k)) throw new ConfigError(`${k}: unknown setting`);
  const section = (name: keyof typeof DEFAULTS & string): Record<string, unknown> => {
    const v = raw[name] === undefined ? {} : raw[name];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${name}: must be an object`);
    const defaults = DEFAULTS[name] as Record<string, unknown>;
    for (const k of Object.keys(v)) if (!(k in defaults)) throw new ConfigError(`${name}.${k}: unknown setting`);
    return { ...defaults, ...(v as Record<string, unknown>) };
  };
  const etcd = section('etcd');
  const replica = section('replica');
  const node = section('node');
  const http = section('http');
  const grpc = section('grpc');
  const ops = section('ops');
  const security = section('security');
  const audit = section('audit');
  const limits = section('limits');

  // Values from the environment and flags are strings; a file must give strings where strings are
  // meant (String() would turn a list or an object into a plausible-looking value).
  const str = (name: string, v: unknown): string => {
    if (typeof v !== 'string') throw new ConfigError(`${name}: must be a string, got ${JSON.stringify(v)}`);
    return v;
  };
  const logLevel = str('logLevel', raw.logLevel ?? DEFAULTS.logLevel);
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new ConfigError(`logLevel: "${logLevel}" is not one of debug, info, warn, error`);
  const replicaId = str('replicaId', raw.replicaId ?? `${hostname()}-${randomBytes(3).toString('hex')}`);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(replicaId)) throw new ConfigError(`replicaId: "${replicaId}" must be 1-63 characters [A-Za-z0-9_.-]`);

  const endpoints = typeof etcd.endpoints === 'string' ? etcd.endpoints.split(',').map((s) => s.trim()) : etcd.endpoints;
  if (!Array.isArray(endpoints) || endpoints.length === 0 || !endpoints.every((e) => typeof e === 'string' && /^https?:\/\/[^/\s]+$/.test(e))) {
    throw new ConfigError('etcd.endpoints: must be a non-empty list of http(s)://host:port URLs');
  }
  const prefix = str('etcd.prefix', etcd.prefix);
  if (!/^\/([A-Za-z0-9_.-]+\/)*$/.test(prefix)) throw new ConfigError(`etcd.prefix: "${prefix}" must start and end with "/"`);

  const int = (name: string, v: unknown, min: number, max: number): number => {
    // Decimal digits only: Number() would also take "0x50", "1e3" and "" (as 0).
    const n = typeof v === 'string' ? (/^-?\d+$/.test(v) ? Number(v) : NaN) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name}: must be an integer in ${min}..${max}, got ${String(v)}`);
    return n;
  };
  // A hostname, an IPv4 address or a bare IPv6 address (what the listener takes, no brackets).
  const listenHost = (name: string, v: unknown): string => {
    const h = str(name, v);
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(h) && !/^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$/.test(h)) {
      throw new ConfigError(`${name}: "${h}" must be a hostname or an IP address (IPv6 without brackets)`);
    }
    return h;
  };
  const host = listenHost('http.host', http.host);
  const chainsFile = raw.chainsFile === undefined ? undefined : str('chainsFile', raw.chainsFile);
  if (chainsFile === '') throw new ConfigError('chainsFile: must be a file path');
  const cfg: Config = {
    replicaId,
    logLevel: logLevel as Config['logLevel'],
    etcd: {
      endpoints,
      prefix,
      callDeadlineMs: int('etcd.callDeadlineMs', etcd.callDeadlineMs, 100, 60_000),
    },
    replica: {
      leaseTtlS: int('replica.leaseTtlS', replica.leaseTtlS, 2, 60),
      fenceMarginMs: int('replica.fenceMarginMs', replica.fenceMarginMs, 50, 30_000),
      takeoverGraceMs: int('replica.takeoverGraceMs', replica.takeoverGraceMs, 0, 600_000),
      resyncMs: int('replica.resyncMs', replica.resyncMs, 100, 600_000),
    },
    node: {
      rpcDeadlineMs: int('node.rpcDeadlineMs', node.rpcDeadlineMs, 20, 60_000),
      maxClockSkewMs: int('node.maxClockSkewMs', node.maxClockSkewMs, 0, 10_000),
    },
    http: { host, port: int('http.port', http.port, 0, 65535) },
    grpc: { host: listenHost('grpc.host', grpc.host), port: int('grpc.port', grpc.port, 0, 65535) },
    ops: { host: listenHost('ops.host', ops.host), port: int('ops.port', ops.port, 0, 65535) },
    chainsFile,
    security: parseSecurity(security, str),
    audit: {
      maxRecords: int('audit.maxRecords', audit.maxRecords, 100, 100_000_000),
      maxAgeMs: int('audit.maxAgeMs', audit.maxAgeMs, 60_000, 10 * 365 * 24 * 3600 * 1000),
      sweepIntervalMs: int('audit.sweepIntervalMs', audit.sweepIntervalMs, 1000, 24 * 3600 * 1000),
    },
    limits: {
      bodyBytes: int('limits.bodyBytes', limits.bodyBytes, 1024, 64 * 1024 * 1024),
      ratePerSecond: int('limits.ratePerSecond', limits.ratePerSecond, 1, 1_000_000),
      burst: int('limits.burst', limits.burst, 1, 1_000_000),
      maxWaitsPerPrincipal: int('limits.maxWaitsPerPrincipal', limits.maxWaitsPerPrincipal, 1, 100_000),
      maxStreamsPerPrincipal: int('limits.maxStreamsPerPrincipal', limits.maxStreamsPerPrincipal, 1, 100_000),
    },
    unsafe: parseUnsafe(raw.unsafe),
  };
  if (cfg.grpc.port !== 0 && cfg.grpc.port === cfg.http.port) {
    throw new ConfigError(`grpc.port: ${cfg.grpc.port} is also http.port; the two listeners need their own ports`);
  }
  if (cfg.ops.port !== 0 && (cfg.ops.port === cfg.http.port || cfg.ops.port === cfg.grpc.port)) {
    throw new ConfigError(`ops.port: ${cfg.ops.port} is also the ${cfg.ops.port === cfg.http.port ? 'http' : 'grpc'} port; each listener needs its own port`);
  }
  // Contradictory timings.
  const ttlMs = cfg.replica.leaseTtlS * 1000;
  if (cfg.replica.fenceMarginMs >= ttlMs / 2) {
    throw new ConfigError(`replica.fenceMarginMs: ${cfg.replica.fenceMarginMs} must be below half the lease TTL (${ttlMs / 2} ms)`);
  }
  if (cfg.etcd.callDeadlineMs >= ttlMs - cfg.replica.fenceMarginMs) {
    throw new ConfigError(`etcd.callDeadlineMs: ${cfg.etcd.callDeadlineMs} must be below the lease TTL minus the fence margin (${ttlMs - cfg.replica.fenceMarginMs} ms)`);
  }
  return deepFreeze(cfg);
}

function parseUnsafe(v: unknown): UnsafeFault[] {
  if (v === undefined) return [];
  const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : v;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string' && (UNSAFE_FAULTS as readonly string[]).includes(x))) {
    throw new ConfigError(`unsafe: must be a list of ${UNSAFE_FAULTS.join(', ')} (negative controls only), got ${JSON.stringify(v)}`);
  }
  return [...new Set(list as UnsafeFault[])];
}

const PRINCIPAL = /^[\x21-\x7e][\x20-\x7e]{0,254}$/;

function parseSecurity(s: Record<string, unknown>, str: (name: string, v: unknown) => string): SecurityConfig {
  const flag = (name: string, v: unknown): boolean => {
    if (v === true || v === 'true' || v === '1') return true;
    if (v === false || v === 'false' || v === '0' || v === undefined) return false;
    throw new ConfigError(`${name}: must be true or false, got ${JSON.stringify(v)}`);
  };
  const insecureDev = flag('security.insecureDev', s.insecureDev);
  const insecureNodeChannel = flag('security.insecureNodeChannel', s.insecureNodeChannel);
  const files = (name: string, v: unknown): TlsFiles | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${name}: must be an object {caFile, certFile, keyFile}`);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['caFile', 'certFile', 'keyFile'].includes(k)) throw new ConfigError(`${name}.${k}: unknown setting`);
    const file = (k: string) => {
      const f = str(`${name}.${k}`, o[k]);
      if (f === '') throw new ConfigError(`${name}.${k}: must be a file path`);
      return f;
    };
    return { caFile: file('caFile'), certFile: file('certFile'), keyFile: file('keyFile') };
  };
  const tls = files('security.tls', s.tls);
  const nodeTls = files('security.nodeTls', s.nodeTls);
  if (!Array.isArray(s.bindings)) throw new ConfigError('security.bindings: must be a list of {principal, roles, node?}');
  const seen = new Set<string>();
  const bindings = s.bindings.map((b: unknown, i): RoleBinding => {
    const at = `security.bindings[${i}]`;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new ConfigError(`${at}: must be an object {principal, roles, node?}`);
    const o = b as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!['principal', 'roles', 'node'].includes(k)) throw new ConfigError(`${at}.${k}: unknown setting`);
    const principal = str(`${at}.principal`, o.principal);
    if (!PRINCIPAL.test(principal)) throw new ConfigError(`${at}.principal: must be 1-255 printable characters`);
    if (seen.has(principal)) throw new ConfigError(`${at}.principal: ${principal} is bound twice`);
    seen.add(principal);
    if (!Array.isArray(o.roles) || o.roles.length === 0 || !o.roles.every((r) => (ROLE_NAMES as readonly unknown[]).includes(r))) {
      throw new ConfigError(`${at}.roles: must be a non-empty list of ${ROLE_NAMES.join(', ')}`);
    }
    const roles = [...new Set(o.roles as RoleName[])];
    let node: RoleBinding['node'];
    if (o.node !== undefined) {
      const n = o.node as Record<string, unknown>;
      if (typeof n !== 'object' || n === null || typeof n.chainId !== 'string' || typeof n.nodeId !== 'string' || Object.keys(n).length !== 2) {
        throw new ConfigError(`${at}.node: must be {chainId, nodeId}`);
      }
      node = { chainId: n.chainId, nodeId: n.nodeId };
    }
    if (roles.includes('node') !== (node !== undefined)) throw new ConfigError(`${at}.node: required with the node role, and only with it`);
    return { principal, roles, ...(node ? { node } : {}) };
  });
  return { insecureDev, tls, nodeTls, insecureNodeChannel, bindings };
}

/**
 * Refuses to serve without transport security: mTLS files, or the explicit insecure-dev flag.
 * Checked when serving (not when parsing), so that tools reading the config need neither.
 */
export function assertTransportSecurity(cfg: Config): void {
  const { insecureDev, tls } = cfg.security;
  if (insecureDev && tls) throw new ConfigError('security.insecureDev: contradicts security.tls; choose one');
  if (!insecureDev && !tls) {
    throw new ConfigError('security.tls: mTLS needs {caFile, certFile, keyFile}; plaintext only with security.insecureDev: true (or BATON_INSECURE_DEV=true)');
  }
}

/**
 * The shortest node lease that survives a supervisor crash: the dead replica's etcd lease must
 * expire (TTL, plus up to 0.5 s of etcd's expiry sweep), the successor must see it (grace when it
 * is not the preferred owner) and renew (one node deadline), with one renewal interval of slack.
 */
export function minNodeLeaseTtlMs(cfg: Config): number {
  return cfg.replica.leaseTtlS * 1000 + 500 + cfg.node.rpcDeadlineMs * 2 + 500;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
