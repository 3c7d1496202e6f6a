// Small tools for scenario tests: what the Baton replicas said (their pino lines), watching a
// condition for a whole window, and judging a run of blocks (contiguous heights, gaps in time).
import type { ActivityEntry } from '../../src/sim/activity.js';

export interface BatonLine {
  readonly replica: string;
  /** pino's `time`: wall-clock ms, the same clock on every process of the machine. */
  readonly time: number;
  readonly msg: string;
  /** Arrival order in this process. */
  readonly seq: number;
  readonly fields: Record<string, unknown>;
}

/** Collects every JSON line of every replica; pass `onLine` as the stack's `onBatonLine`. */
export class BatonLines {
  readonly all: BatonLine[] = [];

  readonly onLine = (replica: string, line: string): void => {
    if (!line.startsWith('{')) return;
    let fields: Record<string, unknown>;
    try {
      fields = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    this.all.push({ replica, time: Number(fields.time), msg: String(fields.msg ?? ''), seq: this.all.length, fields });
  };

  /** Lines with this message, optionally only those whose fields match. */
  with(msg: string, match: Record<string, unknown> = {}): BatonLine[] {
    return this.all.filter((l) => l.msg === msg && Object.entries(match).every(([k, v]) => l.fields[k] === v));
  }
}

/**
 * Calls `probe` every `everyMs` for `durationMs` (the scenario's observation window, not a wait for
 * a condition); returns how many probes completed without throwing.
 */
export async function watchWindow(durationMs: number, everyMs: number, probe: () => Promise<void> | void): Promise<number> {
  const end = Date.now() + durationMs;
  let ok = 0;
  while (Date.now() < end) {
    try {
      await probe();
      ok++;
    } catch {
      // a probe that fails (an API call during an etcd election) just does not count
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return ok;
}

type Block = Extract<ActivityEntry, { ev: 'block' }>;

export interface BlockRun {
  readonly count: number;
  readonly first: number | undefined;
  readonly last: number | undefined;
  /** Heights between first and last that no block of the run has. */
  readonly missing: number[];
  /** Largest time between two consecutive blocks of the run (ms). */
  readonly maxGapMs: number;
  readonly maxGapAfter: number | undefined;
  readonly terms: string[];
}

/** Judges blocks (in log order) as one run of production. */
export function judgeRun(blocks: readonly Block[]): BlockRun {
  const missing: number[] = [];
  let maxGapMs = 0;
  let maxGapAfter: number | undefined;
  for (let i = 1; i < blocks.length; i++) {
    const prev = blocks[i - 1]!;
    const cur = blocks[i]!;
    for (let n = prev.number + 1; n < cur.number; n++) missing.push(n);
    if (cur.t - prev.t > maxGapMs) {
      maxGapMs = cur.t - prev.t;
      maxGapAfter = prev.number;
    }
  }
  return {
    count: blocks.length,
    first: blocks[0]?.number,
    last: blocks[blocks.length - 1]?.number,
    missing,
    maxGapMs,
    maxGapAfter,
    terms: [...new Set(blocks.map((b) => b.term))],
  };
}

/**
 * The longest time the node went without a grant or renewal of its lease, over the grants from the
 * last one before `fromMs` on: how close its lease came to running out.
 */
export function longestRenewalGap(log: readonly ActivityEntry[], fromMs: number): number | undefined {
  const grants = log.filter((e) => e.ev === 'lease-granted' || e.ev === 'lease-renewed');
  const start = grants.filter((e) => e.t < fromMs).length - 1;
  if (start < 0 || start + 1 >= grants.length) return undefined;
  let longest = 0;
  for (let i = start + 1; i < grants.length; i++) longest = Math.max(longest, grants[i]!.t - grants[i - 1]!.t);
  return longest;
}
