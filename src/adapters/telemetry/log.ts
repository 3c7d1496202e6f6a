// One pino root logger; components take a child with `component` set.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createRootLogger(level: string = 'info'): Logger {
  return pino({ level, base: { pid: process.pid } });
}
