// The real clock and timers behind the core's Clock and Scheduler ports.
import { performance } from 'node:perf_hooks';
import type { Clock, Scheduler } from '../core/ports.js';

export const systemClock: Clock = {
  monoMs: () => performance.now(),
  wallMs: () => Date.now(),
};

export const systemScheduler: Scheduler = {
  after(ms, fn) {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref();
    return () => clearTimeout(timer);
  },
};
