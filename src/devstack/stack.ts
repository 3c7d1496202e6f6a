// A whole Baton deployment on this machine, for scenario tests, the demo and benchmarks: a real
// etcd (1 or 3 members), one `baton sim` process per simulated node (so each can be killed alone),
// and N `baton serve` replicas, with the chains registered over REST. Everything is started as a
// ManagedProcess and stopped by its PID.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RoleBinding, TlsFiles } from '../config/config.js';
import type { ChainPolicy } from '../core/chain.js';
import { startBaton, type BatonApi, type BatonProcess, type ChainViewJson, type DevSecurity } from './baton.js';
import { CertificateAuthority } from './certs.js';
import { EtcdCluster } from './etcd.js';
import { waitFor } from './process.js';
import { startSim, wirePeers, type SimNodeHandle, type SimProcess } from './sim.js';

export interface StackChain {
  readonly id: string;
  /** Node ids; each runs in its own `baton sim` process. */
  readonly nodes: readonly string[];
  readonly policy?: Partial<ChainPolicy>;
}

export interface StackOptions {
  readonly dir: string;
  readonly chains: readonly StackChain[];
  readonly replicas: number;
  readonly etcdMembers?: 1 | 3;
  /** Block time of the simulated nodes (and the chains' policy). */
  readonly blockTimeMs?: number;
  /** Merged into every replica's config file. */
  readonly batonConfig?: Record<string, unknown>;
  readonly onBatonLine?: (replicaId: string, line: string) => void;
  /** Added to every replica's environment (e.g. OTEL_EXPORTER_OTLP_ENDPOINT for a test's receiver). */
  readonly batonEnv?: Record<string, string>;
  /**
   * mTLS everywhere with throwaway certificates (openssl, in `dir`/certs): the REST and gRPC APIs,
   * and the node channel: every simulated node serves TLS requiring a client certificate and
   * commits to Baton with its own certificate (principal `node-<chain>-<node>`, bound to the node
   * role for that one node). The stack's own client is `admin` with every operator role.
   * Default: insecure dev mode.
   */
  readonly tls?: boolean;
  /**
   * The endpoint Baton is told for a node (default: the node's own address). Drills put a TCP
   * proxy there to cut a node off from Baton while its peers still reach it directly.
   */
  readonly endpointFor?: (chain: string, node: string, address: string) => Promise<string>;
  /**
   * The etcd endpoints a replica is told (default: the members' own). Drills put a TCP proxy per
   * replica and member there to cut one replica off from etcd, or delay its traffic.
   */
  readonly etcdFor?: (replicaId: string, endpoints: readonly string[]) => Promise<string[]>;
}

/** The CA and the certificates of a stack started with `tls`. */
export interface StackTls {
  readonly ca: CertificateAuthority;
  readonly security: DevSecurity;
  /** Each node's own certificate (server and client usage), by `chain/node`. */
  readonly nodes: ReadonlyMap<string, TlsFiles>;
}

/** The principal of a simulated node's certificate in a TLS devstack. */
export function nodePrincipal(chain: string, node: string): string {
  return `node-${chain}-${node}`;
}

/**
 * A CA, a server certificate for the replicas, an all-roles `admin` client certificate, and one
 * certificate per node of `chains` bound to the node role for that node alone.
 */
export function mintStackTls(dir: string, chains: readonly StackChain[] = []): StackTls {
  const ca = CertificateAuthority.create(dir);
  const server = ca.issue('baton-replica', { cn: 'baton-replica', usage: 'both' });
  const admin = ca.issue('admin', { cn: 'admin', usage: 'client' });
  const nodes = new Map<string, TlsFiles>();
  const bindings: RoleBinding[] = [{ principal: 'admin', roles: ['viewer', 'operator', 'admin', 'breakglass'] }];
  for (const chain of chains) {
    for (const node of chain.nodes) {
      const principal = nodePrincipal(chain.id, node);
      nodes.set(`${chain.id}/${node}`, { caFile: ca.caFile, ...ca.issue(principal, { cn: principal, usage: 'both' }) });
      bindings.push({ principal, roles: ['node'], node: { chainId: chain.id, nodeId: node } });
    }
  }
  return {
    ca,
    nodes,
    security: {
      server: { caFile: ca.caFile, ...server },
      client: { caFile: ca.caFile, ...admin },
      bindings,
    },
  };
}

/** Timings that keep scenario tests short while staying consistent (see docs/benchmarks.md). */
export const FAST_BATON_CONFIG = {
  etcd: { callDeadlineMs: 1000 },
  replica: { leaseTtlS: 2, fenceMarginMs: 500, takeoverGraceMs: 1000, resyncMs: 2000 },
  node: { rpcDeadlineMs: 150 },
};

export const FAST_POLICY: Partial<ChainPolicy> = {
  probeIntervalMs: 150,
  failureThreshold: 3,
  stallFactor: 5,
  leaseTtlMs: 3300,
  maxLagBlocks: 2,
  antiFlapMs: 0,
};

interface SimEntry {
  readonly chain: string;
  readonly node: string;
  process: SimProcess;
}

export class DevStack {
  private readonly grpcPorts = new Map<string, number>();

  private constructor(
    readonly opts: StackOptions,
    readonly etcd: EtcdCluster,
    private readonly sims: SimEntry[],
    readonly replicas: BatonProcess[],
    readonly tls: StackTls | undefined,
  ) {}

