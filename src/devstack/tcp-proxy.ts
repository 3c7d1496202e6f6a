// An in-process TCP proxy for drills: it sits between Baton and one node's admin endpoint (peers
// keep talking to the node directly), or between one replica and one etcd member, so one party
// can be cut off from another alone. Modes:
//   pass       bytes flow both ways
//   blackhole  connections are accepted and held, every byte is dropped (a silent partition:
//              callers see their deadlines fire, not a refusal)
//   delay      bytes flow, each chunk held back `delayMs` in both directions, in order
// `setMode` cuts every open connection, so a call already in flight is not let through after a
// blackhole began. `holdBack` changes the delay of the open connections too, without cutting
// them: a request already written goes out late (a delayed packet), not never.
import { createServer, connect, type Server, type Socket } from 'node:net';

export type ProxyMode = { kind: 'pass' } | { kind: 'blackhole' } | { kind: 'delay'; delayMs: number };

/** One direction of one connection: chunks leave in arrival order, each no earlier than its due time. */
class Lane {
  private readonly queue: { due: number; chunk: Buffer }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly to: Socket,
    private readonly delayMs: () => number,
  ) {}

  push(chunk: Buffer): void {
    const due = Date.now() + this.delayMs();
    if (this.queue.length === 0 && due <= Date.now()) {
      if (!this.to.destroyed) this.to.write(chunk);
      return;
    }
    this.queue.push({ due, chunk });
    this.drain();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.queue.length = 0;
  }

  private drain(): void {
    if (this.timer) return;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const { chunk } = this.queue.shift()!;
      if (!this.to.destroyed) this.to.write(chunk);
    }
    if (this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, this.queue[0]!.due - now);
  }
}

export class TcpProxy {
  private mode: ProxyMode = { kind: 'pass' };
  private readonly sockets = new Set<Socket>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    /** host:port the proxy listens on (what Baton is told). */
    readonly address: string,
    /** host:port of the party behind it; changes when a node restarts elsewhere. */
    public target: string,
  ) {}

  static async start(target: string, host = '127.0.0.1'): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined;
    const server = createServer((client) => proxy?.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    proxy = new TcpProxy(server, `${host}:${port}`, target);
    return proxy;
  }

  get currentMode(): ProxyMode {
    return this.mode;
  }

  /** Sets the mode for new connections and cuts every open one. */
  setMode(mode: ProxyMode): void {
    this.mode = mode;
    this.cutAll();
  }

  /**
   * Delays every chunk by `delayMs` from now on, on the open connections as well as new ones,
   * without cutting anything (0: pass). Chunks already held keep their order.
   */
  holdBack(delayMs: number): void {
    this.mode = delayMs > 0 ? { kind: 'delay', delayMs } : { kind: 'pass' };
  }

  /** Points the proxy at a new address (a restarted node); open connections are cut. */
  retarget(target: string): void {
    this.target = target;
    this.cutAll();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private cutAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private track(s: Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy());
  }

  private accept(client: Socket): void {
    if (this.closed) {
      client.destroy();
      return;
    }
    this.track(client);
    if (this.mode.kind === 'blackhole') {
      client.on('data', () => undefined); // read and drop: the peer's writes never block
      return;
    }
    const i = this.target.lastIndexOf(':');
    const upstream = connect(Number(this.target.slice(i + 1)), this.target.slice(0, i));
    this.track(upstream);
    // The delay is read per chunk, so `holdBack` reaches connections opened before it.
    const delay = (): number => (this.mode.kind === 'delay' ? this.mode.delayMs : 0);
    const up = new Lane(upstream, delay);
    const down = new Lane(client, delay);
    const closeBoth = (): void => {
      up.stop();
      down.stop();
      client.destroy();
      upstream.destroy();
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('data', (chunk: Buffer) => up.push(chunk));
    upstream.on('data', (chunk: Buffer) => down.push(chunk));
  }
}
