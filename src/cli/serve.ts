// `baton serve`: run one control-plane replica.
import { parseArgs } from 'node:util';
import { assertTransportSecurity, ConfigError, loadConfig } from '../config/config.js';
import { isBatonError } from '../core/errors.js';

const HELP = `usage: baton serve [--config FILE] [--etcd URL,...] [--listen HOST:PORT] [--replica-id ID] [--chains FILE] [--insecure-dev]

Runs one Baton replica against etcd. Settings come from the JSON config file, then BATON_*
environment variables, then these flags. Bad or contradictory settings refuse to start.
REST, gRPC and the node channel use mTLS (security.tls in the config file); --insecure-dev
(or BATON_INSECURE_DEV=true) serves plaintext without authentication, for development only.`;

export async function runServe(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string' },
        etcd: { type: 'string' },
        listen: { type: 'string' },
        'replica-id': { type: 'string' },
        chains: { type: 'string' },
        'log-level': { type: 'string' },
        'insecure-dev': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`baton serve: ${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const overrides: Record<string, string> = {};
  if (values.etcd) overrides['etcd.endpoints'] = values.etcd;
  if (values['replica-id']) overrides.replicaId = values['replica-id'];
  if (values.chains) overrides.chainsFile = values.chains;
  if (values['log-level']) overrides.logLevel = values['log-level'];
  if (values['insecure-dev']) overrides['security.insecureDev'] = 'true';
  if (values.listen) {
    const m = /^(.*):(\d+)$/.exec(values.listen);
    if (!m) {
      console.error(`baton serve: --listen must be HOST:PORT, got "${values.listen}"`);
      return 2;
    }
    overrides['http.host'] = m[1]!.replace(/^\[(.*)\]$/, '$1'); // [::1]:8080 listens on ::1
    overrides['http.port'] = m[2]!;
  }
  let config;
  try {
    config = loadConfig({ file: values.config, env: process.env, overrides });
    assertTransportSecurity(config);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`baton serve: invalid configuration: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const { runUntilSignalled } = await import('../main.js');
  try {
    return await runUntilSignalled(config);
  } catch (err) {
    // Refused at startup for bad input (a bad chains file): like bad configuration, exit 2.
    if (isBatonError(err, 'INVALID_ARGUMENT')) {
      console.error(`baton serve: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
