// The activity log of a simulated node: one JSON object per line, appended synchronously so that a
// node killed with SIGKILL loses nothing it wrote. The checker (checker.ts) reads only these lines.
//
// Times `t` and `expiresAt` are wall-clock milliseconds since the epoch; every node of a drill runs
// on the same machine, so their clocks agree. Terms are decimal strings (uint64); heights are
// numbers; hashes are lowercase hex without 0x.

export type ActiveUntilReason = 'lease-expired' | 'stopped' | 'handoff' | 'superseded' | 'crash' | 'fenced';

interface Base {
  t: number;
  chain: string;
  node: string;
}

export type ActivityEntry =
  | (Base & { ev: 'start'; version: string; genesis: string })
  | (Base & { ev: 'lease-granted' | 'lease-renewed'; term: string; ttlMs: number; expiresAt: number })
  | (Base & { ev: 'lease-expired'; term: string })
  // mode 'commit': blocks of this interval are committed to Baton before they leave the node.
  | (Base & { ev: 'active-from'; term: string; head: number; mode?: 'commit' })
  | (Base & { ev: 'active-until'; term: string; head: number; reason: ActiveUntilReason })
  | (Base & { ev: 'block'; term: string; number: number; hash: string; parent: string })
  // A committed block that never left its producer, taken from the committed head at start (commit mode).
  | (Base & { ev: 'adopt'; term: string; number: number; hash: string; parent: string; from: string })
  | (Base & { ev: 'rejected'; rpc: string; term?: string; code: string; reason: string })
  // A standby dropped its own blocks above `ancestor` to adopt a peer's branch with a higher term.
  | (Base & { ev: 'reorg'; ancestor: number; droppedHead: number; droppedHash: string });

export type ActivityEvent = ActivityEntry['ev'];
