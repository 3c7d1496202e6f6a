// `npm run bench:commit -- --chains 100 --seconds 20`: commit-mode throughput. Every chain's active
// commits its next block in a closed loop (one commit in flight per chain: per-chain order is the
// node's), all chains at once, through the same ControlPlane call the gRPC and REST handlers make
// (validation, then one fenced etcd txn on term and head revision). With `--via grpc` the commits
// go the whole way a node's do instead: one gRPC connection per chain to real `baton serve`
// replicas (separate processes), CommitUnsafeHead, its access check and the same ControlPlane call.
// For comparison, the same process then runs the raw etcd put rate with the same concurrency on
// the same client: the ratio says what fencing costs over a bare write. Progress goes to stderr,
// the JSON result to stdout.
import { mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { EtcdChainStore } from '../adapters/etcd/chain-store.js';
import { createEtcdClient } from '../adapters/etcd/client.js';
import { EtcdKeys } from '../adapters/etcd/keys.js';
import { ReplicaSession } from '../adapters/etcd/replica-session.js';
import { ControlPlane } from '../api/control-plane.js';
import { DEFAULT_POLICY, type ChainSpec } from '../core/chain.js';
import type { ChainStore, OperationStore } from '../core/ports.js';
import type { Term } from '../core/term.js';
import type { EventFeed } from '../adapters/etcd/event-feed.js';
import { systemClock } from '../adapters/system-clock.js';
import { DEFAULTS as DEFAULT_CONFIG } from '../config/config.js';
import { startBaton, type BatonProcess } from '../devstack/baton.js';
import { EtcdCluster } from '../devstack/etcd.js';
import { GrpcHeadCommitter } from '../sim/committer.js';
import { intOption, runBenchmark, say } from './main.js';
import { percentile } from './measure.js';

const USAGE = `usage: npm run bench:commit -- [options]

  --chains N      chains committing at once, one commit in flight each (default 100)
  --seconds S     how long the commits run (default 20); the raw put rate runs as long
  --replicas N    Baton replicas (clients) the chains' commits are spread over (default 1)
  --no-batch      one etcd request per commit (default: group commit, see commit-batcher.ts)
  --rate R        offered load: R commits a second in all, each chain one every chains/R s (as
                  a node commits once per block); latencies count from when a commit was due.
                  Default: closed loops (each chain's next commit as soon as the last is answered)
  --via W         call: the ControlPlane in this process (default); grpc: real \`baton serve\`
                  replicas over gRPC, one connection per chain (--no-batch does not apply)`;

interface Options {
  chains: number;
  seconds: number;
  replicas: number;
  batch: boolean;
  via: 'call' | 'grpc';
  /** Offered commits per second in all; undefined: closed loops. */
  rate: number | undefined;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      chains: { type: 'string', default: '100' },
      seconds: { type: 'string', default: '20' },
      replicas: { type: 'string', default: '1' },
      'no-batch': { type: 'boolean', default: false },
      via: { type: 'string', default: 'call' },
      rate: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const int = intOption;
  if (values.via !== 'call' && values.via !== 'grpc') throw new Error(`--via: call or grpc, got ${values.via}`);
  if (values.via === 'grpc' && values['no-batch']) throw new Error('--no-batch: the replicas batch as configured; it applies to --via call only');
  return { chains: int('chains', values.chains, 1, 10_000), seconds: int('seconds', values.seconds, 1, 3600), replicas: int('replicas', values.replicas, 1, 8), batch: !values['no-batch'], via: values.via, rate: values.rate === undefined ? undefined : int('rate', values.rate, 1, 1_000_000) };
}

const hashOf = (chain: number, n: number) => `${chain.toString(16).padStart(8, '0')}${n.toString(16).padStart(56, '0')}`;

function specOf(id: string): ChainSpec {
  return { id, genesisHash: '', nodes: [{ id: 'n1', endpoint: '127.0.0.1:1', priority: 0, zone: 'z' }], policy: { ...DEFAULT_POLICY, fencingMode: 'commit' } };
}

/**
 * Runs `loops` loops of `op` until `ms` have passed; latencies of the ops that finished. Closed
 * (`everyMs` undefined): each loop sends its next op as soon as the last one is answered, which
 * measures capacity. Paced: each loop sends one op every `everyMs` (as a node commits once per
 * block), and a latency counts from when the op was due, so a late send is not hidden.
 */
async function runLoops(loops: number, ms: number, everyMs: number | undefined, op: (loop: number, i: number) => Promise<void>): Promise<{ done: number; latencies: number[]; elapsedMs: number }> {
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: loops }, async (_, loop) => {
      // Paced loops start spread over one interval, as the blocks of many chains are.
      let due = start + (everyMs === undefined ? 0 : (everyMs * loop) / loops);
      for (let i = 0; due < end && performance.now() < end; i++) {
        if (everyMs !== undefined) await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
        const t0 = everyMs === undefined ? performance.now() : due;
        await op(loop, i);
        latencies.push(performance.now() - t0);
        due = everyMs === undefined ? performance.now() : due + everyMs;
      }
    }),
  );
  return { done: latencies.length, latencies, elapsedMs: performance.now() - start };
}

