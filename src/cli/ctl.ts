// `baton ctl`: the operator CLI over Baton's REST API. Arguments are checked before any request
// (exit 2); every call has a deadline; a refusal exits 1, an unreachable or failing Baton exits 3
// (see CTL_USAGE). Mutations are operations: they are waited for unless --no-wait.
import { userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { CtlFailure, RestClient, SseDecoder, type ChainList, type ChainView, type FailoverPlan, type FleetSettings, type OperationJson, type TermJson } from './ctl/api.js';
import { mtlsFetch } from './ctl/mtls-fetch.js';
import { CTL_USAGE, parseCtlArgs, type CtlCommand, type CtlEnv, type GlobalOptions } from './ctl/args.js';
import { formatChainList, formatChainView, formatEvent, formatHistory, formatOperation, formatPlan, formatSettings, headAgeS, type Style } from './ctl/format.js';

/** Everything the CLI touches outside itself, so tests can run it in-process. */
export interface CtlIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: CtlEnv & { NO_COLOR?: string | undefined };
  readonly isTTY: boolean;
  readonly nowMs: () => number;
  readonly fetch: typeof fetch;
}

const processIo: CtlIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  env: { ...process.env, USER: process.env.USER || loginName() },
  isTTY: process.stdout.isTTY === true,
  nowMs: () => Date.now(),
  fetch: (input, init) => fetch(input, init),
};

/** $USER is unset under cron, systemd and many containers: the account name then. */
function loginName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

const LONG_POLL_MS = 20_000;
const LIST_CONCURRENCY = 8;
const EVENT_RECONNECTS = 5;
/** The server sends a heartbeat every 15 s: a stream silent for this long is dead. */
const EVENT_IDLE_MS = 45_000;

export async function runCtl(argv: string[], io: CtlIo = processIo): Promise<number> {
  const parsed = parseCtlArgs(argv, io.env, io.nowMs());
  if (parsed.kind === 'help') {
    io.out(CTL_USAGE);
    return 0;
  }
  if (parsed.kind === 'usage-error') {
    io.err(`error: USAGE: ${parsed.message}\nrun "baton ctl --help" for the commands and options`);
    return 2;
  }
  const ctl = new Ctl(parsed.global, io);
  try {
    return await ctl.run(parsed.command);
  } catch (err) {
    if (!(err instanceof CtlFailure)) throw err;
    io.err(`error: ${err.code}: ${err.message}`);
    return err.exitCode;
  }
}

class Ctl {
  private readonly client: RestClient;
  private readonly style: Style;

  constructor(
    private readonly g: GlobalOptions,
    private readonly io: CtlIo,
  ) {
    this.client = new RestClient(g.url, g.timeoutMs, g.tls ? mtlsFetch(g.tls) : io.fetch);
    this.style = { color: io.isTTY && !io.env.NO_COLOR };
  }

  async run(c: CtlCommand): Promise<number> {
    switch (c.name) {
      case 'list':
        return this.list(c.filter);
      case 'status': {
        const { body } = await this.client.call<ChainView>('GET', `/v1/chains/${c.chain}`);
        this.print(body, () => formatChainView(body, this.io.nowMs(), this.style));
        return 0;
      }
      case 'history': {
        const query = c.limit === undefined ? '' : `?limit=${c.limit}`;
        const { body } = await this.client.call<{ terms: TermJson[] }>('GET', `/v1/chains/${c.chain}/history${query}`);
        this.print(body, () => formatHistory(body.terms, this.style));
        return 0;
      }
      case 'failover':
        if (c.dryRun) return this.planFailover(c.chain, c.to);
        return this.mutate(`/v1/chains/${c.chain}/failover`, { ...(c.to && { candidate: c.to }), reason: this.g.reason });
      case 'switchover':
        return this.mutate(
          `/v1/chains/${c.chain}/switchover`,
          { ...(c.to && { target: c.to }), ...(c.at && { scheduledAt: c.at }), reason: this.g.reason },
          c.at !== undefined,
        );
      case 'cancel-switchover':
        return this.mutate(`/v1/chains/${c.chain}/switchover/cancel`, { reason: this.g.reason });
      case 'pause':
        return this.mutate(`/v1/chains/${c.chain}/pause`, { ...(c.until && { until: c.until }), reason: this.g.reason });
      case 'resume':
        return this.mutate(`/v1/chains/${c.chain}/resume`, { reason: this.g.reason });
      case 'fencing-mode':
        return this.mutate(`/v1/chains/${c.chain}/fencing-mode`, { mode: c.mode, reason: this.g.reason });
      case 'override':
        return this.mutate(`/v1/chains/${c.chain}/override`, { nodeId: c.node, reason: this.g.reason, ...(c.rollbackHead && { rollbackHead: true }) });
      case 'clear-override':
        return this.mutate(`/v1/chains/${c.chain}/override/clear`, { reason: this.g.reason });
      case 'operation': {
        const { body } = await this.client.call<OperationJson>('GET', `/v1/operations/${c.id}`);
        return this.finish(this.g.wait ? await this.waitFor(body, true) : body);
      }
      case 'events':
        return this.events(c.follow, c.chain, c.after);
      case 'settings':
        return this.settings(c.autoFailover, c.maxConcurrent);
    }
  }

