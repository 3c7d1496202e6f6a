// Starts `baton serve` replicas for tests, drills and the demo, each a ManagedProcess (tracked and
// signalled by PID), with a small REST client whose every call has a deadline.
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManagedProcess } from './process.js';
import type { RoleBinding, TlsFiles } from '../config/config.js';
import type { ChainView, TermRecordView } from '../core/status.js';

const BATON_BIN = fileURLToPath(new URL('../../bin/baton.js', import.meta.url));

export interface StartBatonOptions {
  replicaId: string;
  etcd: readonly string[];
  /** Config file and process output go here. */
  dir: string;
  /** Merged into the generated config file (see src/config/config.ts). */
  config?: Record<string, unknown>;
  /** The gRPC port (0 or absent: a free one), fixed when nodes must be told it up front. */
  grpcPort?: number;
  logLevel?: string;
  readyTimeoutMs?: number;
  /** Every stdout line (pino JSON) of the replica. */
  onLine?: (line: string) => void;
  /** mTLS: the replica's certificate, its role bindings, and the client certificate of `api`. Absent: insecure dev mode. */
  security?: DevSecurity;
  /** Added to the process environment (e.g. OTEL_EXPORTER_OTLP_ENDPOINT). */
  env?: Record<string, string>;
  /** Node.js flags before the script (e.g. --cpu-prof, which NODE_OPTIONS does not take). */
  nodeArgs?: readonly string[];
}

export interface DevSecurity {
  readonly server: TlsFiles;
  readonly client: TlsFiles;
  readonly bindings: readonly RoleBinding[];
  /**
   * INSECURE: Baton commands nodes in plaintext without mutual authentication (for nodes that
   * cannot serve TLS; logged loudly). The TLS devstack's nodes serve mTLS, so it does not set it.
   */
  readonly insecureNodeChannel?: boolean;
}

export interface BatonProcess {
  readonly replicaId: string;
  readonly process: ManagedProcess;
  readonly pid: number;
  readonly url: string;
  /** host:port of its gRPC API. */
  readonly grpcAddress: string;
  /** http://host:port of /livez, /readyz and /metrics. */
  readonly opsUrl: string;
  readonly outputFile: string;
  readonly api: BatonApi;
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
}

export async function startBaton(opts: StartBatonOptions): Promise<BatonProcess> {
  const configFile = join(opts.dir, `${opts.replicaId}.config.json`);
  const outputFile = join(opts.dir, `${opts.replicaId}.out.log`);
  const config = {
    replicaId: opts.replicaId,
    logLevel: opts.logLevel ?? 'info',
    ...opts.config,
    etcd: { ...(opts.config?.etcd as object | undefined), endpoints: opts.etcd },
    http: { host: '127.0.0.1', port: 0 },
    grpc: { host: '127.0.0.1', port: opts.grpcPort ?? 0 },
    security: opts.security
      ? { tls: opts.security.server, bindings: opts.security.bindings, insecureNodeChannel: opts.security.insecureNodeChannel ?? false }
      : { insecureDev: true },
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  let address: string | undefined;
  let opsAddress: string | undefined;
  let grpcAddress: string | undefined;
  const proc = await ManagedProcess.start({
    command: process.execPath,
    args: [...(opts.nodeArgs ?? []), BATON_BIN, 'serve', '--config', configFile],
    logFile: outputFile,
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
    onLine: (line) => {
      opts.onLine?.(line);
    },
  });
  try {
    const line = await proc.waitForLine((l) => l.includes('"baton serving"'), opts.readyTimeoutMs ?? 20_000);
    ({ address, opsAddress, grpcAddress } = JSON.parse(line) as { address: string; opsAddress: string; grpcAddress: string });
  } catch (err) {
    await proc.kill();
    throw new Error(`baton ${opts.replicaId} did not start (see ${outputFile}): ${err instanceof Error ? err.message : String(err)}`);
  }
  const url = address;
  return {
    replicaId: opts.replicaId,
    process: proc,
    pid: proc.pid,
    url,
    opsUrl: opsAddress!,
    grpcAddress: grpcAddress!,
    outputFile,
    api: new BatonApi(url, undefined, opts.security?.client),
    stop: (graceMs) => proc.stop(graceMs),
    kill: () => proc.kill(),
  };
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

/** A thin REST client for tests and the demo. */
export class BatonApi {
  private readonly tls: { ca: Buffer; cert: Buffer; key: Buffer } | undefined;

  constructor(
    readonly baseUrl: string,
    private readonly deadlineMs = 5000,
    /** Client certificate for an mTLS (https) API. */
    tls?: TlsFiles,
  ) {
    this.tls = tls && { ca: readFileSync(tls.caFile), cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
    if (this.tls) {
      const res = await httpsCall(`${this.baseUrl}${path}`, method, body, this.tls, this.deadlineMs);
      return { status: res.status, body: (res.text ? JSON.parse(res.text) : undefined) as T };
    }
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.deadlineMs),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  }

  putChain(id: string, spec: unknown): Promise<ApiResponse> {
    return this.request('PUT', `/v1/chains/${id}`, spec);
  }

  getChain<T = ChainViewJson>(id: string): Promise<ApiResponse<T>> {
    return this.request<T>('GET', `/v1/chains/${id}`);
  }

  history(id: string): Promise<ApiResponse<{ terms: TermJson[] }>> {
    return this.request('GET', `/v1/chains/${id}/history`);
  }
}

/** One HTTPS request with a client certificate (fetch cannot present one), with a deadline. */
export function httpsCall(
  url: string,
  method: string,
  body: unknown,
  tls: { ca: Buffer; cert?: Buffer; key?: Buffer },
  deadlineMs: number,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = httpsRequest(
      url,
      {
        method,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        headers: { ...(payload === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        signal: AbortSignal.timeout(deadlineMs),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** GET /v1/chains/{id} and the history entries, as the server builds them (openapi.yaml). */
export type ChainViewJson = ChainView;
export type TermJson = TermRecordView;

export function writeJson(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value, null, 2));
}
