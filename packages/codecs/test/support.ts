// Test support: the field rules as the README states them (written out independently of the
// source's schema), arbitraries for every message type, and helpers.
import fc from 'fast-check';
import { expect } from 'vitest';
import {
  AMEND_KINDS,
  CANCEL_REASONS,
  COMMAND_TYPES,
  DecodeError,
  MESSAGE_TYPES,
  ORDER_TYPES,
  REJECT_REASONS,
  SELF_TRADE_PREVENTIONS,
  SIDES,
  TIMES_IN_FORCE,
  type Codec,
  type CodecErrorCode,
  type Message,
  type MessageType,
} from '../src/index.js';

/** A field's range: the symbol rule, a non-negative or a positive safe integer, or a list of values. */
export type Rule = 'symbol' | 'nat' | 'pos' | readonly string[];
// The required fields only (an optional one's type includes undefined).
type Rules<M> = { readonly [K in Exclude<keyof M, 'type'> as undefined extends M[K] ? never : K]-?: Rule };

/** Every field of every type, in canonical order, with its range (the README's table). */
export const RULES: { readonly [T in MessageType]: Rules<Extract<Message, { type: T }>> } = {
  limit: { symbol: 'symbol', seq: 'nat', reqId: 'nat', orderId: 'pos', userId: 'nat', ts: 'nat', side: SIDES, price: 'pos', qty: 'pos', tif: TIMES_IN_FORCE, stp: SELF_TRADE_PREVENTIONS },
  market: { symbol: 'symbol', seq: 'nat', reqId: 'nat', orderId: 'pos', userId: 'nat', ts: 'nat', side: SIDES, qty: 'pos', stp: SELF_TRADE_PREVENTIONS },
  cancel: { symbol: 'symbol', seq: 'nat', reqId: 'nat', orderId: 'pos', userId: 'nat', ts: 'nat' },
  amend: { symbol: 'symbol', seq: 'nat', reqId: 'nat', orderId: 'pos', userId: 'nat', ts: 'nat', price: 'nat', qty: 'nat' },
  accepted: { symbol: 'symbol', seq: 'nat', eventSeq: 'nat', ts: 'nat', orderType: ORDER_TYPES, orderId: 'pos', userId: 'nat', side: SIDES, price: 'nat', qty: 'pos', tif: TIMES_IN_FORCE },
  rejected: { symbol: 'symbol', seq: 'nat', eventSeq: 'nat', ts: 'nat', commandType: COMMAND_TYPES, orderId: 'nat', userId: 'nat', reason: REJECT_REASONS },
  added: { symbol: 'symbol', seq: 'nat', eventSeq: 'nat', ts: 'nat', orderId: 'pos', userId: 'nat', side: SIDES, price: 'pos', qty: 'pos' },
  trade: {
    symbol: 'symbol',
    seq: 'nat',
    eventSeq: 'nat',
    ts: 'nat',
    makerOrderId: 'pos',
    takerOrderId: 'pos',
    makerUserId: 'nat',
    takerUserId: 'nat',
    takerSide: SIDES,
    price: 'pos',
    qty: 'pos',
    makerRemaining: 'nat',
  },
  canceled: { symbol: 'symbol', seq: 'nat', eventSeq: 'nat', ts: 'nat', orderId: 'pos', userId: 'nat', reason: CANCEL_REASONS, qty: 'pos' },
  amended: { symbol: 'symbol', seq: 'nat', eventSeq: 'nat', ts: 'nat', orderId: 'pos', userId: 'nat', side: SIDES, price: 'nat', qty: 'pos', kind: AMEND_KINDS },
  cmdEnd: { symbol: 'symbol', seq: 'nat', eventSeq: 'nat', ts: 'nat', events: 'nat' },
};

export const fieldsOf = (type: MessageType): [string, Rule][] => Object.entries<Rule>(RULES[type]);

/** The types whose messages may carry a client order id (optional, after the other fields). */
export const WITH_CLIENT_ORDER_ID: readonly MessageType[] = ['limit', 'market', 'accepted', 'rejected'];

/** A rejected event's order fields, in canonical order, with their rules: all present or all absent. */
export const REJECTED_ORDER_RULES: readonly [string, Rule][] = [
  ['side', SIDES],
  ['price', 'nat'],
  ['qty', 'pos'],
  ['tif', TIMES_IN_FORCE],
  ['stp', SELF_TRADE_PREVENTIONS],
];

/**
 * The field a rejected event's order fields break, if any: an invalid one; one missing while
 * others are there; any of them on a cancel's or an amend's rejection (named by the first, side);
 * a price that is not 0 for a market order or positive for a limit order.
 */
