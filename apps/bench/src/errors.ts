// Typed errors of the bench tools. The command-line entry points print them as one line (no stack
// trace) and exit with status 2.

export type BenchErrorCode = 'CSV_PARSE' | 'BAD_ARGUMENT' | 'IO';

export class BenchError extends Error {
  override readonly name = 'BenchError';
  constructor(
    readonly code: BenchErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A workload line that could not be parsed. `line` is 1-based. */
export class CsvParseError extends BenchError {
  constructor(
    readonly line: number,
    readonly detail: string,
  ) {
    super('CSV_PARSE', `line ${line}: ${detail}`);
  }
}
