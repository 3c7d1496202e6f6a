// Argument parsing of `baton ctl`: pure (argv, environment and the wall clock in, a command or a
// usage error out), so that every usage error is found before any request is sent.

export const CTL_USAGE = `usage: baton ctl [global options] <command> [arguments]

Operator CLI over Baton's REST API. Tables for people by default, --json for scripts.

commands:
  list [--filter STATE]                  fleet table: chain, leader, term, head, age, state
                                         (STATE: leaderless, paused, degraded, failing-over)
  status CHAIN                           leader, unsafe head, and every node's health and eligibility
  history CHAIN [--limit N]              the chain's terms, newest first
  failover CHAIN [--to NODE] [--dry-run] make a standby active now (--dry-run: show the plan only)
  switchover CHAIN [--to NODE] [--at TIME]
                                         planned handoff, now or at TIME (waits until scheduled)
  cancel-switchover CHAIN                cancel a scheduled switchover
  pause CHAIN [--until TIME]             no automatic failover of CHAIN (until resumed or TIME)
  resume CHAIN                           end a pause
  fencing-mode CHAIN lease|commit        switch CHAIN's fencing mode: a new term for the active in
                                         that mode (refused while paused or overridden)
  override CHAIN NODE --reason TEXT [--rollback-head]
                                         BREAK-GLASS (breakglass role): force NODE active, skipping
                                         the eligibility checks but not the fencing; holds until cleared.
                                         --rollback-head: set the recorded head back to NODE's head
                                         (discards the blocks above it; refused while a leader produces)
  clear-override CHAIN --reason TEXT     end the chain's break-glass override
  operation ID                           show an operation (one started with --no-wait), once it is
                                         final or scheduled (--no-wait: at once)
  events [--follow] [--chain CHAIN] [--after ID]
                                         the event stream: what arrives within --timeout, or
                                         everything until interrupted with --follow; --after
                                         first replays what came after event ID
  settings [--auto-failover on|off] [--max-concurrent N]
                                         show, or change, the fleet-wide settings

global options (anywhere on the line):
  --url URL                 Baton's REST API (default $BATON_URL, else http://127.0.0.1:8080)
  --ca FILE --cert FILE --key FILE
                            mTLS: the CA of Baton's certificate, and this operator's client
                            certificate and key (default $BATON_CA_FILE, $BATON_CERT_FILE, $BATON_KEY_FILE)
  --json                    print JSON instead of tables (events: one JSON object per line)
  --timeout MS              deadline of each HTTP call, beyond any server-side wait (default 10000)
  --reason TEXT             why, recorded with a mutation (default "baton ctl by $USER")
  --idempotency-key KEY     key of a mutation (default: a random UUID per invocation); run the
                            same command again with the same key and it is not done twice
  --no-wait                 do not wait for a mutation to finish: print its operation id, exit 0
  --wait-timeout MS         how long to wait for a mutation to finish (default 120000)
  -h, --help                this text

TIME is RFC 3339 (2030-01-02T15:04:05Z) or a delay from now: 30s, 10m, 2h, 1d.

exit status:
  0  success
  1  the operation ran and failed, or Baton refused the request (4xx: unknown chain or node,
     not eligible, paused, conflict...), or a dry run found no eligible standby
  2  usage error (bad command, option or argument; nothing was sent)
  3  Baton unreachable, a 5xx answer, a timed-out call, or the operation did not finish within
     --wait-timeout (it may still finish: see \`baton ctl operation ID\`)`;

export interface GlobalOptions {
  readonly url: string;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly reason: string;
  readonly idempotencyKey: string;
  readonly wait: boolean;
  readonly waitTimeoutMs: number;
  /** mTLS files (all three, or none: plaintext). */
  readonly tls?: { readonly caFile: string; readonly certFile: string; readonly keyFile: string };
}

