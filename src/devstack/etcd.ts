// A real etcd server (Debian's etcd 3.4 binary) for tests, drills and the demo: one member or
// three, on random loopback ports, each member in its own data dir inside one temp dir that
// stop() removes. Members are signalled only through the ManagedProcess that started them.
import { randomBytes } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './ports.js';
import { ManagedProcess, waitFor } from './process.js';

const INSTALL_HINT =
  'install it with `apt-get install -y etcd-server etcd-client` (Debian/Ubuntu, as root), or point BATON_ETCD_BIN at an etcd binary';

/** The etcd binary to run: $BATON_ETCD_BIN if set, else `etcd` on PATH. Throws how to install it. */
export function findEtcdBinary(env: NodeJS.ProcessEnv = process.env): string {
  const override = env.BATON_ETCD_BIN;
  if (override) {
    if (isExecutableFile(override)) return override;
    throw new Error(`BATON_ETCD_BIN=${override} is not an executable file; ${INSTALL_HINT}`);
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue; // an empty PATH entry means the cwd: never pick up a stray ./etcd
    const candidate = join(dir, 'etcd');
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new Error(`etcd not found on PATH; ${INSTALL_HINT}`);
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export type MemberState = 'running' | 'paused' | 'stopped';

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  /** etcd's stdout and stderr, appended across restarts. */
  readonly logFile: string;
  /** PID of the member's current process, or of its last one once it is stopped. */
  readonly pid: number;
  readonly state: MemberState;
}

interface Member extends EtcdMember {
  pid: number;
  state: MemberState;
  proc: ManagedProcess | undefined;
  /** Raft member id as the JSON gateway prints it (decimal uint64); learned from /status. */
  id: string | undefined;
}

export interface EtcdClusterOptions {
  members?: 1 | 3;
  /** Parent of the temp dir (default: os.tmpdir()). */
  dir?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** etcd binary; default findEtcdBinary(). */
  binary?: string;
  /** Deadline for the cluster (or a restarted member) to become healthy. */
  healthyTimeoutMs?: number;
}

/** A member exited while we waited for it: typically its port was taken in between. */
class MemberExitedError extends Error {}

const START_ATTEMPTS = 3;
const PROBE_TIMEOUT_MS = 1000;

export class EtcdCluster {
  /** Client URLs of all members (including stopped ones), e.g. for `new Etcd3({ hosts })`. */
  readonly endpoints: string[];
  readonly members: readonly EtcdMember[];
  private stopped: Promise<void> | undefined;

  private constructor(
    /** The temp dir that holds every member's data dir and log; removed by stop(). */
    readonly dir: string,
    private readonly slots: Member[],
    private readonly binary: string,
    private readonly token: string,
    private readonly logLevel: string,
    private readonly healthyTimeoutMs: number,
  ) {
    this.members = slots;
    this.endpoints = slots.map((m) => m.clientUrl);
  }

  /** Starts the members and resolves once every one of them reports healthy. */
  static async start(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const binary = opts.binary ?? findEtcdBinary(); // before any dir or process exists
    for (let attempt = 1; ; attempt++) {
      const cluster = await EtcdCluster.prepare(binary, opts);
      try {
        await Promise.all(cluster.slots.map((m) => cluster.spawn(m, 'new')));
        await cluster.waitHealthy();
        await Promise.all(cluster.slots.map((m) => cluster.status(m)));
        return cluster;
      } catch (err) {
        await cluster.stop();
        // freePort() only says a port was free a moment ago; on a busy host another process can
        // take it before etcd binds it. Fresh ports and a fresh dir make the next attempt clean.
        if (!(err instanceof MemberExitedError) || attempt >= START_ATTEMPTS) throw err;
      }
    }
  }

  private static async prepare(binary: string, opts: EtcdClusterOptions): Promise<EtcdCluster> {
    const count = opts.members ?? 1;
    const dir = await mkdtemp(join(opts.dir ?? tmpdir(), 'baton-etcd-'));
    const ports = new Set<number>();
    while (ports.size < 2 * count) ports.add(await freePort());
    const free = [...ports];
    const slots: Member[] = Array.from({ length: count }, (_, i) => ({
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${free[2 * i]}`,
      peerUrl: `http://127.0.0.1:${free[2 * i + 1]}`,
      dataDir: join(dir, `m${i}.data`),
      logFile: join(dir, `m${i}.log`),
      pid: 0,
      state: 'stopped',
      proc: undefined,
      id: undefined,
    }));
    // A random token keeps members of different clusters from ever joining each other.
    const token = `baton-${randomBytes(8).toString('hex')}`;
    return new EtcdCluster(dir, slots, binary, token, opts.logLevel ?? 'warn', opts.healthyTimeoutMs ?? 15_000);
  }

  private async spawn(m: Member, clusterState: 'new' | 'existing'): Promise<void> {
    const initialCluster = this.slots.map((s) => `${s.name}=${s.peerUrl}`).join(',');
    // With an existing data dir etcd ignores the initial-cluster flags; 'existing' says so.
    const args = [
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl,
      '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl,
      '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', clusterState,
      '--initial-cluster-token', this.token,
      // Test timings: a lost leader is replaced in about a second instead of several.
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      '--logger', 'zap',
      '--log-level', this.logLevel,
    ];
    const proc = await ManagedProcess.start({ command: this.binary, args, env: childEnv(), logFile: m.logFile });
    m.proc = proc;
    m.pid = proc.pid;
    m.state = 'running';
  }

  private slot(i: number): Member {
    const m = this.slots[i];
    if (!m) throw new Error(`no etcd member ${i} (cluster has ${this.slots.length})`);
    return m;
  }

  /** Waits until member i (default: every member not stopped) answers /health with true. */
  async waitHealthy(i?: number, timeoutMs = this.healthyTimeoutMs): Promise<void> {
    const targets = i === undefined ? this.slots.filter((m) => m.state !== 'stopped') : [this.slot(i)];
    await Promise.all(targets.map((m) => this.waitMemberHealthy(m, timeoutMs)));
  }

  private async waitMemberHealthy(m: Member, timeoutMs: number): Promise<void> {
    const proc = m.proc;
    if (!proc || m.state === 'stopped') throw new Error(`etcd member ${m.name} is stopped`);
    let outcome: 'healthy' | 'exited';
    try {
      // etcd 3.4 answers {"health":"true"} only while the member knows a leader.
      outcome = await waitFor(
        `etcd member ${m.name} (${m.clientUrl}) to be healthy`,
        async () => {
          if (!proc.running) return 'exited' as const;
          const res = await fetch(`${m.clientUrl}/health`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
          const body = (await res.json()) as { health?: string };
          return body.health === 'true' ? ('healthy' as const) : undefined;
        },
        timeoutMs,
        100,
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${logTail(m.logFile)}`);
    }
    if (outcome === 'exited') {
      m.state = 'stopped';
      const { code, signal } = await proc.exited;
      throw new MemberExitedError(`etcd member ${m.name} exited (code ${code}, signal ${signal})\n${logTail(m.logFile)}`);
    }
  }

  /** SIGKILLs member i and waits until it is gone. */
  async kill(i: number): Promise<void> {
    const m = this.slot(i);
    await m.proc?.kill();
    m.state = 'stopped';
  }

  /** SIGSTOP: the process stays, but answers nothing (a frozen VM, a long GC pause). */
  pause(i: number): void {
    const m = this.slot(i);
    if (m.state === 'stopped') throw new Error(`etcd member ${m.name} is stopped`);
    m.proc?.pause();
    m.state = 'paused';
  }

  resume(i: number): void {
    const m = this.slot(i);
    if (m.state === 'stopped') throw new Error(`etcd member ${m.name} is stopped`);
    m.proc?.resume();
    m.state = 'running';
  }

  /** Starts member i again on its data dir and ports (killing it first if needed); resolves when healthy. */
  async restart(i: number, timeoutMs = this.healthyTimeoutMs): Promise<void> {
    if (this.stopped) throw new Error('etcd cluster is stopped');
    const m = this.slot(i);
    if (m.state !== 'stopped') await this.kill(i);
    await this.spawn(m, 'existing');
    await this.waitMemberHealthy(m, timeoutMs);
  }

  /**
   * Index of the raft leader: the running member that a majority of the cluster names as leader
   * (one member's view can be stale, e.g. right after it was resumed). Waits for one to exist.
   */
  async leaderIndex(timeoutMs = 10_000): Promise<number> {
    const quorum = Math.floor(this.slots.length / 2) + 1;
    return waitFor(
      'an etcd leader',
      async () => {
        const running = this.slots.filter((m) => m.state === 'running');
        const leaders = await Promise.all(running.map((m) => this.status(m).then((s) => s.leader, () => undefined)));
        for (const id of new Set(leaders)) {
          if (id === undefined || leaders.filter((l) => l === id).length < quorum) continue;
          const idx = this.slots.findIndex((m) => m.id === id && m.state === 'running');
          if (idx >= 0) return idx;
        }
        return undefined;
      },
      timeoutMs,
      100,
    );
  }

  /** Maintenance status through the JSON gateway; remembers the member's raft id. */
  private async status(m: Member): Promise<{ leader: string | undefined }> {
    const res = await fetch(`${m.clientUrl}/v3/maintenance/status`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`${m.name} status: HTTP ${res.status}`);
    // The gateway prints uint64 as decimal strings and omits zero values: no `leader` = no leader.
    const body = (await res.json()) as { header?: { member_id?: string }; leader?: string };
    m.id = body.header?.member_id ?? m.id;
    return { leader: body.leader };
  }

  /** SIGKILLs every member (no graceful shutdown is needed: the data is thrown away) and removes the temp dir. Idempotent. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await Promise.all(
        this.slots.map(async (m) => {
          await m.proc?.kill(); // resumes a paused member first
          m.state = 'stopped';
        }),
      );
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.stopped;
  }
}

/** The caller's env without ETCD_* variables: etcd refuses to start when one shadows a flag. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('ETCD_') || k === 'ETCD_UNSUPPORTED_ARCH') env[k] = v;
  }
  return env;
}

function logTail(logFile: string, lines = 15): string {
  try {
    const tail = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    return tail ? `last lines of ${logFile}:\n${tail}` : `(${logFile} is empty)`;
  } catch {
    return `(no log at ${logFile})`;
  }
}
