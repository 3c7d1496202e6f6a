// The arithmetic of the failover benchmark, kept pure so each figure has exactly one definition
// (docs/benchmarks.md explains them).

/** Nearest-rank percentile: the smallest sample with at least p % of the samples at or below it. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('percentile of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/**
 * Heights a chain failed to make in the window (fromMs, toMs], measured against its own cadence:
 * the points are the last block at or before fromMs (fromMs itself if there is none), every block
 * inside the window, and toMs. A gap of g ms between two consecutive points stands for
 * floor(g / blockTime) − 1 heights that were due and never made, so a block up to one block time
 * late counts nothing (jitter), and a chain that stopped for good counts every slot up to toMs.
 */
export function missedHeights(blockTimesMs: readonly number[], fromMs: number, toMs: number, blockTimeMs: number): number {
  const sorted = [...blockTimesMs].sort((a, b) => a - b);
  const before = sorted.filter((t) => t <= fromMs);
  const inside = sorted.filter((t) => t > fromMs && t <= toMs);
  const points = [before.length > 0 ? before[before.length - 1]! : fromMs, ...inside, toMs];
  let missed = 0;
  for (let i = 1; i < points.length; i++) {
    missed += Math.max(0, Math.floor((points[i]! - points[i - 1]!) / blockTimeMs) - 1);
  }
  return missed;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}
