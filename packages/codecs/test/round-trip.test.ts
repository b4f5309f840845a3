// Round trips through both codecs, for every message type.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { binaryCodec, DecodedMessage, jsonCodec, MESSAGE_TYPES, type Codec, type Message } from '../src/index.js';
import { ARBS, fieldsOf, messageArb } from './support.js';

const CODECS: readonly Codec[] = [jsonCodec, binaryCodec];

describe.each(CODECS.map((c) => [c.name, c] as const))('%s codec round trip', (_name, codec) => {
  it.each(MESSAGE_TYPES)('decode(encode(x)) deep-equals x for %s', (type) => {
    fc.assert(
      fc.property(ARBS[type], (msg) => {
        const bytes = codec.encodeToBuffer(msg);
        expect(bytes.length).toBe(codec.encodedLength(msg));
        expect(bytes.length).toBeLessThanOrEqual(codec.maxLength);
        const back = codec.decode(bytes);
        expect(back).toEqual(msg);
        // Only the type's own fields, in canonical order (then the client order id, when there is one).
        const cid = (msg as { clientOrderId?: string }).clientOrderId === undefined ? [] : ['clientOrderId'];
        const order =
          msg.type === 'rejected' && msg.side !== undefined ? ['side', 'price', 'qty', 'tif', 'stp'] : msg.type === 'accepted' && msg.stp !== undefined ? ['stp'] : [];
        expect(Object.keys(back)).toEqual(['type', ...fieldsOf(type).map(([n]) => n), ...cid, ...order]);
      }),
      { numRuns: 150 },
    );
  });

  it('encodes the same message to the same bytes whatever the order of its properties', () => {
    fc.assert(
      fc.property(messageArb, (msg) => {
        const reversed = Object.fromEntries(Object.entries(msg).reverse()) as unknown as Message;
        expect(Buffer.compare(codec.encodeToBuffer(reversed), codec.encodeToBuffer(msg))).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('ignores properties that are not fields of the type', () => {
    fc.assert(
      fc.property(messageArb, (msg) => {
        const extra = { ...msg, extra: 1, eventSeq2: 'x' } as unknown as Message;
        expect(codec.decode(codec.encodeToBuffer(extra))).toEqual(msg);
      }),
      { numRuns: 50 },
    );
  });
});

describe('binary decodeInto', () => {
  it('fills a reused DecodedMessage with the same fields as decode, records of all types in a row', () => {
    const out = new DecodedMessage();
    fc.assert(
      fc.property(fc.array(messageArb, { minLength: 1, maxLength: 20 }), (msgs) => {
        for (const msg of msgs) {
          const bytes = binaryCodec.encodeToBuffer(msg);
          expect(binaryCodec.decodeInto(bytes, 0, bytes.length, out)).toBe(out);
          const fields = out as unknown as Record<string, unknown>;
          for (const [k, v] of Object.entries(msg)) expect(fields[k]).toBe(v);
          expect(out.toMessage()).toEqual(msg);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('decodes records packed back to back in one buffer, at their offsets', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { minLength: 1, maxLength: 30 }), fc.nat(16), (msgs, start) => {
        const buf = new Uint8Array(start + msgs.length * binaryCodec.maxLength);
        const at: number[] = [];
        let p = start;
        for (const m of msgs) {
          at.push(p);
          p += binaryCodec.encode(m, buf, p);
        }
        const out = new DecodedMessage();
        msgs.forEach((m, i) => {
          const end = at[i + 1] ?? p;
          const offset = at[i] ?? 0;
          expect(binaryCodec.decodeInto(buf, offset, end - offset, out).toMessage()).toEqual(m);
        });
      }),
      { numRuns: 100 },
    );
  });

  it('returns the right symbol for many distinct and near-identical symbols (intern cache collisions)', () => {
    const alphabet = fc.constantFrom('A', 'B', '0', '.', '_');
    const sym = fc.string({ unit: alphabet, minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(fc.array(sym, { minLength: 300, maxLength: 600 }), (symbols) => {
        const out = new DecodedMessage();
        for (const symbol of symbols) {
          const bytes = binaryCodec.encodeToBuffer({ type: 'cmdEnd', symbol, seq: 1, eventSeq: 2, ts: 3, events: 1 });
          expect(binaryCodec.decodeInto(bytes, 0, bytes.length, out).symbol).toBe(symbol);
        }
      }),
      { numRuns: 20 },
    );
  });
});
