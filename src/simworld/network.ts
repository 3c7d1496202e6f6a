// The simulated network between the world's processes: every message has a latency drawn from the
// seed, may be lost, and is dropped while its two ends are partitioned. A call is a request and a
// reply; the caller gives up at its deadline (NODE_UNREACHABLE or the etcd client's error), exactly
// as a real RPC does, and a reply that comes later is ignored. A server that enforces deadlines
// (the nodes do, gRPC propagates them) drops a request that reaches it after its deadline.
import type { Proc, SimLoop } from './loop.js';
import type { Rng } from './random.js';

export interface NetworkConditions {
  minLatencyMs: number;
  maxLatencyMs: number;
  /** Probability that one message is lost. */
  loss: number;
}

export class Network {
  /** "a|b" (sorted) → virtual time the partition heals. */
  private readonly cuts = new Map<string, number>();
  /** Extra loss and latency while a degradation lasts. */
  private degradedUntil = 0;
  messages = 0;

  constructor(
    private readonly loop: SimLoop,
    private readonly rng: Rng,
    readonly conditions: NetworkConditions,
  ) {}

  partition(a: string, b: string, forMs: number): void {
    this.cuts.set(pair(a, b), this.loop.now() + forMs);
  }

  degrade(forMs: number): void {
    this.degradedUntil = this.loop.now() + forMs;
  }

  healAll(): void {
    this.cuts.clear();
    this.degradedUntil = 0;
  }

  cut(a: string, b: string): boolean {
    const until = this.cuts.get(pair(a, b));
    if (until === undefined) return false;
    if (until <= this.loop.now()) {
      this.cuts.delete(pair(a, b));
      return false;
    }
    return true;
  }

  /** One message; `deliver` runs at the receiver (waiting there while it is paused). */
  send(from: Proc, to: Proc, deliver: () => void): void {
    this.messages++;
    const degraded = this.loop.now() < this.degradedUntil;
    const c = this.conditions;
    if (this.cut(from.name, to.name) || this.rng.chance(degraded ? Math.max(0.3, c.loss) : c.loss)) return;
    const latency = this.rng.int(c.minLatencyMs, degraded ? c.maxLatencyMs * 4 : c.maxLatencyMs);
    this.loop.at(latency, () => {
      if (this.cut(from.name, to.name)) return;
      to.deliver(deliver);
    });
  }

  /**
   * A request from `from` to `to` answered by `handle` at the receiver. Rejects with `timeout()` at
   * the deadline when no reply came back. With `enforceDeadline`, the receiver drops a request that
   * reaches it (or wakes up with it) after the deadline.
   */
  call<T>(from: Proc, to: Proc, deadlineMs: number, handle: () => T, timeout: () => Error, enforceDeadline: boolean): Promise<T> {
    return this.callAsync(from, to, deadlineMs, handle, timeout, enforceDeadline);
  }

  /**
   * As `call`, for a receiver that answers later (a Baton replica serving a head commit through its
   * own etcd link): the reply leaves the receiver once `handle` settles.
   */
  callAsync<T>(from: Proc, to: Proc, deadlineMs: number, handle: () => T | Promise<T>, timeout: () => Error, enforceDeadline: boolean): Promise<T> {
    const deadline = this.loop.now() + deadlineMs;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        cancelTimeout();
        fn();
      };
      const cancelTimeout = this.loop.at(deadlineMs, () => from.deliver(() => settle(() => reject(timeout()))));
      this.send(from, to, () => {
        if (enforceDeadline && this.loop.now() > deadline) return;
        const reply = (result: { ok: true; value: T } | { ok: false; err: unknown }) =>
          this.send(to, from, () => {
            if (this.loop.now() > deadline) return;
            settle(() => (result.ok ? resolve(result.value) : reject(result.err)));
          });
        let value: T | Promise<T>;
        try {
          value = handle();
        } catch (err) {
          return reply({ ok: false, err });
        }
        if (!(value instanceof Promise)) return reply({ ok: true, value });
        // An answer the receiver works out later leaves when it is ready, if the receiver still runs.
        value.then(
          (v) => to.deliver(() => reply({ ok: true, value: v })),
          (err: unknown) => to.deliver(() => reply({ ok: false, err })),
        );
      });
    });
  }
}

function pair(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}
