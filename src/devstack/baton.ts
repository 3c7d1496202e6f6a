// Starts `baton serve` replicas for tests, drills and the demo, each a ManagedProcess (tracked and
// signalled by PID), with a small REST client whose every call has a deadline.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ManagedProcess } from './process.js';
import type { ChainView, TermRecordView } from '../core/status.js';

const BATON_BIN = fileURLToPath(new URL('../../bin/baton.js', import.meta.url));

export interface StartBatonOptions {
  replicaId: string;
  etcd: readonly string[];
  /** Config file and process output go here. */
  dir: string;
  /** Merged into the generated config file (see src/config/config.ts). */
  config?: Record<string, unknown>;
  logLevel?: string;
  readyTimeoutMs?: number;
  /** Every stdout line (pino JSON) of the replica. */
  onLine?: (line: string) => void;
}

export interface BatonProcess {
  readonly replicaId: string;
  readonly process: ManagedProcess;
  readonly pid: number;
  readonly url: string;
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
    grpc: { host: '127.0.0.1', port: 0 },
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  let address: string | undefined;
  const proc = await ManagedProcess.start({
    command: process.execPath,
    args: [BATON_BIN, 'serve', '--config', configFile],
    logFile: outputFile,
    onLine: (line) => {
      opts.onLine?.(line);
    },
  });
  try {
    const line = await proc.waitForLine((l) => l.includes('"baton serving"'), opts.readyTimeoutMs ?? 20_000);
    address = (JSON.parse(line) as { address: string }).address;
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
    outputFile,
    api: new BatonApi(url),
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
  constructor(
    readonly baseUrl: string,
    private readonly deadlineMs = 5000,
  ) {}

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
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

/** GET /v1/chains/{id} and the history entries, as the server builds them (openapi.yaml). */
export type ChainViewJson = ChainView;
export type TermJson = TermRecordView;

export function writeJson(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value, null, 2));
}
