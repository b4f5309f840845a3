// Typed errors of the write-ahead log. Every failure has a stable code; corruption names the file
// and the byte offset; I/O failures keep the system error as `cause`.

export type WalErrorCode =
  | 'INVALID_OPTIONS' // bad configuration, or a call out of order (such as reserve() while a record is reserved)
  | 'RECORD_TOO_LARGE' // a record above maxRecordSize, refused before anything was written
  | 'EMPTY_RECORD' // a zero-length record (a zero header marks the end of a segment's data)
  | 'CORRUPT' // a bad record followed by good ones, or an inconsistent segment sequence
  | 'WRITE_FAILED' // a short write or an error while writing; the log was cut back to the last record boundary
  | 'SYNC_FAILED' // fsync failed; the writer is failed for good (a failed fsync is never retried)
  | 'FAILED' // the writer failed earlier and refuses further work
  | 'CLOSED' // used after close()
  | 'IO'; // another I/O error (open, read, rename, ...)

export class WalError extends Error {
  override readonly name = 'WalError';
  constructor(
    readonly code: WalErrorCode,
    message: string,
    options?: ErrorOptions & { file?: string; offset?: number },
  ) {
    super(message, options);
    this.file = options?.file;
    this.offset = options?.offset;
  }
  /** The segment file the error is about, when there is one. */
  readonly file: string | undefined;
  /** The byte offset (within `file`) the error is about, when there is one. */
  readonly offset: number | undefined;
}
