// The independent invariant checker. It reads only activity logs (activity.ts), knows nothing of
// the control plane, and reports each breach of safety invariants 1-3 with the lines that prove it.
// Pure: the CLI (cli/check.ts) reads and parses the files, this module only judges entries.
import type { ActivityEntry } from './activity.js';

export const VIOLATION_KINDS = ['OVERLAP', 'FORK', 'BAD_PARENT', 'TERM_DECREASE', 'AFTER_LEASE', 'STALE_PUBLISH'] as const;
export type ViolationKind = (typeof VIOLATION_KINDS)[number];

export interface ActivityLog {
  file: string;
  entries: ActivityEntry[];
  /** 1-based line number of each entry in `file`; defaults to index + 1. */
  lines?: number[];
}

/** One fact behind a violation; `at` is the file:line of the entry that records it. */
export interface Evidence {
  node: string;
  at: string;
  t?: number;
  term?: string;
  height?: number;
  hash?: string;
  parent?: string;
  /** Producing intervals only: [t, until) and what bounded it (file:line, or "end of log"). */
  until?: number;
  endedBy?: string;
}

export interface Violation {
  kind: ViolationKind;
  chain: string;
  message: string;
  evidence: Evidence[];
}

export interface CheckReport {
  logs: number;
  chains: number;
  nodes: number;
  /** Distinct (chain, height, hash): one block recorded by two logs counts once. */
  blocks: number;
  /** Heights between the lowest and highest recorded height of a chain that no log records. */
  gaps: number;
  maxHeight: number;
  violations: Violation[];
  byKind: Record<ViolationKind, number>;
}

// A block made available to peers: made by the logging node, or (commit mode) adopted by it from the
// committed head because its producer never sent it.
type BlockEntry = Extract<ActivityEntry, { ev: 'block' | 'adopt' }>;
interface Located<E extends ActivityEntry = ActivityEntry> {
  e: E;
  file: string;
  line: number;
}
type Block = Located<BlockEntry>;

interface ChainLogs {
  streams: Map<string, Located[]>; // per node, every entry
  heights: Map<number, Block[]>; // per height, one record per distinct hash
}

/** A producing interval [t, until) of one node, as OVERLAP evidence. */
type Interval = Required<Pick<Evidence, 'node' | 'at' | 't' | 'term' | 'until' | 'endedBy'>>;

/** The latest grant/renewal of one term at one node, and the entry that ended it, if any. */
interface Lease {
  expiresAt: number;
  grant: Located;
  ended?: Located;
}

export function checkActivity(logs: ActivityLog[]): CheckReport {
  const chains = groupByChain(logs);
  const report: CheckReport = {
    logs: logs.length,
    chains: chains.size,
    nodes: 0,
    blocks: 0,
    gaps: 0,
    maxHeight: 0,
    violations: [],
    byKind: Object.fromEntries(VIOLATION_KINDS.map((k) => [k, 0])) as Record<ViolationKind, number>,
  };
  for (const chain of [...chains.keys()].sort()) {
    const logsOfChain = chains.get(chain)!;
    const heights = [...logsOfChain.heights.keys()].sort((a, b) => a - b);
    report.nodes += logsOfChain.streams.size;
    for (const recs of logsOfChain.heights.values()) report.blocks += recs.length;
    if (heights.length > 0) {
      const [low, high] = [heights[0]!, heights[heights.length - 1]!];
      report.gaps += high - low + 1 - heights.length;
      report.maxHeight = Math.max(report.maxHeight, high);
    }
    report.violations.push(...checkChain(chain, logsOfChain, heights));
  }
  for (const v of report.violations) report.byKind[v.kind]++;
  return report;
}

// Entries of one chain are spread over one file per node: regroup them by chain, then by node.
function groupByChain(logs: ActivityLog[]): Map<string, ChainLogs> {
  const chains = new Map<string, ChainLogs>();
  for (const { file, entries, lines } of logs) {
    entries.forEach((e, i) => {
      let c = chains.get(e.chain);
      if (!c) chains.set(e.chain, (c = { streams: new Map(), heights: new Map() }));
      const located: Located = { e, file, line: lines?.[i] ?? i + 1 };
      let stream = c.streams.get(e.node);
      if (!stream) c.streams.set(e.node, (stream = []));
      stream.push(located);
      if (e.ev === 'block' || e.ev === 'adopt') addBlock(c.heights, located as Block);
    });
  }
  return chains;
}