export function rejectedOrderProblem(m: Record<string, unknown>): string | undefined {
  for (const [name, rule] of REJECTED_ORDER_RULES) if (m[name] !== undefined && !satisfies(rule, m[name])) return name;
  const present = REJECTED_ORDER_RULES.filter(([name]) => m[name] !== undefined).length;
  if (present === 0) return undefined;
  if (present < REJECTED_ORDER_RULES.length) return REJECTED_ORDER_RULES.find(([name]) => m[name] === undefined)?.[0];
  if (m.commandType !== 'limit' && m.commandType !== 'market') return 'side';
  return (m.commandType === 'market' ? m.price === 0 : m.price !== 0) ? undefined : 'price';
}

/** The client order id rule: 1 to 64 characters of A-Z a-z 0-9 . _ : - */
export const validClientOrderId = (v: unknown): boolean => typeof v === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(v);

export const clientOrderIdArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('a', 'order-1', 'Z'.repeat(64), 'x:y.z_0-9'),
  fc.string({ unit: fc.constantFrom(...Array.from('ABCXYZabcxyz0189._:-')), minLength: 1, maxLength: 64 }),
);

/** Whether `v` satisfies `rule` (the per-field rules; the two cross-field rules are in `crossFieldOk`). */
export function satisfies(rule: Rule, v: unknown): boolean {
  if (rule === 'symbol') return typeof v === 'string' && /^[A-Z0-9._-]{1,32}$/.test(v);
  if (rule === 'nat' || rule === 'pos') return typeof v === 'number' && Number.isSafeInteger(v) && v >= (rule === 'pos' ? 1 : 0);
  return typeof v === 'string' && rule.includes(v);
}

/** The cross-field rules: accepted price 0 iff market; amended price 0 only for SELF_TRADE_DECREMENT; amend qty 0 only with a price. */
export function crossFieldOk(m: Record<string, unknown>): boolean {
  if (m.type === 'accepted') return m.orderType === 'market' ? m.price === 0 : m.price !== 0;
  if (m.type === 'amended') return m.price !== 0 || m.kind === 'SELF_TRADE_DECREMENT';
  if (m.type === 'amend') return m.qty !== 0 || m.price !== 0;
  return true;
}

/** The field an encoder must name for `m`, or undefined if `m` is valid (the independent oracle). */
export function expectedInvalidField(m: Record<string, unknown>): string | undefined {
  const type = m.type;
  if (typeof type !== 'string' || !(MESSAGE_TYPES as readonly string[]).includes(type)) return 'type';
  for (const [name, rule] of fieldsOf(type as MessageType)) if (!satisfies(rule, m[name])) return name;
  if (!crossFieldOk(m)) return m.type === 'amend' ? 'qty' : 'price';
  if (WITH_CLIENT_ORDER_ID.includes(type as MessageType) && m.clientOrderId !== undefined && !validClientOrderId(m.clientOrderId)) return 'clientOrderId';
  if (type === 'rejected') return rejectedOrderProblem(m);
  if (type === 'accepted' && m.stp !== undefined && !(SELF_TRADE_PREVENTIONS as readonly unknown[]).includes(m.stp)) return 'stp';
  return undefined;
}

