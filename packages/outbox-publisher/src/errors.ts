// Typed errors of the outbox and the publisher.

export type OutboxErrorCode =
  | 'CURSOR_CORRUPT' // the cursor file exists but cannot be trusted (bad magic, version, length or checksum)
  | 'CURSOR_IO' // the cursor could not be read or written
  | 'CURSOR_AHEAD' // the cursor is past the end of the outbox (the outbox lost published events, or is another one)
  | 'OUT_OF_ORDER' // the bus refused a message because its previous message is not the last one it holds
  | 'PUBLISH_TIMEOUT' // no acknowledgement in time
  | 'BUS_CLOSED' // publishing on a closed bus
  | 'BUS_ERROR' // the bus refused or failed a message
  | 'OUTBOX_FAILED' // the outbox's log failed; appends are refused
  | 'MESSAGE_RELEASED' // a bus read a message's payload or event after publish returned (keep msg.detach() instead)
  | 'HISTORY_MISMATCH' // the bus holds a different outbox history's events for the symbol (a wiped data directory, another engine)
  | 'NOT_AN_EVENT' // an outbox record is not an event (a command, or an event without a sequence number)
  | 'EVENT_MISMATCH' // the bus holds this event id with other content (the outbox lost events that were published)
  | 'HISTORY_CORRUPT' // the outbox's HISTORY file does not hold a history id
  | 'HISTORY_IO' // the outbox's HISTORY file could not be read or written
  | 'STOPPED' // the publisher stopped before an offset waited for (acknowledged()) was acknowledged
  | 'INVALID_OPTIONS';

export class OutboxError extends Error {
  override readonly name = 'OutboxError';
  /**
   * With OUT_OF_ORDER from a bus that can tell: the sequence number of the last event of the symbol
   * the bus holds (0: none). Below what the publisher's cursor says was acknowledged, the bus lost
   * events (another or a wiped stream, another bus): the publisher then publishes the outbox again
   * from its start, and the bus takes what it lacks and drops the rest as duplicates.
   */
  busLastEventSeq?: number;
  constructor(
    readonly code: OutboxErrorCode,
    message: string,
    options?: ErrorOptions & { busLastEventSeq?: number },
  ) {
    super(message, options);
    if (options?.busLastEventSeq !== undefined) this.busLastEventSeq = options.busLastEventSeq;
  }
}
