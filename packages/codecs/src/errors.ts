// Typed errors of the codecs. Decoding never throws anything else: malformed input of any shape is
// a DecodeError that names the field (or byte offset) that was wrong.

export type CodecErrorCode =
  | 'TRUNCATED' // the input ends before the record does
  | 'UNKNOWN_VERSION' // a version this codec does not know
  | 'UNKNOWN_TYPE' // an unknown message type tag
  | 'INVALID_FIELD' // a field of the wrong type, out of range, or not a safe integer
  | 'MISSING_FIELD' // a required field is absent
  | 'TRAILING_BYTES' // bytes after the end of the record
  | 'MALFORMED' // not parseable at all (e.g. invalid JSON)
  | 'BUFFER_TOO_SMALL' // encoding: the caller's buffer cannot hold the record
  | 'UNKNOWN_CODEC'; // codecByName: no codec of that name

export class CodecError extends Error {
  override readonly name: string = 'CodecError';
  constructor(
    readonly code: CodecErrorCode,
    message: string,
    /** The field (or `@offset`) the error is about, when there is one. */
    readonly field?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A record that could not be decoded. */
export class DecodeError extends CodecError {
  override readonly name = 'DecodeError';
}

/** A message that could not be encoded (invalid field, or no room in the buffer). */
export class EncodeError extends CodecError {
  override readonly name = 'EncodeError';
}
