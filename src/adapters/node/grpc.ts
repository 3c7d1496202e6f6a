// Promise-based unary gRPC calls over the generated (ts-proto, grpc-js) service definitions. Every
// call has a deadline (there is no way to make one without) and can be aborted. Errors are the
// grpc-js ServiceError as received: callers branch on `code` (grpc status), never on the text.
import * as grpc from '@grpc/grpc-js';
import { SimServiceService, GetBlocksRequest, GossipRequest, InspectRequest, SetFaultsRequest, SetPeersRequest } from '../../gen/baton/sim/v1/sim.js';
import {
  CompleteHandoffRequest,
  ControlServiceService,
  HealthRequest,
  PrepareHandoffRequest,
  RenewLeaseRequest,
  StartSequencerRequest,
  StatusRequest,
  StopSequencerRequest,
} from '../../gen/evnode/admin/v1/control.js';

export { ERROR_CODE_KEY } from './wire.js';

/** One unary method of a generated service definition. */
export interface UnaryMethod<Req, Res> {
  path: string;
  requestStream: false;
  responseStream: false;
  requestSerialize(value: Req): Buffer;
  responseDeserialize(value: Buffer): Res;
}

export interface UnaryCallOptions {
  /** The call fails with DEADLINE_EXCEEDED after this many ms. */
  deadlineMs: number;
  /** Aborting cancels the call (it fails with CANCELLED). */
  signal?: AbortSignal;
  metadata?: grpc.Metadata;
}

/** One unary call, promisified. */
export function unaryCall<Req, Res>(
  client: grpc.Client,
  method: UnaryMethod<Req, Res>,
  request: Req,
  options: UnaryCallOptions,
): Promise<Res> {
  const { deadlineMs, signal } = options;
  if (!Number.isFinite(deadlineMs) || deadlineMs <= 0) {
    return Promise.reject(new RangeError(`${method.path}: deadline must be > 0 ms, got ${deadlineMs}`));
  }
  return new Promise<Res>((resolve, reject) => {
    if (signal?.aborted) {
      reject(cancelled(method.path));
      return;
    }
    const onAbort = (): void => call.cancel();
    const call = client.makeUnaryRequest(
      method.path,
      (v: Req) => method.requestSerialize(v),
      (b: Buffer) => method.responseDeserialize(b),
      request,
      options.metadata ?? new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (err, res) => {
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(res as Res);
      },
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function cancelled(path: string): grpc.ServiceError {
  return Object.assign(new Error(`${grpc.status.CANCELLED} CANCELLED: ${path} aborted before it was sent`), {
    code: grpc.status.CANCELLED,
    details: 'aborted',
    metadata: new grpc.Metadata(),
  });
}

/** The grpc status of a failed call, undefined for anything that is not a gRPC error. */
export function grpcStatusOf(err: unknown): grpc.status | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' && grpc.status[code] !== undefined ? (code as grpc.status) : undefined;
}

export function isGrpcError(err: unknown, code?: grpc.status): err is grpc.ServiceError {
  const status = grpcStatusOf(err);
  return status !== undefined && (code === undefined || status === code);
}

// ---- typed clients ------------------------------------------------------------------------------

/** A request as callers may write it: any field may be left out, bytes as any Uint8Array. */
export type RequestInput<T> = T extends Buffer
  ? Uint8Array
  : T extends bigint
    ? bigint | number
    : T extends string | number | boolean | undefined
      ? T
      : T extends ReadonlyArray<infer U>
        ? RequestInput<U>[]
        : T extends object
          ? { [K in keyof T]?: RequestInput<T[K]> }
          : T;

type RequestOf<M> = M extends UnaryMethod<infer Req, unknown> ? Req : never;
type ResponseOf<M> = M extends UnaryMethod<never, infer Res> ? Res : never;
type AnyService = Record<string, UnaryMethod<never, unknown>>;

export type ServiceClient<S extends AnyService> = {
  readonly [K in keyof S]: (request?: RequestInput<RequestOf<S[K]>>, options?: Partial<UnaryCallOptions>) => Promise<ResponseOf<S[K]>>;
} & {
  readonly address: string;
  close(): void;
};

export interface ClientOptions {
  /** Deadline of every call that does not set its own. */
  deadlineMs: number;
  /** mTLS credentials of the caller; plaintext when absent (insecure dev mode only). */
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
}

/** Fills a partial request into a full message (ts-proto's `fromPartial`). */
interface RequestFactory<T> {
  fromPartial(object: never): T;
}

export function createServiceClient<S extends AnyService>(
  service: S,
  requests: { [K in keyof S]: RequestFactory<RequestOf<S[K]>> },
  address: string,
  options: ClientOptions,
): ServiceClient<S> {
  const client = new grpc.Client(address, options.credentials ?? grpc.credentials.createInsecure(), options.channelOptions);
  const out: Record<string, unknown> = {
    address,
    close: () => client.close(),
  };
  for (const name of Object.keys(service) as (keyof S & string)[]) {
    const method = service[name]! as unknown as UnaryMethod<unknown, unknown>;
    const factory = requests[name] as unknown as { fromPartial(o: unknown): unknown };
    out[name] = (request: unknown = {}, callOptions: Partial<UnaryCallOptions> = {}) =>
      unaryCall(client, method, factory.fromPartial(request), { deadlineMs: options.deadlineMs, ...callOptions });
  }
  return out as ServiceClient<S>;
}

export type ControlClient = ServiceClient<typeof ControlServiceService>;
export type SimClient = ServiceClient<typeof SimServiceService>;

/** evnode.admin.v1.ControlService: the node contract. */
export function createControlClient(address: string, options: ClientOptions): ControlClient {
  return createServiceClient(
    ControlServiceService,
    {
      startSequencer: StartSequencerRequest,
      stopSequencer: StopSequencerRequest,
      prepareHandoff: PrepareHandoffRequest,
      completeHandoff: CompleteHandoffRequest,
      health: HealthRequest,
      status: StatusRequest,
      renewLease: RenewLeaseRequest,
    },
    address,
    options,
  );
}

/** baton.sim.v1.SimService: only simulated nodes serve it. */
export function createSimClient(address: string, options: ClientOptions): SimClient {
  return createServiceClient(
    SimServiceService,
    {
      getBlocks: GetBlocksRequest,
      gossip: GossipRequest,
      setFaults: SetFaultsRequest,
      setPeers: SetPeersRequest,
      inspect: InspectRequest,
    },
    address,
    options,
  );
}