export type CtlCommand =
  | { readonly name: 'list'; readonly filter: ChainFilter | undefined }
  | { readonly name: 'status'; readonly chain: string }
  | { readonly name: 'history'; readonly chain: string; readonly limit: number | undefined }
  | { readonly name: 'failover'; readonly chain: string; readonly to: string | undefined; readonly dryRun: boolean }
  | { readonly name: 'switchover'; readonly chain: string; readonly to: string | undefined; readonly at: string | undefined }
  | { readonly name: 'cancel-switchover'; readonly chain: string }
  | { readonly name: 'pause'; readonly chain: string; readonly until: string | undefined }
  | { readonly name: 'resume'; readonly chain: string }
  | { readonly name: 'fencing-mode'; readonly chain: string; readonly mode: 'lease' | 'commit' }
  | { readonly name: 'override'; readonly chain: string; readonly node: string; readonly rollbackHead: boolean }
  | { readonly name: 'clear-override'; readonly chain: string }
  | { readonly name: 'operation'; readonly id: string }
  | { readonly name: 'events'; readonly follow: boolean; readonly chain: string | undefined; readonly after: string | undefined }
  | { readonly name: 'settings'; readonly autoFailover: boolean | undefined; readonly maxConcurrent: number | undefined };

export type ParsedCtl =
  | { readonly kind: 'help' }
  | { readonly kind: 'usage-error'; readonly message: string }
  | { readonly kind: 'ok'; readonly global: GlobalOptions; readonly command: CtlCommand };

export const CHAIN_FILTERS = ['leaderless', 'paused', 'degraded', 'failing-over'] as const;
export type ChainFilter = (typeof CHAIN_FILTERS)[number];

export interface CtlEnv {
  readonly BATON_URL?: string | undefined;
  readonly USER?: string | undefined;
  readonly BATON_CA_FILE?: string | undefined;
  readonly BATON_CERT_FILE?: string | undefined;
  readonly BATON_KEY_FILE?: string | undefined;
}

export const DEFAULT_URL = 'http://127.0.0.1:8080';
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_WAIT_TIMEOUT_MS = 120_000;

// Same patterns as the API (openapi.yaml), so a bad id is a usage error, not a 400.
const CHAIN_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const OPERATION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const EVENT_ID = /^[0-9]{1,20}-[0-9]{1,6}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

class UsageError extends Error {}

type FlagKind = 'bool' | 'value';

const GLOBAL_FLAGS: Record<string, FlagKind> = {
  '--url': 'value',
  '--ca': 'value',
  '--cert': 'value',
  '--key': 'value',
  '--json': 'bool',
  '--timeout': 'value',
  '--reason': 'value',
  '--idempotency-key': 'value',
  '--no-wait': 'bool',
  '--wait-timeout': 'value',
};

/** Each command: its positional arguments and its own flags. */
const COMMANDS: Record<CtlCommand['name'], { positionals: readonly string[]; flags: Record<string, FlagKind> }> = {
  list: { positionals: [], flags: { '--filter': 'value' } },
  status: { positionals: ['CHAIN'], flags: {} },
  history: { positionals: ['CHAIN'], flags: { '--limit': 'value' } },
  failover: { positionals: ['CHAIN'], flags: { '--to': 'value', '--dry-run': 'bool' } },
  switchover: { positionals: ['CHAIN'], flags: { '--to': 'value', '--at': 'value' } },
  'cancel-switchover': { positionals: ['CHAIN'], flags: {} },
  pause: { positionals: ['CHAIN'], flags: { '--until': 'value' } },
  resume: { positionals: ['CHAIN'], flags: {} },
  'fencing-mode': { positionals: ['CHAIN', 'MODE'], flags: {} },
  override: { positionals: ['CHAIN', 'NODE'], flags: { '--rollback-head': 'bool' } },
  'clear-override': { positionals: ['CHAIN'], flags: {} },
  operation: { positionals: ['ID'], flags: {} },
  events: { positionals: [], flags: { '--follow': 'bool', '--chain': 'value', '--after': 'value' } },
  settings: { positionals: [], flags: { '--auto-failover': 'value', '--max-concurrent': 'value' } },
};

function isCommandName(s: string): s is CtlCommand['name'] {
  return Object.hasOwn(COMMANDS, s);
}

export function parseCtlArgs(argv: readonly string[], env: CtlEnv, nowMs: number, newKey: () => string = () => crypto.randomUUID()): ParsedCtl {
  if (argv.includes('--help') || argv.includes('-h')) return { kind: 'help' };
  try {
    return { kind: 'ok', ...parse(argv, env, nowMs, newKey) };
  } catch (err) {
    if (err instanceof UsageError) return { kind: 'usage-error', message: err.message };
    throw err;
  }
}

