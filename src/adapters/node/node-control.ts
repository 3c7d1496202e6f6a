// Baton's side of the node channel: the core's NodeControl port over evnode.admin.v1 gRPC.
// One client (channel) per node endpoint, reused; every call carries the adapter's deadline.
import * as grpc from '@grpc/grpc-js';
import type { FencingMode, NodeSpec } from '../../core/chain.js';
import { BatonError, type ErrorCode } from '../../core/errors.js';
import type { NodeReport } from '../../core/observation.js';
import type { HandoffTicket, NodeCallOptions, NodeControl, StartGrant } from '../../core/ports.js';
import { termToToken, type Term } from '../../core/term.js';
import { FencingMode as WireFencingMode } from '../../gen/evnode/admin/v1/control.js';
import { systemClock } from '../system-clock.js';
import { createControlClient, grpcStatusOf, type ControlClient } from './grpc.js';
import { ERROR_CODE_KEY, fromHex, toHex } from './wire.js';

const KNOWN_CODES = new Set<string>([
  'STALE_TERM', 'HEAD_BEHIND', 'HEAD_MISMATCH', 'MISCONFIGURED', 'LEASE_EXPIRED', 'NOT_ACTIVE',
  'ALREADY_ACTIVE', 'BAD_TICKET', 'INVALID_ARGUMENT', 'UNAVAILABLE',
]);

/** The domain code of a failed node call: Baton's own code when the node sent one, else by status. */
function toBatonError(nodeId: string, rpc: string, err: unknown): BatonError {
  const status = grpcStatusOf(err);
  const detail = (err as { details?: string }).details ?? String(err);
  const sent = (err as { metadata?: grpc.Metadata }).metadata?.get(ERROR_CODE_KEY)[0];
  let code: ErrorCode;
  if (typeof sent === 'string' && KNOWN_CODES.has(sent)) code = sent as ErrorCode;
  else if (status === grpc.status.FAILED_PRECONDITION) code = 'STALE_TERM';
  else if (status === grpc.status.ALREADY_EXISTS) code = 'ALREADY_ACTIVE';
  else if (status === grpc.status.INVALID_ARGUMENT) code = 'INVALID_ARGUMENT';
  else code = 'NODE_UNREACHABLE';
  return new BatonError(code, `${nodeId} ${rpc}: ${detail}`, { node: nodeId, rpc, grpcStatus: status });
}

export class GrpcNodeControl implements NodeControl {
  private readonly clients = new Map<string, ControlClient>();

  constructor(
    readonly deadlineMs: number,
    private readonly requester: string,
    private readonly credentials?: grpc.ChannelCredentials,
  ) {}

