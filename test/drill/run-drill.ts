// Runs `node dist/drill/main.js` (build first: `npm run build`) as a child process, tracked and
// stopped by its PID, and returns the final JSON line, the exit code and the progress output.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

const MAIN = fileURLToPath(new URL('../../dist/drill/main.js', import.meta.url));

export interface DrillResult {
  readonly code: number | null;
  readonly json: Record<string, unknown> & {
    violations: number;
    lost_operations: number;
    faults: Record<string, number>;
    violations_by_kind: Record<string, number>;
    liveness_failures: Record<string, number>;
    node_refusals: Record<string, number>;
  };
  readonly stderr: string;
  readonly wallMs: number;
}

export async function runDrill(t: Test, args: string[], timeoutMs = 200_000): Promise<DrillResult> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-drill-test-'));
  const started = Date.now();
  const child = spawn(process.execPath, [MAIN, ...args, '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // SIGTERM makes the drill stop its whole stack; SIGKILL only if it does not exit.
  const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  let failed = code !== 0 && code !== 1;
  t.teardown(() => {
    if (!process.env.BATON_KEEP_TEST_DIRS && !failed) rmSync(dir, { recursive: true, force: true });
  });
  const last = stdout.trim().split('\n').pop() ?? '';
  let json: DrillResult['json'];
  try {
    json = JSON.parse(last) as DrillResult['json'];
  } catch {
    failed = true; // keep the logs
    throw new Error(`drill ${args.join(' ')} exited ${code} without a JSON line (logs in ${dir}):\n${stderr.slice(-4000)}`);
  }
  return { code, json, stderr, wallMs: Date.now() - started };
}