  static async start(opts: StackOptions): Promise<DevStack> {
    mkdirSync(opts.dir, { recursive: true });
    const etcd = await EtcdCluster.start({ members: opts.etcdMembers ?? 1 });
    const stack = new DevStack(opts, etcd, [], [], opts.tls ? mintStackTls(join(opts.dir, 'certs'), opts.chains) : undefined);
    try {
      const blockTimeMs = opts.blockTimeMs ?? 200;
      // Nodes commit to Baton in commit mode, so they are told its gRPC addresses at start: the
      // replicas start first (each binds a free port and keeps it across restarts), then the nodes.
      for (let i = 0; i < opts.replicas; i++) await stack.startReplica(`r${i + 1}`);
      const baton = stack.batonEndpoints();
      for (const chain of opts.chains) {
        const procs = await Promise.all(
          chain.nodes.map((node) => {
            const tls = stack.tls?.nodes.get(`${chain.id}/${node}`);
            return startSim({
              logDir: join(opts.dir, 'sim'),
              nodes: [{ chain: chain.id, node, blockTimeMs, baton, ...(tls ? { tls } : {}) }],
              ...(stack.tls ? { clientTls: stack.tls.security.client } : {}),
            });
          }),
        );
        chain.nodes.forEach((node, i) => stack.sims.push({ chain: chain.id, node, process: procs[i]! }));
        await wirePeers(procs.map((p) => p.nodes[0]!));
      }
      for (const chain of opts.chains) {
        const endpoint = (node: string): Promise<string> | string => {
          const address = stack.node(chain.id, node).address;
          return opts.endpointFor ? opts.endpointFor(chain.id, node, address) : address;
        };
        const endpoints = await Promise.all(chain.nodes.map(endpoint));
        const res = await stack.api().putChain(chain.id, {
          nodes: chain.nodes.map((node, i) => ({ id: node, endpoint: endpoints[i]!, zone: `z-${node}` })),
          policy: { blockTimeMs, ...chain.policy },
        });
        if (res.status >= 300) throw new Error(`PUT /v1/chains/${chain.id}: ${res.status} ${JSON.stringify(res.body)}`);
      }
      return stack;
    } catch (err) {
      await stack.stop();
      throw err;
    }
  }

  async startReplica(replicaId: string): Promise<BatonProcess> {
    const existing = this.replicas.findIndex((r) => r.replicaId === replicaId);
    const etcd = this.opts.etcdFor ? await this.opts.etcdFor(replicaId, this.etcd.endpoints) : this.etcd.endpoints;
    const start = (grpcPort: number | undefined) => startBaton({
      replicaId,
      etcd,
      dir: this.opts.dir,
      grpcPort,
      config: this.opts.batonConfig,
      security: this.tls?.security,
      env: this.opts.batonEnv,
      onLine: (line) => this.opts.onBatonLine?.(replicaId, line),
    });
    // A restart takes the port the nodes were told; should another process have taken it
    // meanwhile, a new one (the nodes then commit through the other replicas).
    const known = this.grpcPorts.get(replicaId);
    let replica: BatonProcess;
    try {
      replica = await start(known);
    } catch (err) {
      if (known === undefined) throw err;
      process.stderr.write(`devstack: ${replicaId} could not take gRPC port ${known} again (${(err as Error).message}); starting it on a new port\n`);
      replica = await start(undefined);
    }
    this.grpcPorts.set(replicaId, Number(replica.grpcAddress.slice(replica.grpcAddress.lastIndexOf(':') + 1)));
    if (existing >= 0) this.replicas[existing] = replica;
    else this.replicas.push(replica);
    return replica;
  }

  /** Baton's gRPC addresses, as nodes are told them (commit mode). */
  batonEndpoints(): string[] {
    return [...this.grpcPorts.values()].map((p) => `127.0.0.1:${p}`);
  }

  replica(replicaId: string): BatonProcess {
    const r = this.replicas.find((x) => x.replicaId === replicaId);
    if (!r) throw new Error(`no replica ${replicaId}`);
    return r;
  }

  /** The REST API of the first replica still running (any replica serves any request). */
  api(except?: string): BatonApi {
    const r = this.replicas.find((x) => x.process.running && x.replicaId !== except);
    if (!r) throw new Error('no Baton replica is running');
    return r.api;
  }

  node(chain: string, node: string): SimNodeHandle {
    return this.simEntry(chain, node).process.nodes[0]!;
  }

  simProcess(chain: string, node: string): SimProcess {
    return this.simEntry(chain, node).process;
  }

  private simEntry(chain: string, node: string): SimEntry {
    const e = this.sims.find((s) => s.chain === chain && s.node === node);
    if (!e) throw new Error(`no node ${chain}/${node}`);
    return e;
  }

  /** Activity logs of every node ever started (for the checker). */
  logFiles(): string[] {
    return this.sims.map((s) => s.process.nodes[0]!.logFile);
  }

  logDir(): string {
    return join(this.opts.dir, 'sim');
  }

  /** Polls the API until the chain has a leader producing under its term (other than `not`). */
  async waitForProducingLeader(chain: string, timeoutMs: number, not?: string): Promise<{ nodeId: string; term: bigint; view: ChainViewJson }> {
    return waitFor(
      `a producing leader of ${chain}${not ? ` other than ${not}` : ''}`,
      async () => {
        const res = await this.api().getChain(chain);
        const view = res.body;
        const leader = view.leader;
        if (res.status !== 200 || !leader || leader.nodeId === not) return undefined;
        const node = view.nodes.find((n) => n.id === leader.nodeId);
        if (!node?.producing || node.term !== leader.term) return undefined;
        return { nodeId: leader.nodeId, term: BigInt(leader.term), view };
      },
      timeoutMs,
      100,
    );
  }

  async stop(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.stop(3000).catch(() => undefined)));
    await Promise.all(this.sims.map((s) => s.process.stop(3000).catch(() => undefined)));
    await this.etcd.stop();
  }
}