function addBlock(heights: Map<number, Block[]>, block: Block): void {
  const recs = heights.get(block.e.number);
  if (!recs) heights.set(block.e.number, [block]);
  else if (!recs.some((r) => r.e.hash === block.e.hash)) recs.push(block);
}

function checkChain(chain: string, c: ChainLogs, heights: number[]): Violation[] {
  const intervals: Interval[] = [];
  const afterLease: Violation[] = [];
  const commitStarts: Located<CommitStart>[] = [];
  for (const [node, stream] of c.streams) {
    stream.sort((a, b) => a.e.t - b.e.t); // stable: same-ms entries keep their file order
    const replay = replayNode(chain, node, stream);
    intervals.push(...replay.intervals);
    afterLease.push(...replay.afterLease);
    for (const l of stream) if (l.e.ev === 'active-from' && l.e.mode === 'commit') commitStarts.push(l as Located<CommitStart>);
  }
  return [
    ...overlaps(chain, intervals),
    ...forks(chain, c.heights, heights),
    ...badParents(chain, c.heights, heights),
    ...termDecreases(chain, c.heights, heights),
    ...afterLease,
    ...stalePublishes(chain, c.heights, commitStarts),
  ];
}

type CommitStart = Extract<ActivityEntry, { ev: 'active-from' }>;

// Commit mode: a term's first active starts from the exact committed head h. A block of an older
// term above h was never committed (its commit could only have failed), so it must never have
// reached anyone: the old active may keep its lease for a while, but not publish.
function stalePublishes(chain: string, byHeight: Map<number, Block[]>, starts: Located<CommitStart>[]): Violation[] {
  const out: Violation[] = [];
  for (const start of starts) {
    const term = BigInt(start.e.term);
    for (const [h, recs] of byHeight) {
      if (h <= start.e.head) continue;
      for (const b of recs) {
        if (BigInt(b.e.term) >= term) continue;
        out.push({
          kind: 'STALE_PUBLISH',
          chain,
          message: `${describe(b)} was published above head ${start.e.head}, where term ${start.e.term} began (${where(start)}) in commit mode`,
          evidence: [blockEvidence(b), { node: start.e.node, at: where(start), t: start.e.t, term: start.e.term, height: start.e.head }],
        });
      }
    }
  }
  return out;
}

// Replays one node's log in time order: its producing intervals (for OVERLAP) and, at each block,
// whether it held an unexpired lease of the block's term (AFTER_LEASE).
function replayNode(chain: string, node: string, stream: Located[]) {
  const intervals: Interval[] = [];
  const afterLease: Violation[] = [];
  const leases = new Map<bigint, Lease>();
  const lastT = stream.length > 0 ? stream[stream.length - 1]!.e.t : 0;
  let open: { term: bigint; t: number; at: string; commit: boolean } | undefined;

  // A producing interval ends at the first of: its explicit end, its lease's expiry, end of log.
  const close = (by?: Located) => {
    if (!open) return;
    const lease = leases.get(open.term);
    let [until, endedBy] = by ? [by.e.t, where(by)] : [undefined, 'end of log'];
    if (lease && (until === undefined || lease.expiresAt < until)) {
      [until, endedBy] = [lease.expiresAt, `lease expiry of ${where(lease.grant)}`];
    }
    until ??= lastT;
    // A commit-mode interval publishes nothing its term did not commit first: overlapping it is
    // what commit mode allows (STALE_PUBLISH judges its blocks instead).
    if (until > open.t && !open.commit) intervals.push({ node, at: open.at, t: open.t, term: `${open.term}`, until, endedBy });
    open = undefined;
  };

  for (const located of stream) {
    const { e } = located;
    switch (e.ev) {
      case 'start': // a new process: whatever the old one held died with it
        close(located);
        leases.clear();
        break;
      case 'lease-granted':
      case 'lease-renewed':
        leases.set(BigInt(e.term), { expiresAt: e.expiresAt, grant: located });
        break;
      case 'lease-expired':
      case 'active-until': {
        const term = BigInt(e.term);
        const lease = leases.get(term);
        if (lease && !lease.ended) lease.ended = located;
        if (open?.term === term) close(located);
        break;
      }
      case 'active-from':
        close(located);
        open = { term: BigInt(e.term), t: e.t, at: where(located), commit: e.mode === 'commit' };
        break;
      case 'block': {
        const why = leaseProblem(leases.get(BigInt(e.term)), e);
        if (why) afterLease.push(afterLeaseViolation(chain, located as Block, why));
        break;
      }
      default:
        break; // rejected, reorg: no bearing on these invariants
    }
  }
  close();
  return { intervals, afterLease };
}

