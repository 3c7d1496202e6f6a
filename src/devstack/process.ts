// Child processes that tests, drills and the demo start. Each is tracked by its own PID and is
// signalled only through that PID: nothing here ever touches a process it did not start.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

export interface StartOptions {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr are appended here (they are discarded when absent). */
  logFile?: string;
  /** Called with each stdout line (after it is logged). */
  onLine?: (line: string) => void;
}

const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when the parent exits without stopping its children: SIGKILL them by PID.
  process.on('exit', () => {
    for (const p of live) p.signal('SIGKILL');
  });
}

export class ManagedProcess {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitedFlag = false;
  private readonly lineWaiters = new Set<(line: string) => void>();
  private readonly log: WriteStream | undefined;

  private constructor(child: ChildProcess, opts: StartOptions) {
    if (child.pid === undefined) throw new Error(`could not start ${opts.command}`);
    this.pid = child.pid;
    this.log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
    if (child.stdout) {
      const rl = createInterface({ input: child.stdout });
      rl.on('line', (line) => {
        this.log?.write(line + '\n');
        opts.onLine?.(line);
        for (const w of this.lineWaiters) w(line);
      });
    }
    child.stderr?.on('data', (chunk: Buffer) => this.log?.write(chunk));
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.exitedFlag = true;
        live.delete(this);
        resolve({ code, signal });
      });
    });
    // Output can still arrive after 'exit'; ending the log only once stdio closed avoids a
    // write-after-end error (an uncaught exception) and keeps the last lines.
    child.on('close', () => this.log?.end());
    live.add(this);
    installExitHook();
  }

  static async start(opts: StartOptions): Promise<ManagedProcess> {
    const child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    return new ManagedProcess(child, opts);
  }

  get running(): boolean {
    return !this.exitedFlag;
  }

  /** Resolves with the first stdout line (from now on) that `match` accepts. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.lineWaiters.delete(waiter);
        reject(new Error(`pid ${this.pid}: no matching output within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (line: string): void => {
        if (!match(line)) return;
        clearTimeout(timer);
        this.lineWaiters.delete(waiter);
        resolve(line);
      };
      this.lineWaiters.add(waiter);
      void this.exited.then(({ code, signal }) => {
        if (!this.lineWaiters.has(waiter)) return;
        clearTimeout(timer);
        this.lineWaiters.delete(waiter);
        reject(new Error(`pid ${this.pid} exited (code ${code}, signal ${signal}) before the expected output`));
      });
    });
  }

  signal(sig: NodeJS.Signals): void {
    if (this.exitedFlag) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // already gone
    }
  }

  /** SIGSTOP, returning only once the kernel reports the process stopped (or after 1 s). */
  pause(): void {
    this.signal('SIGSTOP');
    // kill() only queues the signal: a process running on another core can still answer a request
    // sent right after it. Wait (briefly, synchronously) until /proc says it is stopped.
    const deadline = Date.now() + 1000;
    while (this.running && Date.now() < deadline && processState(this.pid) !== 'T') {
      // spin: the state changes within microseconds to a few milliseconds
    }
  }

  resume(): void {
    this.signal('SIGCONT');
  }

  async kill(): Promise<void> {
    this.signal('SIGCONT'); // a stopped process must run to die of SIGKILL promptly
    this.signal('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then SIGKILL if it is still alive after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exitedFlag) return;
    this.signal('SIGCONT');
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** The one-letter state of a process from /proc (R, S, T...), or undefined when it is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/** Polls `probe` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const why = lastErr instanceof Error ? `: ${lastErr.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
