// Review of the codecs against hostile input and against each other: JSON texts that report their
// defects out of canonical order, encoders that read a field again after validating it (a getter
// that changes between reads), hostile but stable objects, every single defect of every type
// forged into both forms, and JSON texts in every layout and integer spelling the README allows.
// Deterministic: fixed seeds for fast-check and for the small PRNG below.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BINARY_LAYOUTS,
  binaryCodec,
  DecodeError,
  EncodeError,
  jsonCodec,
  MESSAGE_TYPES,
  type Codec,
  type Message,
  type MessageType,
} from '../src/index.js';
import { ARBS, fieldsOf, messageArb, thrown, type Rule } from './support.js';

const CODECS: readonly Codec[] = [jsonCodec, binaryCodec];
const SEED = 0x0dd5eed;

/** A valid message of each type, with every optional field set where the type has some. */
const FULL: Readonly<Record<MessageType, Readonly<Record<string, unknown>>>> = {
  limit: { type: 'limit', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5, side: 'buy', price: 6, qty: 7, tif: 'GTC', stp: 'NONE', clientOrderId: 'c1' },
  market: { type: 'market', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5, side: 'sell', qty: 7, stp: 'NONE', clientOrderId: 'c1' },
  cancel: { type: 'cancel', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5 },
  amend: { type: 'amend', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5, price: 6, qty: 7 },
  accepted: { type: 'accepted', symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, orderType: 'limit', orderId: 4, userId: 5, side: 'buy', price: 6, qty: 7, tif: 'GTC', clientOrderId: 'c1', stp: 'NONE' },
  rejected: {
    type: 'rejected',
    symbol: 'BTCUSDT',
    seq: 1,
    eventSeq: 2,
    ts: 3,
    commandType: 'limit',
    orderId: 4,
    userId: 5,
    reason: 'INVALID_PRICE',
    clientOrderId: 'c1',
    side: 'buy',
    price: 6,
    qty: 7,
    tif: 'GTC',
    stp: 'NONE',
  },
  added: { type: 'added', symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, orderId: 4, userId: 5, side: 'buy', price: 6, qty: 7 },
  trade: { type: 'trade', symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, makerOrderId: 4, takerOrderId: 5, makerUserId: 6, takerUserId: 7, takerSide: 'sell', price: 8, qty: 9, makerRemaining: 10 },
  canceled: { type: 'canceled', symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, orderId: 4, userId: 5, reason: 'USER', qty: 6 },
  amended: { type: 'amended', symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, orderId: 4, userId: 5, side: 'buy', price: 6, qty: 7, kind: 'REDUCE' },
  cmdEnd: { type: 'cmdEnd', symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, events: 4 },
};

const asMessage = (m: Readonly<Record<string, unknown>>): Message => m as unknown as Message;
const text = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The DecodeError of decoding `bytes` as `{ code, field }`, or the message. Anything else propagates. */
function outcome(codec: Codec, bytes: Uint8Array): Message | { code: string; field: string | undefined } {
  try {
    return codec.decode(bytes);
  } catch (e) {
    if (e instanceof DecodeError) return { code: e.code, field: e.field };
    throw e;
  }
}

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Bugs
// ---------------------------------------------------------------------------------------------

