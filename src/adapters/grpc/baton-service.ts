// baton.v1.BatonService: the REST API's operations over gRPC. Handlers only translate: they call
// the same ControlPlane, ChainStore and validation as the REST routes, and every error goes
// through the one status table (errors.ts). Waits (GetLeader, GetOperation) end before the
// caller's deadline, so a long-poll answers instead of being cut off.
import { Metadata, status, type handleUnaryCall, type ServerUnaryCall, type StatusObject } from '@grpc/grpc-js';
import type { ControlPlane } from '../../api/control-plane.js';
import { BatonError } from '../../core/errors.js';
import type { OperationParams } from '../../core/operation.js';
import type { ChainStore } from '../../core/ports.js';
import { CHAIN_ID_PATTERN, validateChainSpec, type SpecLimits } from '../../core/spec.js';
import { viewTermRecord, type ChainView } from '../../core/status.js';
import type { Logger } from '../telemetry/log.js';
import type * as pb from '../../gen/baton/v1/baton.js';
import { ERROR_CODE_KEY, toHex } from '../node/wire.js';
import { chainFilter, fencingModeOf, specInput, toWireHead, toWireNode, toWireOperation, toWireSpec, toWireStatus, toWireSummary, toWireTerm, wallMs } from './convert.js';
import { toServiceError } from './errors.js';
import type { EventStreams } from './watch-events.js';
import { auditScopeOf, requestIdOf } from './access.js';
import { toWireAudit } from './audit.js';
import type { AuditScope } from '../../api/audit.js';

export interface BatonServiceDeps {
  readonly control: ControlPlane;
  readonly store: ChainStore;
  /** The operator's view of a chain (with node health), or undefined when it does not exist. */
  readonly describe: (chainId: string) => Promise<ChainView | undefined>;
  readonly limits: SpecLimits;
  readonly streams: EventStreams;
  readonly log: Logger;
}

export const REQUEST_ID_KEY = 'x-request-id';
export const IDEMPOTENCY_KEY = 'idempotency-key';

const DEFAULT_LIST_LIMIT = 50;
const MAX_LIST_LIMIT = 1000;
const DEFAULT_LEADER_WAIT_MS = 30_000;
const MAX_CONCURRENT_FAILOVERS = 1000;
/** A wait ends this long before the caller's deadline, leaving time for the answer to travel. */
const DEADLINE_MARGIN_MS = 100;

interface CallContext {
  readonly requestId: string;
  /** Who calls, for the audit record (set by the access guard). */
  readonly audit: AuditScope | undefined;
  readonly metadata: Metadata;
  /** `requestedMs`, shortened to end before the call's deadline. */
  budgetMs(requestedMs: number): number;
}

function invalid(message: string): BatonError {
  return new BatonError('INVALID_ARGUMENT', message);
}

function chainId(id: string, field = 'chain_id'): string {
  if (!CHAIN_ID_PATTERN.test(id)) throw invalid(`${field}: ${JSON.stringify(id)} must match ${CHAIN_ID_PATTERN}`);
  return id;
}

function listLimit(limit: number): number {
  if (limit > MAX_LIST_LIMIT) throw invalid(`limit: ${limit} is above ${MAX_LIST_LIMIT}`);
  return limit === 0 ? DEFAULT_LIST_LIMIT : limit;
}

function single(md: Metadata, key: string): string | undefined {
  const values = md.get(key);
  if (values.length > 1) throw invalid(`metadata ${key}: given ${values.length} times`);
  return values.length === 1 ? String(values[0]) : undefined;
}

/** The key of a mutating request: the field or the metadata; both only when they agree. */
function idempotencyKey(field: string, md: Metadata): string | undefined {
  const fromMetadata = single(md, IDEMPOTENCY_KEY);
  if (field && fromMetadata !== undefined && field !== fromMetadata) {
    throw invalid(`idempotency_key and metadata ${IDEMPOTENCY_KEY} differ`);
  }
  return field || fromMetadata || undefined;
}

/** When the caller's deadline ends (epoch ms); Infinity: no deadline. */
function deadlineAtMs(call: ServerUnaryCall<unknown, unknown>): number {
  const deadline = call.getDeadline();
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

function expired(rpc: string): Partial<StatusObject> {
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_KEY, 'UNAVAILABLE');
  return { code: status.DEADLINE_EXCEEDED, details: `${rpc}: its deadline passed before it was run; nothing was done`, metadata };
}

function context(call: ServerUnaryCall<unknown, unknown>): CallContext {
  const requestId = requestIdOf(call);
  return {
    audit: auditScopeOf(call),
    requestId,
    metadata: call.metadata,
    budgetMs(requestedMs) {
      return Math.max(0, Math.min(requestedMs, deadlineAtMs(call) - Date.now() - DEADLINE_MARGIN_MS));
    },
  };
}

