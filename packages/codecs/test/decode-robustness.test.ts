// Decoding hostile input: random bytes, every truncation and every single-bit flip of valid
// records. The outcome is always a valid message or a DecodeError, never another exception.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BINARY_TYPE_TAGS, binaryCodec, DecodedMessage, DecodeError, jsonCodec, type Codec, type Message } from '../src/index.js';
import {
  crossFieldOk,
  decodeOutcome,
  expectedInvalidField,
  expectMessageOrDecodeError,
  fieldsOf,
  messageArb,
  satisfies,
  validClientOrderId,
  WITH_CLIENT_ORDER_ID,
} from './support.js';

const CODECS: readonly Codec[] = [jsonCodec, binaryCodec];
const TAGS = Object.values(BINARY_TYPE_TAGS);

describe.each(CODECS.map((c) => [c.name, c] as const))('%s codec decoding hostile input', (name, codec) => {
  it('turns random bytes into a message or a DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expectMessageOrDecodeError(codec, bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('reports every proper prefix of a valid record as an error (TRUNCATED or MALFORMED), at any length', () => {
    fc.assert(
      fc.property(messageArb, (msg) => {
        const bytes = codec.encodeToBuffer(msg);
        for (let n = 0; n < bytes.length; n++) {
          const r = decodeOutcome(codec, bytes.subarray(0, n));
          // A binary record with a client order id, cut where its symbol ends, is the same order without one;
          // a rejection with its order (an acceptance with its stp), cut where its symbol or its client
          // order id ends, is the same without them.
          const valid = name === 'binary' ? shorterValid(msg, bytes.length) : new Map<number, unknown>();
          if (valid.has(n)) {
            expect(r).toEqual(valid.get(n));
            continue;
          }
          expect(r).toBeInstanceOf(DecodeError);
          expect((r as DecodeError).code).toBe(name === 'binary' ? 'TRUNCATED' : 'MALFORMED');
        }
      }),
      { numRuns: 150 },
    );
  });

  it('turns every single-bit flip of a valid record into a message or a DecodeError', () => {
    fc.assert(
      fc.property(messageArb, (msg) => {
        const bytes = codec.encodeToBuffer(msg);
        for (let bit = 0; bit < bytes.length * 8; bit++) {
          const flipped = Uint8Array.from(bytes);
          flipped[bit >> 3] = (flipped[bit >> 3] as number) ^ (1 << (bit & 7));
          const r = expectMessageOrDecodeError(codec, flipped);
          if (name === 'binary' && !(r instanceof DecodeError)) {
            // The binary form is canonical: a flip that still decodes is another message, which encodes to the flipped bytes.
            expect(Buffer.from(flipped)).toEqual(binaryCodec.encodeToBuffer(r));
            expect(r).not.toEqual(msg);
          }
          if (name === 'binary' && bit < 8) expect(r).toMatchObject({ code: 'UNKNOWN_VERSION' });
        }
      }),
      { numRuns: 20 },
    );
  });

  it('reports bytes after a valid record', () => {
    // (A JSON text may end in whitespace: the tail holds something else.)
    const tailArb = fc.uint8Array({ minLength: 1, maxLength: 20 }).filter((t) => t.some((b) => ![0x20, 0x09, 0x0a, 0x0d].includes(b)));
    fc.assert(
      fc.property(messageArb, tailArb, (msg, tail) => {
        const bytes = Buffer.concat([codec.encodeToBuffer(msg), tail]);
        const r = expectMessageOrDecodeError(codec, bytes);
        const m = msg as Message & { clientOrderId?: string; side?: string; stp?: string };
        const startsOptional =
          name === 'binary' &&
          WITH_CLIENT_ORDER_ID.includes(msg.type) &&
          (m.clientOrderId === undefined || (msg.type === 'rejected' && m.side === undefined) || (msg.type === 'accepted' && m.stp === undefined));
        if (startsOptional) {
          // After the symbol of an order (or its answer) without a client order id, or after a
          // rejection's client order id without its order (an acceptance's without its stp), the
          // tail is read as what may follow.
          if (!(r instanceof DecodeError)) {
            expect(binaryCodec.encodeToBuffer(r)).toEqual(bytes);
          }
          return;
        }
        expect(r).toBeInstanceOf(DecodeError);
        if (name === 'binary') expect(r).toMatchObject({ code: 'TRAILING_BYTES' });
      }),
      { numRuns: 200 },
    );
  });
});