  private print(json: unknown, human: () => string): void {
    this.io.out(this.g.json ? JSON.stringify(json, null, 2) : human());
  }

  /** The fleet, with each head's age read from the chain's own view (`-` when that read fails). */
  private async list(filter: string | undefined): Promise<number> {
    const { body } = await this.client.call<ChainList>('GET', `/v1/chains${filter ? `?filter=${filter}` : ''}`);
    const ages = await mapLimit(body.chains, LIST_CONCURRENCY, async (c) => {
      if (c.headNumber === null) return undefined;
      try {
        const view = await this.client.call<ChainView>('GET', `/v1/chains/${c.id}`);
        return headAgeS(view.body.unsafeHead?.timestamp, this.io.nowMs());
      } catch (err) {
        if (err instanceof CtlFailure) return undefined;
        throw err;
      }
    });
    const chains = body.chains.map((c, i) => ({ ...c, ageS: ages[i] }));
    this.print({ ...body, chains: chains.map((c) => ({ ...c, ageS: c.ageS ?? null })) }, () => formatChainList(chains, this.style));
    return 0;
  }

  private async planFailover(chain: string, to: string | undefined): Promise<number> {
    const { body } = await this.client.call<{ plan?: FailoverPlan } & Partial<FailoverPlan>>('POST', `/v1/chains/${chain}/failover`, {
      body: { ...(to && { candidate: to }), reason: this.g.reason, dryRun: true },
    });
    const plan = (body.plan ?? body) as FailoverPlan;
    this.print(body, () => formatPlan(plan, this.style));
    return plan.to ? 0 : 1;
  }

  /** Submits an operation and (unless --no-wait) waits until it is final, or scheduled. */
  private async mutate(path: string, body: Record<string, unknown>, scheduled = false): Promise<number> {
    const res = await this.client.call<unknown>('POST', path, { body, headers: { 'idempotency-key': this.g.idempotencyKey } });
    const op = operationOf(res.body);
    if (!op) {
      // An answer without an operation record: done synchronously.
      this.print(res.body, () => JSON.stringify(res.body));
      return 0;
    }
    if (!this.g.wait) {
      this.print(op, () => `operation ${op.id} ${op.state}\nfollow it with: baton ctl operation ${op.id}`);
      return 0;
    }
    return this.finish(await this.waitFor(op, scheduled));
  }

  private async waitFor(first: OperationJson, untilScheduled: boolean): Promise<OperationJson> {
    const deadline = this.io.nowMs() + this.g.waitTimeoutMs;
    let op = first;
    while (!isFinal(op.state) && !(untilScheduled && op.state === 'scheduled')) {
      const remaining = deadline - this.io.nowMs();
      if (remaining <= 0) {
        throw new CtlFailure(3, 'WAIT_TIMEOUT', `operation ${op.id} is still ${op.state} after ${this.g.waitTimeoutMs} ms; it may yet finish: baton ctl operation ${op.id}`);
      }
      // The server holds the answer until the operation is final; "scheduled" is not final, so
      // waiting for it is a short poll.
      const waitMs = Math.min(remaining, untilScheduled ? 500 : LONG_POLL_MS);
      const started = this.io.nowMs();
      op = (await this.client.call<OperationJson>('GET', `/v1/operations/${encodeURIComponent(op.id)}?wait=${waitMs}`, { serverWaitMs: waitMs })).body;
      if (!isFinal(op.state) && this.io.nowMs() - started < 200) await sleep(200);
    }
    return op;
  }

  /** Prints the operation; exit 1 when it failed or was cancelled. */
  private finish(op: OperationJson): number {
    this.print(op, () => {
      const text = formatOperation(op, this.style);
      return op.state === 'scheduled' ? `${text}\ncancel it with: baton ctl cancel-switchover ${op.chainId}` : text;
    });
    if (op.state === 'failed' || op.state === 'cancelled') {
      this.io.err(`error: ${op.error?.code ?? op.state.toUpperCase()}: ${op.error?.message ?? `operation ${op.id} ${op.state}`}`);
      return 1;
    }
    return 0;
  }