describe('JSON decode: the first defect in canonical order when the text holds more than one rounded number', () => {
  // README, Invariants: "On decode the JSON codec reports in canonical order too (a number written
  // with a fraction that `JSON.parse` rounds included)", and the decode order is "`v` ... (then)
  // each field in canonical order is present and valid". `fractionalNumber` returns only the FIRST
  // such number in the text, so a rounded number in a field that comes first in canonical order but
  // later in the text is passed over, and a later field is named instead.
  it('names the first field in canonical order, not the first rounded number in the text', () => {
    const rest = '"symbol":"BTCUSDT","reqId":0,"orderId":1,"userId":0';
    const R = '1.00000000000000001'; // JSON.parse reads 1: not an integer by its text
    const cases: [string, string, string][] = [
      // [what, text, the field the README's order names]
      ['ts and seq both rounded, ts written first', `{"v":1,"type":"cancel",${rest},"ts":${R},"seq":${R}}`, 'seq'],
      ['ts 0.5 (invalid by value), seq rounded, ts written first', `{"v":1,"type":"cancel",${rest},"ts":0.5,"seq":${R}}`, 'seq'],
      ['v and seq both rounded, seq written first', `{"seq":${R},"v":${R},"type":"cancel",${rest},"ts":0}`, 'v'],
      ['seq and a rejected order price both rounded, price written first', `{"v":1,"type":"rejected","price":${R},"symbol":"A","seq":${R},"eventSeq":0,"ts":0,"commandType":"limit","orderId":1,"userId":0,"reason":"INVALID_PRICE","side":"buy","qty":1,"tif":"GTC","stp":"NONE"}`, 'seq'],
    ];
    const got = cases.map(([what, t]) => [what, (outcome(jsonCodec, text(t)) as { field?: string }).field]);
    expect(got).toEqual(cases.map(([what, , field]) => [what, field]));
  });

  // The member name `fractionalNumber` reports is the raw text between the quotes, not the key
  // JSON.parse makes of it: a field whose name is written with an escape (`"s\u0065q"` is the key
  // `seq`, which the codec otherwise accepts) is never matched, so the error names a field that does
  // not exist (`s\u0065q`), and out of canonical order when another field is bad too. README,
  // Failure modes: errors carry "the `field` ... they are about".
  it('a rounded number under a key written with an escape is reported as that field, by its name', () => {
    const base = '{"v":1,"type":"cancel","symbol":"BTCUSDT","s\\u0065q":1.00000000000000001,"reqId":0,"orderId":1,"userId":0,"ts":0}';
    // The same key without the fraction decodes: the escape itself is fine.
    expect(jsonCodec.decode(text(base.replace('1.00000000000000001', '1')))).toMatchObject({ seq: 1 });
    const alone = outcome(jsonCodec, text(base));
    const withBadTs = outcome(jsonCodec, text(base.replace('"ts":0', '"ts":"x"')));
    expect([alone, withBadTs]).toEqual([
      { code: 'INVALID_FIELD', field: 'seq' },
      { code: 'INVALID_FIELD', field: 'seq' },
    ]);
  });
});

/** Thrown by the getters below, to tell it from the codecs' own errors. */
class GetterError extends Error {}

/**
 * `m` with field `f` replaced by an enumerable getter that answers `first` for its first `k` reads
 * and `then` afterwards (or throws a GetterError afterwards when `then` is GetterError).
 */
function flipping(m: Readonly<Record<string, unknown>>, f: string, first: unknown, then: unknown, k = 1): Message {
  const copy: Record<string, unknown> = { ...m };
  let reads = 0;
  Object.defineProperty(copy, f, {
    enumerable: true,
    configurable: true,
    get: () => {
      reads++;
      if (reads <= k) return first;
      if (then === GetterError) throw new GetterError(`read ${reads} of ${f}`);
      return then;
    },
  });
  return asMessage(copy);
}

/**
 * What the README promises of one encode call: it throws having written nothing, or it writes
 * exactly the bytes it returns, a record the same codec decodes ("an invalid message is never
 * written"). The violation, or undefined.
 */
function encodeViolation(codec: Codec, msg: Message): string | undefined {
  const buf = new Uint8Array(codec.maxLength + 40).fill(0xee);
  const at = 10;
  let n: number;
  try {
    n = codec.encode(msg, buf, at);
  } catch (e) {
    if (buf.some((b) => b !== 0xee)) return `threw ${String(e)} after writing`;
    if (!(e instanceof EncodeError) && !(e instanceof GetterError)) return `threw ${String(e)}`;
    return undefined;
  }
  if (buf.subarray(0, at).some((b) => b !== 0xee) || buf.subarray(at + n).some((b) => b !== 0xee)) return `wrote outside the ${n} bytes it returned`;
  const r = outcome(codec, buf.subarray(at, at + n));
  if ('code' in r) return `wrote a record it refuses to read: ${r.code} ${String(r.field)}`;
  return undefined;
}

