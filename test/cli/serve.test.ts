// `baton serve` refuses bad configuration before doing anything: exit 2 with the field named on
// stderr. Runs the built CLI (`npm run build` first; the test script builds before tap).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const BIN = fileURLToPath(new URL('../../bin/baton.js', import.meta.url));
// Nothing listens here: every case below must be refused before etcd is contacted.
const NO_ETCD = 'http://127.0.0.1:1';

function serve(args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BATON_')));
  const r = spawnSync(process.execPath, [BIN, 'serve', ...args], { encoding: 'utf8', timeout: 30_000, env: { ...clean, ...env } });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

t.test('--help exits 0 and prints the usage', async (t) => {
  const r = serve(['--help']);
  t.equal(r.code, 0);
  t.match(r.stdout, /usage: baton serve/);
  t.match(r.stdout, /--listen HOST:PORT/);
  t.equal(r.stderr, '');
});

t.test('bad configuration exits 2 and names the field', async (t) => {
  const dir = t.testdir({
    'bad-port.json': JSON.stringify({ http: { port: 99999 } }),
    'unknown.json': JSON.stringify({ etcd: { endpoints: [NO_ETCD], hosts: ['x'] } }),
    'contradiction.json': JSON.stringify({ replica: { leaseTtlS: 3, fenceMarginMs: 2000 } }),
    'not-json.json': '{"http":',
    'list.json': '[]',
    'tls.json': JSON.stringify({ security: { tls: { caFile: 'ca.crt', certFile: 'b.crt', keyFile: 'b.key' } } }),
  });
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ['port out of range in the file', ['--config', join(dir, 'bad-port.json')], {}, /http\.port/],
    ['unknown setting in the file', ['--config', join(dir, 'unknown.json')], {}, /etcd\.hosts: unknown setting/],
    ['contradictory timings', ['--config', join(dir, 'contradiction.json')], {}, /replica\.fenceMarginMs/],
    ['config file not JSON', ['--config', join(dir, 'not-json.json')], {}, /not-json\.json/],
    ['config file not an object', ['--config', join(dir, 'list.json')], {}, /list\.json/],
    ['missing config file', ['--config', join(dir, 'missing.json')], {}, /missing\.json/],
    ['--listen nonsense', ['--listen', 'nonsense'], {}, /--listen must be HOST:PORT/],
    ['--listen without host', ['--listen', ':8080'], {}, /http\.host/],
    ['--listen port out of range', ['--listen', '127.0.0.1:70000'], {}, /http\.port/],
    ['--etcd not a URL', ['--etcd', 'localhost:2379'], {}, /etcd\.endpoints/],
    ['--replica-id with a slash', ['--replica-id', 'a/b'], {}, /replicaId/],
    ['--log-level unknown', ['--log-level', 'loud'], {}, /logLevel/],
    ['unknown flag', ['--port', '80'], {}, /--port/],
    ['bad environment variable', [], { BATON_HTTP_PORT: 'eighty' }, /http\.port/],
    ['neither mTLS files nor --insecure-dev', ['--etcd', NO_ETCD], {}, /security\.tls: .*insecureDev/],
    ['both mTLS files and --insecure-dev', ['--config', join(dir, 'tls.json'), '--insecure-dev'], {}, /security\.insecureDev/],
  ];
  for (const [name, args, env, names] of cases) {
    const r = serve(args, env);
    t.equal(r.code, 2, `${name}: exit 2 (stderr: ${r.stderr.trim().split('\n')[0]})`);
    t.match(r.stderr, names, `${name}: stderr names it`);
  }
});

t.test('a bad chains file exits 2 and names the field, before touching etcd', async (t) => {
  const dir = t.testdir({
    'chains.json': JSON.stringify([{ id: 'chain-a', nodes: [{ id: 'n1', endpoint: 'h:1' }], policy: { leaseTtlMs: 1000 } }]),
    'typo.json': JSON.stringify([{ id: 'chain-a', nodes: [{ id: 'n1', endpoint: 'h:1' }], polcy: {} }]),
  });
  for (const [file, names] of [['chains.json', /chains\[0\]: .*policy\.leaseTtlMs/], ['typo.json', /polcy: unknown field/]] as const) {
    const r = serve(['--etcd', NO_ETCD, '--listen', '127.0.0.1:0', '--chains', join(dir, file), '--insecure-dev']);
    t.equal(r.code, 2, `${file}: exit 2 (stderr: ${r.stderr.trim().split('\n')[0]})`);
    t.match(r.stderr, names, `${file}: stderr names the field`);
  }
});

t.test('--listen [::1]:PORT is an IPv6 host without brackets', async (t) => {
  // Refused later for the bad chains file, so nothing is started; but the address must have been
  // accepted by the config (the refusal is about the chains file, not http.host).
  const dir = t.testdir({ 'c.json': 'null' });
  const r = serve(['--etcd', NO_ETCD, '--listen', '[::1]:0', '--chains', join(dir, 'c.json')], { BATON_INSECURE_DEV: 'true' });
  t.equal(r.code, 2);
  t.notMatch(r.stderr, /http\.host/);
  t.match(r.stderr, /chains file/);
});
