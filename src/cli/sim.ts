// `baton sim`: run simulated sequencer nodes. Prints one JSON line to stdout once every node
// listens; logs (pino) go to stderr. SIGTERM/SIGINT stop it cleanly (exit 0); when every node it
// hosts has crashed (the `crash` fault) it exits 1; bad arguments exit 2.
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Logger } from '../adapters/telemetry/log.js';
import type { TlsFiles } from '../config/config.js';
import { genesisHashOf } from '../sim/chain.js';
import { SimHost, type HostedNodeSpec } from '../sim/host.js';

const USAGE = `usage:
  baton sim --chain CHAIN --node NODE [options]     one node
  baton sim --config FILE.json [--log-dir DIR]      many nodes

options (one node):
  --listen HOST:PORT      address to listen on (default 127.0.0.1:0, a free port)
  --block-time MS         block time (default 200)
  --follow-interval MS    how often a standby pulls from its peers (default max(20, block time / 4))
  --peers A,B,...         host:port of the other nodes of the chain (also settable with SetPeers)
  --baton A,B,...         host:port of Baton's gRPC API, where blocks are committed in commit mode
  --genesis HEX           32-byte genesis hash (default sha256("genesis:" + chain))
  --version V             version the node reports (default sim/0.1.0)
  --lag-blocks N          start with the lag_blocks fault set to N
  --tls-ca FILE --tls-cert FILE --tls-key FILE
                          mTLS (all three): serve TLS requiring a client certificate of the CA,
                          and present this certificate to Baton (commits) and to peers.
                          Without them the node serves plaintext (insecure dev mode only)
common:
  --log-dir DIR           activity logs go to DIR/<chain>/<node>.jsonl (default ./sim-logs)
  --log-level LEVEL       pino level for stderr (default info)

config file: {"logDir": "...", "nodes": [{"chain": "chain-a", "node": "a1", "port": 0,
  "host": "127.0.0.1", "blockTimeMs": 200, "followIntervalMs": 50, "genesis": "HEX",
  "version": "V", "lagBlocks": 0, "peers": ["host:port"], "baton": ["host:port"],
  "tls": {"caFile": "ca.crt", "certFile": "node.crt", "keyFile": "node.key"}}]}
Nodes of the same chain in one process are peered with each other.

stdout, once every node listens:
  {"ready":true,"pid":P,"nodes":[{"chain":"chain-a","node":"a1","address":"127.0.0.1:PORT"}]}`;

const DEFAULT_VERSION = 'sim/0.1.0';
const DEFAULT_BLOCK_TIME_MS = 200;
const DEFAULT_LOG_DIR = 'sim-logs';
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

class UsageError extends Error {}

export interface SimArgs {
  help: boolean;
  logDir: string;
  logLevel: string;
  nodes: HostedNodeSpec[];
}

