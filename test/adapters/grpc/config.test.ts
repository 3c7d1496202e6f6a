// The grpc section of the configuration: where the gRPC operator API listens.
import t from 'tap';
import { loadConfig, parseConfig } from '../../../src/config/config.js';

t.test('defaults, environment, port 0', async (t) => {
  t.same(parseConfig({}).grpc, { host: '127.0.0.1', port: 9090 });
  t.same(loadConfig({ env: { BATON_GRPC_HOST: '0.0.0.0', BATON_GRPC_PORT: '9191' } }).grpc, { host: '0.0.0.0', port: 9191 });
  t.equal(parseConfig({ grpc: { port: 0 } }).grpc.port, 0, 'a free port, as for tests');
  t.equal(parseConfig({ http: { port: 0 }, grpc: { port: 0 } }).grpc.port, 0, 'both on free ports');
  t.equal(loadConfig({ overrides: { 'grpc.host': '::1' } }).grpc.host, '::1', 'IPv6 without brackets');
});

t.test('bad values refuse to start, naming the field', async (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['port out of range', { grpc: { port: 70000 } }, /^grpc\.port: /],
    ['port as text', { grpc: { port: '90x' } }, /^grpc\.port: /],
    ['the HTTP port', { http: { port: 8080 }, grpc: { port: 8080 } }, /^grpc\.port: 8080 is also http\.port/],
    ['a host with a scheme', { grpc: { host: 'http://localhost' } }, /^grpc\.host: /],
    ['a host that is not a string', { grpc: { host: ['a'] } }, /^grpc\.host: /],
    ['an unknown setting', { grpc: { tls: true } }, /^grpc\.tls: unknown setting/],
  ];
  for (const [name, raw, message] of cases) t.throws(() => parseConfig(raw), { name: 'ConfigError', message }, name);
});
