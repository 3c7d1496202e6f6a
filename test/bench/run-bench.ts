// Runs a built benchmark entry (dist/bench/<name>.js) as its own process and collects its output;
// killed after `timeoutMs`. The tests that use it need `npm run build` first.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface BenchRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runBench(name: string, args: string[], timeoutMs = 60_000): Promise<BenchRun> {
  const main = fileURLToPath(new URL(`../../dist/bench/${name}.js`, import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The last stdout line, which a benchmark prints as its JSON result. */
export function resultLine(run: BenchRun): Record<string, unknown> {
  return JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
}
