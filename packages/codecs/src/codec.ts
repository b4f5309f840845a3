// What every codec offers, and the look-up of a codec by its configured name.
import { binaryCodec } from './binary-codec.js';
import { CodecError } from './errors.js';
import { jsonCodec } from './json-codec.js';
import type { Message } from './types.js';

export type CodecName = 'json' | 'binary';
export const CODEC_NAMES: readonly CodecName[] = ['json', 'binary'];

/** A codec of commands and events. Encoding writes into a caller's buffer; decoding validates strictly. */
export interface Codec {
  readonly name: CodecName;
  /** The longest record of any valid message: a buffer of this size holds any one record. */
  readonly maxLength: number;
  /**
   * The exact length of `msg`'s record. Checks the whole message as `encode` does (EncodeError
   * INVALID_FIELD naming the first invalid field), so it also serves to validate a message.
   */
  encodedLength(msg: Message): number;
  /**
   * Writes `msg`'s record into `buf` at `offset` (default 0) and returns the number of bytes written.
   * EncodeError INVALID_FIELD or BUFFER_TOO_SMALL, in which case nothing was written.
   */
  encode(msg: Message, buf: Uint8Array, offset?: number): number;
  /** `msg`'s record in a new Buffer of exactly its length. */
  encodeToBuffer(msg: Message): Buffer;
  /** Decodes a record (all of `bytes`) into a new message; any malformed input is a DecodeError. */
  decode(bytes: Uint8Array): Message;
}

/** The codec configured by `name`; CodecError UNKNOWN_CODEC for any other name. */
export function codecByName(name: string): Codec {
  switch (name) {
    case 'json':
      return jsonCodec;
    case 'binary':
      return binaryCodec;
    default:
      throw new CodecError('UNKNOWN_CODEC', `unknown codec ${JSON.stringify(name)} (known: ${CODEC_NAMES.join(', ')})`, 'name');
  }
}