export async function runSim(argv: string[]): Promise<number> {
  let args: SimArgs;
  try {
    args = parseSimArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`baton sim: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const logger: Logger = pino(
    { level: args.logLevel, base: { pid: process.pid, component: 'sim' } },
    pino.destination({ fd: 2, sync: true }),
  );
  // Negative controls of the drill only: deliberately broken nodes, read once, logged loudly.
  const unsafe = unsafeSimFaults(process.env.BATON_UNSAFE_FAULTS);
  if (unsafe.acceptLowerTerms) logger.warn({ unsafe: 'accept-lower-terms' }, 'UNSAFE: nodes accept commands of lower terms (negative control only)');
  const nodes = args.nodes.map((n) => ({ ...n, unsafeAcceptLowerTerms: unsafe.acceptLowerTerms }));
  const host = await SimHost.start(nodes, args.logDir, logger);
  process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, nodes: host.nodes }) + '\n');
  logger.info({ nodes: host.nodes.length, logDir: args.logDir }, 'ready');

  let onSignal: ((sig: NodeJS.Signals) => void) | undefined;
  const why = await new Promise<NodeJS.Signals | 'crashed'>((resolve) => {
    onSignal = (sig) => resolve(sig);
    process.once('SIGTERM', onSignal).once('SIGINT', onSignal);
    void host.allCrashed.then(() => resolve('crashed'));
  });
  process.off('SIGTERM', onSignal!).off('SIGINT', onSignal!);
  logger.info({ why }, 'stopping');
  await host.stop();
  const code = why === 'crashed' ? 1 : 0;
  // Everything is closed by now; should some handle still hold the event loop, do not linger.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}

export function parseSimArgs(argv: string[]): SimArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        help: { type: 'boolean', short: 'h' },
        config: { type: 'string' },
        chain: { type: 'string' },
        node: { type: 'string' },
        listen: { type: 'string' },
        'block-time': { type: 'string' },
        'follow-interval': { type: 'string' },
        peers: { type: 'string' },
        baton: { type: 'string' },
        genesis: { type: 'string' },
        version: { type: 'string' },
        'lag-blocks': { type: 'string' },
        'tls-ca': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'log-dir': { type: 'string' },
        'log-level': { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values;
  const logLevel = v['log-level'] ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  if (v.help) return { help: true, logDir: DEFAULT_LOG_DIR, logLevel, nodes: [] };

  if (v.config !== undefined) {
    const single = ['chain', 'node', 'listen', 'block-time', 'follow-interval', 'peers', 'baton', 'genesis', 'version', 'lag-blocks', 'tls-ca', 'tls-cert', 'tls-key'];
    const clash = single.filter((k) => v[k as keyof typeof v] !== undefined);
    if (clash.length > 0) throw new UsageError(`--config cannot be combined with --${clash.join(', --')}`);
    const file = readConfig(v.config);
    return { help: false, logDir: v['log-dir'] ?? file.logDir ?? DEFAULT_LOG_DIR, logLevel, nodes: file.nodes };
  }

  if (v.chain === undefined || v.node === undefined) throw new UsageError('--chain and --node are required (or --config)');
  const [host, port] = parseListen(v.listen ?? '127.0.0.1:0');
  const node = nodeSpec('', {
    chain: v.chain,
    node: v.node,
    host,
    port,
    blockTimeMs: v['block-time'] === undefined ? undefined : flagInt('--block-time', v['block-time'], 1),
    followIntervalMs: v['follow-interval'] === undefined ? undefined : flagInt('--follow-interval', v['follow-interval'], 1),
    genesis: v.genesis,
    version: v.version,
    lagBlocks: v['lag-blocks'] === undefined ? undefined : flagInt('--lag-blocks', v['lag-blocks'], 0),
    peers: v.peers === undefined ? [] : v.peers.split(',').filter((p) => p !== ''),
    baton: v.baton === undefined ? [] : v.baton.split(',').filter((p) => p !== ''),
    tls: tlsFlags(v['tls-ca'], v['tls-cert'], v['tls-key']),
  });
  return { help: false, logDir: v['log-dir'] ?? DEFAULT_LOG_DIR, logLevel, nodes: [node] };
}

/** The node-side switches of BATON_UNSAFE_FAULTS (the replica-side ones are config.ts's). */
export function unsafeSimFaults(env: string | undefined): { acceptLowerTerms: boolean } {
  const names = (env ?? '').split(',').map((s) => s.trim());
  return { acceptLowerTerms: names.includes('accept-lower-terms') };
}

function tlsFlags(caFile: string | undefined, certFile: string | undefined, keyFile: string | undefined): TlsFiles | undefined {
  const given = [caFile, certFile, keyFile].filter((f) => f !== undefined).length;
  if (given === 0) return undefined;
  if (given !== 3) throw new UsageError('--tls-ca, --tls-cert and --tls-key go together (all three, or none for plaintext)');
  return { caFile: caFile!, certFile: certFile!, keyFile: keyFile! };
}

function tlsFiles(where: string, v: unknown): TlsFiles | undefined {
  if (v === undefined) return undefined;
  const o = record(`${where}.tls`, v, ['caFile', 'certFile', 'keyFile']);
  return { caFile: str(`${where}.tls`, 'caFile', o.caFile), certFile: str(`${where}.tls`, 'certFile', o.certFile), keyFile: str(`${where}.tls`, 'keyFile', o.keyFile) };
}

function flagInt(flag: string, text: string, min: number): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} must be an integer, got "${text}"`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be >= ${min}, got ${text}`);
  return n;
}

function parseListen(text: string): [string, number] {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen must be HOST:PORT, got "${text}"`);
  return [m[1] ?? m[2]!, port];
}