export function batonService(deps: BatonServiceDeps): pb.BatonServiceServer {
  const { control: cp, store, limits } = deps;
  const log = deps.log;

  function unary<Req, Res>(rpc: string, run: (req: Req, ctx: CallContext) => Promise<Res>): handleUnaryCall<Req, Res> {
    return (call, callback) => {
      // The caller gave up already: the call waited in this replica's queue past its deadline.
      // Running it now is work nobody waits for, and under overload that work is what piles up
      // (a node whose commit timed out sends the next try while the first is still running).
      if (Date.now() >= deadlineAtMs(call)) {
        callback(expired(rpc));
        return;
      }
      const ctx = context(call);
      const md = new Metadata();
      md.set(REQUEST_ID_KEY, ctx.requestId);
      call.sendMetadata(md);
      run(call.request, ctx).then(
        (res) => callback(null, res),
        (err: unknown) => {
          if (!(err instanceof BatonError)) log.error({ err, rpc, requestId: ctx.requestId }, 'grpc call failed');
          callback(toServiceError(err));
        },
      );
    };
  }

  /** An intent: durable before the answer; a replay with the same key answers the first operation. */
  async function submit(id: string, params: OperationParams, field: string, ctx: CallContext): Promise<{ operation: pb.Operation; replayed: boolean }> {
    const { operation, replayed } = await cp.submit(chainId(id), params, {
      requestId: ctx.requestId,
      idempotencyKey: idempotencyKey(field, ctx.metadata),
      // What the request asks for: the same key with other fields is refused. REST hashes its own
      // method, path and body, so a key belongs to the surface it was first used on.
      canonical: `grpc ${JSON.stringify([id, params])}`,
      ...(ctx.audit ? { audit: ctx.audit } : {}),
    });
    return { operation: toWireOperation(operation), replayed };
  }

  return {
    listChains: unary('ListChains', async (req: pb.ListChainsRequest) => {
      const { chains, counts } = await cp.listChains(chainFilter(req.filter));
      return {
        chains: [],
        summaries: chains.map(toWireSummary),
        counts: { total: counts.total, leaderless: counts.leaderless, paused: counts.paused, degraded: counts.degraded, failingOver: counts['failing-over'] },
      };
    }),

    getChain: unary('GetChain', async (req: pb.GetChainRequest) => {
      const view = await deps.describe(chainId(req.chainId));
      if (!view) throw new BatonError('NOT_FOUND', `chain ${req.chainId} does not exist`);
      return { chain: toWireStatus(view) };
    }),

    commitUnsafeHead: unary('CommitUnsafeHead', async (req: pb.CommitUnsafeHeadRequest) => {
      const head = req.head;
      if (!head) throw invalid('head: required');
      if ((head.term !== 0n && head.term !== req.term) || (head.nodeId !== '' && head.nodeId !== req.nodeId)) {
        throw invalid('head.term and head.node_id, when set, must equal term and node_id');
      }
      const r = await cp.commitHead({
        chainId: req.chainId,
        nodeId: req.nodeId,
        term: req.term,
        number: head.number,
        hash: toHex(head.hash),
        parentHash: toHex(head.parentHash),
        l1Origin: head.l1Origin,
        timestamp: head.timestamp,
      });
      return { head: toWireHead(r.head), duplicate: r.duplicate, revision: r.revision };
    }),

    putChain: unary('PutChain', async (req: pb.PutChainRequest, ctx) => {
      const spec = validateChainSpec(specInput(req.spec), limits);
      const { created } = await cp.putChain(spec, { audit: ctx.audit });
      return { spec: toWireSpec(spec), created };
    }),

    deleteChain: unary('DeleteChain', async (req: pb.DeleteChainRequest, ctx) => {
      await cp.deleteChain(chainId(req.chainId), { audit: ctx.audit });
      return {};
    }),

    getLeader: unary('GetLeader', async (req: pb.GetLeaderRequest, ctx) => {
      const from = req.waitForChangeFrom === 0n ? undefined : req.waitForChangeFrom;
      const r = await cp.leader(chainId(req.chainId), from, ctx.budgetMs(req.timeoutMs || DEFAULT_LEADER_WAIT_MS));
      return { nodeId: r.nodeId ?? '', term: r.term === null ? 0n : BigInt(r.term), endpoint: r.endpoint ?? '', changed: r.changed };
    }),

    getHistory: unary('GetHistory', async (req: pb.GetHistoryRequest) => {
      const id = chainId(req.chainId);
      const limit = listLimit(req.limit);
      if (!(await store.getSpec(id))) throw new BatonError('NOT_FOUND', `chain ${id} does not exist`);
      const terms = await store.history(id, limit);
      return { terms: terms.map((r) => toWireTerm(viewTermRecord(r))) };
    }),

    failover: unary('Failover', async (req: pb.FailoverRequest, ctx): Promise<pb.FailoverResponse> => {
      if (req.dryRun) {
        const plan = await cp.planFailover(chainId(req.chainId), req.candidate || undefined);
        return { plan: { from: plan.from ?? '', to: plan.to ?? '', reason: plan.reason, nodes: plan.nodes.map(toWireNode) }, replayed: false };
      }
      const params: OperationParams = { kind: 'failover', reason: req.reason, ...(req.candidate ? { candidate: req.candidate } : {}) };
      return submit(req.chainId, params, req.idempotencyKey, ctx);
    }),

    switchover: unary('Switchover', async (req: pb.SwitchoverRequest, ctx) => {
      const scheduledAtMs = wallMs('scheduled_at', req.scheduledAt);
      const params: OperationParams = {
        kind: 'switchover',
        reason: req.reason,
        ...(req.target ? { target: req.target } : {}),
        ...(scheduledAtMs !== undefined ? { scheduledAtMs } : {}),
      };
      return submit(req.chainId, params, req.idempotencyKey, ctx);
    }),

    cancelSwitchover: unary('CancelSwitchover', async (req: pb.CancelSwitchoverRequest, ctx) =>
      submit(req.chainId, { kind: 'cancel-switchover', reason: req.reason }, req.idempotencyKey, ctx),
    ),

    pause: unary('Pause', async (req: pb.PauseRequest, ctx) => {
      const untilMs = wallMs('until', req.until);
      const params: OperationParams = { kind: 'pause', reason: req.reason, ...(untilMs !== undefined ? { untilMs } : {}) };
      return submit(req.chainId, params, req.idempotencyKey, ctx);
    }),

    resume: unary('Resume', async (req: pb.ResumeRequest, ctx) => submit(req.chainId, { kind: 'resume', reason: req.reason }, req.idempotencyKey, ctx)),

    override: unary('Override', async (req: pb.OverrideRequest, ctx) => {
      if (!req.nodeId) throw invalid('node_id: required');
      return submit(req.chainId, { kind: 'override', nodeId: req.nodeId, reason: req.reason, ...(req.rollbackHead ? { rollbackHead: true } : {}) }, req.idempotencyKey, ctx);
    }),

    clearOverride: unary('ClearOverride', async (req: pb.ClearOverrideRequest, ctx) =>
      submit(req.chainId, { kind: 'clear-override', reason: req.reason }, req.idempotencyKey, ctx),
    ),

    setFencingMode: unary('SetFencingMode', async (req: pb.SetFencingModeRequest, ctx) =>
      submit(req.chainId, { kind: 'set-fencing-mode', mode: fencingModeOf(req.mode), reason: req.reason }, req.idempotencyKey, ctx),
    ),

    getOperation: unary('GetOperation', async (req: pb.GetOperationRequest, ctx) => {
      if (!req.operationId) throw invalid('operation_id: required');
      return { operation: toWireOperation(await cp.operation(req.operationId, ctx.budgetMs(req.waitMs))) };
    }),

    listOperations: unary('ListOperations', async (req: pb.ListOperationsRequest) => {
      const ops = await cp.listOperations(req.chainId ? chainId(req.chainId) : undefined, listLimit(req.limit));
      return { operations: ops.map(toWireOperation) };
    }),

    getFleetSettings: unary('GetFleetSettings', async () => ({ settings: await store.getFleetSettings() })),

    putFleetSettings: unary('PutFleetSettings', async (req: pb.PutFleetSettingsRequest, ctx) => {
      const { autoFailover, maxConcurrentFailovers } = req;
      if (autoFailover === undefined) throw invalid('auto_failover: required');
      // The same bounds as the REST body (openapi.yaml).
      if (maxConcurrentFailovers === undefined || maxConcurrentFailovers < 1 || maxConcurrentFailovers > MAX_CONCURRENT_FAILOVERS) {
        throw invalid(`max_concurrent_failovers: required, 1..${MAX_CONCURRENT_FAILOVERS}`);
      }
      return { settings: await cp.putFleetSettings({ autoFailover, maxConcurrentFailovers }, { audit: ctx.audit }) };
    }),

    queryAudit: unary('QueryAudit', async (req: pb.QueryAuditRequest) => {
      const fromMs = wallMs('from', req.from);
      const toMs = wallMs('to', req.to);
      const records = await cp.queryAudit({
        ...(req.chainId ? { chainId: chainId(req.chainId) } : {}),
        ...(req.principal ? { principal: req.principal } : {}),
        ...(fromMs !== undefined ? { fromMs } : {}),
        ...(toMs !== undefined ? { toMs } : {}),
        limit: listLimit(req.limit),
      });
      return { records: records.map(toWireAudit) };
    }),

    watchEvents: deps.streams.handler,
  };
}