/** Messages whose field answers one value on its first read(s) and another on later ones. */
const FLIPPING: readonly [string, () => Message][] = [
  ['accepted: orderType market on the first read, then limit (price 6)', () => flipping(FULL.accepted, 'orderType', 'market', 'limit')],
  ['accepted: price 0 on the first read, then 6 (a limit order)', () => flipping(FULL.accepted, 'price', 0, 6)],
  ['accepted: stp absent for two reads, then NONE', () => flipping(FULL.accepted, 'stp', undefined, 'NONE', 2)],
  ['rejected: commandType cancel on the first read, then limit (with the order)', () => flipping(FULL.rejected, 'commandType', 'cancel', 'limit')],
  ['rejected: side absent on the first read, then buy', () => flipping(FULL.rejected, 'side', undefined, 'buy')],
  ['rejected: qty 7 on the first read, then 0', () => flipping(FULL.rejected, 'qty', 7, 0)],
  ['amended: price 0 on the first read, then 6 (kind REDUCE)', () => flipping(FULL.amended, 'price', 0, 6)],
  ...[1, 2, 3, 4, 5, 6].map((k): [string, () => Message] => [`rejected: stp NONE for ${k} read(s), then the getter throws`, () => flipping(FULL.rejected, 'stp', 'NONE', GetterError, k)]),
  ...[1, 2, 3, 4].map((k): [string, () => Message] => [`accepted: stp NONE for ${k} read(s), then the getter throws`, () => flipping(FULL.accepted, 'stp', 'NONE', GetterError, k)]),
];

