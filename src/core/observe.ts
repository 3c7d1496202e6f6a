// Folds probe results into NodeObservation values. Pure: the caller passes the time of the probe.
import type { NodeSpec } from './chain.js';
import type { NodeObservation, NodeReport } from './observation.js';
import type { NodeControl } from './ports.js';

/**
 * A probe answered. Resets the failure count and restarts the stall clock (`headAdvancedAtMs`)
 * when the head number increased, on the first report, and when the node starts producing or
 * changes lease term: a node that was just started has had no chance to advance yet, so its time
 * as a follower must not count as a stall.
 */
export function observeSuccess(
  prev: NodeObservation | undefined,
  nodeId: string,
  report: NodeReport,
  nowMs: number,
): NodeObservation {
  const last = prev?.report;
  const advanced = last === undefined || report.headNumber > last.headNumber;
  const startedProducing = report.producing && (last === undefined || !last.producing || last.term !== report.term);
  return Object.freeze({
    nodeId,
    report,
    reportAtMs: nowMs,
    consecutiveFailures: 0,
    lastProbeError: '',
    headAdvancedAtMs: advanced || startedProducing || prev === undefined ? nowMs : prev.headAdvancedAtMs,
  });
}

/**
 * A probe failed. Keeps the last report (and when it was received) so freshness checks can tell
 * how old it is. A node that never answered has no report; its times are set to `nowMs` only so
 * they are numbers: nothing reads them while `report` is undefined.
 */
export function observeFailure(prev: NodeObservation | undefined, nodeId: string, error: string, nowMs: number): NodeObservation {
  return Object.freeze({
    nodeId,
    report: prev?.report,
    reportAtMs: prev?.reportAtMs ?? nowMs,
    consecutiveFailures: (prev?.consecutiveFailures ?? 0) + 1,
    lastProbeError: error,
    headAdvancedAtMs: prev?.headAdvancedAtMs ?? nowMs,
  });
}

/** One probe of a node through the NodeControl port, folded into its observation. */
export async function probeNode(
  nodes: NodeControl,
  node: NodeSpec,
  prev: NodeObservation | undefined,
  now: () => number,
): Promise<NodeObservation> {
  try {
    const report = await nodes.health(node);
    return observeSuccess(prev, node.id, report, now());
  } catch (err) {
    return observeFailure(prev, node.id, err instanceof Error ? err.message : String(err), now());
  }
}