/**
 * The lengths at which a binary record of `msg` (of `length` bytes) cut short is still a valid
 * record, and the message it then is: where an optional part begins.
 */
function shorterValid(msg: Message, length: number): Map<number, unknown> {
  const m = msg as Message & { clientOrderId?: string; side?: string; stp?: string };
  const out = new Map<number, unknown>();
  const strip = (keys: string[]): unknown => Object.fromEntries(Object.entries(m).filter(([k]) => !keys.includes(k)));
  // What may follow the client order id: a rejected event's order (19 bytes), an accepted event's stp (1 byte).
  const rejectedOrder = m.type === 'rejected' && m.side !== undefined;
  const acceptedStp = m.type === 'accepted' && m.stp !== undefined;
  const order = rejectedOrder || acceptedStp;
  const orderKeys = rejectedOrder ? ['side', 'price', 'qty', 'tif', 'stp'] : acceptedStp ? ['stp'] : [];
  const afterId = rejectedOrder ? length - 19 : acceptedStp ? length - 1 : length;
  if (m.clientOrderId !== undefined) {
    out.set(afterId - 1 - m.clientOrderId.length, strip(['clientOrderId', ...orderKeys]));
    if (order) out.set(afterId, strip(orderKeys));
  } else if (order) {
    out.set(afterId - 1, strip(orderKeys));
  }
  return out;
}

describe('binary codec decoding hostile input', () => {
  it('turns random bodies behind a valid version and type tag into a message or a DecodeError', () => {
    fc.assert(
      fc.property(fc.constantFrom(...TAGS), fc.uint8Array({ maxLength: 130 }), (tag, body) => {
        expectMessageOrDecodeError(binaryCodec, Uint8Array.of(1, tag, ...body));
      }),
      { numRuns: 3000 },
    );
  });

  it('decodeInto never reads outside [offset, offset + length), whatever surrounds the record', () => {
    const out = new DecodedMessage();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), messageArb, fc.uint8Array({ maxLength: 40 }), fc.nat(130), (before, msg, after, cut) => {
        const rec = binaryCodec.encodeToBuffer(msg);
        const all = Buffer.concat([before, rec, after]);
        const length = Math.min(cut, rec.length);
        let r: unknown;
        try {
          r = binaryCodec.decodeInto(all, before.length, length, out).toMessage();
        } catch (e) {
          r = e;
        }
        const valid = shorterValid(msg, rec.length);
        if (length === rec.length) expect(r).toEqual(msg);
        // Cut where an optional part begins, the record is the same message without it.
        else if (valid.has(length)) expect(r).toEqual(valid.get(length));
        else expect(r).toMatchObject({ name: 'DecodeError', code: 'TRUNCATED' });
      }),
      { numRuns: 300 },
    );
  });

  it('reports a record that runs past the end of the input as TRUNCATED', () => {
    const rec = binaryCodec.encodeToBuffer({ type: 'cancel', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5 });
    expect(() => binaryCodec.decodeInto(rec, 1, rec.length, new DecodedMessage())).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
    expect(() => binaryCodec.decodeInto(rec, rec.length + 10, 0, new DecodedMessage())).toThrow(expect.objectContaining({ code: 'TRUNCATED' }));
  });
});