const MAX = Number.MAX_SAFE_INTEGER;
/** Non-negative safe integers, biased to small values and to the edges of the u32 halves. */
export const natArb: fc.Arbitrary<number> = fc.oneof(
  fc.nat(1000),
  fc.maxSafeNat(),
  fc.constantFrom(0, 1, 255, 256, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 52, MAX - 1, MAX),
);
export const posArb: fc.Arbitrary<number> = natArb.filter((n) => n >= 1);
export const symbolArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('BTCUSDT', 'ETHUSDT', 'A', 'X'.repeat(32)),
  fc.string({ unit: fc.constantFrom(...Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-')), minLength: 1, maxLength: 32 }),
);

function valueArb(rule: Rule): fc.Arbitrary<unknown> {
  if (rule === 'symbol') return symbolArb;
  if (rule === 'nat') return natArb;
  if (rule === 'pos') return posArb;
  return fc.constantFrom(...rule);
}

function recordArb(type: MessageType, overrides: Record<string, fc.Arbitrary<unknown>> = {}): fc.Arbitrary<Message> {
  const model: Record<string, fc.Arbitrary<unknown>> = { type: fc.constant(type) };
  for (const [name, rule] of fieldsOf(type)) model[name] = overrides[name] ?? valueArb(rule);
  const requiredKeys = Object.keys(model);
  // A client order id, where the type has one, present in some messages and absent from others.
  if (WITH_CLIENT_ORDER_ID.includes(type)) model.clientOrderId = clientOrderIdArb;
  return fc.record(model, { requiredKeys }) as unknown as fc.Arbitrary<Message>;
}

/** Arbitrary valid messages of each type. */
export const ARBS: { readonly [T in MessageType]: fc.Arbitrary<Message> } = {
  limit: recordArb('limit'),
  market: recordArb('market'),
  cancel: recordArb('cancel'),
  amend: fc.oneof(recordArb('amend', { qty: posArb }), recordArb('amend', { price: posArb, qty: fc.constant(0) })),
  accepted: fc
    .tuple(
      fc.oneof(
        recordArb('accepted', { orderType: fc.constant('limit'), price: posArb }),
        recordArb('accepted', { orderType: fc.constant('market'), price: fc.constant(0) }),
      ),
      // The order's stp, present in some (as the engine writes them) and absent from others (as before it did).
      fc.option(fc.constantFrom(...SELF_TRADE_PREVENTIONS), { nil: undefined }),
    )
    .map(([m, stp]) => (stp === undefined ? m : ({ ...m, stp } as Message))),
  rejected: fc.oneof(
    recordArb('rejected'),
    // A limit or market order's rejection with the order's fields.
    fc
      .tuple(
        recordArb('rejected', { commandType: fc.constantFrom('limit', 'market') }),
        fc.record({ side: fc.constantFrom(...SIDES), price: posArb, qty: posArb, tif: fc.constantFrom(...TIMES_IN_FORCE), stp: fc.constantFrom(...SELF_TRADE_PREVENTIONS) }),
      )
      .map(([m, order]) => ({ ...m, ...order, price: (m as { commandType: string }).commandType === 'market' ? 0 : order.price }) as Message),
  ),
  added: recordArb('added'),
  trade: recordArb('trade'),
  canceled: recordArb('canceled'),
  amended: fc.oneof(
    recordArb('amended', { price: posArb }),
    recordArb('amended', { price: fc.constant(0), kind: fc.constant('SELF_TRADE_DECREMENT') }),
  ),
  cmdEnd: recordArb('cmdEnd'),
};

/** An arbitrary valid message of any type. */
export const messageArb: fc.Arbitrary<Message> = fc.oneof(...MESSAGE_TYPES.map((t) => ARBS[t]));

/** Values that break each kind of rule (every one of them is invalid for that rule). */
export function badValues(rule: Rule): unknown[] {
  const common = [null, undefined, true, {}, [], Symbol('x'), 10n];
  if (rule === 'symbol') return [...common, '', 'btcusdt', 'BTC USD', 'X'.repeat(33), 'BTC/USD', 'É', 'BTC\u0000', 5];
  if (rule === 'nat' || rule === 'pos') {
    const ints = [...common, -1, -MAX, 1.5, 0.1, NaN, Infinity, -Infinity, MAX + 1, 2 ** 64, '1', '0'];
    return rule === 'pos' ? [...ints, 0, -0] : ints;
  }
  return [...common, '', 'x', 0, 1, rule.join(''), (rule[0] ?? '').toUpperCase() === rule[0] ? (rule[0] ?? '').toLowerCase() : (rule[0] ?? '').toUpperCase()];
}

/** The codes each codec may throw when decoding. */
export const DECODE_CODES: Readonly<Record<string, readonly CodecErrorCode[]>> = {
  json: ['MALFORMED', 'UNKNOWN_VERSION', 'UNKNOWN_TYPE', 'MISSING_FIELD', 'INVALID_FIELD'],
  binary: ['TRUNCATED', 'UNKNOWN_VERSION', 'UNKNOWN_TYPE', 'INVALID_FIELD', 'TRAILING_BYTES'],
};

/** Decodes `bytes`, returning the message or the DecodeError; any other exception propagates (and fails the test). */
export function decodeOutcome(codec: Codec, bytes: Uint8Array): Message | DecodeError {
  try {
    return codec.decode(bytes);
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
}

/**
 * Checks that `bytes` decode to a valid message (one the codec encodes again, to bytes that decode
 * to the same message) or fail with a DecodeError of one of the codec's codes. Returns the outcome.
 */
export function expectMessageOrDecodeError(codec: Codec, bytes: Uint8Array): Message | DecodeError {
  const r = decodeOutcome(codec, bytes);
  if (r instanceof DecodeError) {
    expect(DECODE_CODES[codec.name]).toContain(r.code);
    if (r.code === 'INVALID_FIELD' || r.code === 'MISSING_FIELD') expect(typeof r.field).toBe('string');
  } else {
    expect(expectedInvalidField(r as unknown as Record<string, unknown>)).toBeUndefined();
    expect(codec.decode(codec.encodeToBuffer(r))).toEqual(r);
  }
  return r;
}

/** Runs `fn` and returns the error it throws (failing if it does not throw). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  expect.unreachable('expected an exception');
}
