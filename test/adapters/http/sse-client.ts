// A small Server-Sent Events client over fetch for tests: it reads the stream as it arrives and
// keeps every event and comment, and can be closed (the connection is dropped, as a client would).
import { waitFor } from '../../../src/devstack/process.js';

export interface SseEvent {
  id: string;
  event: string;
  /** The data line parsed as JSON. */
  data: { id: string; type: string; chainId: string | null; data: Record<string, unknown> };
}

export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  retry: number | undefined;
  ended = false;
  private buffer = '';

  private constructor(
    readonly response: Response,
    private readonly abort: AbortController,
  ) {}

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const abort = new AbortController();
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
    const client = new SseClient(res, abort);
    if (res.body) void client.read(res.body);
    return client;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        this.buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = this.buffer.indexOf('\n\n')) >= 0) {
          this.frame(this.buffer.slice(0, end));
          this.buffer = this.buffer.slice(end + 2);
        }
      }
    } catch {
      // aborted by close()
    }
    this.ended = true;
  }

  private frame(text: string): void {
    const fields: Record<string, string> = {};
    for (const line of text.split('\n')) {
      if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
      const m = /^(id|event|data|retry): ?(.*)$/.exec(line);
      if (m) fields[m[1]!] = m[2]!;
    }
    if (fields.retry !== undefined) this.retry = Number(fields.retry);
    if (fields.data !== undefined) this.events.push({ id: fields.id ?? '', event: fields.event ?? 'message', data: JSON.parse(fields.data) as SseEvent['data'] });
  }

  ids(): string[] {
    return this.events.map((e) => e.id);
  }

  /** Waits until the stream holds an event matching `match`; returns it. */
  waitForEvent(what: string, match: (e: SseEvent) => boolean, timeoutMs = 10_000): Promise<SseEvent> {
    return waitFor(what, () => this.events.find(match), timeoutMs, 10);
  }

  waitForCount(n: number, timeoutMs = 10_000): Promise<SseEvent[]> {
    return waitFor(`${n} events`, () => (this.events.length >= n ? this.events : undefined), timeoutMs, 10);
  }

  close(): void {
    this.abort.abort();
  }
}

/** Event ids in stream order: `<revision>-<index>`, compared as numbers. */
export function compareEventIds(a: string, b: string): number {
  const [ra, ia] = a.split('-').map(BigInt) as [bigint, bigint];
  const [rb, ib] = b.split('-').map(BigInt) as [bigint, bigint];
  return ra !== rb ? (ra < rb ? -1 : 1) : ia < ib ? -1 : ia > ib ? 1 : 0;
}