  private client(node: NodeSpec): ControlClient {
    let c = this.clients.get(node.endpoint);
    if (!c) {
      c = createControlClient(node.endpoint, {
        deadlineMs: this.deadlineMs,
        credentials: this.credentials,
        // Reconnect fast after a node restarts: the default backoff reaches minutes.
        channelOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 },
      });
      this.clients.set(node.endpoint, c);
    }
    return c;
  }

  /** The call's deadline: the adapter's, or the earlier end the caller fixed (on the system clock's monoMs). */
  private deadline(options: NodeCallOptions | undefined): { deadlineMs: number } {
    const notAfter = options?.notAfterMonoMs;
    if (notAfter === undefined) return { deadlineMs: this.deadlineMs };
    // A call whose end has passed fails at once as DEADLINE_EXCEEDED, without being sent.
    return { deadlineMs: Math.min(this.deadlineMs, Math.max(0.001, notAfter - systemClock.monoMs())) };
  }

  /**
   * The absolute deadline a lease-granting request carries (not_after_unix_ms): the caller's end on
   * the wall clock, or the adapter's own deadline from now. Rounded down: never later than the end.
   */
  private notAfterUnixMs(options: NodeCallOptions | undefined): bigint {
    const wall = options?.notAfterWallMs ?? systemClock.wallMs() + this.deadlineMs;
    return BigInt(Math.floor(wall));
  }

  private async call<T>(node: NodeSpec, rpc: string, fn: (c: ControlClient) => Promise<T>): Promise<T> {
    try {
      return await fn(this.client(node));
    } catch (err) {
      throw toBatonError(node.id, rpc, err);
    }
  }

  async health(node: NodeSpec): Promise<NodeReport> {
    const r = await this.call(node, 'Health', (c) => c.health({}));
    return {
      healthy: r.healthy,
      headNumber: Number(r.l2Number),
      headHash: toHex(r.l2Hash),
      headParentHash: toHex(r.l2ParentHash),
      headL1Origin: r.l1Origin,
      headTimestamp: Number(r.l2Timestamp),
      producing: r.producing,
      term: r.term,
      highestTerm: r.highestTerm,
      leaseRemainingMs: Number(r.leaseRemainingMs),
      chainId: r.chainId,
      genesisHash: toHex(r.genesisHash),
      version: r.version,
      peerCount: Number(r.peerCount),
      lastError: r.lastErr,
    };
  }

  async start(node: NodeSpec, grant: StartGrant, options?: NodeCallOptions): Promise<void> {
    const head = grant.head;
    await this.call(node, 'StartSequencer', (c) =>
      c.startSequencer({
        fromUnsafeHead: head !== undefined,
        leaseToken: termToToken(grant.term),
        reason: grant.reason,
        requester: this.requester,
        leaseTtlMs: BigInt(grant.ttlMs),
        chainId: grant.chainId,
        nodeId: node.id,
        fencingMode: wireMode(grant.mode),
        notAfterUnixMs: this.notAfterUnixMs(options),
        unsafe: head && {
          l2Number: BigInt(head.number),
          l2Hash: fromHex(head.hash),
          l2ParentHash: fromHex(head.parentHash),
          l1Origin: head.l1Origin,
          timestamp: BigInt(head.timestamp),
          term: head.term,
          nodeId: head.nodeId,
        },
      }, this.deadline(options)),
    );
  }

  async renew(node: NodeSpec, term: Term, ttlMs: number, options?: NodeCallOptions): Promise<void> {
    await this.call(node, 'RenewLease', (c) =>
      c.renewLease(
        { leaseToken: termToToken(term), leaseTtlMs: BigInt(ttlMs), requester: this.requester, notAfterUnixMs: this.notAfterUnixMs(options) },
        this.deadline(options),
      ),
    );
  }

  async stop(node: NodeSpec, term: Term, reason: string): Promise<void> {
    await this.call(node, 'StopSequencer', (c) =>
      c.stopSequencer({ leaseToken: termToToken(term), reason, requester: this.requester }),
    );
  }

  async prepareHandoff(node: NodeSpec, term: Term, targetId: string, reason: string): Promise<HandoffTicket> {
    const r = await this.call(node, 'PrepareHandoff', (c) =>
      c.prepareHandoff({ leaseToken: termToToken(term), targetId, reason, requester: this.requester }),
    );
    return {
      ticket: r.handoffTicket,
      term: r.term?.term ?? term,
      headNumber: Number(r.unsafe?.l2Number ?? 0n),
      headHash: toHex(r.unsafe?.l2Hash ?? new Uint8Array()),
    };
  }

  async completeHandoff(node: NodeSpec, ticket: HandoffTicket, term: Term, ttlMs: number, mode: FencingMode, options?: NodeCallOptions): Promise<void> {
    await this.call(node, 'CompleteHandoff', (c) =>
      c.completeHandoff({
        handoffTicket: ticket.ticket,
        leaseToken: termToToken(term),
        leaseTtlMs: BigInt(ttlMs),
        fencingMode: wireMode(mode),
        requester: this.requester,
        notAfterUnixMs: this.notAfterUnixMs(options),
      }, this.deadline(options)),
    );
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

function wireMode(mode: FencingMode): WireFencingMode {
  return mode === 'commit' ? WireFencingMode.FENCING_MODE_COMMIT : WireFencingMode.FENCING_MODE_LEASE;
}