describe('encode of a message whose getter answers differently on a later read', () => {
  // README: "An invalid message is refused on encode, before a byte is written"; "`encode` writes
  // ... and returns the number of bytes written"; "When it throws, it has written nothing". The
  // encoders validate a field and then read it again to write it (binary: `m.stp` four times in
  // encodeAccepted, `m.orderType` twice, the rejected order's fields after the header is written;
  // JSON: `crossFieldError` and `rejectedOrderError` re-read the fields `measure` already copied to
  // VALUES). With a getter (a Proxy, an accessor-backed model object) the value checked is not the
  // value written: a record the codec itself refuses to decode, a byte written past the returned
  // length, or a header written before the getter throws.
  it('binary encode writes only what it validated (reads each field once)', () => {
    const bad = FLIPPING.map(([what, make]) => [what, encodeViolation(binaryCodec, make())] as const).filter(([, v]) => v !== undefined);
    expect(bad).toEqual([]);
  });

  it('JSON encode writes only what it validated (reads each field once)', () => {
    const bad = FLIPPING.map(([what, make]) => [what, encodeViolation(jsonCodec, make())] as const).filter(([, v]) => v !== undefined);
    expect(bad).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Checks that pass
// ---------------------------------------------------------------------------------------------

describe('hostile but stable objects encode like the plain message', () => {
  /** Every shape of object that holds the same field values as `m`. */
  function shapes(m: Message): [string, unknown][] {
    const plain = { ...m } as Record<string, unknown>;
    const getters: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(plain)) Object.defineProperty(getters, k, { get: () => v, enumerable: false });
    const sym = Symbol('extra');
    return [
      ['frozen', Object.freeze({ ...plain })],
      ['a transparent Proxy', new Proxy({ ...plain }, {})],
      ['a Proxy answering every read through a trap', new Proxy({}, { get: (_t, k) => (typeof k === 'string' ? plain[k] : undefined) })],
      ['a null-prototype object', Object.assign(Object.create(null) as object, plain)],
      ['fields as getters on the prototype (a class)', Object.create(getters) as object],
      ['fields as non-enumerable own properties', Object.defineProperties({}, Object.fromEntries(Object.entries(plain).map(([k, v]) => [k, { value: v, enumerable: false }])))],
      ['extra string, symbol, __proto__ and numeric keys', Object.assign(JSON.parse('{"__proto__":{"price":1}}') as object, plain, { [sym]: 1, 0: 'x', constructor: 5, v: 2, extra: { deep: [1.5] } })],
    ];
  }

  it('in both codecs, to the same bytes, for every type (seeded)', () => {
    fc.assert(
      fc.property(messageArb, (msg) => {
        for (const codec of CODECS) {
          const want = codec.encodeToBuffer(msg);
          for (const [what, obj] of shapes(msg)) {
            expect(codec.encodedLength(obj as Message), what).toBe(want.length);
            expect(codec.encodeToBuffer(obj as Message), what).toEqual(want);
          }
          expect(codec.decode(want)).toEqual(msg);
        }
      }),
      { numRuns: 150, seed: SEED },
    );
  });

  it('a getter that always throws: the error propagates and nothing is written, for every field of every type, in both codecs', () => {
    for (const type of MESSAGE_TYPES) {
      for (const field of Object.keys(FULL[type]).filter((k) => k !== 'type')) {
        for (const codec of CODECS) {
          const msg = flipping(FULL[type], field, undefined, GetterError, 0);
          const buf = new Uint8Array(codec.maxLength + 8).fill(0xee);
          expect(thrown(() => codec.encode(msg, buf, 4)), `${codec.name} ${type}.${field}`).toBeInstanceOf(GetterError);
          expect(buf.every((b) => b === 0xee)).toBe(true);
        }
      }
    }
  });
});

describe('single defects forged into both forms: both codecs refuse them and name the same field', () => {
  /** A u64 LE (as two u32 halves) at `at`. */
  function u64(b: Uint8Array, at: number, lo: number, hi: number): void {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    dv.setUint32(at, lo, true);
    dv.setUint32(at + 4, hi, true);
  }

  /** Breaks `field` (rule `rule`) of `msg` in its binary record and in its JSON object; the JSON text of the latter. */
  function forge(msg: Message, field: string, rule: Rule): { bin: Uint8Array; json: string } {
    const bin = Uint8Array.from(binaryCodec.encodeToBuffer(msg));
    const obj: Record<string, unknown> = { v: 1, ...msg };
    const at = BINARY_LAYOUTS[msg.type].find((f) => f.field === field)?.offset ?? -1;
    expect(at).toBeGreaterThan(1);
    if (rule === 'pos') {
      u64(bin, at, 0, 0); // 0 where at least 1 is required
      obj[field] = 0;
    } else if (rule === 'nat') {
      u64(bin, at, 0, 0x200000); // 2^53: unsafe
      obj[field] = 2 ** 53;
    } else if (rule !== 'symbol') {
      bin[at] = rule.length; // the first code past the list
      obj[field] = 'BOGUS';
    }
    return { bin, json: JSON.stringify(obj) };
  }

  it('every integer and enum field of every type (seeded messages)', () => {
    for (const type of MESSAGE_TYPES) {
      fc.assert(
        fc.property(ARBS[type], (msg) => {
          for (const [field, rule] of fieldsOf(type)) {
            if (rule === 'symbol') continue;
            const { bin, json } = forge(msg, field, rule);
            const b = outcome(binaryCodec, bin);
            const j = outcome(jsonCodec, text(json));
            expect(b, `${type}.${field} binary`).toEqual({ code: 'INVALID_FIELD', field });
            expect(j, `${type}.${field} json`).toEqual({ code: 'INVALID_FIELD', field });
          }
        }),
        { numRuns: 15, seed: SEED },
      );
    }
  });

  it('the cross-field rules, and a rejected order on the wrong command or at the wrong price', () => {
    const cases: [string, Record<string, unknown>, (b: Uint8Array) => void, string][] = [];
    const at = (type: MessageType, field: string): number => BINARY_LAYOUTS[type].find((f) => f.field === field)?.offset ?? -1;
    const cidEnd = (m: Readonly<Record<string, unknown>>): number => at(m.type as MessageType, 'symbol') + (m.symbol as string).length + 1 + (m.clientOrderId as string).length;
    cases.push(['accepted limit at price 0', { ...FULL.accepted, price: 0 }, (b) => { u64(b, at('accepted', 'price'), 0, 0); }, 'price']);
    cases.push(['accepted market at price 6', { ...FULL.accepted, orderType: 'market' }, (b) => (b[at('accepted', 'orderType')] = 1), 'price']);
    cases.push(['amended REDUCE at price 0', { ...FULL.amended, price: 0 }, (b) => { u64(b, at('amended', 'price'), 0, 0); }, 'price']);
    cases.push(['amend at price 0 and qty 0', { ...FULL.amend, price: 0, qty: 0 }, (b) => { u64(b, at('amend', 'price'), 0, 0); u64(b, at('amend', 'qty'), 0, 0); }, 'qty']);
    cases.push(['rejected cancel with an order', { ...FULL.rejected, commandType: 'cancel' }, (b) => (b[at('rejected', 'commandType')] = 2), 'side']);
    cases.push(['rejected amend with an order', { ...FULL.rejected, commandType: 'amend' }, (b) => (b[at('rejected', 'commandType')] = 3), 'side']);
    cases.push(['rejected market at price 6', { ...FULL.rejected, commandType: 'market' }, (b) => (b[at('rejected', 'commandType')] = 1), 'price']);
    cases.push(['rejected limit at price 0', { ...FULL.rejected, price: 0 }, (b) => { u64(b, cidEnd(FULL.rejected) + 3, 0, 0); }, 'price']);
    cases.push(['rejected order qty 0', { ...FULL.rejected, qty: 0 }, (b) => { u64(b, cidEnd(FULL.rejected) + 11, 0, 0); }, 'qty']);
    cases.push(['rejected order price 2^53', { ...FULL.rejected, price: 2 ** 53 }, (b) => { u64(b, cidEnd(FULL.rejected) + 3, 0, 0x200000); }, 'price']);
    cases.push(['rejected order tif code 4', { ...FULL.rejected, tif: 'BOGUS' }, (b) => (b[cidEnd(FULL.rejected) + 1] = 4), 'tif']);
    cases.push(['accepted stp code 5', { ...FULL.accepted, stp: 'BOGUS' }, (b) => (b[cidEnd(FULL.accepted)] = 5), 'stp']);
    const got = cases.map(([what, obj, patch]) => {
      const bin = Uint8Array.from(binaryCodec.encodeToBuffer(asMessage(FULL[obj.type as MessageType])));
      patch(bin);
      return [what, outcome(binaryCodec, bin), outcome(jsonCodec, text(JSON.stringify({ v: 1, ...obj })))];
    });
    expect(got).toEqual(cases.map(([what, , , field]) => [what, { code: 'INVALID_FIELD', field }, { code: 'INVALID_FIELD', field }]));
  });
});

describe('JSON texts in any layout and integer spelling the README allows', () => {
  /** Spellings of the non-negative safe integer `n` whose value, by their text, is exactly `n`. */
  function integerSpellings(n: number): string[] {
    if (n === 0) return ['0', '0.0', '0.000', '0e0', '0E+0', '0.0e1', '-0', '-0.0', '0e7', '-0E-3'];
    const s = String(n);
    return [s, `${s}.0`, `${s}.000`, `${s}e0`, `${s}E+0`, `${s}0e-1`, `${s}00E-2`, `0.${s}e${s.length}`];
  }

  /** `msg` as a JSON text: keys shuffled, random whitespace, characters of strings \u-escaped at random, integers spelled at random. */
  function loose(msg: Message, rnd: () => number, escapeKeys: boolean, spell: (k: string, n: number) => string): string {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const ws = (): string => pick(['', '', ' ', '\n', '\t', ' \r\n  ']);
    const str = (s: string, escape: boolean): string =>
      `"${Array.from(s, (c) => (escape && rnd() < 0.4 ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c)).join('')}"`;
    const entries: [string, unknown][] = Object.entries({ v: 1, ...msg });
    for (let i = entries.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [entries[i], entries[j]] = [entries[j] as [string, unknown], entries[i] as [string, unknown]];
    }
    const body = entries.map(([k, v]) => `${ws()}${str(k, escapeKeys)}${ws()}:${ws()}${typeof v === 'number' ? spell(k, v) : str(String(v), true)}${ws()}`);
    return `${ws()}{${body.join(',')}}${ws()}`;
  }

  it('decode to the message, which re-encodes to the canonical bytes of both codecs (seeded)', () => {
    fc.assert(
      fc.property(messageArb, fc.integer(), (msg, seed) => {
        const rnd = prng(seed);
        const t = loose(msg, rnd, true, (_k, n) => {
          const xs = integerSpellings(n);
          return xs[Math.floor(rnd() * xs.length)] as string;
        });
        const back = jsonCodec.decode(text(t));
        expect(back, t).toEqual(msg);
        expect(jsonCodec.encodeToBuffer(back)).toEqual(jsonCodec.encodeToBuffer(msg));
        expect(binaryCodec.encodeToBuffer(back)).toEqual(binaryCodec.encodeToBuffer(msg));
      }),
      { numRuns: 400, seed: SEED },
    );
  });

  it('one integer field written with a fraction (rounded away by JSON.parse or not) is INVALID_FIELD naming it, in any layout (seeded)', () => {
    // Two that JSON.parse reads as an integer for most n (the fraction is below its precision), two that it does not.
    const fractions = (n: number): string[] =>
      n === 0 ? ['0.00000000000000001', '5e-17', '0.5', '1e-1'] : [`${n}.00000000000000001`, `${n}00000000000000001e-17`, `${n}.5`, `${n}1e-1`];
    fc.assert(
      fc.property(messageArb, fc.integer(), fc.nat(), fc.nat(3), (msg, seed, which, form) => {
        const rnd = prng(seed);
        const ints = Object.entries({ v: 1, ...msg }).filter(([, v]) => typeof v === 'number');
        const [target] = ints[which % ints.length] ?? ['v'];
        const t = loose(msg, rnd, false, (k, n) => (k === target ? (fractions(n)[form] as string) : String(n)));
        const r = outcome(jsonCodec, text(t));
        // A version that JSON.parse does not read as 1 is another version; one it reads as 1 is not an integer.
        const unknownVersion = target === 'v' && Number(fractions(1)[form]) !== 1;
        expect(r, t).toEqual({ code: unknownVersion ? 'UNKNOWN_VERSION' : 'INVALID_FIELD', field: target });
      }),
      { numRuns: 600, seed: SEED },
    );
  });

  it('SharedArrayBuffer-backed input and output, and pooled Buffers at odd offsets, in both codecs', () => {
    for (const codec of CODECS) {
      for (const type of MESSAGE_TYPES) {
        const msg = asMessage(FULL[type]);
        const shared = new Uint8Array(new SharedArrayBuffer(codec.maxLength + 3), 3);
        const n = codec.encode(msg, shared, 0);
        expect(codec.decode(shared.subarray(0, n))).toEqual(msg);
        const pooled = Buffer.from(`x${Buffer.from(shared.subarray(0, n)).toString('latin1')}`, 'latin1').subarray(1);
        expect(codec.decode(pooled)).toEqual(msg);
      }
    }
  });
});