function parse(argv: readonly string[], env: CtlEnv, nowMs: number, newKey: () => string): { global: GlobalOptions; command: CtlCommand } {
  const flags = new Map<string, string | true>();
  const positionals: string[] = [];
  let name: CtlCommand['name'] | undefined;
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (onlyPositionals || !arg.startsWith('-') || arg === '-') {
      if (name === undefined) {
        if (!isCommandName(arg)) throw new UsageError(`unknown command "${arg}"`);
        name = arg;
      } else {
        positionals.push(arg);
      }
      continue;
    }
    if (arg === '--') {
      onlyPositionals = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const kind = GLOBAL_FLAGS[flag] ?? (name ? COMMANDS[name].flags[flag] : undefined);
    if (kind === undefined) {
      const owner = Object.entries(COMMANDS).find(([, c]) => Object.hasOwn(c.flags, flag));
      throw new UsageError(owner ? `${flag} is an option of "${owner[0]}", not of ${name ? `"${name}"` : 'ctl'}` : `unknown option ${flag}`);
    }
    if (flags.has(flag)) throw new UsageError(`${flag} given twice`);
    if (kind === 'bool') {
      if (eq > 0) throw new UsageError(`${flag} takes no value`);
      flags.set(flag, true);
    } else if (eq > 0) {
      flags.set(flag, arg.slice(eq + 1));
    } else {
      const value = argv[i + 1];
      if (value === undefined) throw new UsageError(`${flag} needs a value`);
      flags.set(flag, value);
      i++;
    }
  }
  if (name === undefined) throw new UsageError('no command given');
  const spec = COMMANDS[name];
  if (positionals.length < spec.positionals.length) throw new UsageError(`${name}: missing ${spec.positionals[positionals.length]}`);
  if (positionals.length > spec.positionals.length) throw new UsageError(`${name}: unexpected argument "${positionals[spec.positionals.length]}"`);

  const str = (flag: string): string | undefined => {
    const v = flags.get(flag);
    return v === true ? undefined : v;
  };
  const global: GlobalOptions = {
    url: parseUrl(str('--url') ?? (env.BATON_URL || DEFAULT_URL), str('--url') === undefined && env.BATON_URL ? 'BATON_URL' : '--url'),
    json: flags.has('--json'),
    timeoutMs: parseInteger('--timeout', str('--timeout'), 1, 600_000) ?? DEFAULT_TIMEOUT_MS,
    reason: parseReason(str('--reason') ?? `baton ctl by ${env.USER || 'unknown'}`),
    idempotencyKey: parseIdempotencyKey(str('--idempotency-key') ?? newKey()),
    wait: !flags.has('--no-wait'),
    waitTimeoutMs: parseInteger('--wait-timeout', str('--wait-timeout'), 1, 7 * 24 * 3600 * 1000) ?? DEFAULT_WAIT_TIMEOUT_MS,
    ...parseTls(str('--ca') ?? env.BATON_CA_FILE, str('--cert') ?? env.BATON_CERT_FILE, str('--key') ?? env.BATON_KEY_FILE),
  };
  const chainRule = 'lowercase letters, digits and "-", at most 63';
  const chain = (): string => parseId('CHAIN', positionals[0]!, CHAIN_ID, chainRule);
  const node = (flag: string): string | undefined => {
    const v = str(flag);
    return v === undefined ? undefined : parseId(flag, v, NODE_ID, 'letters, digits, "_", "." and "-", at most 63');
  };
  const time = (flag: string): string | undefined => {
    const v = str(flag);
    return v === undefined ? undefined : parseTime(flag, v, nowMs);
  };
  let command: CtlCommand;
  switch (name) {
    case 'list': {
      const filter = str('--filter');
      if (filter !== undefined && !(CHAIN_FILTERS as readonly string[]).includes(filter)) {
        throw new UsageError(`--filter must be one of ${CHAIN_FILTERS.join(', ')}, got "${filter}"`);
      }
      command = { name, filter: filter as ChainFilter | undefined };
      break;
    }
    case 'status':
    case 'cancel-switchover':
    case 'resume':
      command = { name, chain: chain() };
      break;
    case 'override':
    case 'clear-override': {
      // A break-glass action says why in the operator's own words, never a default.
      if (str('--reason') === undefined) throw new UsageError(`${name}: --reason TEXT is required (a break-glass action must say why)`);
      command = name === 'override'
        ? { name, chain: chain(), node: parseId('NODE', positionals[1]!, NODE_ID, 'letters, digits, "_", "." and "-", at most 63'), rollbackHead: flags.has('--rollback-head') }
        : { name, chain: chain() };
      break;
    }
    case 'history':
      command = { name, chain: chain(), limit: parseInteger('--limit', str('--limit'), 1, 1000) };
      break;
    case 'failover':
      command = { name, chain: chain(), to: node('--to'), dryRun: flags.has('--dry-run') };
      break;
    case 'switchover':
      command = { name, chain: chain(), to: node('--to'), at: time('--at') };
      break;
    case 'pause':
      command = { name, chain: chain(), until: time('--until') };
      break;
    case 'fencing-mode': {
      const mode = positionals[1]!;
      if (mode !== 'lease' && mode !== 'commit') throw new UsageError(`fencing-mode: MODE must be lease or commit, got "${mode}"`);
      command = { name, chain: chain(), mode };
      break;
    }
    case 'operation':
      command = { name, id: parseId('ID', positionals[0]!, OPERATION_ID, 'an operation id such as op-1700000000000-0a1b2c3d') };
      break;
    case 'events':
      command = {
        name,
        follow: flags.has('--follow'),
        chain: str('--chain') === undefined ? undefined : parseId('--chain', str('--chain')!, CHAIN_ID, chainRule),
        after: str('--after') === undefined ? undefined : parseId('--after', str('--after')!, EVENT_ID, 'an event id such as 1234-0 (an etcd revision, then an index)'),
      };
      break;
    case 'settings':
      command = {
        name,
        autoFailover: parseOnOff('--auto-failover', str('--auto-failover')),
        maxConcurrent: parseInteger('--max-concurrent', str('--max-concurrent'), 1, 1000),
      };
      break;
  }
  return { global, command };
}

