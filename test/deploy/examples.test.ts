// The example deployment files stay valid: the config loads and every chain passes validation.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { loadConfig, minNodeLeaseTtlMs } from '../../src/config/config.js';
import { validateChainSpec } from '../../src/core/spec.js';

const dir = new URL('../../deploy/', import.meta.url).pathname;

t.test('baton.example.json loads', async (t) => {
  const config = loadConfig({ file: `${dir}baton.example.json`, env: {} });
  t.equal(config.replicaId, 'baton-1');
  t.equal(config.etcd.endpoints.length, 3);
});

t.test('chains.example.json validates under the example config', async (t) => {
  const config = loadConfig({ file: `${dir}baton.example.json`, env: {} });
  const chains = JSON.parse(readFileSync(`${dir}chains.example.json`, 'utf8')) as Record<string, unknown>[];
  const limits = { minLeaseTtlMs: minNodeLeaseTtlMs(config), nodeDeadlineMs: config.node.rpcDeadlineMs };
  for (const c of chains) t.equal(validateChainSpec(c, limits).id, c.id);
});
