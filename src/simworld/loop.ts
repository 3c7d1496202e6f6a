// Virtual time. Every timer and every message of the world is an event in one queue, ordered by
// (time, sequence); run() takes one event at a time, lets every promise continuation it caused run
// to the end (one macrotask barrier), then calls the step hook (the invariant checks). No real time
// passes: a simulated hour is as fast as its events.
import type { Clock, Scheduler } from '../core/ports.js';

interface Event {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Simulated wall time starts here (any fixed instant; records carry it). */
export const WALL_EPOCH_MS = 1_750_000_000_000;

export class SimLoop implements Clock {
  private heap: Event[] = [];
  private seq = 0;
  private nowValue = 0;
  steps = 0;

  now(): number {
    return this.nowValue;
  }

  monoMs(): number {
    return this.nowValue;
  }

  wallMs(): number {
    return WALL_EPOCH_MS + this.nowValue;
  }

  /** Runs `fn` `ms` from now (0: after the current event); returns a cancel function. */
  at(ms: number, fn: () => void): () => void {
    const e: Event = { at: this.nowValue + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.push(e);
    return () => {
      e.cancelled = true;
    };
  }

  scheduler(): Scheduler {
    return { after: (ms, fn) => this.at(ms, fn) };
  }

  pending(): number {
    return this.heap.length;
  }

  /**
   * Runs events until `untilMs` of virtual time, `maxSteps` events, or `stop()` says so.
   * `onStep` runs after every event, once all its continuations settled.
   */
  async run(untilMs: number, maxSteps: number, onStep: () => boolean): Promise<void> {
    const barrier = () => new Promise<void>((resolve) => setImmediate(resolve));
    while (this.heap.length > 0 && this.steps < maxSteps) {
      const e = this.heap[0]!;
      if (e.at > untilMs) break;
      this.pop();
      if (e.cancelled) continue;
      this.nowValue = e.at;
      this.steps++;
      e.fn();
      await barrier();
      if (!onStep()) return;
    }
    if (this.heap.length === 0 || (this.heap[0]!.at > untilMs && this.steps < maxSteps)) this.nowValue = Math.max(this.nowValue, untilMs);
  }

  // ---- binary heap on (at, seq) ----

  private less(a: Event, b: Event): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

/** A process of the world (replica or node): while paused, everything addressed to it waits. */
export class Proc {
  pausedUntil = 0;
  alive = true;
  /** Bumped by a crash: timers set before it never fire after a restart. */
  epoch = 0;

  constructor(
    readonly name: string,
    private readonly loop: SimLoop,
  ) {}

  now(): number {
    return this.loop.now();
  }

  /** Runs `fn` now, or when the process wakes; dropped if the process is dead. */
  deliver(fn: () => void): void {
    if (!this.alive) return;
    const now = this.loop.now();
    if (now < this.pausedUntil) {
      this.loop.at(this.pausedUntil - now, () => this.deliver(fn));
      return;
    }
    fn();
  }

  /** This process's own timers: they too wait while it is paused. */
  scheduler(): Scheduler {
    return {
      after: (ms, fn) => {
        let cancelled = false;
        const epoch = this.epoch;
        const cancel = this.loop.at(ms, () => this.deliver(() => cancelled || epoch !== this.epoch || fn()));
        return () => {
          cancelled = true;
          cancel();
        };
      },
    };
  }
}
