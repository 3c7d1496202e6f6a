// The shared entry point of the benchmark commands: parse options (usage errors exit 2, --help 0),
// run, and exit with the run's status; progress goes to stderr, the final JSON line to stdout.

export function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** `parse` returns undefined for --help and throws on bad options; `run` returns the exit status. */
export function runBenchmark<O>(name: string, usage: string, parse: (argv: string[]) => O | undefined, run: (opts: O) => Promise<number>): void {
  const main = async (): Promise<number> => {
    let opts: O | undefined;
    try {
      opts = parse(process.argv.slice(2));
    } catch (err) {
      say(`${name}: ${err instanceof Error ? err.message : String(err)}\n\n${usage}`);
      return 2;
    }
    if (!opts) {
      say(usage);
      return 0;
    }
    return run(opts);
  };
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      say(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exit(1);
    },
  );
}

/** An integer option in min..max (the value as given on the command line). */
export function intOption(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: must be an integer in ${min}..${max}, got ${v}`);
  return n;
}
