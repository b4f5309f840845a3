// The Codec interface and codecByName.
import { describe, expect, it } from 'vitest';
import { binaryCodec, CODEC_NAMES, CodecError, codecByName, jsonCodec, type Message } from '../src/index.js';
import { thrown } from './support.js';

describe('codecByName', () => {
  it('returns the codec of each name', () => {
    expect(codecByName('json')).toBe(jsonCodec);
    expect(codecByName('binary')).toBe(binaryCodec);
    expect(CODEC_NAMES.map((n) => codecByName(n).name)).toEqual(['json', 'binary']);
  });

  it.each(['', 'JSON', 'msgpack', 'toString', '__proto__'])('throws CodecError UNKNOWN_CODEC for %j', (name) => {
    const e = thrown(() => codecByName(name));
    expect(e).toBeInstanceOf(CodecError);
    expect(e).toMatchObject({ name: 'CodecError', code: 'UNKNOWN_CODEC', field: 'name' });
  });
});

describe('the codecs through the Codec interface', () => {
  const msg: Message = { type: 'cancel', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5 };

  it.each(CODEC_NAMES)('%s: encode, encodedLength, maxLength and decode agree', (name) => {
    const codec = codecByName(name);
    const buf = new Uint8Array(codec.maxLength);
    const n = codec.encode(msg, buf);
    expect(n).toBe(codec.encodedLength(msg));
    expect(codec.decode(buf.subarray(0, n))).toEqual(msg);
  });
});