function leaseProblem(lease: Lease | undefined, block: BlockEntry): string | undefined {
  if (!lease) return `no lease of term ${block.term} granted before it`;
  if (lease.ended) return `its lease of term ${block.term} ended at ${where(lease.ended)}`;
  if (block.t >= lease.expiresAt) return `its lease expired at ${lease.expiresAt} (${where(lease.grant)})`;
  return undefined;
}

function afterLeaseViolation(chain: string, block: Block, why: string): Violation {
  return {
    kind: 'AFTER_LEASE',
    chain,
    message: `${describe(block)} made at ${block.e.t}, but ${why}`,
    evidence: [blockEvidence(block)],
  };
}

// Invariant 1: two nodes whose producing intervals intersect (touching ends are fine).
function overlaps(chain: string, intervals: Interval[]): Violation[] {
  const out: Violation[] = [];
  intervals.sort((a, b) => a.t - b.t || a.until - b.until);
  let running: Interval[] = [];
  for (const cur of intervals) {
    running = running.filter((r) => r.until > cur.t);
    for (const r of running) {
      if (r.node === cur.node) continue;
      const ms = Math.min(r.until, cur.until) - cur.t;
      out.push({
        kind: 'OVERLAP',
        chain,
        message: `${describeInterval(r)} and ${describeInterval(cur)} overlap for ${ms} ms`,
        evidence: [{ ...r }, { ...cur }],
      });
    }
    running.push(cur);
  }
  return out;
}

// Invariant 3: one height, one hash.
function forks(chain: string, byHeight: Map<number, Block[]>, heights: number[]): Violation[] {
  const out: Violation[] = [];
  for (const h of heights) {
    const recs = byHeight.get(h)!;
    if (recs.length < 2) continue;
    out.push({
      kind: 'FORK',
      chain,
      message: `height ${h} has ${recs.length} hashes: ${recs.map(describe).join('; ')}`,
      evidence: recs.map(blockEvidence),
    });
  }
  return out;
}

// Invariant 3: each block extends the recorded block below it (when that height is recorded).
function badParents(chain: string, byHeight: Map<number, Block[]>, heights: number[]): Violation[] {
  const out: Violation[] = [];
  for (const h of heights) {
    const below = byHeight.get(h - 1);
    if (!below) continue;
    for (const b of byHeight.get(h)!) {
      if (below.some((p) => p.e.hash === b.e.parent)) continue;
      out.push({
        kind: 'BAD_PARENT',
        chain,
        message: `${describe(b)} has parent ${short(b.e.parent)}, but height ${h - 1} is ${below.map(describe).join('; ')}`,
        evidence: [b, ...below].map(blockEvidence),
      });
    }
  }
  return out;
}

// Invariant 2: terms never decrease with height, also across unrecorded heights.
function termDecreases(chain: string, byHeight: Map<number, Block[]>, heights: number[]): Violation[] {
  const out: Violation[] = [];
  let prev: Block | undefined; // highest-term block at the previous recorded height
  for (const h of heights) {
    const recs = byHeight.get(h)!;
    for (const b of recs) {
      if (!prev || BigInt(b.e.term) >= BigInt(prev.e.term)) continue;
      out.push({
        kind: 'TERM_DECREASE',
        chain,
        message: `${describe(b)} has a lower term than ${describe(prev)}`,
        evidence: [b, prev].map(blockEvidence),
      });
    }
    prev = recs.reduce((m, b) => (BigInt(b.e.term) > BigInt(m.e.term) ? b : m));
  }
  return out;
}

function where({ file, line }: Located): string {
  return `${file}:${line}`;
}

function blockEvidence(b: Block): Evidence {
  const { e } = b;
  return { node: e.node, at: where(b), t: e.t, term: e.term, height: e.number, hash: e.hash, parent: e.parent };
}

function describe(b: Block): string {
  const { e } = b;
  return `block ${e.number} ${short(e.hash)} by ${e.node} term ${e.term} (${where(b)})`;
}

function describeInterval(i: Interval): string {
  return `${i.node} term ${i.term} producing [${i.t}, ${i.until}) (from ${i.at}, until ${i.endedBy})`;
}

function short(hash: string): string {
  return hash.length > 16 ? `${hash.slice(0, 16)}…` : hash;
}