async function run(opts: Options): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-commit-'));
  say(`bench:commit chains=${opts.chains} seconds=${opts.seconds} replicas=${opts.replicas} batch=${opts.batch} via=${opts.via} rate=${opts.rate ?? 'closed'} cpus=${cpus().length} load=${loadavg()[0]!.toFixed(2)} dir=${dir}`);
  const cluster = await EtcdCluster.start({ members: 1 });
  const keys = new EtcdKeys('/baton/');
  const clients = Array.from({ length: opts.replicas }, () => createEtcdClient({ endpoints: cluster.endpoints }));
  // As main.ts builds it: a commit that waited for its batch longer than an etcd call may take is refused unsent.
  const stores: ChainStore[] = clients.map((c) => new EtcdChainStore(c, keys, { batchCommits: opts.batch, commitMaxWaitMs: DEFAULT_CONFIG.etcd.callDeadlineMs }));
  const unused = undefined as unknown;
  const planes = stores.map(
    (store) =>
      new ControlPlane({ store, ops: unused as OperationStore & { listOperations: never }, events: unused as EventFeed, clock: systemClock, observe: async () => undefined }),
  );
  const session = await ReplicaSession.start({ client: clients[0]!, keys, replicaId: 'bench' });
  const replicas: BatonProcess[] = [];
  const committers: GrpcHeadCommitter[] = [];
  try {
    // Each chain gets a leader record (its term) written the way a supervisor writes it.
    const ids = Array.from({ length: opts.chains }, (_, i) => `chain-${String(i).padStart(5, '0')}`);
    const terms = new Map<string, Term>();
    for (const id of ids) {
      await stores[0]!.putSpec(specOf(id));
      const fence = await session.acquire(id);
      if (!fence) throw new Error(`could not supervise ${id}`);
      const next = { nodeId: 'n1', reason: 'bench', fromHead: 0, mode: 'commit' as const };
      terms.set(id, await stores[0]!.writeLeader(fence, undefined, next, { ...next, previousNodeId: undefined, previousTerm: undefined, atMs: Date.now(), supervisor: 'bench', durationMs: undefined }));
    }
    const heads = ids.map(() => 0);
    let commitOne: (loop: number, n: number) => Promise<void> = (loop, n) =>
      planes[loop % planes.length]!.commitHead({
        chainId: ids[loop]!,
        nodeId: 'n1',
        term: terms.get(ids[loop]!)!,
        number: n,
        hash: hashOf(loop, n),
        parentHash: hashOf(loop, n - 1),
        l1Origin: `l1:${Math.floor(n / 12)}`,
        timestamp: Math.floor(Date.now() / 1000),
      }).then(() => undefined);
    if (opts.via === 'grpc') {
      // The bench's session holds every chain's supervisor key, so the replicas only serve commits.
      // Insecure dev mode: every node is the one dev principal, whose request rate limit (policy,
      // per principal; a node of its own is far below it) would otherwise cap the whole fleet.
      const config = { limits: { ratePerSecond: 1_000_000, burst: 1_000_000 } };
      for (let i = 0; i < opts.replicas; i++) replicas.push(await startBaton({ replicaId: `r${i + 1}`, etcd: cluster.endpoints, dir, config }));
      const endpoints = replicas.map((r) => r.grpcAddress);
      for (const id of ids) committers.push(new GrpcHeadCommitter(endpoints, undefined, id));
      commitOne = async (loop, n) => {
        const block = { number: n, hash: Buffer.from(hashOf(loop, n), 'hex'), parent: Buffer.from(hashOf(loop, n - 1), 'hex'), term: terms.get(ids[loop]!)!, nodeId: 'n1', timeMs: Date.now(), l1Origin: `l1:${Math.floor(n / 12)}` };
        const outcome = await committers[loop]!.commit(ids[loop]!, block, DEFAULT_CONFIG.etcd.callDeadlineMs);
        if (outcome.kind !== 'committed') throw new Error(`${ids[loop]} block ${n}: ${outcome.kind} (${outcome.reason})`);
      };
    }
    // Untimed: each chain's first commit (over gRPC it also opens the chain's connection, which a
    // running node holds open).
    await Promise.all(ids.map(async (_, loop) => {
      await commitOne(loop, 1);
      heads[loop] = 1;
    }));
    const everyMs = opts.rate === undefined ? undefined : (opts.chains * 1000) / opts.rate;
    const commits = await runLoops(opts.chains, opts.seconds * 1000, everyMs, async (loop) => {
      const n = heads[loop]! + 1;
      await commitOne(loop, n);
      heads[loop] = n;
    });
    // Every chain's recorded head is its last commit: nothing acknowledged was lost or reordered.
    const lost = (await Promise.all(ids.map(async (id, i) => ((await stores[0]!.read(id))?.head?.number ?? 0) !== heads[i]))).filter(Boolean).length;
    say(`commits: ${commits.done} in ${Math.round(commits.elapsedMs)} ms; chains whose recorded head differs from their last acknowledged commit: ${lost}`);

    const raw = await runLoops(opts.chains, opts.seconds * 1000, everyMs, async (loop, i) => {
      await clients[loop % clients.length]!.put(`/bench-raw/${loop}`).value(String(i)).exec();
    });
    say(`raw puts: ${raw.done} in ${Math.round(raw.elapsedMs)} ms`);

    const commitsPerS = commits.done / (commits.elapsedMs / 1000);
    const rawPerS = raw.done / (raw.elapsedMs / 1000);
    const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
    const result = {
      chains: opts.chains,
      commits_per_s: round(commitsPerS),
      p50_ms: round(percentile(commits.latencies, 50), 2),
      p99_ms: round(percentile(commits.latencies, 99), 2),
      raw_put_per_s: round(rawPerS),
      raw_p99_ms: round(percentile(raw.latencies, 99), 2),
      ratio: round(commitsPerS / rawPerS, 3),
      seconds: opts.seconds,
      replicas: opts.replicas,
      batch: opts.batch,
      via: opts.via,
      offered_per_s: opts.rate ?? null,
      lost_commits: lost,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return lost > 0 ? 1 : 0;
  } finally {
    for (const c of committers) c.close();
    for (const r of replicas) await r.stop();
    await session.close();
    for (const c of clients) c.close();
    await cluster.stop();
  }
}

runBenchmark('bench:commit', USAGE, parseOptions, run);
