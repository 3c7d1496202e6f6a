// `npm run bench:api`: throughput and latency of `GET /v1/chains/{id}/leader` on one replica under
// concurrent keep-alive load (what leader-aware proxies poll; served from the replica's watch-fed
// leader directory, no etcd read per request), and in the same run a bare Fastify route in its own
// process answering the same bytes, so the ratio holds on a noisy machine. The two are measured in
// alternating rounds with the same client. Progress to stderr, the JSON result to stdout.
import { writeFileSync, mkdtempSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { ManagedProcess } from '../devstack/process.js';
import { DevStack } from '../devstack/stack.js';
import { intOption, runBenchmark, say } from './main.js';
import { percentile } from './measure.js';

const USAGE = `usage: npm run bench:api -- [options]

  --connections N   concurrent keep-alive connections, one request in flight each (default 32)
  --seconds S       per round (default 5); 2 rounds per route, alternating
  --chains N        chains in the fleet (default 4; the one asked about is the first)`;

interface Options {
  connections: number;
  seconds: number;
  chains: number;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string', default: '32' },
      seconds: { type: 'string', default: '5' },
      chains: { type: 'string', default: '4' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const int = intOption;
  return { connections: int('connections', values.connections, 1, 1024), seconds: int('seconds', values.seconds, 1, 600), chains: int('chains', values.chains, 1, 100) };
}

const FASTIFY = fileURLToPath(new URL('../../node_modules/fastify/fastify.js', import.meta.url));

/** A bare Fastify server in its own process answering `body` on `path`; prints its port. */
async function startBare(dir: string, path: string, body: string): Promise<{ proc: ManagedProcess; url: string }> {
  const script = join(dir, 'bare-server.mjs');
  writeFileSync(
    script,
    `import Fastify from ${JSON.stringify(FASTIFY)};
const app = Fastify();
const body = ${JSON.stringify(body)};
app.get(${JSON.stringify(path.replace(/\/v1\/chains\/[^/]+/, '/v1/chains/:id'))}, async (_req, reply) => reply.type('application/json; charset=utf-8').send(body));
const address = await app.listen({ host: '127.0.0.1', port: 0 });
console.log(JSON.stringify({ address }));
`,
  );
  const proc = await ManagedProcess.start({ command: process.execPath, args: [script], logFile: join(dir, 'bare-server.log') });
  const line = await proc.waitForLine((l) => l.includes('"address"'), 10_000);
  return { proc, url: (JSON.parse(line) as { address: string }).address };
}

interface Round {
  done: number;
  errors: number;
  latencies: number[];
  elapsedMs: number;
  bytes: string | undefined;
}

/** `connections` closed loops of GET `url` for `ms`. */
async function load(url: string, connections: number, ms: number): Promise<Round> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies: number[] = [];
  let errors = 0;
  const statuses = new Map<number, number>();
  let bytes: string | undefined;
  const get = () =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, { agent, method: 'GET' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        try {
          const r = await get();
          if (r.status !== 200) {
            errors++;
            statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          }
          else {
            latencies.push(performance.now() - t0);
            bytes ??= r.body;
          }
        } catch {
          errors++;
        }
      }
    }),
  );
  agent.destroy();
  if (statuses.size > 0) say(`  ${url}: non-200 answers ${JSON.stringify(Object.fromEntries(statuses))}`);
  return { done: latencies.length, errors, latencies, elapsedMs: performance.now() - start, bytes };
}

async function run(opts: Options): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-api-'));
  say(`bench:api connections=${opts.connections} seconds=${opts.seconds}x2 per route cpus=${cpus().length} load=${loadavg()[0]!.toFixed(2)} dir=${dir}`);
  const chains = Array.from({ length: opts.chains }, (_, i) => ({ id: `chain-${i + 1}`, nodes: ['n1', 'n2', 'n3'] }));
  // The per-principal rate limit (50/s by default) is policy, not capacity: lifted for the measurement.
  const batonConfig = { limits: { ratePerSecond: 1_000_000, burst: 1_000_000 } };
  const stack = await DevStack.start({ dir, chains, replicas: 1, blockTimeMs: 250, batonConfig });
  let bare: { proc: ManagedProcess; url: string } | undefined;
  try {
    const leader = await stack.waitForProducingLeader('chain-1', 30_000);
    const path = '/v1/chains/chain-1/leader';
    const url = `${stack.replica('r1').url}${path}`;
    const first = await load(url, 1, 200);
    if (!first.bytes) throw new Error(`GET ${url} did not answer 200`);
    say(`leader of chain-1: ${leader.nodeId} (term ${leader.term}); answer ${first.bytes}`);
    bare = await startBare(dir, path, first.bytes);
    const rounds: { leader: Round[]; bare: Round[] } = { leader: [], bare: [] };
    for (let i = 0; i < 2; i++) {
      rounds.leader.push(await load(url, opts.connections, opts.seconds * 1000));
      rounds.bare.push(await load(`${bare.url}${path}`, opts.connections, opts.seconds * 1000));
      say(`round ${i + 1}: leader ${rounds.leader[i]!.done} ok / ${rounds.leader[i]!.errors} errors, bare ${rounds.bare[i]!.done} ok / ${rounds.bare[i]!.errors} errors`);
    }
    const rps = (rs: Round[]) => rs.reduce((s, r) => s + r.done, 0) / (rs.reduce((s, r) => s + r.elapsedMs, 0) / 1000);
    const lat = (rs: Round[]) => rs.flatMap((r) => r.latencies);
    const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
    const leaderRps = rps(rounds.leader);
    const bareRps = rps(rounds.bare);
    const errors = [...rounds.leader, ...rounds.bare].reduce((s, r) => s + r.errors, 0);
    const result = {
      leader_rps: round(leaderRps),
      bare_rps: round(bareRps),
      ratio: round(leaderRps / bareRps, 3),
      p99_ms: round(percentile(lat(rounds.leader), 99), 2),
      p50_ms: round(percentile(lat(rounds.leader), 50), 2),
      bare_p99_ms: round(percentile(lat(rounds.bare), 99), 2),
      connections: opts.connections,
      seconds: opts.seconds * 2,
      errors,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return errors > 0 ? 1 : 0;
  } finally {
    await bare?.proc.stop(2000).catch(() => undefined);
    await stack.stop();
  }
}

runBenchmark('bench:api', USAGE, parseOptions, run);
