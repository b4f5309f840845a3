// Argument checks shared by the codecs. A bad argument (not a byte array, a negative or fractional
// offset) is a programming error and throws a TypeError or RangeError; what depends on the data
// (a record that does not fit, bytes that end early) is a CodecError.
import { DecodeError, EncodeError } from '../errors.js';

/** Checks that `buf` is a byte array and `offset` an index into it (or its end). */
export function checkTarget(buf: Uint8Array, offset: number): void {
  if (!(buf instanceof Uint8Array)) throw new TypeError('encode: buf must be a Uint8Array or Buffer');
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`encode: offset must be a non-negative integer, got ${String(offset)}`);
}

/** Throws BUFFER_TOO_SMALL unless `length` bytes fit in `buf` at `offset`. */
export function checkRoom(buf: Uint8Array, offset: number, length: number): void {
  if (offset + length > buf.length) {
    throw new EncodeError(
      'BUFFER_TOO_SMALL',
      `encode: the record needs ${length} bytes at offset ${offset}, the buffer has ${Math.max(0, buf.length - offset)}`,
    );
  }
}

/** Checks the arguments of a decode of `length` bytes at `offset` in `bytes`. */
export function checkSource(bytes: Uint8Array, offset: number, length: number): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('decode: bytes must be a Uint8Array or Buffer');
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`decode: offset must be a non-negative integer, got ${String(offset)}`);
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`decode: length must be a non-negative integer, got ${String(length)}`);
  if (offset + length > bytes.length) {
    throw new DecodeError('TRUNCATED', `decode: ${length} bytes at offset ${offset} run past the end of the input (${bytes.length} bytes)`, `@${bytes.length}`);
  }
}
