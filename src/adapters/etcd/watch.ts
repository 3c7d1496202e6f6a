// A prefix watch that never waits forever: connecting and cancelling have deadlines (etcd3's
// create() and cancel() wait for etcd's answer, which a frozen member never sends), events stop the
// moment it is closed, and a watch that etcd ends for good (e.g. its revision was compacted) is
// re-created, with a 'resync' callback because changes may have been missed in between.
// Disconnects etcd3 heals by itself, resuming from the last seen revision.
import type { IKeyValue } from 'etcd3';
import type { EtcdClient, EtcdWatcher as Watcher } from './client.js';
import type { Logger } from '../telemetry/log.js';

export interface Subscription {
  close(): Promise<void>;
}

const RECREATE_DELAY_MS = 250;

export class PrefixWatch {
  private watcher: Watcher | undefined;
  private closed = false;

  constructor(
    private readonly client: EtcdClient,
    private readonly prefix: string,
    private readonly onKv: (type: 'put' | 'delete', kv: IKeyValue) => void,
    private readonly onResync: () => void,
    private readonly timeoutMs: number,
    private readonly log: Logger | undefined,
  ) {}

  /** Resolves once etcd confirmed the watch; rejects after the deadline. */
  async start(): Promise<void> {
    this.watcher = await this.connect();
  }

  private async connect(): Promise<Watcher> {
    const w = this.client.watch().prefix(this.prefix).watcher();
    w.on('put', (kv) => this.closed || this.onKv('put', kv));
    w.on('delete', (kv) => this.closed || this.onKv('delete', kv));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`watch on ${this.prefix} not confirmed within ${this.timeoutMs} ms`)), this.timeoutMs);
        w.once('connected', () => (clearTimeout(timer), resolve()));
        w.once('error', (err) => (clearTimeout(timer), reject(err)));
      });
    } catch (err) {
      void this.cancel(w);
      throw err;
    }
    w.on('error', (err) => this.recreate(w, err));
    return w;
  }

  private recreate(dead: Watcher, err: Error): void {
    if (this.closed || this.watcher !== dead) return;
    this.log?.warn({ prefix: this.prefix, err: err.message }, 'watch ended by etcd; re-creating');
    this.watcher = undefined;
    void this.cancel(dead);
    const attempt = (): void => {
      if (this.closed) return;
      this.connect().then(
        (w) => {
          if (this.closed) return void this.cancel(w);
          this.watcher = w;
          this.onResync();
        },
        () => setTimeout(attempt, RECREATE_DELAY_MS).unref(),
      );
    };
    setTimeout(attempt, RECREATE_DELAY_MS).unref();
  }

  private async cancel(w: Watcher): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.timeoutMs);
    });
    await Promise.race([w.cancel().catch(() => undefined), timeout]);
    clearTimeout(timer);
    w.removeAllListeners();
    w.on('error', () => undefined); // etcd3 may still emit on it; an unheard 'error' would throw
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await this.cancel(w);
  }
}
