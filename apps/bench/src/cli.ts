// Shared plumbing of the command-line entry points: typed errors become one line on stderr and
// exit status 2; anything unexpected keeps its stack trace.

import { BenchError } from './errors.js';

export function runMain(main: () => Promise<void> | void): void {
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
  if (!/^-?[0-9]+$/.test(v)) throw new BenchError('BAD_ARGUMENT', `--${name} must be an integer, got ${JSON.stringify(v)}`);
  return Number(v);
}