  private async settings(autoFailover: boolean | undefined, maxConcurrent: number | undefined): Promise<number> {
    let { body } = await this.client.call<FleetSettings>('GET', '/v1/fleet/settings');
    if (autoFailover !== undefined || maxConcurrent !== undefined) {
      const next: FleetSettings = {
        autoFailover: autoFailover ?? body.autoFailover,
        maxConcurrentFailovers: maxConcurrent ?? body.maxConcurrentFailovers,
      };
      ({ body } = await this.client.call<FleetSettings>('PUT', '/v1/fleet/settings', { body: next }));
    }
    this.print(body, () => formatSettings(body));
    return 0;
  }

  /**
   * Prints events as they arrive: for --timeout, or with --follow until interrupted, reconnecting
   * from the last event id when the stream drops (exit 3 after EVENT_RECONNECTS failed tries).
   */
  private async events(follow: boolean, chain: string | undefined, after: string | undefined): Promise<number> {
    const path = `/v1/events${chain ? `?chain=${chain}` : ''}`;
    const stop = new AbortController();
    const timer = follow ? undefined : setTimeout(() => stop.abort(), this.g.timeoutMs);
    let lastId = after;
    let failures = 0;
    let connected = false;
    try {
      while (!stop.signal.aborted) {
        let stream: ReadableStream<Uint8Array>;
        try {
          stream = await this.client.stream(path, lastId ? { 'last-event-id': lastId } : {}, stop.signal);
          connected = true;
          failures = 0;
        } catch (err) {
          if (stop.signal.aborted && !connected) throw new CtlFailure(3, 'TIMEOUT', `GET ${path}: no answer from ${this.g.url} within ${this.g.timeoutMs} ms`);
          if (stop.signal.aborted) break;
          if (!follow || !(err instanceof CtlFailure) || err.exitCode !== 3 || ++failures > EVENT_RECONNECTS) throw err;
          this.io.err(`events: ${err.code}: ${err.message}; reconnecting (${failures}/${EVENT_RECONNECTS})`);
          await sleep(250 * 2 ** failures);
          continue;
        }
        lastId = await this.readEvents(stream, stop.signal, lastId, follow ? EVENT_IDLE_MS : undefined);
        if (!follow) break;
      }
    } finally {
      clearTimeout(timer);
    }
    return 0;
  }

  /** Reads until the stream ends, `signal` aborts, or (with `idleMs`) nothing arrives for that long. */
  private async readEvents(stream: ReadableStream<Uint8Array>, signal: AbortSignal, lastId: string | undefined, idleMs: number | undefined): Promise<string | undefined> {
    const reader = stream.getReader();
    const onAbort = () => void reader.cancel().catch(() => undefined);
    signal.addEventListener('abort', onAbort);
    let idle: NodeJS.Timeout | undefined;
    const decoder = new TextDecoder();
    const sse = new SseDecoder();
    try {
      for (;;) {
        if (idleMs !== undefined) idle = setTimeout(onAbort, idleMs);
        const chunk = await reader.read().catch(() => ({ done: true as const, value: undefined }));
        clearTimeout(idle);
        if (chunk.done) return lastId;
        for (const m of sse.push(decoder.decode(chunk.value, { stream: true }))) {
          if (m.id !== undefined) lastId = m.id;
          const e = eventOf(m.event, m.id, m.data);
          this.io.out(this.g.json ? JSON.stringify(e) : formatEvent(e, this.io.nowMs()));
          // etcd compacted past our place: the server ends the stream; continue from now.
          if (e.type === 'resync') lastId = undefined;
        }
      }
    } finally {
      clearTimeout(idle);
      signal.removeEventListener('abort', onAbort);
    }
  }
}

function isFinal(state: string): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}

/** The operation record of a 202 answer (bare, or as `{operation}`), if any. */
function operationOf(body: unknown): OperationJson | undefined {
  const b = body as { operation?: unknown; id?: unknown; state?: unknown } | undefined;
  const op = (b?.operation ?? b) as { id?: unknown; state?: unknown } | undefined;
  return typeof op?.id === 'string' && typeof op.state === 'string' ? (op as OperationJson) : undefined;
}

/** An SSE message as {id, type, chainId, data}: its data is the event itself, or only its payload. */
function eventOf(event: string, id: string | undefined, data: string): { id: string | undefined; type: string; chainId: string | undefined; data: unknown } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return { id, type: event, chainId: undefined, data };
  }
  const p = parsed as { type?: unknown; chainId?: unknown; data?: unknown; id?: unknown } | null;
  if (p && typeof p === 'object' && typeof p.type === 'string' && 'data' in p) {
    return { id: typeof p.id === 'string' ? p.id : id, type: p.type, chainId: typeof p.chainId === 'string' ? p.chainId : undefined, data: p.data };
  }
  const chainId = p && typeof p === 'object' && typeof p.chainId === 'string' ? p.chainId : undefined;
  return { id, type: event, chainId, data: parsed };
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
