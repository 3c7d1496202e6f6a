// The drills' TCP proxy against a real echo server on loopback: pass, blackhole, delay, and a
// delay applied to connections already open (holdBack), which keeps their order.
import { createServer, connect, type Server, type Socket } from 'node:net';
import t from 'tap';
import type { Test } from 'tap';
import { TcpProxy } from '../../src/devstack/tcp-proxy.js';

async function echoServer(t: Test): Promise<{ address: string; received: () => string }> {
  let received = '';
  const open = new Set<Socket>();
  const server: Server = createServer((s) => {
    open.add(s);
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => {
      received += c.toString();
      s.write(c);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  t.teardown(() => new Promise<void>((r) => {
    server.close(() => r());
    for (const s of open) s.destroy();
  }));
  return { address: `127.0.0.1:${port}`, received: () => received };
}

/** A client through the proxy that collects what comes back, with the time each piece arrived. */
async function client(t: Test, proxy: TcpProxy): Promise<{ socket: Socket; got: { at: number; text: string }[] }> {
  const i = proxy.address.lastIndexOf(':');
  const socket = connect(Number(proxy.address.slice(i + 1)), '127.0.0.1');
  await new Promise<void>((r) => socket.once('connect', () => r()));
  const got: { at: number; text: string }[] = [];
  socket.on('data', (c: Buffer) => got.push({ at: Date.now(), text: c.toString() }));
  socket.on('error', () => undefined);
  t.teardown(() => socket.destroy());
  return { socket, got };
}

async function until<T>(what: string, f: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const text = (got: { text: string }[]) => got.map((g) => g.text).join('');

t.test('pass: bytes flow both ways', async (t) => {
  const echo = await echoServer(t);
  const proxy = await TcpProxy.start(echo.address);
  t.teardown(() => proxy.close());
  const c = await client(t, proxy);
  c.socket.write('hello');
  await until('the echo', () => (text(c.got) === 'hello' ? true : undefined));
  t.equal(echo.received(), 'hello');
});

t.test('blackhole: the connection is held and nothing reaches the target; pass cuts it', async (t) => {
  const echo = await echoServer(t);
  const proxy = await TcpProxy.start(echo.address);
  t.teardown(() => proxy.close());
  proxy.setMode({ kind: 'blackhole' });
  const c = await client(t, proxy);
  c.socket.write('lost');
  await new Promise((r) => setTimeout(r, 200));
  t.equal(echo.received(), '', 'the target got nothing');
  t.equal(c.got.length, 0, 'the client got nothing');
  const closed = new Promise<void>((r) => c.socket.once('close', () => r()));
  proxy.setMode({ kind: 'pass' });
  await closed;
  t.pass('changing the mode cut the blackholed connection');
  t.equal(echo.received(), '', 'and what was written into the blackhole never arrives');
});

t.test('delay: each chunk is held back, both ways', async (t) => {
  const echo = await echoServer(t);
  const proxy = await TcpProxy.start(echo.address);
  t.teardown(() => proxy.close());
  proxy.setMode({ kind: 'delay', delayMs: 150 });
  const c = await client(t, proxy);
  const sent = Date.now();
  c.socket.write('slow');
  const at = await until('the echo', () => (text(c.got) === 'slow' ? c.got.at(-1)!.at : undefined));
  t.ok(at - sent >= 290, `round trip ${at - sent} ms ≥ 2 × 150 ms`);
});

t.test('holdBack delays an open connection without cutting it, in order', async (t) => {
  const echo = await echoServer(t);
  const proxy = await TcpProxy.start(echo.address);
  t.teardown(() => proxy.close());
  const c = await client(t, proxy);
  c.socket.write('a');
  await until('the first echo', () => (text(c.got) === 'a' ? true : undefined));
  let closed = false;
  c.socket.once('close', () => (closed = true));
  proxy.holdBack(300);
  const sent = Date.now();
  c.socket.write('b');
  await new Promise((r) => setTimeout(r, 20));
  proxy.holdBack(0); // later chunks are not delayed, but may not overtake 'b'
  c.socket.write('c');
  const at = await until('the delayed echo', () => (text(c.got) === 'abc' ? Date.now() : undefined));
  t.ok(at - sent >= 300, `'b' came back after ${at - sent} ms ≥ 300 ms`);
  t.equal(echo.received(), 'abc', 'the target got every byte, in order');
  t.notOk(closed, 'the connection was never cut');
});
