// What the scale benchmark reads from outside the processes it measures: CPU time and RSS from
// /proc (Linux), and counters from a Prometheus text exposition (Baton's and etcd's /metrics).
// The parsing is pure so each figure has one definition.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux build we run on). */
const USER_HZ = 100;

export interface ProcSample {
  /** utime + stime, in seconds. */
  readonly cpuS: number;
  /** VmRSS in MiB (0 once the process is gone). */
  readonly rssMb: number;
}

/** utime + stime (fields 14 and 15) of a /proc/<pid>/stat line, in seconds. */
export function parseStatCpuS(stat: string): number {
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field n is rest[n - 3].
  return (Number(rest[11]) + Number(rest[12])) / USER_HZ;
}

/** VmRSS of a /proc/<pid>/status text, in MiB. */
export function parseStatusRssMb(status: string): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  return m ? Number(m[1]) / 1024 : 0;
}

export function sampleProc(pid: number): ProcSample | undefined {
  try {
    return { cpuS: parseStatCpuS(readFileSync(`/proc/${pid}/stat`, 'utf8')), rssMb: parseStatusRssMb(readFileSync(`/proc/${pid}/status`, 'utf8')) };
  } catch {
    return undefined;
  }
}

/**
 * CPU % and peak RSS of a set of processes over a window: `start()` at its beginning, `sample()`
 * now and then (RSS is a level, so its peak needs samples), `finish()` at its end.
 */
export class ProcWatch {
  private first = new Map<number, { cpuS: number; atMs: number }>();
  private peakRss = new Map<number, number>();
  private last = new Map<number, { cpuS: number; atMs: number }>();

  constructor(private readonly pids: readonly number[]) {}

  start(): void {
    for (const pid of this.pids) {
      const s = sampleProc(pid);
      if (s) this.first.set(pid, { cpuS: s.cpuS, atMs: Date.now() });
    }
    this.sample();
  }

  sample(): void {
    for (const pid of this.pids) {
      const s = sampleProc(pid);
      if (!s) continue;
      this.peakRss.set(pid, Math.max(this.peakRss.get(pid) ?? 0, s.rssMb));
      this.last.set(pid, { cpuS: s.cpuS, atMs: Date.now() });
    }
  }

  /** Per pid, in the order given: CPU % of one core over the window, and peak RSS (MiB). */
  finish(): { cpuPct: number[]; rssMb: number[] } {
    this.sample();
    const cpuPct = this.pids.map((pid) => {
      const a = this.first.get(pid);
      const b = this.last.get(pid);
      if (!a || !b || b.atMs <= a.atMs) return 0;
      return round1((100 * (b.cpuS - a.cpuS)) / ((b.atMs - a.atMs) / 1000));
    });
    return { cpuPct, rssMb: this.pids.map((pid) => round1(this.peakRss.get(pid) ?? 0)) };
  }
}

/** One sample of a Prometheus text exposition: name, labels, value. */
export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of every sample named `name` whose labels include `where`. */
export function sumOf(samples: readonly PromSample[], name: string, where: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

/** etcd unary requests handled, by gRPC method (streams such as Watch count only when they end). */
export function etcdUnaryByMethod(samples: readonly PromSample[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== 'grpc_server_handled_total' || s.labels.grpc_type !== 'unary') continue;
    const m = s.labels.grpc_method ?? '?';
    out.set(m, (out.get(m) ?? 0) + s.value);
  }
  return out;
}

export async function scrape(url: string, deadlineMs = 10_000): Promise<PromSample[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(deadlineMs) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return parsePrometheus(await res.text());
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
