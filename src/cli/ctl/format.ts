// What `baton ctl` prints for people: plain aligned columns, times in UTC. Pure functions of the
// API's JSON (see openapi.yaml) and the current time; colour (bold headers, coloured outcome) only
// when asked, i.e. when stdout is a terminal.
import type { ChainListItem, ChainView, FailoverPlan, FleetSettings, OperationJson, TermJson } from './api.js';

export interface Style {
  readonly color: boolean;
}

const PLAIN: Style = { color: false };
const BOLD = (s: string) => `\x1b[1m${s}\x1b[0m`;
const RED = (s: string) => `\x1b[31m${s}\x1b[0m`;
const GREEN = (s: string) => `\x1b[32m${s}\x1b[0m`;

/** Columns separated by two spaces, each as wide as its widest cell; no trailing spaces. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], style: Style = PLAIN): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const head = line(headers);
  return [style.color ? BOLD(head) : head, ...rows.map(line)].join('\n');
}

/** A duration for people: 0s, 42s, 3m05s, 2h10m, 4d03h. */
export function formatAge(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad2(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad2(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86_400)}d${pad2(Math.floor((s % 86_400) / 3600))}h`;
}

/** Wall ms as RFC 3339 UTC without milliseconds. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

function orDash(v: string | number | null | undefined): string {
  return v === null || v === undefined || v === '' ? '-' : String(v);
}

function yesNo(b: boolean): string {
  return b ? 'yes' : 'no';
}

/** Seconds since the head's timestamp (unix seconds), or undefined without a head. */
export function headAgeS(headTimestampS: number | null | undefined, nowMs: number): number | undefined {
  return headTimestampS === null || headTimestampS === undefined ? undefined : Math.max(0, Math.floor(nowMs / 1000 - headTimestampS));
}

/** The fleet table of `list`; `ageS` is undefined where the chain's head time is unknown. */
export function formatChainList(chains: readonly (ChainListItem & { ageS?: number | undefined })[], style: Style = PLAIN): string {
  if (chains.length === 0) return 'no chains';
  const rows = chains.map((c) => [
    c.id,
    orDash(c.leader),
    orDash(c.term),
    orDash(c.headNumber),
    c.ageS === undefined ? '-' : formatAge(c.ageS),
    chainState(c),
  ]);
  return table(['CHAIN', 'LEADER', 'TERM', 'HEAD', 'AGE', 'STATE'], rows, style);
}

/** `ok`, or the chain's states (leaderless, paused, degraded, failing-over) joined by commas. */
export function chainState(c: Pick<ChainListItem, 'states' | 'paused' | 'leader'>): string {
  const states = new Set(c.states ?? []);
  if (c.paused) states.add('paused');
  if (c.leader === null && c.states === undefined) states.add('leaderless');
  return states.size === 0 ? 'ok' : [...states].join(',');
}

/** The chain's fencing mode: the spec's, and the leader term's while they differ (a switch under way). */
function fencingText(v: ChainView): string | undefined {
  const wanted = v.spec?.policy?.fencingMode;
  const held = v.leader?.mode;
  if (wanted === undefined || held === undefined || wanted === held) return wanted ?? held;
  return `${wanted} (term ${v.leader!.term} is still ${held} mode: switching)`;
}

export function formatChainView(v: ChainView, nowMs: number, style: Style = PLAIN): string {
  const lines: [string, string][] = [['chain', v.id]];
  const l = v.leader;
  lines.push(['leader', l ? `${l.nodeId}  term ${l.term}  since ${formatTime(l.sinceMs)}  from head ${l.fromHead}  (${l.reason})` : 'none']);
  const fencing = fencingText(v);
  if (fencing) lines.push(['fencing', fencing]);
  const h = v.unsafeHead;
  lines.push(['head', h ? `#${h.number}  ${shortHash(h.hash)}  age ${formatAge(headAgeS(h.timestamp, nowMs) ?? 0)}  by ${h.nodeId} in term ${h.term}` : 'none recorded']);
  lines.push(['supervisor', orDash(v.supervisor)]);
  if (v.paused !== undefined) lines.push(['paused', pausedText(v.paused)]);
  const o = v.override;
  if (o !== undefined) lines.push(['override', o ? `BREAK-GLASS: ${o.nodeId} forced under term ${o.term} since ${formatTime(o.sinceMs)}  (${o.reason})` : 'no']);
  if (o?.rolledBackFrom && o.rolledBackTo) lines.push(['rolled back', `head ${o.rolledBackFrom.number} (${o.rolledBackFrom.hash}) -> ${o.rolledBackTo.number} (${o.rolledBackTo.hash})`]);
  lines.push(['decision', orDash(v.decision)]);
  const f = v.lastFailover;
  lines.push(['last change', f ? `term ${f.term}: ${f.previousNodeId ?? '(none)'} -> ${f.nodeId} at ${formatTime(f.atMs)}  (${f.reason})` : '-']);
  const width = Math.max(...lines.map(([k]) => k.length));
  const head = lines.map(([k, val]) => `${k.padEnd(width)}  ${val}`).join('\n');
  const rows = v.nodes.map((n) => [
    n.id,
    n.role,
    yesNo(n.reachable),
    yesNo(n.healthy),
    yesNo(n.producing),
    n.term === '0' ? '-' : n.term,
    orDash(n.headNumber),
    orDash(n.lag),
    n.role === 'active' ? '-' : yesNo(n.eligible),
    n.reasons.join('; '),
  ]);
  const nodes = table(['NODE', 'ROLE', 'REACHABLE', 'HEALTHY', 'PRODUCING', 'TERM', 'HEAD', 'LAG', 'ELIGIBLE', 'REASONS'], rows, style);
  return `${head}\n\n${nodes}`;
}

