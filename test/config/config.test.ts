// The service configuration: defaults, file < environment < flags, and every bad, unknown or
// contradictory setting refused with a ConfigError whose message starts with the field's name.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadConfig, minNodeLeaseTtlMs, parseConfig } from '../../src/config/config.js';
import { DEFAULT_POLICY } from '../../src/core/chain.js';
import { validateChainSpec } from '../../src/core/spec.js';

function isDeepFrozen(o: unknown): boolean {
  if (o === null || typeof o !== 'object') return true;
  return Object.isFrozen(o) && Object.values(o).every(isDeepFrozen);
}

t.test('defaults', async (t) => {
  const cfg = parseConfig({});
  t.match(cfg, {
    logLevel: 'info',
    etcd: { endpoints: ['http://127.0.0.1:2379'], prefix: '/baton/', callDeadlineMs: 2000 },
    replica: { leaseTtlS: 3, fenceMarginMs: 500, takeoverGraceMs: 2000, resyncMs: 5000 },
    node: { rpcDeadlineMs: 250, maxClockSkewMs: 100 },
    http: { host: '127.0.0.1', port: 8080 },
    chainsFile: undefined,
  });
  t.match(cfg.replicaId, /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a generated replica id is a valid one');
  t.not(parseConfig({}).replicaId, cfg.replicaId, 'two replicas on one host get different ids');
  t.ok(isDeepFrozen(cfg), 'frozen all the way down');
  t.same(loadConfig({}).etcd, cfg.etcd, 'no file, no env, no flags: the defaults');

  // The default chain policy must be acceptable under the default service limits.
  const limits = { minLeaseTtlMs: minNodeLeaseTtlMs(cfg), nodeDeadlineMs: cfg.node.rpcDeadlineMs };
  t.ok(limits.minLeaseTtlMs <= DEFAULT_POLICY.leaseTtlMs, `default lease ${DEFAULT_POLICY.leaseTtlMs} ≥ minimum ${limits.minLeaseTtlMs}`);
  t.doesNotThrow(() => validateChainSpec({ id: 'chain-a', nodes: [{ id: 'n1', endpoint: 'h:1' }] }, limits));
});

t.test('file, then environment, then flags', async (t) => {
  const dir = t.testdir();
  const file = join(dir, 'baton.json');
  writeFileSync(
    file,
    JSON.stringify({
      replicaId: 'from-file',
      logLevel: 'warn',
      etcd: { endpoints: ['http://10.0.0.1:2379'], prefix: '/file/' },
      http: { host: '0.0.0.0', port: 9000 },
      node: { rpcDeadlineMs: 300 },
    }),
  );
  const fileOnly = loadConfig({ file });
  t.equal(fileOnly.replicaId, 'from-file');
  t.equal(fileOnly.logLevel, 'warn');
  t.same(fileOnly.etcd.endpoints, ['http://10.0.0.1:2379']);
  t.equal(fileOnly.etcd.callDeadlineMs, 2000, 'unset fields of a section keep their default');
  t.equal(fileOnly.http.port, 9000);

  const env = {
    BATON_HTTP_PORT: '9100',
    BATON_ETCD_ENDPOINTS: 'http://a:2379, http://b:2379',
    BATON_ETCD_PREFIX: '/env/',
    BATON_LOG_LEVEL: '',
    BATON_NODE_DEADLINE_MS: '400',
    BATON_NODE_MAX_CLOCK_SKEW_MS: '0',
    UNRELATED: 'x',
  };
  const withEnv = loadConfig({ file, env });
  t.equal(withEnv.http.port, 9100, 'environment beats the file');
  t.equal(withEnv.http.host, '0.0.0.0', 'file kept where the environment says nothing');
  t.same(withEnv.etcd.endpoints, ['http://a:2379', 'http://b:2379'], 'comma-separated list, spaces trimmed');
  t.equal(withEnv.etcd.prefix, '/env/');
  t.equal(withEnv.logLevel, 'warn', 'an empty variable is unset');
  t.equal(withEnv.node.rpcDeadlineMs, 400);
  t.equal(withEnv.node.maxClockSkewMs, 0, 'a skew of 0 (nodes share our clock) is allowed');

  const all = loadConfig({ file, env, overrides: { 'http.port': '9200', replicaId: 'from-flag', 'etcd.endpoints': 'http://c:2379' } });
  t.equal(all.http.port, 9200, 'flags beat the environment');
  t.equal(all.replicaId, 'from-flag', 'flags beat the file');
  t.same(all.etcd.endpoints, ['http://c:2379']);
  t.equal(all.etcd.prefix, '/env/');

  t.equal(loadConfig({ env: { BATON_CHAINS_FILE: '/etc/baton/chains.json' } }).chainsFile, '/etc/baton/chains.json');
  t.equal(loadConfig({ env: { BATON_REPLICA_LEASE_TTL_S: '5', BATON_FENCE_MARGIN_MS: '700', BATON_TAKEOVER_GRACE_MS: '0' } }).replica.takeoverGraceMs, 0);
});

/** Each entry: the raw config and the field its error must name. */
const BAD: [string, Record<string, unknown>, string][] = [
  ['log level not a level', { logLevel: 'verbose' }, 'logLevel'],
  ['log level not a string', { logLevel: 3 }, 'logLevel'],
  ['replica id with a space', { replicaId: 'bad id' }, 'replicaId'],
  ['replica id with a slash', { replicaId: 'a/b' }, 'replicaId'],
  ['replica id empty', { replicaId: '' }, 'replicaId'],
  ['replica id not a string', { replicaId: 42 }, 'replicaId'],
  ['endpoints empty', { etcd: { endpoints: [] } }, 'etcd.endpoints'],
  ['endpoint without scheme', { etcd: { endpoints: ['127.0.0.1:2379'] } }, 'etcd.endpoints'],
  ['endpoint with a path', { etcd: { endpoints: ['http://h:2379/v3'] } }, 'etcd.endpoints'],
  ['endpoints not strings', { etcd: { endpoints: [2379] } }, 'etcd.endpoints'],
  ['endpoints a number', { etcd: { endpoints: 5 } }, 'etcd.endpoints'],
  ['prefix without slashes', { etcd: { prefix: 'baton' } }, 'etcd.prefix'],
  ['prefix without trailing slash', { etcd: { prefix: '/baton' } }, 'etcd.prefix'],
  ['prefix not a string', { etcd: { prefix: ['/a/'] } }, 'etcd.prefix'],
  ['etcd deadline too short', { etcd: { callDeadlineMs: 50 } }, 'etcd.callDeadlineMs'],
  ['etcd deadline not a number', { etcd: { callDeadlineMs: 'soon' } }, 'etcd.callDeadlineMs'],
  ['etcd deadline fractional', { etcd: { callDeadlineMs: 1500.5 } }, 'etcd.callDeadlineMs'],
  ['etcd deadline a boolean', { etcd: { callDeadlineMs: true } }, 'etcd.callDeadlineMs'],
  ['etcd deadline null', { etcd: { callDeadlineMs: null } }, 'etcd.callDeadlineMs'],
  ['lease TTL too short', { replica: { leaseTtlS: 1 } }, 'replica.leaseTtlS'],
  ['lease TTL too long', { replica: { leaseTtlS: 61 } }, 'replica.leaseTtlS'],
  ['fence margin too small', { replica: { fenceMarginMs: 10 } }, 'replica.fenceMarginMs'],
  ['takeover grace negative', { replica: { takeoverGraceMs: -1 } }, 'replica.takeoverGraceMs'],
  ['resync too fast', { replica: { resyncMs: 50 } }, 'replica.resyncMs'],
  ['node deadline too short', { node: { rpcDeadlineMs: 10 } }, 'node.rpcDeadlineMs'],
  ['clock skew negative', { node: { maxClockSkewMs: -1 } }, 'node.maxClockSkewMs'],
  ['clock skew over 10 s', { node: { maxClockSkewMs: 10_001 } }, 'node.maxClockSkewMs'],
  ['port too large', { http: { port: 70000 } }, 'http.port'],
  ['port negative', { http: { port: -1 } }, 'http.port'],
  ['port with trailing garbage', { http: { port: '80x' } }, 'http.port'],
  ['port in hex', { http: { port: '0x50' } }, 'http.port'],
  ['port in exponent form', { http: { port: '1e3' } }, 'http.port'],
  ['port blank', { http: { port: ' ' } }, 'http.port'],
  ['host empty', { http: { host: '' } }, 'http.host'],
  ['host not a string', { http: { host: {} } }, 'http.host'],
  ['host with a port', { http: { host: 'localhost:80' } }, 'http.host'],
  ['host with a space', { http: { host: 'local host' } }, 'http.host'],
  ['chains file not a string', { chainsFile: { path: 'x' } }, 'chainsFile'],
  ['chains file empty', { chainsFile: '' }, 'chainsFile'],
  ['section not an object', { etcd: 'http://h:2379' }, 'etcd'],
  ['section a list', { http: [8080] }, 'http'],
  ['section null', { node: null }, 'node'],
];

t.test('each bad setting is refused, naming the field', async (t) => {
  for (const [name, raw, field] of BAD) {
    t.throws(() => parseConfig(raw), { name: 'ConfigError', message: new RegExp(`^${field.replace('.', '\\.')}\\b`) }, `${name} -> ${field}`);
  }
});

t.test('contradictory timings are refused, naming the field', async (t) => {
  t.throws(() => parseConfig({ replica: { leaseTtlS: 3, fenceMarginMs: 1500 } }), { message: /^replica\.fenceMarginMs: .*half the lease TTL/ });
  t.throws(() => parseConfig({ replica: { leaseTtlS: 3, fenceMarginMs: 500 }, etcd: { callDeadlineMs: 2500 } }), { message: /^etcd\.callDeadlineMs: / });
  t.doesNotThrow(() => parseConfig({ replica: { leaseTtlS: 3, fenceMarginMs: 500 }, etcd: { callDeadlineMs: 2499 } }), 'just below the bound');
  t.doesNotThrow(() => parseConfig({ replica: { leaseTtlS: 10, fenceMarginMs: 1500 }, etcd: { callDeadlineMs: 5000 } }), 'a longer TTL allows longer deadlines');
});

t.test('unknown settings are refused, not ignored', async (t) => {
  t.throws(() => parseConfig({ etcdEndpoints: ['http://h:1'] }), { name: 'ConfigError', message: /^etcdEndpoints: unknown setting/ });
  t.throws(() => parseConfig({ etcd: { hosts: ['http://h:1'] } }), { message: /^etcd\.hosts: unknown setting/ });
  t.throws(() => parseConfig({ replica: { ttl: 3 } }), { message: /^replica\.ttl: unknown setting/ });
  t.throws(() => loadConfig({ overrides: { 'http.listen': '1.2.3.4:5' } }), { message: /^http\.listen: unknown setting/ });
});

t.test('a bad file or variable is a ConfigError, not a crash', async (t) => {
  const dir = t.testdir({ 'broken.json': '{"logLevel": ', 'null.json': 'null', 'list.json': '[]', 'string.json': '"baton"', 'ok.json': '{}' });
  t.throws(() => loadConfig({ file: join(dir, 'missing.json') }), { name: 'ConfigError', message: /missing\.json/ });
  t.throws(() => loadConfig({ file: join(dir, 'broken.json') }), { name: 'ConfigError', message: /broken\.json/ });
  for (const f of ['null.json', 'list.json', 'string.json']) {
    t.throws(() => loadConfig({ file: join(dir, f) }), { name: 'ConfigError', message: new RegExp(`${f.replace('.', '\\.')}.*object`) }, `${f} is not a config object`);
  }
  t.doesNotThrow(() => loadConfig({ file: join(dir, 'ok.json') }));
  t.throws(() => loadConfig({ env: { BATON_HTTP_PORT: 'eighty' } }), { name: 'ConfigError', message: /^http\.port: / });
  t.throws(() => loadConfig({ env: { BATON_ETCD_ENDPOINTS: 'http://a:1,,http://b:2' } }), { message: /^etcd\.endpoints: / });
  t.throws(() => loadConfig({ env: { BATON_REPLICA_LEASE_TTL_S: '3s' } }), { message: /^replica\.leaseTtlS: / });
  t.ok(new ConfigError('x') instanceof Error);
});
