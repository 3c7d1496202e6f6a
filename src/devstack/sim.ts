// Starts `baton sim` processes for tests, drills and the demo, and talks to their nodes. Each
// process is a ManagedProcess (tracked and signalled by PID); each node comes with typed,
// promisified ControlService and SimService clients whose calls all carry a deadline.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials as grpcCredentials } from '@grpc/grpc-js';
import { createControlClient, createSimClient, type ControlClient, type SimClient } from '../adapters/node/grpc.js';
import type { TlsFiles } from '../config/config.js';
import { termToToken } from '../core/term.js';
import type { ActivityEntry } from '../sim/activity.js';
import { activityLogPath, parseActivityLog } from '../sim/activity-log.js';
import { ManagedProcess } from './process.js';

export { activityLogPath };

/** One node of a `baton sim` process, as in its --config file. */
export interface SimNodeSpec {
  chain: string;
  node: string;
  /** 0 or absent: a free port. */
  port?: number;
  host?: string;
  blockTimeMs?: number;
  followIntervalMs?: number;
  /** 32-byte hex. */
  genesis?: string;
  version?: string;
  lagBlocks?: number;
  /** Peers in other processes; nodes of the chain in the same process are peered anyway. */
  peers?: string[];
  /** Baton's gRPC endpoints, for commit mode. */
  baton?: string[];
  /** mTLS: the node's CA, certificate and key (it then requires a client certificate of that CA). */
  tls?: TlsFiles;
}

export interface StartSimOptions {
  nodes: SimNodeSpec[];
  /** Activity logs go to `<logDir>/<chain>/<node>.jsonl`; the config and process output here too. */
  logDir: string;
  /** Default deadline of every client call (ms). */
  deadlineMs?: number;
  /** How long to wait for the ready line (ms). */
  readyTimeoutMs?: number;
  logLevel?: string;
  /** Client certificate of this harness's own Control/Sim clients, for nodes that serve mTLS. */
  clientTls?: TlsFiles;
}

export interface SimNodeHandle {
  chain: string;
  node: string;
  address: string;
  /** Its activity log. */
  logFile: string;
  control: ControlClient;
  sim: SimClient;
}

export interface SimProcess {
  process: ManagedProcess;
  pid: number;
  nodes: SimNodeHandle[];
  /** Its stdout and stderr. */
  outputFile: string;
  node(chain: string, node: string): SimNodeHandle;
  /** SIGTERM (then SIGKILL after `graceMs`), and closes the clients. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL, and closes the clients. */
  kill(): Promise<void>;
  closeClients(): void;
}

const BATON_BIN = fileURLToPath(new URL('../../bin/baton.js', import.meta.url));

interface ReadyLine {
  ready: true;
  pid: number;
  nodes: { chain: string; node: string; address: string }[];
}

export async function startSim(opts: StartSimOptions): Promise<SimProcess> {
  const logDir = resolve(opts.logDir);
  mkdirSync(logDir, { recursive: true });
  const tag = randomUUID().slice(0, 8);
  const configFile = join(logDir, `sim-${tag}.json`);
  const outputFile = join(logDir, `sim-${tag}.log`);
  writeFileSync(configFile, JSON.stringify({ logDir, nodes: opts.nodes }, null, 2));

  const args = [BATON_BIN, 'sim', '--config', configFile, '--log-level', opts.logLevel ?? 'info'];
  const proc = await ManagedProcess.start({ command: process.execPath, args, logFile: outputFile });
  let line: string;
  try {
    // Registered before any output can arrive: stdout is read on a later turn of the event loop.
    line = await proc.waitForLine(isReadyLine, opts.readyTimeoutMs ?? 20_000);
  } catch (err) {
    await proc.kill();
    throw new Error(`baton sim did not get ready (output in ${outputFile}): ${(err as Error).message}`);
  }
  const ready = JSON.parse(line) as ReadyLine;
  const deadlineMs = opts.deadlineMs ?? 2000;
  const c = opts.clientTls;
  const credentials = c && grpcCredentials.createSsl(readFileSync(c.caFile), readFileSync(c.keyFile), readFileSync(c.certFile));
  const nodes: SimNodeHandle[] = ready.nodes.map((n) => ({
    ...n,
    logFile: activityLogPath(logDir, n.chain, n.node),
    control: createControlClient(n.address, { deadlineMs, ...(credentials ? { credentials } : {}) }),
    sim: createSimClient(n.address, { deadlineMs, ...(credentials ? { credentials } : {}) }),
  }));
  const closeClients = (): void => {
    for (const n of nodes) {
      n.control.close();
      n.sim.close();
    }
  };
  return {
    process: proc,
    pid: proc.pid,
    nodes,
    outputFile,
    node(chain, node) {
      const found = nodes.find((n) => n.chain === chain && n.node === node);
      if (!found) throw new Error(`pid ${proc.pid} hosts no node ${chain}/${node}`);
      return found;
    },
    async stop(graceMs = 5000) {
      closeClients();
      await proc.stop(graceMs);
    },
    async kill() {
      closeClients();
      await proc.kill();
    },
    closeClients,
  };
}

function isReadyLine(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    return (JSON.parse(line) as { ready?: unknown }).ready === true;
  } catch {
    return false;
  }
}

/** Tells every node of one chain (across processes) about all the others. */
export async function wirePeers(nodes: readonly SimNodeHandle[]): Promise<void> {
  const chains = new Set(nodes.map((n) => n.chain));
  if (chains.size > 1) throw new Error(`wirePeers takes the nodes of one chain, got ${[...chains].join(', ')}`);
  await Promise.all(
    nodes.map((n) => n.sim.setPeers({ peers: nodes.filter((o) => o !== n).map((o) => o.address) })),
  );
}

/** The lease token of a term: 8 bytes big-endian. */
export function leaseToken(term: bigint | number): Buffer {
  return Buffer.from(termToToken(BigInt(term)));
}

/** Every entry of a node's activity log so far ([] when it does not exist yet). */
export function readActivityLog(file: string): ActivityEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return parseActivityLog(text);
}
