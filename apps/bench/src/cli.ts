// Shared plumbing of the command-line entry points: typed errors become one line on stderr and
// exit status 2; anything unexpected keeps its stack trace.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BenchError } from './errors.js';

export function runMain(main: () => Promise<void> | void): void {
  // The output may fail too: a reader that stopped (`| head`) ends the command quietly; another
  // error (a full disk: ENOSPC) is one line and exit 2 like any other, not an unhandled error event.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    process.stderr.write(`error [${err.code ?? 'IO'}]: cannot write the output: ${err.message}\n`);
    process.exit(2);
  });
  Promise.resolve()
    .then(main)
    .catch((err: unknown) => {
      // A typed error (the bench's, or an engine, log or codec error, or a system error such as
      // ENOENT): one line naming its code. Anything else is a bug: its stack.
      const code = (err as { code?: unknown } | null)?.code;
      if (err instanceof Error && typeof code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(code)) {
        process.stderr.write(`error [${code}]: ${err.message}\n`);
        process.exitCode = 2;
      } else {
        process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
        process.exitCode = 1;
      }
    });
}

/** Parses an integer option value. */
export function intArg(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!/^-?[0-9]+$/.test(v) || !Number.isSafeInteger(Number(v))) throw new BenchError('BAD_ARGUMENT', `--${name} must be an integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

/**
 * `--name -5` as `--name=-5` for the options that take a value (node's parseArgs takes a value
 * starting with a dash for an option and refuses it as ambiguous), so that a negative number is
 * refused by the option's own check, in one line.
 */
export function joinNegativeValues(args: readonly string[], valued: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const next = args[i + 1];
    if (next !== undefined && /^-[0-9]/.test(next) && valued.includes(a)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/**
 * `parseArgs` of the command line (or `config.args`) where an option that takes a value may be
 * given a negative number as the next argument (`--ops -1`): it reaches the option's own check.
 */
export function parseCli<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  const valued = Object.entries(config.options ?? {})
    .filter(([, o]) => o.type === 'string')
    .flatMap(([name, o]) => [`--${name}`, ...(o.short === undefined ? [] : [`-${o.short}`])]);
  return parseArgs({ ...config, args: joinNegativeValues(config.args ?? process.argv.slice(2), valued) }) as ReturnType<typeof parseArgs<T>>;
}
