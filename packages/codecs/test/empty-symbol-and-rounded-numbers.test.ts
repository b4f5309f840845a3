// Validation the codecs could skip: an empty symbol before any valid one was encoded, and JSON
// numbers that JSON.parse rounds to a safe integer.
import { describe, expect, it, vi } from 'vitest';

describe('binary codec', () => {
  it('binary encode refuses an empty symbol (as the JSON codec does) even before any valid symbol was encoded', async () => {
    // A fresh module: the state a process is in before its first encode.
    vi.resetModules();
    const { binaryCodec, jsonCodec, EncodeError } = await import('../src/index.js');
    const cancel = { type: 'cancel', symbol: '', seq: 0, reqId: 0, orderId: 1, userId: 0, ts: 0 } as const;
    expect(() => jsonCodec.encodedLength(cancel)).toThrow(EncodeError);
    let thrown: unknown;
    let record: Buffer | undefined;
    try {
      record = binaryCodec.encodeToBuffer(cancel);
    } catch (err) {
      thrown = err;
    }
    // Today it writes a record with a symbol length of 0, which its own decoder then refuses.
    expect(record, record && `wrote ${record.toString('hex')}`).toBeUndefined();
    expect(thrown).toBeInstanceOf(EncodeError);
    expect((thrown as InstanceType<typeof EncodeError>).field).toBe('symbol');
  });
});

describe('JSON codec', () => {
  it('JSON decode refuses a non-integer number that JSON.parse rounds to a safe integer, instead of truncating it', async () => {
    const { jsonCodec, DecodeError } = await import('../src/index.js');
    const good = '{"v":1,"type":"cancel","symbol":"BTCUSDT","seq":0,"reqId":0,"orderId":1,"userId":0,"ts":0}';
    expect(jsonCodec.decode(Buffer.from(good))).toMatchObject({ orderId: 1 });
    // 9007199254740991.4 is not an integer (and is above Number.MAX_SAFE_INTEGER); JSON.parse rounds it to 2^53 - 1.
    const bad = good.replace('"orderId":1', '"orderId":9007199254740991.4');
    let decoded: unknown;
    let thrown: unknown;
    try {
      decoded = jsonCodec.decode(Buffer.from(bad));
    } catch (err) {
      thrown = err;
    }
    expect(decoded, `decoded as ${JSON.stringify(decoded)}`).toBeUndefined();
    expect(thrown).toBeInstanceOf(DecodeError);
  });
});