function parseTls(caFile: string | undefined, certFile: string | undefined, keyFile: string | undefined): Pick<GlobalOptions, 'tls'> {
  const given = [caFile, certFile, keyFile].filter((f) => f !== undefined && f !== '');
  if (given.length === 0) return {};
  if (given.length !== 3) throw new UsageError('--ca, --cert and --key go together (mTLS needs all three)');
  return { tls: { caFile: caFile!, certFile: certFile!, keyFile: keyFile! } };
}

function parseUrl(value: string, source: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${source} must be an http(s) URL, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${source} must be an http(s) URL, got "${value}"`);
  if (url.search || url.hash) throw new UsageError(`${source} must not have a query or fragment, got "${value}"`);
  return url.toString().replace(/\/+$/, '');
}

function parseInteger(flag: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max}, got ${value}`);
  return n;
}

function parseReason(value: string): string {
  if (value.trim() === '') throw new UsageError('--reason must not be empty');
  if (value.length > 1000) throw new UsageError('--reason: at most 1000 characters');
  return value;
}

function parseIdempotencyKey(value: string): string {
  if (!IDEMPOTENCY_KEY.test(value)) throw new UsageError('--idempotency-key must be 1-255 printable characters without spaces');
  return value;
}

function parseId(what: string, value: string, pattern: RegExp, rule: string): string {
  if (!pattern.test(value)) throw new UsageError(`${what} "${value}" is not valid (${rule})`);
  return value;
}

function parseOnOff(flag: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (['on', 'true', 'yes'].includes(value)) return true;
  if (['off', 'false', 'no'].includes(value)) return false;
  throw new UsageError(`${flag} must be on or off, got "${value}"`);
}

const DELAY_UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
// RFC 3339 date-time, with a mandatory offset (a time without one means nothing across hosts).
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/** TIME as RFC 3339 (UTC, millisecond precision): an RFC 3339 time, or a delay from `nowMs`. */
export function parseTime(flag: string, value: string, nowMs: number): string {
  const delay = /^\+?(\d{1,7})([smhd])$/.exec(value);
  if (delay) return new Date(nowMs + Number(delay[1]) * DELAY_UNIT_MS[delay[2]!]!).toISOString();
  const m = RFC3339.exec(value);
  const ms = m ? Date.parse(value) : NaN;
  // Date.parse rolls 30 February over to March: the date's own fields must survive the trip.
  const [y, mo, d, h, mi, sec] = (m ?? []).slice(1, 7).map(Number);
  const fieldsOk = m !== null && mo! >= 1 && mo! <= 12 && h! <= 23 && mi! <= 59 && sec! <= 59 && new Date(Date.UTC(y!, mo! - 1, d!)).getUTCDate() === d;
  if (Number.isNaN(ms) || !fieldsOk) throw new UsageError(`${flag} must be an RFC 3339 time (2030-01-02T15:04:05Z) or a delay (30s, 10m, 2h, 1d), got "${value}"`);
  return new Date(ms).toISOString();
}