function pausedText(p: Exclude<ChainView['paused'], undefined>): string {
  if (p === false || p === null) return 'no';
  if (p === true) return 'yes';
  return `yes${p.untilMs ? ` until ${formatTime(p.untilMs)}` : ''}${p.reason ? `  (${p.reason})` : ''}`;
}

function shortHash(hash: string): string {
  const h = hash.startsWith('0x') ? hash.slice(2) : hash;
  return h.length > 12 ? `0x${h.slice(0, 8)}…${h.slice(-4)}` : `0x${h}`;
}

export function formatHistory(terms: readonly TermJson[], style: Style = PLAIN): string {
  if (terms.length === 0) return 'no terms recorded';
  const rows = terms.map((t) => [t.term, t.nodeId, orDash(t.previousNodeId), String(t.fromHead), formatTime(t.atMs), orDash(t.supervisor), t.reason]);
  return table(['TERM', 'NODE', 'PREVIOUS', 'FROM-HEAD', 'AT', 'SUPERVISOR', 'REASON'], rows, style);
}

export function formatPlan(plan: FailoverPlan, style: Style = PLAIN): string {
  const verdict = plan.to ? `plan: fail over from ${plan.from ?? '(no leader)'} to ${plan.to}` : 'plan: no failover possible';
  const rows = plan.nodes.map((n) => [
    n.id,
    n.role,
    yesNo(n.healthy),
    orDash(n.headNumber),
    orDash(n.lag),
    n.role === 'active' ? '-' : yesNo(n.eligible),
    n.reasons.join('; '),
  ]);
  const nodes = table(['NODE', 'ROLE', 'HEALTHY', 'HEAD', 'LAG', 'ELIGIBLE', 'REASONS'], rows, style);
  return `${verdict}\nreason: ${plan.reason}\n\n${nodes}\n\n(dry run: nothing was changed)`;
}

export function formatOperation(op: OperationJson, style: Style = PLAIN): string {
  const kind = op.params?.kind ?? op.kind ?? 'operation';
  const state = style.color ? colorState(op.state) : op.state;
  const lines = [`${kind} ${op.chainId}: ${state}  (operation ${op.id})`];
  for (const s of op.steps ?? []) lines.push(`  ${formatTime(s.atMs)}  ${s.state.padEnd(7)}  ${s.name}${s.detail ? `: ${s.detail}` : ''}`);
  const r = op.result;
  if (r) {
    const facts = [r.nodeId && `leader ${r.nodeId}`, r.term && `term ${r.term}`, r.headNumber !== undefined && `head ${r.headNumber}`].filter(Boolean);
    lines.push(`result: ${r.detail || 'done'}${facts.length ? `  (${facts.join(', ')})` : ''}`);
  }
  if (op.traceId) lines.push(`trace: ${op.traceId}`);
  return lines.join('\n');
}

function colorState(state: string): string {
  if (state === 'succeeded') return GREEN(state);
  if (state === 'failed' || state === 'cancelled') return RED(state);
  return state;
}

export function formatSettings(s: FleetSettings): string {
  return table(['SETTING', 'VALUE'], [
    ['auto-failover', s.autoFailover ? 'on' : 'off'],
    ['max-concurrent', String(s.maxConcurrentFailovers)],
  ]);
}

/** One line per event: receipt time, type, chain, then the data as key=value. */
export function formatEvent(e: { type: string; chainId?: string | undefined; data: unknown }, receivedMs: number): string {
  const data = e.data !== null && typeof e.data === 'object' ? (e.data as Record<string, unknown>) : { data: e.data };
  const fields = Object.entries(data)
    .filter(([k, v]) => v !== undefined && k !== 'chainId')
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  return [new Date(receivedMs).toISOString(), e.type, e.chainId ?? '-', ...fields].join('  ');
}
