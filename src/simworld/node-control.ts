// The core's NodeControl port over the simulated network: one per replica, so a message from a
// paused or partitioned replica is delayed or lost like any other. Calls carry the adapter's
// deadline and the nodes drop requests that reach them after it (as gRPC deadlines do), which is
// what the supervisor's lease book relies on.
import type { FencingMode, NodeSpec } from '../core/chain.js';
import { BatonError } from '../core/errors.js';
import type { NodeReport } from '../core/observation.js';
import type { HandoffTicket, NodeCallOptions, NodeControl, StartGrant } from '../core/ports.js';
import type { Term } from '../core/term.js';
import type { Proc } from './loop.js';
import type { Network } from './network.js';
import type { SimSequencer } from './sequencer.js';

export class SimNodeControl implements NodeControl {
  constructor(
    readonly deadlineMs: number,
    private readonly from: Proc,
    private readonly net: Network,
    private readonly nodes: ReadonlyMap<string, SimSequencer>,
    /** Fault hook: asked before each call; a number freezes the replica for that long right before sending. */
    private readonly pauseBeforeCall?: (rpc: string) => number | undefined,
  ) {}

  private call<T>(node: NodeSpec, rpc: string, fn: (n: SimSequencer) => T, options?: NodeCallOptions): Promise<T> {
    const target = this.nodes.get(node.endpoint);
    if (!target) return Promise.reject(new BatonError('NODE_UNREACHABLE', `${node.id} ${rpc}: no such endpoint`));
    const timeout = () => new BatonError('NODE_UNREACHABLE', `${node.id} ${rpc}: deadline exceeded`);
    // The freeze below stands for a pause of the replica between its decision and the call: the
    // adapter's deadline starts after it, an end fixed by the caller (options) does not move.
    const send = () => {
      const left = Math.min(this.deadlineMs, (options?.notAfterMonoMs ?? Infinity) - this.from.now());
      return left > 0 ? this.net.call(this.from, target.proc, left, () => fn(target), timeout, true) : Promise.reject(timeout());
    };
    const pause = this.pauseBeforeCall?.(rpc);
    if (pause === undefined) return send();
    this.from.pausedUntil = Math.max(this.from.pausedUntil, this.from.now() + pause);
    return new Promise((resolve) => this.from.deliver(() => resolve(send())));
  }

  health(node: NodeSpec): Promise<NodeReport> {
    return this.call(node, 'Health', (n) => n.health());
  }

  start(node: NodeSpec, grant: StartGrant, options?: NodeCallOptions): Promise<void> {
    return this.call(node, 'StartSequencer', (n) => n.start(grant), options);
  }

  renew(node: NodeSpec, term: Term, ttlMs: number, options?: NodeCallOptions): Promise<void> {
    return this.call(node, 'RenewLease', (n) => n.renew(term, ttlMs), options);
  }

  stop(node: NodeSpec, term: Term, _reason: string): Promise<void> {
    return this.call(node, 'StopSequencer', (n) => n.stop(term));
  }

  async prepareHandoff(node: NodeSpec, term: Term, _targetId: string, _reason: string): Promise<HandoffTicket> {
    const p = await this.call(node, 'PrepareHandoff', (n) => n.prepareHandoff(term));
    return { ticket: Buffer.from(p.ticket), term, headNumber: p.number, headHash: p.hash };
  }

  completeHandoff(node: NodeSpec, ticket: HandoffTicket, term: Term, ttlMs: number, mode: FencingMode, options?: NodeCallOptions): Promise<void> {
    const t = { ticket: Buffer.from(ticket.ticket).toString(), term: ticket.term, number: ticket.headNumber, hash: ticket.headHash };
    return this.call(node, 'CompleteHandoff', (n) => n.completeHandoff(t, term, ttlMs, mode), options);
  }
}
