// Shared helpers for tests that run real `baton sim` processes.
import type { ServiceError } from '@grpc/grpc-js';
import { isGrpcError } from '../../src/adapters/node/grpc.js';
import { waitFor } from '../../src/devstack/process.js';
import { readActivityLog, startSim, type SimNodeHandle, type SimProcess, type StartSimOptions } from '../../src/devstack/sim.js';
import type { ActivityEntry, ActivityEvent } from '../../src/sim/activity.js';

export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Starts a sim process that is stopped (by PID) when the test ends. */
export async function startSimFor(t: Teardown, opts: StartSimOptions): Promise<SimProcess> {
  const sim = await startSim(opts);
  t.teardown(() => sim.stop(2000));
  return sim;
}

// Distributes over the union: 'lease-granted' and 'lease-renewed' share one member.
export type EntryOf<E extends ActivityEvent> = ActivityEntry extends infer A
  ? A extends ActivityEntry
    ? E extends A['ev']
      ? A & { ev: E }
      : never
    : never
  : never;

export function entries<E extends ActivityEvent>(n: SimNodeHandle, ev: E): EntryOf<E>[] {
  return readActivityLog(n.logFile).filter((e): e is EntryOf<E> => e.ev === ev);
}

export async function headOf(n: SimNodeHandle): Promise<number> {
  return Number((await n.sim.inspect()).headNumber);
}

export async function waitForHead(n: SimNodeHandle, min: number, timeoutMs = 10_000): Promise<number> {
  return waitFor(
    `${n.chain}/${n.node} head >= ${min}`,
    async () => {
      const h = await headOf(n);
      return h >= min ? h : undefined;
    },
    timeoutMs,
    20,
  );
}

export async function waitForEntry<E extends ActivityEvent>(
  n: SimNodeHandle,
  ev: E,
  match: (e: EntryOf<E>) => boolean = () => true,
  timeoutMs = 10_000,
): Promise<EntryOf<E>> {
  return waitFor(`${n.chain}/${n.node} logs ${ev}`, () => entries(n, ev).find(match), timeoutMs, 10);
}

/** The gRPC error a call fails with; fails the test (throws) when the call succeeds. */
export async function rejection(call: Promise<unknown>): Promise<ServiceError> {
  try {
    await call;
  } catch (err) {
    if (isGrpcError(err)) return err;
    throw err;
  }
  throw new Error('expected the call to fail, it succeeded');
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Fails when any height carries two different hashes across the given logs. */
export function forks(nodes: SimNodeHandle[]): string[] {
  const byHeight = new Map<number, Set<string>>();
  for (const n of nodes) {
    for (const b of entries(n, 'block')) {
      const s = byHeight.get(b.number) ?? new Set<string>();
      s.add(b.hash);
      byHeight.set(b.number, s);
    }
  }
  return [...byHeight].filter(([, s]) => s.size > 1).map(([h, s]) => `${h}: ${[...s].join(' ')}`);
}

/** The promise's value, or `fallback` if it takes longer than `ms` (the timer does not linger). */
export async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
