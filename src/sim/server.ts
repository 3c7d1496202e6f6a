// One gRPC server per simulated node, on its own port, serving the node contract
// (evnode.admin.v1.ControlService) and the simulator's SimService. The `hang` and `slow_ms` faults
// act here, on ControlService only: SimService always answers, so tests can clear faults. With TLS
// material the server requires a client certificate of the CA (mTLS): Baton, the peers and the
// test harness must each present one.
import * as grpc from '@grpc/grpc-js';
// Errors map to gRPC status through the same one table as Baton's own gRPC API.
import { toServiceError } from '../adapters/grpc/errors.js';
import type { Logger } from '../adapters/telemetry/log.js';
import type { TlsMaterial } from '../adapters/security/tls.js';
import { Faults, SimServiceService, type SimServiceServer } from '../gen/baton/sim/v1/sim.js';
import { ControlServiceService, type ControlServiceServer } from '../gen/evnode/admin/v1/control.js';
import { fromWire, toWire } from './chain.js';
import type { SimNode } from './node.js';

export interface NodeServer {
  /** host:port the node listens on. */
  readonly address: string;
  /** Graceful close; calls still hanging (the `hang` fault) are cut after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

/** How long a crashing node keeps its port open so that the SetFaults call itself is answered. */
const CRASH_CLOSE_DELAY_MS = 20;

/** Plaintext without `tls`; with it, TLS that refuses a client without a certificate of its CA. */
export function nodeServerCredentials(tls: TlsMaterial | undefined): grpc.ServerCredentials {
  return tls ? grpc.ServerCredentials.createSsl(tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], true) : grpc.ServerCredentials.createInsecure();
}

export async function serveNode(node: SimNode, host: string, port: number, logger: Logger, tls?: TlsMaterial): Promise<NodeServer> {
  const server = new grpc.Server();
  server.addService(ControlServiceService, controlService(node));
  server.addService(
    SimServiceService,
    simService(node, () => setTimeout(() => server.forceShutdown(), CRASH_CLOSE_DELAY_MS)),
  );
  const hostPart = host.includes(':') ? `[${host}]` : host;
  const boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${hostPart}:${port}`, nodeServerCredentials(tls), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  const address = `${hostPart}:${boundPort}`;
  logger.debug({ address, tls: tls !== undefined }, 'listening');
  return {
    address,
    close: (graceMs = 500) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

function answer<Res>(callback: grpc.sendUnaryData<Res>, run: () => Res): void {
  let res: Res;
  try {
    res = run();
  } catch (err) {
    callback(toServiceError(err));
    return;
  }
  callback(null, res);
}

// The `hang` and `slow_ms` faults are read when a call arrives. A call whose deadline has passed
// by the time it would be executed is refused, never executed: Baton bounds every lease it grants
// by send time + deadline + TTL, so a grant accepted after its deadline could outlive that bound.
function control<Req, Res>(node: SimNode, run: (req: Req) => Res): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const { hang, slowMs } = node.currentFaults;
    if (hang) return; // never answered: the caller's deadline fires
    const execute = (): void => {
      if (pastDeadline(call.getDeadline())) {
        callback({ code: grpc.status.DEADLINE_EXCEEDED, details: 'deadline passed before the call was executed' });
        return;
      }
      answer(callback, () => run(call.request));
    };
    if (slowMs > 0) setTimeout(execute, slowMs);
    else execute();
  };
}

function pastDeadline(deadline: grpc.Deadline): boolean {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) && Date.now() > at;
}

function controlService(node: SimNode): ControlServiceServer {
  return {
    startSequencer: control(node, (req) => node.startSequencer(req)),
    stopSequencer: control(node, (req) => node.stopSequencer(req)),
    prepareHandoff: control(node, (req) => node.prepareHandoff(req)),
    completeHandoff: control(node, (req) => node.completeHandoff(req)),
    health: control(node, () => node.health()),
    status: control(node, () => node.status()),
    renewLease: control(node, (req) => node.renewLease(req)),
  };
}

function simService(node: SimNode, closeSoon: () => void): SimServiceServer {
  return {
    getBlocks: (call, callback) =>
      answer(callback, () => {
        const { blocks, headNumber } = node.blocksFrom(Number(call.request.fromNumber), call.request.max);
        return { blocks: blocks.map(toWire), headNumber: BigInt(headNumber) };
      }),
    gossip: (call, callback) =>
      answer(callback, () => ({ accepted: node.acceptGossip(call.request.blocks.map(fromWire)) })),
    setFaults: (call, callback) => {
      answer(callback, () => ({ faults: node.setFaults(call.request.faults ?? Faults.fromPartial({})) }));
      if (node.crashed) closeSoon();
    },
    setPeers: (call, callback) =>
      answer(callback, () => {
        node.setPeers(call.request.peers);
        return {};
      }),
    inspect: (_call, callback) => answer(callback, () => node.inspect()),
  };
}
