// The client-side handles MemoryEtcd hands out, shaped like etcd3's: a lease kept alive by hand,
// a watch builder and a watcher (an EventEmitter with 'connected', 'put', 'delete', 'error').
import { EventEmitter } from 'node:events';
import { EtcdLeaseInvalidError } from 'etcd3';
import type { EtcdLease, EtcdWatchBuilder, EtcdWatcher } from '../etcd/client.js';
import type { Change, MemoryEtcd } from './memory-etcd.js';

export class MemoryLease extends EventEmitter implements EtcdLease {
  private id: bigint | undefined;
  private gone = false;

  constructor(
    private readonly etcd: MemoryEtcd,
    private readonly ttlSeconds: number,
  ) {
    super();
  }

  async grant(): Promise<string> {
    this.id ??= this.etcd.grantLease(this.ttlSeconds);
    return this.id.toString();
  }

  async keepaliveOnce(): Promise<{ TTL: string }> {
    const id = this.id ?? BigInt(await this.grant());
    const ttl = this.gone ? 0 : this.etcd.keepAlive(id);
    if (ttl === 0) {
      const err = new EtcdLeaseInvalidError(id.toString());
      this.emit('lost', err);
      throw err;
    }
    return { TTL: String(ttl) };
  }

  async revoke(): Promise<void> {
    this.gone = true;
    if (this.id !== undefined) {
      try {
        this.etcd.revokeLease(this.id);
      } catch {
        // already expired: nothing left to revoke
      }
    }
  }

  /** The lease lives on in etcd until its TTL runs out; nothing to do here (no keepalive loop). */
  release(): void {}
}

export class MemoryWatchBuilder implements EtcdWatchBuilder {
  private from = '';
  private end: string | undefined;
  private start = 0;

  constructor(private readonly etcd: MemoryEtcd) {}

  prefix(value: string): EtcdWatchBuilder {
    this.from = Buffer.from(value).toString('latin1');
    this.end = prefixEndLatin1(this.from);
    return this;
  }

  key(value: string): EtcdWatchBuilder {
    this.from = Buffer.from(value).toString('latin1');
    this.end = undefined;
    return this;
  }

  startRevision(revision: string): EtcdWatchBuilder {
    this.start = Number(revision);
    return this;
  }

  watcher(): EtcdWatcher {
    const w = new MemoryWatcher();
    this.etcd.addWatch(this.from, this.end, this.start, w);
    return w as unknown as EtcdWatcher;
  }
}

export class MemoryWatcher extends EventEmitter {
  cancelled = false;
  onCancel: (() => void) | undefined;

  connected(revision: number): void {
    this.emit('connected', { header: { revision: String(revision) }, created: true });
  }

  deliver(c: Change): void {
    if (!this.cancelled) this.emit(c.type, c.kv, c.prev);
  }

  fail(err: Error): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('error', err);
  }

  async cancel(): Promise<void> {
    this.cancelled = true;
    this.onCancel?.();
  }
}

function prefixEndLatin1(prefix: string): string {
  const bytes = Buffer.from(prefix, 'latin1');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) return Buffer.concat([bytes.subarray(0, i), Buffer.from([bytes[i]! + 1])]).toString('latin1');
  }
  return '';
}

