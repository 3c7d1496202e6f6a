// The devstack's TLS mode (the demo's and scenario tests' way to run with mTLS): real `baton serve`
// processes with certificates minted by openssl, their REST API over mTLS; the chain gets a
// producing leader (the simulated nodes serve plaintext: security.insecureNodeChannel).
import t from 'tap';
import { startStack } from '../helpers/stack.js';

const stack = await startStack(t, { replicas: 1, tls: true, chains: [{ id: 'chain-a', nodes: ['a1', 'a2'] }] });

t.test('the stack serves HTTPS with client certificates and elects a leader', async (t) => {
  t.match(stack.replicas[0]!.url, /^https:\/\//);
  const leader = await stack.waitForProducingLeader('chain-a', 30_000);
  t.ok(['a1', 'a2'].includes(leader.nodeId));
  const res = await fetch(`${stack.replicas[0]!.url}/v1/chains`, { signal: AbortSignal.timeout(5000) }).catch((err: Error) => err);
  t.ok(res instanceof Error, 'a client without a certificate is refused');
});

t.test('the operator CLI speaks mTLS with --ca --cert --key', async (t) => {
  const { runCtl } = await import('../../src/cli/ctl.js');
  const client = stack.tls!.security.client;
  const run = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCtl(args, {
      out: (s) => out.push(s),
      err: (s) => err.push(s),
      env: { USER: 'tester' },
      isTTY: false,
      nowMs: () => Date.now(),
      fetch: (input, init) => fetch(input, init),
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };
  const url = stack.replicas[0]!.url;
  const listed = await run(['list', '--json', '--url', url, '--ca', client.caFile, '--cert', client.certFile, '--key', client.keyFile]);
  t.equal(listed.code, 0, listed.err);
  t.match(JSON.parse(listed.out), { chains: [{ id: 'chain-a' }] });
  const paused = await run(['pause', 'chain-a', '--url', url, '--ca', client.caFile, '--cert', client.certFile, '--key', client.keyFile, '--json']);
  t.equal(paused.code, 0, paused.err);
  const resumed = await run(['resume', 'chain-a', '--url', url, '--ca', client.caFile, '--cert', client.certFile, '--key', client.keyFile, '--json']);
  t.equal(resumed.code, 0, resumed.err);
  const plain = await run(['list', '--url', url, '--timeout', '3000']);
  t.equal(plain.code, 3, 'without a client certificate Baton is unreachable');
  const half = await run(['list', '--url', url, '--ca', client.caFile]);
  t.equal(half.code, 2, '--ca without --cert and --key is a usage error');
});