function readConfig(path: string): { logDir?: string; nodes: HostedNodeSpec[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read config ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const cfg = record('config', raw, ['logDir', 'nodes']);
  if (cfg.logDir !== undefined && typeof cfg.logDir !== 'string') throw new UsageError('config: logDir must be a string');
  if (!Array.isArray(cfg.nodes) || cfg.nodes.length === 0) throw new UsageError('config: nodes must be a non-empty array');
  const nodes = cfg.nodes.map((n, i) => {
    const where = `config: nodes[${i}]`;
    const r = record(where, n, ['chain', 'node', 'host', 'port', 'blockTimeMs', 'followIntervalMs', 'genesis', 'version', 'lagBlocks', 'peers', 'baton', 'tls']);
    const peers = r.peers ?? [];
    if (!Array.isArray(peers) || peers.some((p) => typeof p !== 'string')) throw new UsageError(`${where}.peers must be an array of host:port`);
    const baton = r.baton ?? [];
    if (!Array.isArray(baton) || baton.some((p) => typeof p !== 'string')) throw new UsageError(`${where}.baton must be an array of host:port`);
    return nodeSpec(where, {
      chain: str(where, 'chain', r.chain),
      node: str(where, 'node', r.node),
      host: r.host === undefined ? '127.0.0.1' : str(where, 'host', r.host),
      port: int(where, 'port', r.port ?? 0, 0, 65535),
      blockTimeMs: r.blockTimeMs === undefined ? undefined : int(where, 'blockTimeMs', r.blockTimeMs, 1),
      followIntervalMs: r.followIntervalMs === undefined ? undefined : int(where, 'followIntervalMs', r.followIntervalMs, 1),
      genesis: r.genesis === undefined ? undefined : str(where, 'genesis', r.genesis),
      version: r.version === undefined ? undefined : str(where, 'version', r.version),
      lagBlocks: r.lagBlocks === undefined ? undefined : int(where, 'lagBlocks', r.lagBlocks, 0),
      peers: peers as string[],
      baton: baton as string[],
      tls: tlsFiles(where, r.tls),
    });
  });
  const seen = new Set<string>();
  for (const n of nodes) {
    const key = `${n.chain}/${n.node}`;
    if (seen.has(key)) throw new UsageError(`config: node ${key} appears twice`);
    seen.add(key);
  }
  return { logDir: cfg.logDir as string | undefined, nodes };
}

interface RawNode {
  chain: string;
  node: string;
  host: string;
  port: number;
  blockTimeMs: number | undefined;
  followIntervalMs: number | undefined;
  genesis: string | undefined;
  version: string | undefined;
  lagBlocks: number | undefined;
  peers: string[];
  baton: string[];
  tls: TlsFiles | undefined;
}

function nodeSpec(where: string, n: RawNode): HostedNodeSpec {
  const at = where === '' ? '' : `${where}: `;
  for (const [what, name] of [['chain', n.chain], ['node', n.node]] as const) {
    if (!SAFE_NAME.test(name)) throw new UsageError(`${at}${what} "${name}" must match ${SAFE_NAME.source}`);
  }
  if (n.port > 65535) throw new UsageError(`${at}port ${n.port} is not a port`);
  if (n.genesis !== undefined && !/^(0x)?[0-9a-fA-F]{64}$/.test(n.genesis)) {
    throw new UsageError(`${at}genesis must be 32 bytes of hex`);
  }
  for (const p of n.peers) {
    if (!/^(\[[^\]]+\]|[^:]+):\d+$/.test(p)) throw new UsageError(`${at}peer "${p}" is not host:port`);
  }
  for (const b of n.baton) {
    if (!/^(\[[^\]]+\]|[^:]+):\d+$/.test(b)) throw new UsageError(`${at}baton endpoint "${b}" is not host:port`);
  }
  if (n.tls) {
    for (const [what, file] of Object.entries(n.tls)) {
      if (!existsSync(file)) throw new UsageError(`${at}tls ${what} ${file} does not exist`);
    }
  }
  const blockTimeMs = n.blockTimeMs ?? DEFAULT_BLOCK_TIME_MS;
  return {
    chain: n.chain,
    node: n.node,
    host: n.host,
    port: n.port,
    blockTimeMs,
    followIntervalMs: n.followIntervalMs ?? Math.max(20, Math.floor(blockTimeMs / 4)),
    genesisHash: n.genesis === undefined ? genesisHashOf(n.chain) : Buffer.from(n.genesis.replace(/^0x/, ''), 'hex'),
    version: n.version ?? DEFAULT_VERSION,
    lagBlocks: n.lagBlocks ?? 0,
    peers: n.peers,
    baton: n.baton,
    ...(n.tls ? { tls: n.tls } : {}),
  };
}

function record(where: string, v: unknown, keys: string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError(`${where} must be an object`);
  const unknown = Object.keys(v).filter((k) => !keys.includes(k));
  if (unknown.length > 0) throw new UsageError(`${where}: unknown key ${unknown.map((k) => `"${k}"`).join(', ')}`);
  return v as Record<string, unknown>;
}

function str(where: string, key: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`${where}.${key} must be a non-empty string`);
  return v;
}

function int(where: string, key: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new UsageError(`${where}.${key} must be an integer in ${min}..${max}`);
  }
  return v;
}
