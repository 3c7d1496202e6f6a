// The `baton` executable: one binary, one subcommand per role.
const USAGE = `usage: baton <command> [options]

commands:
  serve   run a control-plane replica (REST API, supervision of chains)
  sim     run simulated sequencer nodes (ControlService + sim control)
  check   verify activity logs against the safety invariants
  ctl     operate a running Baton over its REST API (list, status, failover, pause...)
  help    show this text

Run \`baton <command> --help\` for the options of a command.`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.js')).runServe,
  sim: async () => (await import('./sim.js')).runSim,
  check: async () => (await import('./check.js')).runCheck,
  ctl: async () => (await import('./ctl.js')).runCtl,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    console.log(USAGE);
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (!load) {
    console.error(`baton: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  return (await load())(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`baton: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
