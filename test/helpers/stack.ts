// Scenario tests: a whole deployment (real etcd, `baton sim` per node, `baton serve` replicas)
// that is stopped by PID when the test ends, and the independent checker over every node's log.
import { mkdtempSync, rmSync } from 'node:fs';
import type { Test } from 'tap';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevStack, FAST_BATON_CONFIG, FAST_POLICY, type StackChain, type StackOptions } from '../../src/devstack/stack.js';
import { readActivityLog } from '../../src/devstack/sim.js';
import { checkActivity, type CheckReport } from '../../src/sim/checker.js';
import type { ActivityEntry } from '../../src/sim/activity.js';

type Assert = Test;

export async function startStack(
  t: Assert,
  opts: Partial<StackOptions> & { chains: StackChain[] },
): Promise<DevStack> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-scenario-'));
  const stack = await DevStack.start({
    dir,
    replicas: 2,
    batonConfig: FAST_BATON_CONFIG,
    ...opts,
    chains: opts.chains.map((c) => ({ ...c, policy: { ...FAST_POLICY, ...c.policy } })),
  });
  t.teardown(async () => {
    await stack.stop();
    if (!process.env.BATON_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  });
  return stack;
}

/** Runs the independent checker over every node's activity log; asserts it found nothing. */
export function assertCheckerClean(t: Assert, stack: DevStack): CheckReport {
  const logs = stack.logFiles().map((file) => ({ file, entries: readActivityLog(file) }));
  const report = checkActivity(logs);
  for (const v of report.violations) t.comment(`${v.kind} ${v.chain}: ${v.message}`);
  t.equal(report.violations.length, 0, `checker: no violation over ${report.blocks} blocks in ${report.logs} logs`);
  return report;
}

export function blocksOf(file: string): Extract<ActivityEntry, { ev: 'block' }>[] {
  return readActivityLog(file).filter((e): e is Extract<ActivityEntry, { ev: 'block' }> => e.ev === 'block');
}
