// A grant (start, renewal, handoff) is safe to act on only while this replica still supervises the
// chain, and it may reach the node late: after a pause of this process, say, when another replica
// has long taken the chain over and moved on to a term the node never heard of. So every grant
// carries an end instant no later than this replica's own proof (its etcd lease), fixed before the
// call is made, and a node refuses a call past its deadline; with no proof left, the grant is not
// sent at all. (The adapter turns the instant into the call's wall-clock deadline with two adjacent
// clock reads; a pause landing exactly between them is the one window left.)
import { BatonError } from './errors.js';
import type { NodeCallOptions, NodeControl, ReplicaProof } from './ports.js';

/** Below this a call cannot reach a node and be answered; it is not sent. */
const MIN_BUDGET_MS = 5;

export function boundByProof(nodes: NodeControl, proof: ReplicaProof, monoMs: () => number): NodeControl {
  const budget = (what: string): NodeCallOptions => {
    const now = monoMs();
    const provenUntil = proof.provenUntilMs();
    if (provenUntil - now < MIN_BUDGET_MS) {
      throw new BatonError('FENCED', `${what} not sent: this replica's etcd lease is proven for ${Math.floor(provenUntil - now)} ms only`);
    }
    return { notAfterMonoMs: Math.min(now + nodes.deadlineMs, provenUntil) };
  };
  return {
    deadlineMs: nodes.deadlineMs,
    health: (node) => nodes.health(node),
    stop: (node, term, reason) => nodes.stop(node, term, reason),
    prepareHandoff: (node, term, targetId, reason) => nodes.prepareHandoff(node, term, targetId, reason),
    start: async (node, grant) => nodes.start(node, grant, budget('start')),
    renew: async (node, term, ttlMs) => nodes.renew(node, term, ttlMs, budget('renewal')),
    completeHandoff: async (node, ticket, term, ttlMs, mode) => nodes.completeHandoff(node, ticket, term, ttlMs, mode, budget('handoff')),
  };
}
