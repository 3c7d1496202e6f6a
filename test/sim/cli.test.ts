// The `baton sim` command: many nodes in one process (chains kept apart), clean stop on SIGTERM,
// and argument validation.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { waitFor } from '../../src/devstack/process.js';
import { leaseToken, type SimNodeHandle } from '../../src/devstack/sim.js';
import { entries, headOf, hex, startSimFor, waitForHead, within } from '../helpers/sim.js';

const BATON = fileURLToPath(new URL('../../bin/baton.js', import.meta.url));

t.test('one process hosting 2 chains x 3 nodes', async (t) => {
  const dir = t.testdir();
  const chains = ['chain-p', 'chain-q'];
  const sim = await startSimFor(t, {
    logDir: dir,
    nodes: chains.flatMap((chain) => [1, 2, 3].map((i) => ({ chain, node: `${chain.slice(-1)}${i}`, blockTimeMs: 100 }))),
  });
  t.equal(sim.nodes.length, 6);
  t.equal(new Set(sim.nodes.map((n) => n.address)).size, 6, 'one port per node');
  const of = (chain: string): SimNodeHandle[] => sim.nodes.filter((n) => n.chain === chain);
  for (const chain of chains) {
    const [active] = of(chain);
    await active!.control.startSequencer({ leaseToken: leaseToken(1), leaseTtlMs: 60_000, chainId: chain });
  }
  for (const chain of chains) {
    const [active, ...standbys] = of(chain);
    await waitForHead(active!, 5);
    for (const s of standbys) {
      const h = await waitForHead(s, 5);
      t.equal((await s.sim.inspect()).peers.length, 2, `${s.node} peers with its own chain only`);
      t.equal((await s.control.health()).chainId, chain);
      // The active logs a block once its push is done, so the standby can hold it a moment before
      // the active's log does: wait (bounded) for the log to name the standby's head.
      const st = await s.sim.inspect();
      const logged = await waitFor(`block ${st.headNumber} in ${active!.node}'s log`, () => new Map(entries(active!, 'block').map((b) => [b.number, b.hash])).get(Number(st.headNumber)), 5000, 20);
      t.equal(hex(st.headHash), logged, `${s.node} holds ${chain} blocks (head ${h})`);
    }
  }
  const [p1] = of('chain-p');
  const [q1] = of('chain-q');
  const pHashes = new Set(entries(p1!, 'block').map((b) => b.hash));
  t.ok(entries(q1!, 'block').every((b) => !pHashes.has(b.hash)), 'the chains share no block');
  for (const n of sim.nodes) {
    t.ok(
      entries(n, 'start').every((e) => e.chain === n.chain && e.node === n.node),
      `${n.chain}/${n.node} log holds only its own entries`,
    );
  }

  await t.test('SIGTERM stops it cleanly', async (t) => {
    const heads = await Promise.all([p1!, q1!].map(headOf));
    sim.closeClients();
    sim.process.signal('SIGTERM');
    const exit = await within(sim.process.exited, 5000, 'still running');
    t.same(exit, { code: 0, signal: null });
    for (const [i, n] of [p1!, q1!].entries()) {
      const until = entries(n, 'active-until');
      t.match(until, [{ term: '1', reason: 'stopped' }], `${n.node} recorded that it stopped`);
      t.ok(until[0]!.head >= heads[i]!);
      t.equal(until[0]!.head, entries(n, 'block').at(-1)!.number, 'at its last logged block');
    }
  });
});

t.test('bad arguments exit 2 with a message', async (t) => {
  const dir = t.testdir({
    'unknown-key.json': JSON.stringify({ nodes: [{ chain: 'c', node: 'n', colour: 'red' }] }),
    'bad-port.json': JSON.stringify({ nodes: [{ chain: 'c', node: 'n', port: 70000 }] }),
    'twice.json': JSON.stringify({ nodes: [{ chain: 'c', node: 'n' }, { chain: 'c', node: 'n' }] }),
    'not-json.json': '{nodes:',
    'bad-tls.json': JSON.stringify({ nodes: [{ chain: 'c', node: 'n', tls: { caFile: 'ca.crt' } }] }),
    'missing-tls.json': JSON.stringify({ nodes: [{ chain: 'c', node: 'n', tls: { caFile: '/nonexistent/ca.crt', certFile: '/nonexistent/n.crt', keyFile: '/nonexistent/n.key' } }] }),
  });
  const cases: [string[], RegExp][] = [
    [['--bogus'], /Unknown option '--bogus'/],
    [['--chain', 'c'], /--chain and --node are required/],
    [['--chain', 'c', '--node', 'n', '--block-time', 'abc'], /--block-time must be an integer/],
    [['--chain', 'c', '--node', 'n', '--block-time', '0'], /--block-time must be >= 1/],
    [['--chain', 'c', '--node', 'n', '--lag-blocks', '-1'], /lag-blocks/],
    [['--chain', 'c', '--node', 'n', '--listen', 'nowhere'], /--listen must be HOST:PORT/],
    [['--chain', '../c', '--node', 'n'], /chain "..\/c" must match/],
    [['--chain', 'c', '--node', 'n', '--genesis', 'xyz'], /genesis must be 32 bytes of hex/],
    [['--config', join(dir, 'missing.json')], /cannot read config/],
    [['--config', join(dir, 'not-json.json')], /cannot read config/],
    [['--config', join(dir, 'unknown-key.json')], /unknown key "colour"/],
    [['--config', join(dir, 'bad-port.json')], /port must be an integer in 0..65535/],
    [['--config', join(dir, 'twice.json')], /node c\/n appears twice/],
    [['--config', join(dir, 'twice.json'), '--chain', 'c'], /cannot be combined/],
    [['--chain', 'c', '--node', 'n', '--tls-ca', 'ca.crt'], /--tls-ca, --tls-cert and --tls-key go together/],
    [['--chain', 'c', '--node', 'n', '--tls-ca', '/nonexistent/ca', '--tls-cert', '/nonexistent/c', '--tls-key', '/nonexistent/k'], /tls caFile \/nonexistent\/ca does not exist/],
    [['--config', join(dir, 'bad-tls.json')], /tls.certFile must be a non-empty string/],
    [['--config', join(dir, 'missing-tls.json')], /does not exist/],
  ];
  // Short-lived children: execFile kills one (by its PID) should it outlive the timeout.
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [BATON, 'sim', ...args], { timeout: 10_000 }, (err, _stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }),
      );
    });
  // A few at a time: twenty node processes at once on a loaded 2-core box outlive the timeout.
  const results: { code: number | null; stderr: string }[] = [];
  for (let i = 0; i < cases.length; i += 4) results.push(...(await Promise.all(cases.slice(i, i + 4).map(([args]) => run(args)))));
  cases.forEach(([args, message], i) => {
    t.equal(results[i]!.code, 2, args.join(' '));
    t.match(results[i]!.stderr, message, args.join(' '));
  });
});
