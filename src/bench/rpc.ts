// `npm run bench:rpc`: what one node call costs on this machine, in CPU. Baton's own node client
// (GrpcNodeControl with the metrics wrapper a replica uses) probes real `baton sim` nodes in
// another process as fast as one call in flight per node allows; the CPU of this process (the
// caller: what a replica spends) and of the simulator (the callee) are divided by the calls made.
// From that and the calls a steady chain costs under Baton's default policy (probe-plan.ts, a
// renewal every 0.2 × lease), how many chains one core of callers can keep probed. The fleet-scale
// benchmark (bench:scale) is the end-to-end measure; this isolates the per-call floor under it.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { minNodeLeaseTtlMs, parseConfig } from '../config/config.js';
import { GrpcNodeControl } from '../adapters/node/node-control.js';
import { PromMetrics } from '../adapters/telemetry/metrics.js';
import { instrumentNodeControl } from '../adapters/telemetry/instrument.js';
import { DEFAULT_POLICY, type NodeSpec } from '../core/chain.js';
import { renewIntervalMs } from '../core/lease-book.js';
import { steadyProbesPerS } from '../core/probe-plan.js';
import { startSim } from '../devstack/sim.js';
import { ControlServiceService, HealthRequest } from '../gen/evnode/admin/v1/control.js';
import { intOption, runBenchmark, say } from './main.js';
import { sampleProc } from './proc-stats.js';

const USAGE = `usage: npm run bench:rpc -- [options]

  --nodes N     simulated nodes, one call in flight to each (default 50)
  --seconds S   each measured window (default 10), after a 1 s warm-up: first Baton's node client,
                then bare grpc-js (the same request bytes, the answer not decoded) as the floor`;

interface Options {
  nodes: number;
  seconds: number;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', default: '50' },
      seconds: { type: 'string', default: '10' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  return { nodes: intOption('nodes', values.nodes, 1, 2000), seconds: intOption('seconds', values.seconds, 1, 600) };
}

/** Node calls a steady chain of `nodes` costs per second under the default policy (lease at `leaseMs`). */
function callsPerChainPerS(nodes: number, leaseMs: number): number {
  return steadyProbesPerS(DEFAULT_POLICY, nodes) + 1000 / renewIntervalMs(leaseMs);
}

interface Window {
  calls: number;
  failures: number;
  wallS: number;
  callerUs: number;
  nodeUs: number;
}

/** Runs `call` in one loop per node for a 1 s warm-up, then measures `seconds`. */
async function measure(simPid: number, count: number, seconds: number, call: (i: number) => Promise<unknown>): Promise<Window> {
  let measuring = false;
  let stop = false;
  let calls = 0;
  let failures = 0;
  const loops = Array.from({ length: count }, async (_, i) => {
    while (!stop) {
      try {
        await call(i);
        if (measuring) calls++;
      } catch {
        if (measuring) failures++;
      }
    }
  });
  await new Promise((r) => setTimeout(r, 1000));
  const simBefore = sampleProc(simPid);
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const simAfter = sampleProc(simPid);
  stop = true;
  await Promise.all(loops);
  if (calls === 0 || !simBefore || !simAfter) throw new Error(`no calls measured (${failures} failed)`);
  return { calls, failures, wallS, callerUs: (cpu.user + cpu.system) / calls, nodeUs: ((simAfter.cpuS - simBefore.cpuS) * 1e6) / calls };
}

async function run(opts: Options): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-rpc-'));
  say(`bench:rpc nodes=${opts.nodes} seconds=${opts.seconds} cpus=${cpus().length} load=${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const sim = await startSim({ nodes: Array.from({ length: opts.nodes }, (_, i) => ({ chain: `rpc-${i + 1}`, node: 'n1' })), logDir: dir });
  const inner = new GrpcNodeControl(1000, 'baton/bench-rpc');
  const nodes = instrumentNodeControl(inner, new PromMetrics({ replicaId: 'bench-rpc', defaultMetrics: false }), (node) => node.id);
  const specs: NodeSpec[] = sim.nodes.map((n) => ({ id: `${n.chain}/${n.node}`, endpoint: n.address, priority: 1, zone: '' }));
  // The floor: grpc-js alone, the same request bytes serialized once, the answer left undecoded.
  const bare = sim.nodes.map((n) => new grpc.Client(n.address, grpc.credentials.createInsecure()));
  const health = ControlServiceService.health;
  const requestBytes = health.requestSerialize(HealthRequest.fromPartial({}));
  const bareCall = (i: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      bare[i]!.makeUnaryRequest(health.path, (b: Buffer) => b, (b: Buffer) => b, requestBytes, new grpc.Metadata(), { deadline: Date.now() + 1000 }, (err, res) =>
        err ? reject(err) : resolve(res!),
      );
    });
  try {
    const baton = await measure(sim.pid, specs.length, opts.seconds, (i) => nodes.health(specs[i]!));
    const floor = await measure(sim.pid, specs.length, opts.seconds, bareCall);
    const leaseMs = minNodeLeaseTtlMs(parseConfig({})); // what bench:scale runs with: the shortest the default replica settings allow
    const perChain = callsPerChainPerS(3, leaseMs);
    for (const [name, w] of [['baton', baton], ['bare', floor]] as const) {
      say(`  ${name}: ${w.calls} calls in ${w.wallS.toFixed(1)} s (${w.failures} failed): caller ${w.callerUs.toFixed(0)} µs, node ${w.nodeUs.toFixed(0)} µs of CPU per call`);
    }
    const chainsPerCore = Math.floor(1e6 / (baton.callerUs * perChain));
    say(`  a steady 3-node chain costs ${perChain.toFixed(2)} node calls/s (default policy, ${leaseMs} ms lease): one core of Baton keeps ~${chainsPerCore} chains probed and renewed, and does nothing else`);
    console.log(
      JSON.stringify({
        nodes: opts.nodes,
        calls: baton.calls,
        failures: baton.failures + floor.failures,
        calls_per_s: Math.round(baton.calls / baton.wallS),
        caller_cpu_us_per_call: Math.round(baton.callerUs),
        node_cpu_us_per_call: Math.round(baton.nodeUs),
        bare_caller_cpu_us_per_call: Math.round(floor.callerUs),
        bare_calls_per_s: Math.round(floor.calls / floor.wallS),
        calls_per_chain_per_s: Number(perChain.toFixed(2)),
        chains_per_caller_core: chainsPerCore,
        load: loadavg()[0],
      }),
    );
    return 0;
  } finally {
    inner.close();
    for (const c of bare) c.close();
    await sim.stop(2000);
    rmSync(dir, { recursive: true, force: true }); // only the simulator's logs: nothing to keep
  }
}

runBenchmark('bench:rpc', USAGE, parseOptions, run);
