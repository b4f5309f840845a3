// Typed errors of the engine. A refusal on the hot path (`trySubmit`) is returned, not thrown: the
// refusal objects are preallocated constants with the same codes.

export type EngineErrorCode =
  | 'UNKNOWN_SYMBOL' // no actor for the command's symbol
  | 'MAILBOX_FULL' // backpressure: the symbol's mailbox is full; try again later
  | 'DURABILITY_BACKLOG' // backpressure: maxPending commands are taken and not yet durable (the disk is behind); try again once more are
  | 'HALTED' // the actor hit an I/O error and stopped; restart the engine to recover
  | 'INVALID_COMMAND' // the command cannot be logged (a field of the wrong type or range)
  | 'CLOSED' // the engine is closing or closed
  | 'RECOVERY_FAILED' // the logs on disk are inconsistent in a way recovery cannot repair
  | 'LOCKED' // another engine (process) has the data directory open
  | 'INVALID_CONFIG'; // bad options

export class EngineError extends Error {
  override readonly name = 'EngineError';
  /**
   * With INVALID_CONFIG: the engine option it is about (`dataDir`, `codec`, `durability`, `batchMax`,
   * `mailboxSize`, `maxPending`, `syncIntervalMs`, `publisher`, `clock`, `symbols` for a list or entry that is not one);
   * undefined for a symbol's name or limits.
   */
  readonly option?: string;
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    options?: ErrorOptions & { option?: string },
  ) {
    super(message, options);
    if (options?.option !== undefined) this.option = options.option;
  }
}
