// The drill's end checks, each independent of Baton's own view:
// - the invariant checker (sim/checker.ts) over every node's activity log;
// - a scan of etcd's whole history under the prefix (a watch from revision 1): per chain, every
//   new term replaced exactly the term before it (no lost update), came with its history entry in
//   the same revision and from the replica that held the chain's supervisor key at that revision
//   (fenced), and the recorded head never went back and was always written under the current term;
// - every operation the API accepted reached a final state.
import { Etcd3, type IKeyValue } from 'etcd3';
import { checkActivity, type CheckReport } from '../sim/checker.js';
import { readActivityLog } from '../devstack/sim.js';
import type { BatonApi } from '../devstack/baton.js';
import { waitFor } from '../devstack/process.js';

export interface HistoryViolation {
  readonly kind: 'LOST_UPDATE' | 'UNFENCED_WRITE' | 'HEAD_BACK' | 'HEAD_TERM' | 'LEADER_DELETED' | 'NO_HISTORY_ENTRY';
  readonly chain: string;
  readonly message: string;
}

export interface HistoryReport {
  readonly revisions: number;
  readonly terms: number;
  readonly heads: number;
  readonly violations: HistoryViolation[];
}

export function checkLogs(files: readonly string[]): CheckReport {
  return checkActivity(files.map((file) => ({ file, entries: readActivityLog(file) })));
}

interface Event {
  readonly type: 'put' | 'delete';
  readonly key: string;
  readonly value: string;
  readonly rev: bigint;
}

/** Every put and delete under `prefix` since revision 1, in revision order. */
export async function readEtcdHistory(endpoints: readonly string[], prefix = '/baton/', timeoutMs = 60_000): Promise<Event[]> {
  const client = new Etcd3({ hosts: [...endpoints], dialTimeout: 5000 });
  try {
    const head = await client.get('/').exec();
    const target = BigInt(head.header.revision);
    const events: Event[] = [];
    let last = 0n;
    const watcher = await client.watch().prefix(prefix).startRevision('1').create();
    const push = (type: Event['type']) => (kv: IKeyValue) => {
      const rev = BigInt(kv.mod_revision);
      if (rev > last) last = rev;
      events.push({ type, key: kv.key.toString(), value: kv.value.toString(), rev });
    };
    watcher.on('put', push('put'));
    watcher.on('delete', push('delete'));
    // Revisions outside the prefix (none in a drill's etcd) would never arrive: also stop once quiet.
    let quietSince = Date.now();
    let seen = 0;
    await waitFor(
      `etcd history up to revision ${target}`,
      () => {
        if (events.length !== seen) [seen, quietSince] = [events.length, Date.now()];
        return last >= target || Date.now() - quietSince > 3000 ? true : undefined;
      },
      timeoutMs,
      100,
    );
    await watcher.cancel();
    return events.sort((a, b) => (a.rev < b.rev ? -1 : a.rev > b.rev ? 1 : 0));
  } finally {
    client.close();
  }
}

/** A break-glass head rollback an override record authorised (rolledBackFrom/To), by `${chain} ${rev}`. */
interface Rollback {
  readonly from: { number: number; hash: string };
  readonly to: { number: number; hash: string };
}

function authorisedRollbacks(events: readonly Event[], prefix: string): Map<string, Rollback> {
  const out = new Map<string, Rollback>();
  for (const e of events) {
    const [root, chain, kind] = e.key.slice(prefix.length).split('/');
    if (root !== 'chains' || !chain || kind !== 'override' || e.type !== 'put') continue;
    try {
      const v = JSON.parse(e.value) as { rolledBackFrom?: Rollback['from']; rolledBackTo?: Rollback['to'] };
      if (v.rolledBackFrom && v.rolledBackTo) out.set(`${chain} ${e.rev}`, { from: v.rolledBackFrom, to: v.rolledBackTo });
    } catch {
      // not ours to judge
    }
  }
  return out;
}

