// Per-principal limits of one replica, shared by REST and gRPC: a token bucket of requests, and
// caps on concurrent long-polls and event streams. Over a limit is a RESOURCE_EXHAUSTED refusal
// (429 / RESOURCE_EXHAUSTED), never a queue: the caller backs off and retries.
import type { LimitsConfig } from '../../config/config.js';
import { accessError } from '../../api/access.js';

interface Bucket {
  tokens: number;
  atMs: number;
}

/** Buckets idle this long are full again and are dropped (memory stays bounded by active callers). */
const IDLE_DROP_MS = 60_000;

export type Concurrency = 'wait' | 'stream';

export class PrincipalLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly inFlight = new Map<string, number>();
  private lastSweepMs = 0;

  constructor(
    private readonly limits: Pick<LimitsConfig, 'ratePerSecond' | 'burst' | 'maxWaitsPerPrincipal' | 'maxStreamsPerPrincipal'>,
    private readonly monoMs: () => number = () => performance.now(),
  ) {}

  /** Takes one request from the principal's bucket; throws RESOURCE_EXHAUSTED when empty. */
  take(principal: string): void {
    const now = this.monoMs();
    this.sweep(now);
    const { ratePerSecond, burst } = this.limits;
    const b = this.buckets.get(principal) ?? { tokens: burst, atMs: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.atMs) * ratePerSecond) / 1000);
    b.atMs = now;
    this.buckets.set(principal, b);
    if (b.tokens < 1) {
      const retryMs = Math.ceil(((1 - b.tokens) * 1000) / ratePerSecond);
      throw accessError('RESOURCE_EXHAUSTED', `${principal}: more than ${ratePerSecond} requests per second (burst ${burst}); retry in ${retryMs} ms`, { retryAfterMs: retryMs });
    }
    b.tokens -= 1;
  }

  /** Holds one long-poll or stream slot of the principal; the returned function gives it back (once). */
  acquire(principal: string, kind: Concurrency): () => void {
    const key = `${kind}\u0000${principal}`;
    const max = kind === 'wait' ? this.limits.maxWaitsPerPrincipal : this.limits.maxStreamsPerPrincipal;
    const n = this.inFlight.get(key) ?? 0;
    if (n >= max) {
      throw accessError('RESOURCE_EXHAUSTED', `${principal}: already ${n} open ${kind === 'wait' ? 'long-polls' : 'event streams'} (at most ${max})`, { limit: max });
    }
    this.inFlight.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inFlight.get(key) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(key);
      else this.inFlight.set(key, left);
    };
  }

  private sweep(now: number): void {
    if (now - this.lastSweepMs < IDLE_DROP_MS) return;
    this.lastSweepMs = now;
    for (const [k, b] of this.buckets) if (now - b.atMs > IDLE_DROP_MS) this.buckets.delete(k);
  }
}
