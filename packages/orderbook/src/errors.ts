// Errors thrown by the order book. Commands never throw: a refused command is a `Rejected` event
// and a returned reason code. These errors are for misuse that no command can cause: invalid
// construction options, and an invariant check (`audit`) that found a corrupted book.

export type OrderBookErrorCode = 'INVALID_OPTIONS' | 'INVARIANT_VIOLATED';

export class OrderBookError extends Error {
  override readonly name = 'OrderBookError';
  constructor(
    readonly code: OrderBookErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