describe('json codec decoding hostile input', () => {
  const valueArb = fc.jsonValue();

  it('turns arbitrary JSON texts into a message or a DecodeError', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        expectMessageOrDecodeError(jsonCodec, Buffer.from(text));
      }),
      { numRuns: 1000 },
    );
  });

  it('turns arbitrary strings (any UTF-16, so also lone surrogates) into a message or a DecodeError', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 100 }), (text) => {
        expectMessageOrDecodeError(jsonCodec, Buffer.from(text));
      }),
      { numRuns: 1000 },
    );
  });

  it('reports a replaced, deleted or added property with the expected code and field', () => {
    fc.assert(
      fc.property(messageArb, fc.nat(), fc.constantFrom('replace', 'delete', 'add'), valueArb, fc.string(), (msg, i, op, value, key) => {
        const obj: Record<string, unknown> = { v: 1, ...msg };
        const keys = Object.keys(obj);
        const target = keys[i % keys.length] ?? 'v';
        if (op === 'replace') obj[target] = value;
        else if (op === 'delete') Reflect.deleteProperty(obj, target);
        else Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true }); // an own property, even for __proto__
        const r = expectMessageOrDecodeError(jsonCodec, Buffer.from(JSON.stringify(obj)));
        // A rejected event's order fields come together: the oracle says what a change to one of them gives.
        // So does an accepted event's optional stp.
        const orderField = (k: string): boolean => (msg.type === 'rejected' && ['side', 'price', 'qty', 'tif', 'stp'].includes(k)) || (msg.type === 'accepted' && k === 'stp');
        if ((op !== 'add' && orderField(target)) || (op === 'add' && orderField(key) && !Object.hasOwn(msg, key))) {
          const { v: _v, ...sent } = JSON.parse(JSON.stringify(obj)) as Record<string, unknown>;
          const bad = expectedInvalidField(sent);
          if (bad === undefined) expect(r).toEqual(sent);
          else expect(r).toMatchObject({ code: 'INVALID_FIELD', field: bad });
          return;
        }
        const optional = target === 'clientOrderId';
        if (op === 'delete' && optional) expect(r).toEqual(Object.fromEntries(Object.entries(msg).filter(([k]) => k !== 'clientOrderId')));
        if (op === 'delete' && !optional) expect(r).toMatchObject({ code: 'MISSING_FIELD', field: target });
        if (op === 'add' && !Object.hasOwn(msg, key) && key !== 'v' && !(key === 'clientOrderId' && WITH_CLIENT_ORDER_ID.includes(msg.type) && validClientOrderId(value))) {
          expect(r).toMatchObject({ code: 'INVALID_FIELD', field: key });
        }
        if (op === 'replace' && target === 'v') {
          if (value === 1) expect(r).toEqual(msg);
          else expect(r).toMatchObject({ code: typeof value === 'number' ? 'UNKNOWN_VERSION' : 'INVALID_FIELD', field: 'v' });
        }
        if (op === 'replace' && optional) {
          const sent: unknown = JSON.parse(JSON.stringify(value));
          if (validClientOrderId(sent)) expect(r).toEqual({ ...msg, clientOrderId: sent });
          else expect(r).toMatchObject({ code: 'INVALID_FIELD', field: 'clientOrderId' });
        }
        if (op === 'replace' && target !== 'v' && target !== 'type' && !optional) {
          const rule = fieldsOf(msg.type).find(([n]) => n === target)?.[1] ?? 'symbol';
          const sent: unknown = JSON.parse(JSON.stringify(value)); // what the record carries (-0 is written as 0)
          if (!satisfies(rule, sent)) expect(r).toMatchObject({ code: 'INVALID_FIELD', field: target });
          else if (crossFieldOk({ ...msg, [target]: sent })) expect(r).toEqual({ ...msg, [target]: sent });
          else expect(r).toMatchObject({ code: 'INVALID_FIELD', field: msg.type === 'amend' ? 'qty' : 'price' });
        }
      }),
      { numRuns: 1500 },
    );
  });
});
