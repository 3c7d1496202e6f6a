// One `baton sim` process: hosts any number of simulated nodes, each with its own port and
// activity log. Nodes of the same chain hosted together are peered with each other at start.
import { credentials as grpcCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import type { TlsFiles } from '../config/config.js';
import { readTlsFiles, type TlsMaterial } from '../adapters/security/tls.js';
import type { Logger } from '../adapters/telemetry/log.js';
import { ActivityLog, activityLogPath } from './activity-log.js';
import { GrpcHeadCommitter } from './committer.js';
import { SimNode } from './node.js';
import { PeerNetwork } from './peers.js';
import { serveNode, type NodeServer } from './server.js';

export interface HostedNodeSpec {
  chain: string;
  node: string;
  host: string;
  /** 0: any free port. */
  port: number;
  blockTimeMs: number;
  followIntervalMs: number;
  genesisHash: Buffer;
  version: string;
  lagBlocks: number;
  /** UNSAFE, negative controls only (BATON_UNSAFE_FAULTS=accept-lower-terms). */
  unsafeAcceptLowerTerms?: boolean;
  /** Peers in other processes (host:port); nodes of the chain in this process are added. */
  peers: string[];
  /** Baton's gRPC endpoints (host:port), where a commit-mode node commits its blocks. */
  baton: string[];
  /**
   * mTLS: the node serves TLS requiring a client certificate of `caFile`, and presents its own
   * certificate to Baton (commits) and to its peers. Absent: plaintext (insecure dev mode).
   */
  tls?: TlsFiles;
}

export interface HostedNodeInfo {
  chain: string;
  node: string;
  address: string;
}

interface Hosted {
  spec: HostedNodeSpec;
  node: SimNode;
  server?: NodeServer;
}

export class SimHost {
  private crashedCount = 0;
  private resolveAllCrashed!: () => void;
  /** Resolves once every hosted node has crashed (the `crash` fault). */
  readonly allCrashed = new Promise<void>((resolve) => (this.resolveAllCrashed = resolve));

  private constructor(
    private readonly hosted: Hosted[],
    private readonly network: PeerNetwork,
  ) {}

  static async start(specs: HostedNodeSpec[], logDir: string, logger: Logger): Promise<SimHost> {
    const material = new Map<HostedNodeSpec, TlsMaterial>();
    for (const spec of specs) if (spec.tls) material.set(spec, readTlsFiles(spec.tls));
    // One channel per peer address is shared by the process: it presents the first TLS identity.
    const first = [...material.values()][0];
    const network = new PeerNetwork(first && clientCredentials(first));
    const hosted: Hosted[] = [];
    const host = new SimHost(hosted, network);
    for (const spec of specs) {
      const node = new SimNode(
        {
          chainId: spec.chain,
          nodeId: spec.node,
          genesisHash: spec.genesisHash,
          version: spec.version,
          blockTimeMs: spec.blockTimeMs,
          followIntervalMs: spec.followIntervalMs,
          lagBlocks: spec.lagBlocks,
          unsafeAcceptLowerTerms: spec.unsafeAcceptLowerTerms,
        },
        {
          log: new ActivityLog(activityLogPath(logDir, spec.chain, spec.node)),
          transport: network,
          logger: logger.child({ component: 'sim-node', chain: spec.chain, node: spec.node }),
          onCrash: () => host.onCrash(),
          committer: spec.baton.length > 0 ? new GrpcHeadCommitter(spec.baton, tlsOf(material, spec), spec.chain) : undefined,
        },
      );
      hosted.push({ spec, node });
    }
    try {
      for (const h of hosted) {
        h.server = await serveNode(h.node, h.spec.host, h.spec.port, logger.child({ chain: h.spec.chain, node: h.spec.node }), material.get(h.spec));
        network.addLocal(h.server.address, h.node);
      }
    } catch (err) {
      await host.stop();
      throw err;
    }
    const byChain = new Map<string, Hosted[]>();
    for (const h of hosted) byChain.set(h.spec.chain, [...(byChain.get(h.spec.chain) ?? []), h]);
    for (const group of byChain.values()) {
      for (const h of group) {
        const local = group.filter((o) => o !== h).map((o) => o.server!.address);
        h.node.setPeers([...local, ...h.spec.peers]);
      }
    }
    return host;
  }

  get nodes(): HostedNodeInfo[] {
    return this.hosted.map((h) => ({ chain: h.spec.chain, node: h.spec.node, address: h.server!.address }));
  }

  /** Orderly stop: active nodes record that they stopped, then every port closes. */
  async stop(): Promise<void> {
    for (const h of this.hosted) h.node.shutdown();
    await Promise.all(this.hosted.map((h) => h.server?.close()));
    this.network.close();
  }

  private onCrash(): void {
    this.crashedCount++;
    if (this.crashedCount === this.hosted.length) this.resolveAllCrashed();
  }
}

function clientCredentials(tls: TlsMaterial): ChannelCredentials {
  return grpcCredentials.createSsl(tls.ca, tls.key, tls.cert);
}

function tlsOf(material: ReadonlyMap<HostedNodeSpec, TlsMaterial>, spec: HostedNodeSpec): ChannelCredentials | undefined {
  const m = material.get(spec);
  return m && clientCredentials(m);
}
