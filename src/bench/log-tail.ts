// Reads only what was appended to an activity log since the last read, so polling the logs of a
// running stack every few milliseconds costs next to nothing (re-reading whole files would steal
// CPU from the processes being measured on a small machine).
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { ActivityEntry } from '../sim/activity.js';

export class LogTail {
  private offset: number;
  private partial = '';

  /** Starts at the current end of `file` (0 when it does not exist yet). */
  constructor(readonly file: string) {
    this.offset = sizeOf(file);
  }

  /** The whole lines appended since the last call. */
  read(): ActivityEntry[] {
    const size = sizeOf(this.file);
    if (size <= this.offset) return [];
    const buf = Buffer.alloc(size - this.offset);
    const fd = openSync(this.file, 'r');
    try {
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, this.offset + got);
        if (n === 0) break;
        got += n;
      }
      this.offset += got;
      const text = this.partial + buf.subarray(0, got).toString('utf8');
      const lines = text.split('\n');
      this.partial = lines.pop() ?? ''; // a line still being written stays for the next read
      return lines.filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as ActivityEntry);
    } finally {
      closeSync(fd);
    }
  }
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}
