// Appends activity entries (activity.ts) to a node's JSONL file. Every entry is one `fs.writeSync`
// of one whole line straight to the file descriptor: no buffer in this process, so a SIGKILL loses
// nothing that was appended, and the checker never sees half a line from a live writer.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ActivityEntry } from './activity.js';

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** `<logDir>/<chain>/<node>.jsonl`; the names must be safe path segments. */
export function activityLogPath(logDir: string, chain: string, node: string): string {
  for (const name of [chain, node]) {
    if (!SAFE_NAME.test(name)) throw new Error(`"${name}" cannot name an activity log (use [A-Za-z0-9._-])`);
  }
  return join(logDir, chain, `${node}.jsonl`);
}

export class ActivityLog {
  private fd: number | undefined;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
  }

  get open(): boolean {
    return this.fd !== undefined;
  }

  /** Writes one line synchronously; a closed log (stopped or crashed node) writes nothing. */
  append(entry: ActivityEntry): void {
    if (this.fd === undefined) return;
    const line = Buffer.from(JSON.stringify(entry) + '\n');
    let off = 0;
    while (off < line.length) off += writeSync(this.fd, line, off);
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Parses a JSONL activity log; a torn last line (the writer died mid-line) is ignored. */
export function parseActivityLog(text: string): ActivityEntry[] {
  const lines = text.split('\n');
  const out: ActivityEntry[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as ActivityEntry);
    } catch (err) {
      if (i !== lines.length - 1) throw err;
    }
  });
  return out;
}
