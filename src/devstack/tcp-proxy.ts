// An in-process TCP proxy for drills: it sits between Baton and one node's admin endpoint (peers
// keep talking to the node directly), so a node can be cut off from Baton alone. Modes:
//   pass       bytes flow both ways
//   blackhole  connections are accepted and held, every byte is dropped (a silent partition:
//              callers see their deadlines fire, not a refusal)
//   delay      bytes flow, each chunk held back `delayMs` in both directions
// Changing the mode cuts every open connection, so a call already in flight is not let through
// after a blackhole began.
import { createServer, connect, type Server, type Socket } from 'node:net';

export type ProxyMode = { kind: 'pass' } | { kind: 'blackhole' } | { kind: 'delay'; delayMs: number };

export class TcpProxy {
  private mode: ProxyMode = { kind: 'pass' };
  private readonly sockets = new Set<Socket>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    /** host:port the proxy listens on (what Baton is told). */
    readonly address: string,
    /** host:port of the node behind it; changes when the node restarts elsewhere. */
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

  setMode(mode: ProxyMode): void {
    this.mode = mode;
    this.cutAll();
  }

  /** Points the proxy at a new node address (a restarted node); open connections are cut. */
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
    const mode = this.mode;
    if (mode.kind === 'blackhole') {
      client.on('data', () => undefined); // read and drop: the peer's writes never block
      return;
    }
    const i = this.target.lastIndexOf(':');
    const upstream = connect(Number(this.target.slice(i + 1)), this.target.slice(0, i));
    this.track(upstream);
    const closeBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    if (mode.kind === 'pass') {
      client.pipe(upstream);
      upstream.pipe(client);
      return;
    }
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk: Buffer) => {
        setTimeout(() => {
          if (!to.destroyed) to.write(chunk);
        }, mode.delayMs);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  }
}