export function checkEtcdHistory(events: readonly Event[], prefix = '/baton/'): HistoryReport {
  const violations: HistoryViolation[] = [];
  // A decrease is accepted only when written by the txn of an override record that names exactly
  // it (the recorded head it replaced and the one it set): an operator authorised that rollback.
  const rollbacks = authorisedRollbacks(events, prefix);
  const supervisors = new Map<string, string>(); // chain -> replica holding its supervisor key
  const leaders = new Map<string, bigint>(); // chain -> current term
  const heads = new Map<string, { number: number; hash: string; rev: bigint }>();
  const historyAt = new Map<string, bigint>(); // `${chain} ${rev}` of each history put
  const leaderAt: { chain: string; rev: bigint }[] = [];
  let terms = 0;
  let headWrites = 0;
  const revs = new Set<bigint>();
  for (const e of events) {
    revs.add(e.rev);
    const rel = e.key.slice(prefix.length);
    const parts = rel.split('/');
    if (parts[0] === 'supervisors' && parts[1]) {
      if (e.type === 'put') supervisors.set(parts[1], e.value);
      else supervisors.delete(parts[1]);
      continue;
    }
    if (parts[0] !== 'chains' || !parts[1]) continue;
    const chain = parts[1];
    const kind = parts[2];
    if (kind === 'leader') {
      if (e.type === 'delete') {
        violations.push({ kind: 'LEADER_DELETED', chain, message: `leader key deleted at revision ${e.rev}` });
        leaders.delete(chain);
        continue;
      }
      terms++;
      leaders.set(chain, e.rev);
      leaderAt.push({ chain, rev: e.rev });
    } else if (kind === 'history' && e.type === 'put' && parts[3]) {
      const previous = BigInt(parts[3]);
      const current = leaders.get(chain) ?? 0n;
      // Events of one revision arrive in txn order (leader put first): the term it replaced is the
      // one before this revision.
      const replaced = current === e.rev ? (previousTermOf(leaderAt, chain, e.rev) ?? 0n) : current;
      if (previous !== replaced) {
        violations.push({ kind: 'LOST_UPDATE', chain, message: `term ${e.rev} was written over term ${previous}, but the current term was ${replaced}` });
      }
      historyAt.set(`${chain} ${e.rev}`, e.rev);
      let entry: { supervisor?: string } = {};
      try {
        entry = JSON.parse(e.value) as { supervisor?: string };
      } catch {
        // not ours to judge
      }
      const holder = supervisors.get(chain);
      if (entry.supervisor !== undefined && entry.supervisor !== holder) {
        violations.push({ kind: 'UNFENCED_WRITE', chain, message: `term ${e.rev} written by ${entry.supervisor} while the supervisor key was held by ${holder ?? 'nobody'}` });
      }
    } else if (kind === 'head' && e.type === 'put') {
      headWrites++;
      let head: { number?: number; hash?: string; term?: string } = {};
      try {
        head = JSON.parse(e.value) as { number?: number; hash?: string; term?: string };
      } catch {
        continue;
      }
      const prev = heads.get(chain);
      const number = head.number ?? 0;
      const hash = head.hash ?? '';
      const rb = rollbacks.get(`${chain} ${e.rev}`);
      const authorised = rb !== undefined && prev !== undefined && rb.from.number === prev.number && rb.from.hash === prev.hash && rb.to.number === number && rb.to.hash === hash;
      if (prev && number < prev.number && !authorised) {
        violations.push({ kind: 'HEAD_BACK', chain, message: `head went from ${prev.number} (revision ${prev.rev}) back to ${number} (revision ${e.rev})` });
      }
      heads.set(chain, { number, hash, rev: e.rev });
      const term = leaders.get(chain);
      // A rolled-back head keeps the term it was recorded with (its txn cannot write its own revision).
      if (!authorised && head.term !== undefined && term !== undefined && BigInt(head.term) !== term) {
        violations.push({ kind: 'HEAD_TERM', chain, message: `head ${number} recorded under term ${head.term} at revision ${e.rev}, while the term was ${term}` });
      }
    }
  }
  for (const l of leaderAt) {
    if (!historyAt.has(`${l.chain} ${l.rev}`)) {
      violations.push({ kind: 'NO_HISTORY_ENTRY', chain: l.chain, message: `term ${l.rev} has no history entry written with it` });
    }
  }
  return { revisions: revs.size, terms, heads: headWrites, violations };
}

function previousTermOf(leaderAt: readonly { chain: string; rev: bigint }[], chain: string, rev: bigint): bigint | undefined {
  let prev: bigint | undefined;
  for (const l of leaderAt) {
    if (l.chain !== chain) continue;
    if (l.rev >= rev) break;
    prev = l.rev;
  }
  return prev;
}

/** Commands Baton sends to nodes (CommitUnsafeHead is the node's own call to Baton). */
const BATON_RPCS = new Set(['StartSequencer', 'StopSequencer', 'RenewLease', 'PrepareHandoff', 'CompleteHandoff']);

/**
 * Baton's commands that nodes refused as out of order: STALE_TERM (a command older than one the
 * node already got) and ALREADY_ACTIVE (a start sent twice). The refusal is the node doing its
 * job; the count shows how often Baton's own command order broke. A woken paused replica makes
 * some legitimately; with one supervisor acting at a time and no replica faults, there are none.
 */
export function nodeRefusals(files: readonly string[], ownStale: ReadonlySet<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const file of files) {
    for (const e of readActivityLog(file)) {
      if (e.ev !== 'rejected' || !BATON_RPCS.has(e.rpc) || (e.code !== 'STALE_TERM' && e.code !== 'ALREADY_ACTIVE')) continue;
      if (ownStale.has(`${e.chain}/${e.node} ${e.rpc} ${e.term}`)) continue;
      out[e.code] = (out[e.code] ?? 0) + 1;
    }
  }
  return out;
}

export interface OperationsReport {
  readonly accepted: number;
  readonly final: number;
  readonly lost: { id: string; state: string }[];
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** Each accepted operation, waited on (bounded) until final; those that never get there are lost. */
export async function checkOperations(api: () => BatonApi, ops: readonly { id: string }[], waitMs = 30_000): Promise<OperationsReport> {
  const lost: { id: string; state: string }[] = [];
  let final = 0;
  for (const op of ops) {
    let state = 'unknown';
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      try {
        const res = await api().request<{ state?: string }>('GET', `/v1/operations/${op.id}?wait=3000`);
        state = res.body?.state ?? `HTTP ${res.status}`;
        if (FINAL.has(state)) break;
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    if (FINAL.has(state)) final++;
    else lost.push({ id: op.id, state });
  }
  return { accepted: ops.length, final, lost };
}
