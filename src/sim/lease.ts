// A node's lease, on the node's own clocks. The lease is measured on the monotonic clock from the
// moment the node accepted the grant or renewal; its wall-clock end (`expiresAt`, what the activity
// log records) is taken at the same moment. A lease counts as valid only while BOTH clocks are
// before their end, so a block's wall time `t` is always < `expiresAt` in the log.
import { performance } from 'node:perf_hooks';

export interface Lease {
  term: bigint;
  /** Wall-clock ms of the grant or of the last renewal. */
  grantedAt: number;
  /** Wall-clock ms at which the lease ends. */
  expiresAt: number;
  /** performance.now() at which the lease ends. */
  expiresMono: number;
  /** performance.now() at which the next block is due. */
  nextBlockAt: number;
  /** The handoff ticket that made the node active, if any (to answer a retried CompleteHandoff). */
  ticket: Buffer | undefined;
  /** `commit`: every block is committed to Baton before it leaves the node. */
  mode: 'lease' | 'commit';
}

/**
 * How long a lease granted at wall time `wallNow` lasts: `ttlMs`, but ending no later than
 * `endByWall`. Converted once, at acceptance, to a length on the monotonic clock.
 */
export function cappedTtlMs(ttlMs: number, endByWall: number, wallNow: number): number {
  return Math.max(0, Math.min(ttlMs, endByWall - wallNow));
}

// setTimeout's largest delay; a longer lease re-arms when the timer fires.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Grants and extends leases and fires `onLapse` as soon as the current lease is over. */
export class LeaseClock {
  private timer: NodeJS.Timeout | undefined;
  private current: Lease | undefined;

  constructor(private readonly onLapse: () => void) {}

  /**
   * A lease from now, ending no later than `endByWall` (wall-clock ms: the grant's not_after + TTL);
   * its first block is due `firstBlockInMs` from now.
   */
  grant(term: bigint, ttlMs: number, firstBlockInMs: number, ticket: Buffer | undefined, mode: Lease['mode'] = 'lease', endByWall = Infinity): Lease {
    const mono = performance.now();
    const wall = Date.now();
    const lastsMs = cappedTtlMs(ttlMs, endByWall, wall);
    const lease: Lease = {
      term,
      grantedAt: wall,
      expiresAt: wall + lastsMs,
      expiresMono: mono + lastsMs,
      nextBlockAt: mono + Math.max(0, firstBlockInMs),
      ticket,
      mode,
    };
    this.current = lease;
    this.arm();
    return lease;
  }

  /** A renewal: `ttlMs` from now, ending no later than `endByWall` (wall-clock ms). */
  extend(lease: Lease, ttlMs: number, endByWall = Infinity): void {
    const mono = performance.now();
    lease.grantedAt = Date.now();
    const lastsMs = cappedTtlMs(ttlMs, endByWall, lease.grantedAt);
    lease.expiresAt = lease.grantedAt + lastsMs;
    lease.expiresMono = mono + lastsMs;
    this.current = lease;
    this.arm();
  }

  valid(lease: Lease, nowMono = performance.now(), nowWall = Date.now()): boolean {
    return nowMono < lease.expiresMono && nowWall < lease.expiresAt;
  }

  /** Valid now and still `marginMs` from now. */
  validFor(lease: Lease, marginMs: number, nowMono: number, nowWall: number): boolean {
    return this.valid(lease, nowMono + marginMs, nowWall + marginMs);
  }

  remainingMs(lease: Lease): number {
    return Math.min(lease.expiresMono - performance.now(), lease.expiresAt - Date.now());
  }

  disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.current = undefined;
  }

  // One timer at the exact end of the current lease. It may fire a little early (timer
  // granularity) or find the lease renewed: then it re-arms for what is left.
  private arm(): void {
    clearTimeout(this.timer);
    const lease = this.current;
    if (!lease) return;
    const ms = Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(this.remainingMs(lease))));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.current !== lease) return;
      if (this.valid(lease)) this.arm();
      else {
        this.current = undefined;
        this.onLapse();
      }
    }, ms);
  }
}
