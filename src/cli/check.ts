// `baton check`: reads activity logs, runs the independent checker, prints one line per violation
// and ends with exactly one line of JSON. Exit 0 clean, 1 violations, 2 usage or unreadable input.
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { MAX_TERM } from '../core/term.js';
import type { ActivityEntry } from '../sim/activity.js';
import { checkActivity, type ActivityLog, type CheckReport } from '../sim/checker.js';

const USAGE = `usage: baton check [--json-only] LOG...

Verifies simulated-sequencer activity logs against the safety invariants (one producer, terms only
grow, no fork). LOG is a file, or a directory meaning every *.jsonl file below it.
Prints one line per violation, then one line of JSON with the counts.
Exit status: 0 clean, 1 violations found, 2 usage error or unreadable input.

  --json-only   print only the final JSON line`;

/** Bad input: the message says file:line and what is wrong. */
class InputError extends Error {}

export async function runCheck(argv: string[]): Promise<number> {
  const jsonOnly = argv.includes('--json-only');
  const paths = argv.filter((a) => a !== '--json-only');
  if (paths.some((p) => p === '--help' || p === '-h')) {
    console.log(USAGE);
    return 0;
  }
  const unknown = paths.find((p) => p.startsWith('-'));
  if (unknown !== undefined || paths.length === 0) {
    console.error(`baton check: ${unknown ? `unknown option ${unknown}` : 'no LOG given'}\n\n${USAGE}`);
    return 2;
  }
  let logs: ActivityLog[];
  let truncated = 0;
  try {
    logs = [];
    for (const file of await listLogFiles(paths)) {
      const parsed = await readLog(file);
      logs.push(parsed.log);
      if (parsed.truncated) truncated++;
    }
  } catch (err) {
    console.error(`baton check: ${err instanceof Error ? err.message : String(err)}`);
    return 2;
  }
  const report = checkActivity(logs);
  if (!jsonOnly) for (const v of report.violations) console.log(`${v.kind} ${v.chain}: ${v.message}`);
  console.log(JSON.stringify(summary(report, truncated)));
  return report.violations.length > 0 ? 1 : 0;
}

export function summary(report: CheckReport, truncatedLines: number) {
  return {
    logs: report.logs,
    chains: report.chains,
    nodes: report.nodes,
    blocks: report.blocks,
    violations: report.violations.length,
    by_kind: report.byKind,
    gaps: report.gaps,
    max_height: report.maxHeight,
    truncated_lines: truncatedLines,
  };
}

// Files as given; directories expand to every *.jsonl below them, in a stable order.
async function listLogFiles(paths: string[]): Promise<string[]> {
  const files = new Map<string, string>(); // resolved path -> path as shown: each file read once
  for (const path of paths) {
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      throw new InputError(`${path}: cannot read (${err.code ?? err.message})`);
    });
    const found = info.isDirectory() ? await jsonlBelow(path) : [path];
    if (found.length === 0) throw new InputError(`${path}: no *.jsonl file below this directory`);
    for (const file of found) if (!files.has(resolve(file))) files.set(resolve(file), file);
  }
  return [...files.values()];
}

async function jsonlBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  for (const d of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const path = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await jsonlBelow(path)));
    else if (d.isFile() && d.name.endsWith('.jsonl')) out.push(path);
  }
  return out;
}

// Streams one file. Only the last non-blank line may be cut short (a node killed mid-write): it
// is dropped and reported as truncated. A bad line anywhere else is an input error.
async function readLog(file: string): Promise<{ log: ActivityLog; truncated: boolean }> {
  const log: ActivityLog = { file, entries: [], lines: [] };
  let pending: { line: number; error: string } | undefined;
  let n = 0;
  const input = createReadStream(file, { encoding: 'utf8' });
  try {
    for await (const text of createInterface({ input, crlfDelay: Infinity })) {
      n++;
      if (text.trim() === '') continue;
      if (pending) throw new InputError(`${file}:${pending.line}: ${pending.error}`);
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        pending = { line: n, error: 'not a JSON line' };
        continue;
      }
      const error = entryError(value);
      if (error) throw new InputError(`${file}:${n}: ${error}`);
      log.entries.push(value as ActivityEntry);
      log.lines!.push(n);
    }
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(`${file}: cannot read (${err instanceof Error ? err.message : String(err)})`);
  } finally {
    input.destroy();
  }
  return { log, truncated: pending !== undefined };
}

type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === 'string';
const nonEmpty: Check = (v) => typeof v === 'string' && v.length > 0;
const time: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const height: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const term: Check = (v) => typeof v === 'string' && /^[1-9][0-9]*$/.test(v) && (v.length < 20 || BigInt(v) <= MAX_TERM);

// The fields each event must carry (activity.ts); anything else is rejected rather than guessed at.
const BASE: [string, Check][] = [['t', time], ['chain', nonEmpty], ['node', nonEmpty]];
const lease: [string, Check][] = [['term', term], ['ttlMs', time], ['expiresAt', time]];
const FIELDS = new Map<string, [string, Check][]>(
  Object.entries({
    start: [['version', str], ['genesis', str]],
    'lease-granted': lease,
    'lease-renewed': lease,
    'lease-expired': [['term', term]],
    'active-from': [['term', term], ['head', height], ['mode', (v) => v === undefined || v === 'commit']],
    'active-until': [['term', term], ['head', height], ['reason', nonEmpty]],
    block: [['term', term], ['number', height], ['hash', nonEmpty], ['parent', str]],
    adopt: [['term', term], ['number', height], ['hash', nonEmpty], ['parent', str], ['from', nonEmpty]],
    rejected: [['rpc', str], ['code', str], ['reason', str], ['term', (v) => v === undefined || str(v)]],
    reorg: [['ancestor', height], ['droppedHead', height], ['droppedHash', str]],
  } satisfies Record<ActivityEntry['ev'], [string, Check][]>).map(([ev, fields]) => [ev, [...BASE, ...fields]]),
);

function entryError(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const o = value as Record<string, unknown>;
  const fields = typeof o['ev'] === 'string' ? FIELDS.get(o['ev']) : undefined;
  if (!fields) return `unknown event ${JSON.stringify(o['ev'])}`;
  for (const [name, ok] of fields) {
    if (!ok(o[name])) return `${o['ev']}: bad or missing ${name} ${JSON.stringify(o[name])}`;
  }
  return undefined;
}
