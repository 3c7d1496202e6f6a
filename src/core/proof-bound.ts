// A grant (start, renewal, handoff) is safe to act on only while this replica still supervises the
// chain, and it may reach the node late: after a pause of this process, say, when another replica
// has long taken the chain over and moved on to a term the node never heard of. So every grant
// carries an end instant no later than this replica's own proof (its etcd lease), fixed before the
// call is made, and a node refuses a call past its deadline; with no proof left, the grant is not
// sent at all. The instant travels twice: as the call's relative gRPC deadline (the adapter turns it
// into one with two adjacent clock reads; a pause landing exactly between them is the one window
// left), and as an absolute wall-clock deadline the node checks on its own wall clock, since a
// node frozen with the call in its socket buffer restarts the relative one when it reads the call.
import { BatonError } from './errors.js';
import type { Clock, NodeCallOptions, NodeControl, ReplicaProof } from './ports.js';

/** Below this a call cannot reach a node and be answered; it is not sent. */
const MIN_BUDGET_MS = 5;

export function boundByProof(nodes: NodeControl, proof: ReplicaProof, clock: Clock): NodeControl {
  const budget = (what: string): NodeCallOptions => {
    const now = clock.monoMs();
    const provenUntil = proof.provenUntilMs();
    if (provenUntil - now < MIN_BUDGET_MS) {
      throw new BatonError('FENCED', `${what} not sent: this replica's etcd lease is proven for ${Math.floor(provenUntil - now)} ms only`);
    }
    const notAfterMonoMs = Math.min(now + nodes.deadlineMs, provenUntil);
    return { notAfterMonoMs, notAfterWallMs: clock.wallMs() + (notAfterMonoMs - now) };
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
