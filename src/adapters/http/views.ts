// How operations look on the wire (times as RFC 3339 and as ms, terms as decimal strings), how
// RFC 3339 times in request bodies are read, and the canonical form of a request that an
// Idempotency-Key is bound to.
import type { FencingMode } from '../../core/chain.js';
import type { Operation, OperationParams } from '../../core/operation.js';

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/**
 * Wall-clock ms of an RFC 3339 date-time (fractions below 1 ms are dropped), or undefined when the
 * text is not one: every field is range-checked (no 30 February, no hour 24); leap seconds are not
 * accepted.
 */
export function parseRfc3339(text: string): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMin = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, Number((m[7] ?? '0').padEnd(3, '0').slice(0, 3)));
  return d.getTime() - offsetMin * 60_000;
}

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** JSON with object keys sorted at every level: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** What an Idempotency-Key is bound to: the method, the path and the body. */
export function canonicalRequest(method: string, url: string, body: unknown): string {
  return `${method.toUpperCase()} ${url.split('?')[0]}\n${canonicalJson(body ?? null)}`;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export type OperationParamsView =
  | { kind: 'failover'; reason: string; candidate?: string }
  | { kind: 'switchover'; reason: string; target?: string; scheduledAt?: string }
  | { kind: 'pause'; reason: string; until?: string }
  | { kind: 'override'; reason: string; nodeId: string; rollbackHead?: boolean }
  | { kind: 'set-fencing-mode'; reason: string; mode: FencingMode }
  | { kind: 'resume' | 'cancel-switchover' | 'clear-override'; reason: string };

export interface OperationView {
  id: string;
  chainId: string;
  params: OperationParamsView;
  state: Operation['state'];
  steps: { name: string; state: string; at: string; atMs: number; detail: string }[];
  createdAt: string;
  createdAtMs: number;
  updatedAt: string;
  updatedAtMs: number;
  result: { term?: string; nodeId?: string; headNumber?: number; detail: string } | null;
  error: { code: string; message: string } | null;
  executor: string | null;
  requestId: string;
  idempotencyKey: string | null;
  traceId: string | null;
}

/** The params as a request body would carry them (times as RFC 3339). */
export function viewParams(p: OperationParams): OperationParamsView {
  switch (p.kind) {
    case 'failover':
      return { kind: p.kind, reason: p.reason, ...(p.candidate !== undefined ? { candidate: p.candidate } : {}) };
    case 'switchover':
      return {
        kind: p.kind,
        reason: p.reason,
        ...(p.target !== undefined ? { target: p.target } : {}),
        ...(p.scheduledAtMs !== undefined ? { scheduledAt: iso(p.scheduledAtMs) } : {}),
      };
    case 'pause':
      return { kind: p.kind, reason: p.reason, ...(p.untilMs !== undefined ? { until: iso(p.untilMs) } : {}) };
    case 'override':
      return { kind: p.kind, reason: p.reason, nodeId: p.nodeId, ...(p.rollbackHead === true ? { rollbackHead: true } : {}) };
    case 'set-fencing-mode':
      return { kind: p.kind, reason: p.reason, mode: p.mode };
    case 'resume':
    case 'cancel-switchover':
    case 'clear-override':
      return { kind: p.kind, reason: p.reason };
  }
}

export function viewOperation(op: Operation): OperationView {
  const r = op.result;
  return {
    id: op.id,
    chainId: op.chainId,
    params: viewParams(op.params),
    state: op.state,
    steps: op.steps.map((s) => ({ name: s.name, state: s.state, at: iso(s.atMs), atMs: s.atMs, detail: s.detail })),
    createdAt: iso(op.createdAtMs),
    createdAtMs: op.createdAtMs,
    updatedAt: iso(op.updatedAtMs),
    updatedAtMs: op.updatedAtMs,
    result: r
      ? {
          ...(r.term !== undefined ? { term: r.term } : {}),
          ...(r.nodeId !== undefined ? { nodeId: r.nodeId } : {}),
          ...(r.headNumber !== undefined ? { headNumber: r.headNumber } : {}),
          detail: r.detail,
        }
      : null,
    error: op.error ? { code: op.error.code, message: op.error.message } : null,
    executor: op.executor ?? null,
    requestId: op.requestId,
    idempotencyKey: op.idempotencyKey ?? null,
    traceId: op.traceId ?? null,
  };
}
