// The REST client of `baton ctl`: every call has a deadline, and every failure becomes a
// CtlFailure carrying the exit status scripts rely on (1 refused, 3 unreachable / 5xx / timeout)
// and the API's stable error code. JSON shapes are the parts of openapi.yaml the CLI reads.

export interface ChainListItem {
  readonly id: string;
  readonly leader: string | null;
  readonly term: string | null;
  readonly headNumber: number | null;
  readonly supervisor: string | null;
  readonly nodes: number;
  readonly fencingMode: string;
  readonly paused?: boolean;
  readonly states?: readonly string[];
}

export interface ChainList {
  readonly chains: readonly ChainListItem[];
  readonly count: number;
  readonly counts?: Record<string, number>;
}

export interface NodeViewJson {
  readonly id: string;
  readonly role: string;
  readonly reachable: boolean;
  readonly healthy: boolean;
  readonly producing: boolean;
  readonly term: string;
  readonly headNumber: number | null;
  readonly lag: number | null;
  readonly eligible: boolean;
  readonly reasons: readonly string[];
}

export interface TermJson {
  readonly term: string;
  readonly nodeId: string;
  readonly previousNodeId: string | null;
  readonly fromHead: number;
  readonly reason: string;
  readonly atMs: number;
  readonly supervisor: string;
}

export interface ChainView {
  readonly id: string;
  readonly leader: { nodeId: string; term: string; reason: string; sinceMs: number; fromHead: number; mode?: string } | null;
  /** The chain spec; only its fencing mode is shown. */
  readonly spec?: { readonly policy?: { readonly fencingMode?: string } };
  readonly unsafeHead: { number: number; hash: string; timestamp: number; term: string; nodeId: string } | null;
  readonly supervisor: string | null;
  readonly nodes: readonly NodeViewJson[];
  readonly lastFailover: TermJson | null;
  readonly decision: string | null;
  /** Not in every API version: shown when present. */
  readonly paused?: boolean | { reason?: string; untilMs?: number | null; sinceMs?: number } | null;
  /** The break-glass override in force (not in every API version: shown when present). */
  readonly override?: {
    nodeId: string;
    reason: string;
    sinceMs: number;
    term: string;
    rolledBackFrom?: { number: number; hash: string } | null;
    rolledBackTo?: { number: number; hash: string } | null;
  } | null;
}

export interface FailoverPlan {
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: string;
  readonly nodes: readonly NodeViewJson[];
}

export interface OperationJson {
  readonly id: string;
  readonly chainId: string;
  readonly state: string;
  readonly kind?: string;
  readonly params?: { kind?: string };
  readonly steps?: readonly { name: string; state: string; atMs: number; detail: string }[];
  readonly result?: { term?: string; nodeId?: string; headNumber?: number; detail: string } | null;
  readonly error?: { code: string; message: string } | null;
  /** Trace of the request that created it (open it in Jaeger). */
  readonly traceId?: string | null;
}

export interface FleetSettings {
  readonly autoFailover: boolean;
  readonly maxConcurrentFailovers: number;
}

/** A command that cannot succeed; `exitCode` is what the process exits with. */
export class CtlFailure extends Error {
  override readonly name = 'CtlFailure';

  constructor(
    readonly exitCode: 1 | 3,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CallOptions {
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  /** Added to the deadline: the server is asked to hold the answer this long (long-poll). */
  readonly serverWaitMs?: number;
}

export class RestClient {
  constructor(
    readonly baseUrl: string,
    private readonly timeoutMs: number,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  /** The JSON answer of a 2xx; anything else throws a CtlFailure. */
  async call<T>(method: string, path: string, opts: CallOptions = {}): Promise<{ status: number; body: T }> {
    const deadlineMs = this.timeoutMs + (opts.serverWaitMs ?? 0);
    const signal = AbortSignal.timeout(deadlineMs);
    let status: number;
    let text: string;
    try {
      const res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers: { accept: 'application/json', ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers },
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal,
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      throw this.transportFailure(err, `${method} ${path}`, deadlineMs);
    }
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (status >= 200 && status < 300) {
      if (body === undefined) throw new CtlFailure(3, 'BAD_RESPONSE', `${method} ${path}: HTTP ${status} without a JSON body`);
      return { status, body: body as T };
    }
    throw httpFailure(status, body, `${method} ${path}`);
  }

  /** Opens a streaming GET (server-sent events); the caller reads and cancels the body. */
  async stream(path: string, headers: Record<string, string>, signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const connect = AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]);
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}${path}`, { headers: { accept: 'text/event-stream', ...headers }, signal: connect });
    } catch (err) {
      throw this.transportFailure(err, `GET ${path}`, this.timeoutMs);
    }
    if (res.status < 200 || res.status >= 300 || !res.body) {
      const text = await res.text().catch(() => '');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      throw httpFailure(res.status, body, `GET ${path}`);
    }
    return res.body;
  }

  private transportFailure(err: unknown, what: string, deadlineMs: number): unknown {
    const e = err as { name?: string; cause?: { code?: string; message?: string }; message?: string };
    if (e.name === 'TimeoutError') return new CtlFailure(3, 'TIMEOUT', `${what}: no answer from ${this.baseUrl} within ${deadlineMs} ms`);
    if (e.name === 'AbortError') return err;
    const why = e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
    return new CtlFailure(3, 'UNREACHABLE', `cannot reach Baton at ${this.baseUrl}: ${why}`);
  }
}

/** A non-2xx answer: 4xx is a refusal (exit 1), anything else a server-side failure (exit 3). */
export function httpFailure(status: number, body: unknown, what: string): CtlFailure {
  const b = body as { code?: unknown; message?: unknown } | undefined;
  const code = typeof b?.code === 'string' ? b.code : `HTTP_${status}`;
  const message = typeof b?.message === 'string' ? b.message : `${what}: HTTP ${status}`;
  return new CtlFailure(status >= 400 && status < 500 ? 1 : 3, code, message);
}

export interface SseMessage {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

/** Splits a server-sent event stream into messages (fed chunk by chunk; comments dropped). */
export class SseDecoder {
  private buffer = '';

  push(chunk: string): SseMessage[] {
    this.buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const m = /\r\n\r\n|\n\n|\r\r/.exec(this.buffer);
      if (!m) break;
      const block = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      let id: string | undefined;
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split(/\r\n|\n|\r/)) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'id') id = value;
        else if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) out.push({ id, event, data: data.join('\n') });
    }
    return out;
  }
}
