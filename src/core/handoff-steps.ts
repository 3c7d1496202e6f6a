// The node-side steps of a planned handoff, as the runner drives them: wait for the active's next
// block (so the handoff starts at the top of a slot), wait for the target to hold exactly head h,
// and complete the handoff, telling a lost answer from a refusal by asking the target.
import type { NodeSpec } from './chain.js';
import type { RunnerHost } from './operations-runner.js';
import type { HandoffTicket } from './ports.js';
import type { Term } from './term.js';

/** How often the target's head is polled while it catches up. */
export const CATCH_UP_POLL_MS = 10;

/**
 * Waits until the active makes its next block (at most two block times): the new active's first
 * block is due one block time after the old one's last, so a handoff that starts at the
 * beginning of a slot costs no time unless it takes longer than a whole block time.
 */
export async function nextBlock(host: RunnerHost, node: NodeSpec): Promise<void> {
  const { blockTimeMs } = host.spec().policy;
  const pollMs = Math.max(CATCH_UP_POLL_MS, Math.min(25, Math.floor(blockTimeMs / 25)));
  const deadline = host.monoMs() + 2 * blockTimeMs;
  let head: number | undefined;
  while (host.monoMs() < deadline) {
    try {
      const now = (await host.nodes.health(node)).headNumber;
      if (head !== undefined && now > head) return;
      head ??= now;
    } catch {
      return; // PrepareHandoff will tell
    }
    await sleep(host, pollMs);
  }
}

export function sleep(host: RunnerHost, ms: number): Promise<void> {
  return new Promise<void>((resolve) => host.scheduler.after(ms, resolve));
}

/** true, or why CompleteHandoff failed; a lost answer is told from a refusal by asking the target. */
export async function completeHandoff(host: RunnerHost, target: NodeSpec, ticket: HandoffTicket, term: Term): Promise<true | string> {
  // The new term was written with the spec's fencing mode (changeLeader), so it is granted in it.
  const mode = host.spec().policy.fencingMode;
  const sentAt = host.grantSent(target.id, mode);
  try {
    await host.nodes.completeHandoff(target, ticket, term, host.spec().policy.leaseTtlMs, mode);
    host.grantConfirmed(sentAt);
    return true;
  } catch (err) {
    try {
      const r = await host.nodes.health(target);
      if (r.producing && r.term === term) {
        host.grantConfirmed(sentAt);
        return true;
      }
    } catch {
      // unreachable: it did not confirm, so it is treated as refused (its lease is waited out)
    }
    return message(err);
  }
}

export async function waitForHead(host: RunnerHost, node: NodeSpec, number: number, hash: string, timeoutMs: number): Promise<boolean> {
  const deadline = host.monoMs() + timeoutMs;
  while (host.monoMs() < deadline) {
    try {
      const r = await host.nodes.health(node);
      if (r.headNumber === number) return r.headHash === hash; // another hash at h: never hand over to it
      if (r.headNumber > number) return false; // a different branch: never hand over to it
    } catch {
      // unreachable for now: try again until the deadline
    }
    await sleep(host, CATCH_UP_POLL_MS);
  }
  return false;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
