// The security, audit and limits settings: defaults, bad values refused naming the field, and the
// rule that serving needs mTLS files or the explicit insecure-dev flag.
import t from 'tap';
import { assertTransportSecurity, loadConfig, parseConfig } from '../../src/config/config.js';

const tls = { caFile: 'ca.crt', certFile: 'b.crt', keyFile: 'b.key' };

t.test('defaults: no transport security configured, which serving refuses', async (t) => {
  const cfg = parseConfig({});
  t.same(cfg.security, { insecureDev: false, tls: undefined, nodeTls: undefined, insecureNodeChannel: false, bindings: [] });
  t.match(cfg.limits, { bodyBytes: 262144, ratePerSecond: 50, burst: 100 });
  t.match(cfg.audit, { maxRecords: 100000 });
  t.throws(() => assertTransportSecurity(cfg), { name: 'ConfigError', message: /^security\.tls: .*insecureDev/ });
  t.doesNotThrow(() => assertTransportSecurity(parseConfig({ security: { tls } })));
  t.doesNotThrow(() => assertTransportSecurity(loadConfig({ env: { BATON_INSECURE_DEV: 'true' } })), 'the flag from the environment');
  t.throws(() => assertTransportSecurity(parseConfig({ security: { tls, insecureDev: true } })), { message: /^security\.insecureDev: contradicts/ });
});

t.test('role bindings', async (t) => {
  const cfg = parseConfig({
    security: {
      tls,
      bindings: [
        { principal: 'alice', roles: ['viewer', 'operator', 'operator'] },
        { principal: 'seq-a-1', roles: ['node'], node: { chainId: 'chain-a', nodeId: 'a1' } },
      ],
    },
  });
  t.same(cfg.security.bindings[0], { principal: 'alice', roles: ['viewer', 'operator'] }, 'duplicates dropped');
  t.same(cfg.security.bindings[1]?.node, { chainId: 'chain-a', nodeId: 'a1' });
  const cases: [string, unknown, RegExp][] = [
    ['unknown role', [{ principal: 'a', roles: ['root'] }], /^security\.bindings\[0\]\.roles/],
    ['no role', [{ principal: 'a', roles: [] }], /^security\.bindings\[0\]\.roles/],
    ['bound twice', [{ principal: 'a', roles: ['viewer'] }, { principal: 'a', roles: ['admin'] }], /^security\.bindings\[1\]\.principal: a is bound twice/],
    ['node role without its node', [{ principal: 'a', roles: ['node'] }], /^security\.bindings\[0\]\.node: required/],
    ['a node for another role', [{ principal: 'a', roles: ['viewer'], node: { chainId: 'c', nodeId: 'n' } }], /^security\.bindings\[0\]\.node/],
    ['unknown field', [{ principal: 'a', roles: ['viewer'], chain: 'x' }], /^security\.bindings\[0\]\.chain: unknown setting/],
    ['not a list', { a: 1 }, /^security\.bindings: must be a list/],
  ];
  for (const [name, bindings, message] of cases) t.throws(() => parseConfig({ security: { tls, bindings } }), { name: 'ConfigError', message }, name);
  t.throws(() => parseConfig({ security: { tls: { caFile: 'x' } } }), { message: /^security\.tls\.certFile/ }, 'incomplete TLS files');
  t.throws(() => parseConfig({ security: { insecureDev: 'maybe' } }), { message: /^security\.insecureDev: must be true or false/ });
  t.throws(() => parseConfig({ limits: { ratePerSecond: 0 } }), { message: /^limits\.ratePerSecond/ });
  t.throws(() => parseConfig({ audit: { maxRecords: 1 } }), { message: /^audit\.maxRecords/ });
});
