// bench:rpc end to end, briefly: real simulator nodes, Baton's node client and bare grpc-js, and the
// JSON line the docs quote. Needs `npm run build` (the test command builds first).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const MAIN = fileURLToPath(new URL('../../dist/bench/rpc.js', import.meta.url));

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

t.test('measures the CPU of a node call, Baton client and bare grpc-js, and ends with one JSON line', async (t) => {
  const out = await runBench(['--nodes', '3', '--seconds', '1']);
  t.equal(out.code, 0, 'exit 0', { stderr: out.stderr });
  const last = out.stdout.trim().split('\n').at(-1)!;
  const r = JSON.parse(last) as Record<string, number>;
  t.ok(r.calls! > 0 && r.failures === 0, `${r.calls} calls, none failed`);
  for (const k of ['caller_cpu_us_per_call', 'node_cpu_us_per_call', 'bare_caller_cpu_us_per_call', 'bare_calls_per_s']) t.ok(r[k]! > 0, `${k} ${r[k]}`);
  t.equal(r.calls_per_chain_per_s, 7.11, 'a steady 3-node chain: 4 active probes + 2 × 1 standby probe + 1.11 renewals a second');
  // The JSON rounds the µs (by up to 0.5), so the chains derived from it lie between what the µs
  // ± 0.5 give, give or take the rounding of the chains themselves.
  const us = r.caller_cpu_us_per_call!;
  const [fewest, most] = [1e6 / ((us + 0.5) * 7.11), 1e6 / ((us - 0.5) * 7.11)];
  t.ok(r.chains_per_caller_core! >= Math.floor(fewest) && r.chains_per_caller_core! <= Math.ceil(most), `${r.chains_per_caller_core} chains per core follow from the cost per call (${fewest.toFixed(1)}..${most.toFixed(1)})`);
  t.match(out.stderr, /baton: \d+ calls .* bare: \d+ calls/s, 'progress names both windows');
});

t.test('a bad option is a usage error (exit 2) and starts nothing', async (t) => {
  const out = await runBench(['--nodes', '0']);
  t.equal(out.code, 2);
  t.match(out.stderr, /--nodes: must be an integer in 1\.\.2000, got 0/);
});
