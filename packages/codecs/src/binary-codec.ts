// The binary codec: a fixed little-endian layout per message type. Byte 0 is the version (1),
// byte 1 the type tag, then the enum fields (u8 codes: the index of the value in its list in
// types.ts), then the integer fields (u64 LE, as a low and a high u32 half), then the symbol (u8
// length + ASCII bytes), so that every other field sits at a fixed offset. Orders and their accepted
// and rejected events may end with a client order id after the symbol (u8 length + ASCII bytes);
// a record without one ends at its symbol, as it did before client order ids were logged. Encoding writes
// into the caller's buffer and allocates nothing; `decodeInto` fills a reused DecodedMessage and
// allocates nothing either (symbols come from a small intern cache). The layouts are in
// `BINARY_LAYOUTS` and in the README.
import type { Codec } from './codec.js';
import { DecodedMessage } from './decoded-message.js';
import { DecodeError, EncodeError } from './errors.js';
import {
  CROSS_FIELD_RULES,
  invalidMessageError,
  isClientOrderIdByte,
  isValidClientOrderId,
  isValidSymbol,
  MAX_CLIENT_ORDER_ID_LENGTH,
  MAX_SYMBOL_LENGTH,
  MESSAGE_FIELDS,
  OPTIONAL_FIELDS,
} from './internal/schema.js';
import { SymbolCache } from './internal/symbol-cache.js';
import { checkRoom, checkSource, checkTarget } from './internal/target.js';
import {
  AMEND_KINDS,
  CANCEL_REASONS,
  COMMAND_TYPES,
  MESSAGE_TYPES,
  ORDER_TYPES,
  REJECT_REASONS,
  SELF_TRADE_PREVENTIONS,
  SIDES,
  TIMES_IN_FORCE,
  type AcceptedEvent,
  type AddedEvent,
  type AmendCommand,
  type AmendedEvent,
  type CancelCommand,
  type CanceledEvent,
  type CmdEndEvent,
  type LimitCommand,
  type MarketCommand,
  type Message,
  type MessageType,
  type RejectedEvent,
  type SelfTradePrevention,
  type Side,
  type TimeInForce,
  type TradeEvent,
} from './types.js';

/** The first byte of every binary record. */
export const BINARY_VERSION = 1;

/** The second byte of a record: its type. Commands are 0x01-0x04, events 0x10-0x16. */
export const BINARY_TYPE_TAGS: Readonly<Record<MessageType, number>> = {
  limit: 0x01,
  market: 0x02,
  cancel: 0x03,
  amend: 0x04,
  accepted: 0x10,
  rejected: 0x11,
  added: 0x12,
  trade: 0x13,
  canceled: 0x14,
  amended: 0x15,
  cmdEnd: 0x16,
};

/**
 * One field of a binary layout. `size` 0 is a variable-length string (its length is the byte
 * before): the symbol, and the optional client order id after it, at `offset` past the symbol.
 */
export interface BinaryField {
  readonly offset: number;
  readonly size: number;
  readonly field: string;
  readonly encoding: 'u8' | 'u8 enum' | 'u64 LE' | 'ASCII';
}

// The fields between the tag and the symbol length, in layout order: enums (u8) first, then
// integers (u64). The encoders and decoders below follow exactly this order.
const BODY: Readonly<Record<MessageType, readonly (readonly [string, 'u8 enum' | 'u64 LE'])[]>> = {
  limit: [['side', 'u8 enum'], ['tif', 'u8 enum'], ['stp', 'u8 enum'], ...u64s('seq', 'reqId', 'orderId', 'userId', 'ts', 'price', 'qty')],
  market: [['side', 'u8 enum'], ['stp', 'u8 enum'], ...u64s('seq', 'reqId', 'orderId', 'userId', 'ts', 'qty')],
  cancel: u64s('seq', 'reqId', 'orderId', 'userId', 'ts'),
  amend: u64s('seq', 'reqId', 'orderId', 'userId', 'ts', 'price', 'qty'),
  accepted: [['orderType', 'u8 enum'], ['side', 'u8 enum'], ['tif', 'u8 enum'], ...u64s('seq', 'eventSeq', 'ts', 'orderId', 'userId', 'price', 'qty')],
  rejected: [['commandType', 'u8 enum'], ['reason', 'u8 enum'], ...u64s('seq', 'eventSeq', 'ts', 'orderId', 'userId')],
  added: [['side', 'u8 enum'], ...u64s('seq', 'eventSeq', 'ts', 'orderId', 'userId', 'price', 'qty')],
  trade: [
    ['takerSide', 'u8 enum'],
    ...u64s('seq', 'eventSeq', 'ts', 'makerOrderId', 'takerOrderId', 'makerUserId', 'takerUserId', 'price', 'qty', 'makerRemaining'),
  ],
  canceled: [['reason', 'u8 enum'], ...u64s('seq', 'eventSeq', 'ts', 'orderId', 'userId', 'qty')],
  amended: [['side', 'u8 enum'], ['kind', 'u8 enum'], ...u64s('seq', 'eventSeq', 'ts', 'orderId', 'userId', 'price', 'qty')],
  cmdEnd: u64s('seq', 'eventSeq', 'ts', 'events'),
};

function u64s(...names: string[]): (readonly [string, 'u64 LE'])[] {
  return names.map((n) => [n, 'u64 LE'] as const);
}

/** The size of a rejected event's order block: side, tif, stp (u8 each), price, qty (u64 each). */
const ORDER_BLOCK = 19;

/** The layout of each message type: every field's offset, size and encoding. */
export const BINARY_LAYOUTS: Readonly<Record<MessageType, readonly BinaryField[]>> = Object.fromEntries(
  MESSAGE_TYPES.map((type): [MessageType, BinaryField[]] => {
    const fields: BinaryField[] = [
      { offset: 0, size: 1, field: 'version', encoding: 'u8' },
      { offset: 1, size: 1, field: 'type', encoding: 'u8' },
    ];
    let at = 2;
    for (const [field, encoding] of BODY[type]) {
      const size = encoding === 'u8 enum' ? 1 : 8;
      fields.push({ offset: at, size, field, encoding });
      at += size;
    }
    fields.push({ offset: at, size: 1, field: 'symbol length', encoding: 'u8' }, { offset: at + 1, size: 0, field: 'symbol', encoding: 'ASCII' });
    if (OPTIONAL_FIELDS[type].length > 0) {
      fields.push(
        { offset: 0, size: 1, field: 'clientOrderId length (optional)', encoding: 'u8' },
        { offset: 1, size: 0, field: 'clientOrderId', encoding: 'ASCII' },
      );
    }
    if (type === 'accepted') {
      // The order's stp (optional), after the client order id (whose length is then 0 when there is none).
      fields.push({ offset: 0, size: 1, field: 'stp (optional)', encoding: 'u8 enum' });
    }
    if (type === 'rejected') {
      // The rejected order (optional), after the client order id (whose length is then 0 when there is none).
      fields.push(
        { offset: 0, size: 1, field: 'side (optional)', encoding: 'u8 enum' },
        { offset: 1, size: 1, field: 'tif (optional)', encoding: 'u8 enum' },
        { offset: 2, size: 1, field: 'stp (optional)', encoding: 'u8 enum' },
        { offset: 3, size: 8, field: 'price (optional)', encoding: 'u64 LE' },
        { offset: 11, size: 8, field: 'qty (optional)', encoding: 'u64 LE' },
      );
    }
    return [type, fields];
  }),
) as Record<MessageType, BinaryField[]>;

/** The size of each type's record without the symbol's bytes (the offset of the symbol). */
const FIXED = Object.fromEntries(
  MESSAGE_TYPES.map((t) => [t, (BINARY_LAYOUTS[t].find((f) => f.field === 'symbol') as BinaryField).offset]),
) as Record<MessageType, number>;

/** The longest binary record of any valid message. */
export const BINARY_MAX_LENGTH = Math.max(
  ...MESSAGE_TYPES.map(
    (t) => FIXED[t] + MAX_SYMBOL_LENGTH + (OPTIONAL_FIELDS[t].length > 0 ? 1 + MAX_CLIENT_ORDER_ID_LENGTH : 0) + (t === 'rejected' ? ORDER_BLOCK : t === 'accepted' ? 1 : 0),
  ),
);

const LIMIT = FIXED.limit;
const MARKET = FIXED.market;
const CANCEL = FIXED.cancel;
const AMEND = FIXED.amend;
const ACCEPTED = FIXED.accepted;
const REJECTED = FIXED.rejected;
const ADDED = FIXED.added;
const TRADE = FIXED.trade;
const CANCELED = FIXED.canceled;
const AMENDED = FIXED.amended;
const CMD_END = FIXED.cmdEnd;

const TAG_LIMIT = BINARY_TYPE_TAGS.limit;
const TAG_MARKET = BINARY_TYPE_TAGS.market;
const TAG_CANCEL = BINARY_TYPE_TAGS.cancel;
const TAG_AMEND = BINARY_TYPE_TAGS.amend;
const TAG_ACCEPTED = BINARY_TYPE_TAGS.accepted;
const TAG_REJECTED = BINARY_TYPE_TAGS.rejected;
const TAG_ADDED = BINARY_TYPE_TAGS.added;
const TAG_TRADE = BINARY_TYPE_TAGS.trade;
const TAG_CANCELED = BINARY_TYPE_TAGS.canceled;
const TAG_AMENDED = BINARY_TYPE_TAGS.amended;
const TAG_CMD_END = BINARY_TYPE_TAGS.cmdEnd;


const TWO_32 = 4294967296;
const INV_TWO_32 = 1 / TWO_32; // exact: a power of two
/** The largest high half of a safe integer: 2^53 - 1 = 0x1fffff * 2^32 + 0xffffffff. */
const MAX_HIGH = 0x1fffff;

/** A type's integer fields: where the first one is, and each one's name and minimum (from the schema). */
interface IntBlock {
  readonly at: number;
  readonly names: readonly string[];
  readonly mins: Uint8Array;
}

const INTS = Object.fromEntries(
  MESSAGE_TYPES.map((type): [MessageType, IntBlock] => {
    const layout = BINARY_LAYOUTS[type].filter((f) => f.encoding === 'u64 LE' && !f.field.endsWith('(optional)'));
    const min = (name: string): number => {
      const spec = MESSAGE_FIELDS[type].find((f) => f.name === name);
      return spec?.kind === 'int' ? spec.min : 0;
    };
    return [type, { at: layout[0]?.offset ?? 0, names: layout.map((f) => f.field), mins: Uint8Array.from(layout, (f) => min(f.field)) }];
  }),
) as Record<MessageType, IntBlock>;

/**
 * The integer fields of the record being encoded or decoded. Passing them through a Float64Array
 * lets one small loop write or read them all, without a call (or a boxed double) per field.
 */
const U64 = new Float64Array(Math.max(...MESSAGE_TYPES.map((t) => INTS[t].names.length)));

// ---- encoding ------------------------------------------------------------------------------

/** The error for a message that failed the checks: its first invalid field in canonical order. */
function refuse(msg: unknown): EncodeError {
  return invalidMessageError(msg) ?? new EncodeError('INVALID_FIELD', 'encode: invalid message', 'type');
}

// The checks are written out inline (Number.isSafeInteger and comparisons, no helper calls): a
// number passed to a function that is not inlined is boxed, which would allocate per field. On
// any failure, `refuse` names the first invalid field by the schema, as the JSON codec does.

/**
 * DataViews of the last few buffers used: encoders write into, and decoders read from, a few
 * long-lived buffers (a command log's and an outbox's append buffers, a reader's window), so a view
 * is made once per buffer, not per record.
 */
const VIEWS = 4;
const viewBufs: (Uint8Array | undefined)[] = [undefined, undefined, undefined, undefined];
const views: DataView[] = [];
for (let i = 0; i < VIEWS; i++) views.push(new DataView(new ArrayBuffer(8)));
let nextView = 0;

/** The length each view was made for (a view of a resizable ArrayBuffer that shrank cannot be asked). */
const viewLens = new Float64Array(VIEWS);

function viewFor(buf: Uint8Array): DataView {
  for (let i = 0; i < VIEWS; i++) {
    // The view must still cover the array: one on a resizable ArrayBuffer changes its length.
    if (viewBufs[i] === buf && viewLens[i] === buf.byteLength) return views[i] as DataView;
  }
  const i = nextView;
  nextView = (i + 1) % VIEWS;
  viewBufs[i] = buf;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  views[i] = v;
  viewLens[i] = buf.byteLength;
  return v;
}

/**
 * The last symbol found valid: an engine encodes one symbol's records, so the check is one
 * comparison. It starts as no string at all (an empty string is not a valid symbol).
 */
let lastValidSymbol: string | undefined;

function validSymbol(s: unknown): s is string {
  // Before any valid symbol, lastValidSymbol is undefined: a missing symbol must not match it.
  if (s === lastValidSymbol && s !== undefined) return true;
  if (!isValidSymbol(s)) return false;
  lastValidSymbol = s;
  return true;
}

/** Writes U64[0, n) as u64 LE from `at` (the values are safe non-negative integers). */
function writeU64s(buf: Uint8Array, at: number, n: number): void {
  const dv = viewFor(buf);
  for (let i = 0; i < n; i++, at += 8) {
    const v = U64[i] as number;
    const lo = v >>> 0;
    dv.setUint32(at, lo, true);
    dv.setUint32(at + 4, (v - lo) * INV_TWO_32, true);
  }
}

/** Writes the symbol's length at `at` (the offset of the symbol, less one) and its bytes after it. */
function symbolAt(buf: Uint8Array, at: number, s: string): void {
  const n = s.length;
  buf[at] = n;
  for (let i = 0; i < n; i++) buf[at + 1 + i] = s.charCodeAt(i);
}

/**
 * The bytes of an optional client order id after the symbol: 0 if `id` is undefined, else its
 * length plus one; -1 if it is not a valid one.
 */
function clientIdSize(id: string | undefined): number {
  if (id === undefined) return 0;
  return isValidClientOrderId(id) ? id.length + 1 : -1;
}

/** Writes a client order id (length, then bytes) at `at`, if there is one. */
function clientIdAt(buf: Uint8Array, at: number, id: string | undefined): void {
  if (id === undefined) return;
  const n = id.length;
  buf[at] = n;
  for (let i = 0; i < n; i++) buf[at + 1 + i] = id.charCodeAt(i);
}

/**
 * Writes an accepted or rejected event's client order id at `at`, or a length of 0 for none when a
 * block follows (`block`); returns where the block goes.
 */
function clientIdBeforeBlockAt(buf: Uint8Array, at: number, id: string | undefined, block: boolean): number {
  if (id !== undefined) {
    clientIdAt(buf, at, id);
    return at + 1 + id.length;
  }
  if (!block) return at;
  buf[at] = 0;
  return at + 1;
}

const isInt = Number.isSafeInteger;

function encodeLimit(m: LimitCommand, buf: Uint8Array, o: number): number {
  const { symbol, seq, reqId, orderId, userId, ts, price, qty } = m;
  const side = SIDES.indexOf(m.side);
  const tif = TIMES_IN_FORCE.indexOf(m.tif);
  const stp = SELF_TRADE_PREVENTIONS.indexOf(m.stp);
  const cid = m.clientOrderId;
  const cidSize = clientIdSize(cid);
  if (
    !validSymbol(symbol) ||
    !(isInt(seq) && seq >= 0 && isInt(reqId) && reqId >= 0 && isInt(orderId) && orderId >= 1 && isInt(userId) && userId >= 0 && isInt(ts) && ts >= 0) ||
    !(isInt(price) && price >= 1 && isInt(qty) && qty >= 1) ||
    (side | tif | stp) < 0 ||
    cidSize < 0
  ) {
    throw refuse(m);
  }
  const n = LIMIT + symbol.length + cidSize;
  checkRoom(buf, o, n);
  buf[o] = BINARY_VERSION;
  buf[o + 1] = TAG_LIMIT;
  buf[o + 2] = side;
  buf[o + 3] = tif;
  buf[o + 4] = stp;
  const v = U64;
  v[0] = seq;
  v[1] = reqId;
  v[2] = orderId;
  v[3] = userId;
  v[4] = ts;
  v[5] = price;
  v[6] = qty;
  writeU64s(buf, o + INTS.limit.at, 7);
  symbolAt(buf, o + LIMIT - 1, symbol);
  clientIdAt(buf, o + LIMIT + symbol.length, cid);
  return n;
}

function encodeMarket(m: MarketCommand, buf: Uint8Array, o: number): number {
  const { symbol, seq, reqId, orderId, userId, ts, qty } = m;
  const side = SIDES.indexOf(m.side);
  const stp = SELF_TRADE_PREVENTIONS.indexOf(m.stp);
  const cid = m.clientOrderId;
  const cidSize = clientIdSize(cid);
  if (
    !validSymbol(symbol) ||
    !(isInt(seq) && seq >= 0 && isInt(reqId) && reqId >= 0 && isInt(orderId) && orderId >= 1 && isInt(userId) && userId >= 0 && isInt(ts) && ts >= 0) ||
    !(isInt(qty) && qty >= 1) ||
    (side | stp) < 0 ||
    cidSize < 0
  ) {
    throw refuse(m);
  }
  const n = MARKET + symbol.length + cidSize;
  checkRoom(buf, o, n);
  buf[o] = BINARY_VERSION;
  buf[o + 1] = TAG_MARKET;
  buf[o + 2] = side;
  buf[o + 3] = stp;
  const v = U64;
  v[0] = seq;
  v[1] = reqId;
  v[2] = orderId;
  v[3] = userId;
  v[4] = ts;
  v[5] = qty;
  writeU64s(buf, o + INTS.market.at, 6);
  symbolAt(buf, o + MARKET - 1, symbol);
  clientIdAt(buf, o + MARKET + symbol.length, cid);
  return n;
}

function encodeCancel(m: CancelCommand, buf: Uint8Array, o: number): number {
  const { symbol, seq, reqId, orderId, userId, ts } = m;
  if (
    !validSymbol(symbol) ||
    !(isInt(seq) && seq >= 0 && isInt(reqId) && reqId >= 0 && isInt(orderId) && orderId >= 1 && isInt(userId) && userId >= 0 && isInt(ts) && ts >= 0)
  ) {
    throw refuse(m);
  }
  const n = CANCEL + symbol.length;
  checkRoom(buf, o, n);
  buf[o] = BINARY_VERSION;
  buf[o + 1] = TAG_CANCEL;
  const v = U64;
  v[0] = seq;
  v[1] = reqId;
  v[2] = orderId;
  v[3] = userId;
  v[4] = ts;
  writeU64s(buf, o + INTS.cancel.at, 5);
  symbolAt(buf, o + CANCEL - 1, symbol);
  return n;
}

function encodeAmend(m: AmendCommand, buf: Uint8Array, o: number): number {
  const { symbol, seq, reqId, orderId, userId, ts, price, qty } = m;
  if (
    !validSymbol(symbol) ||
    !(isInt(seq) && seq >= 0 && isInt(reqId) && reqId >= 0 && isInt(orderId) && orderId >= 1 && isInt(userId) && userId >= 0 && isInt(ts) && ts >= 0) ||
    !(isInt(price) && price >= 0 && isInt(qty) && qty >= 0 && (qty > 0 || price > 0))
  ) {
    throw refuse(m);
  }
  const n = AMEND + symbol.length;
  checkRoom(buf, o, n);
  buf[o] = BINARY_VERSION;
  buf[o + 1] = TAG_AMEND;
  const v = U64;
  v[0] = seq;
  v[1] = reqId;
  v[2] = orderId;
  v[3] = userId;
  v[4] = ts;
  v[5] = price;
  v[6] = qty;
  writeU64s(buf, o + INTS.amend.at, 7);
  symbolAt(buf, o + AMEND - 1, symbol);
  return n;
}

function encodeAccepted(m: AcceptedEvent, buf: Uint8Array, o: number): number {
  // Each field read once: what is checked is what is written.
  const { symbol, seq, eventSeq, ts, orderId, userId, price, qty, orderType: typeName, stp: stpName } = m;
  const orderType = ORDER_TYPES.indexOf(typeName);
  const side = SIDES.indexOf(m.side);
  const tif = TIMES_IN_FORCE.indexOf(m.tif);
  const cid = m.clientOrderId;
  const stp = stpName === undefined ? 0 : SELF_TRADE_PREVENTIONS.indexOf(stpName);
  const cidSize = clientIdSize(cid);
  if (
    stp < 0 ||
    !validSymbol(symbol) ||
    !(isInt(seq) && seq >= 0 && isInt(eventSeq) && eventSeq >= 0 && isInt(ts) && ts >= 0) ||
    !(isInt(orderId) && orderId >= 1 && isInt(userId) && userId >= 0 && isInt(price) && price >= 0 && isInt(qty) && qty >= 1) ||
    (orderType | side | tif) < 0 ||
    (typeName === 'market') !== (price === 0) || // the cross-field rule
    cidSize < 0
  ) {
    throw refuse(m);
  }
  // With an stp, the client order id's length byte is there even without one (0), then the stp.
  const n = ACCEPTED + symbol.length + (stpName === undefined ? cidSize : Math.max(cidSize, 1) + 1);
  checkRoom(buf, o, n);
  buf[o] = BINARY_VERSION;
  buf[o + 1] = TAG_ACCEPTED;
  buf[o + 2] = orderType;
  buf[o + 3] = side;
  buf[o + 4] = tif;
  const v = U64;
  v[0] = seq;
  v[1] = eventSeq;
  v[2] = ts;
  v[3] = orderId;
  v[4] = userId;
  v[5] = price;
  v[6] = qty;
  writeU64s(buf, o + INTS.accepted.at, 7);
  symbolAt(buf, o + ACCEPTED - 1, symbol);
  const at = clientIdBeforeBlockAt(buf, o + ACCEPTED + symbol.length, cid, stpName !== undefined);
  if (stpName !== undefined) buf[at] = stp;
  return n;
}

function encodeRejected(m: RejectedEvent, buf: Uint8Array, o: number): number {
  // Each field read once: what is checked is what is written.
  const { symbol, seq, eventSeq, ts, orderId, userId, commandType: typeName, reason: reasonName, clientOrderId: cid, side: sideName, tif: tifName, stp: stpName, price, qty } = m;
  const commandType = COMMAND_TYPES.indexOf(typeName);
  const reason = REJECT_REASONS.indexOf(reasonName);
  const cidSize = clientIdSize(cid);
  // The order's fields: all or none, checked by the schema's rule (rare: only rejections carry them),
  // on a copy of the values read.
  const details = sideName !== undefined || price !== undefined || qty !== undefined || tifName !== undefined || stpName !== undefined;
  const read = details
    ? { type: 'rejected', symbol, seq, eventSeq, ts, commandType: typeName, orderId, userId, reason: reasonName, clientOrderId: cid, side: sideName, tif: tifName, stp: stpName, price, qty }
    : undefined;
  if (
    !validSymbol(symbol) ||
    !(isInt(seq) && seq >= 0 && isInt(eventSeq) && eventSeq >= 0 && isInt(ts) && ts >= 0) ||
    !(isInt(orderId) && orderId >= 0 && isInt(userId) && userId >= 0) ||
    (commandType | reason) < 0 ||
    cidSize < 0 ||
    (read !== undefined && invalidMessageError(read) !== undefined)
  ) {
    throw refuse(read ?? m);
  }
  const n = REJECTED + symbol.length + (details ? Math.max(cidSize, 1) + ORDER_BLOCK : cidSize);
  checkRoom(buf, o, n);
  buf[o] = BINARY_VERSION;
  buf[o + 1] = TAG_REJECTED;
  buf[o + 2] = commandType;
  buf[o + 3] = reason;
  const v = U64;
  v[0] = seq;
  v[1] = eventSeq;
  v[2] = ts;
  v[3] = orderId;
  v[4] = userId;
  writeU64s(buf, o + INTS.rejected.at, 5);
  symbolAt(buf, o + REJECTED - 1, symbol);
  const at = clientIdBeforeBlockAt(buf, o + REJECTED + symbol.length, cid, details);
  if (details) {
    buf[at] = SIDES.indexOf(sideName as Side);
    buf[at + 1] = TIMES_IN_FORCE.indexOf(tifName as TimeInForce);
    buf[at + 2] = SELF_TRADE_PREVENTIONS.indexOf(stpName as SelfTradePrevention);
    v[0] = price as number;
    v[1] = qty as number;
    writeU64s(buf, at + 3, 2);
  }
  return n;
}

function encodeAdded(m: AddedEvent, buf: Uint8Array, o: number): number {
  const { symbol, seq, eventSeq, ts, orderId, userId, price, qty } = m;
  const side = SIDES.indexOf(m.side);
  if (
    !validSymbol(symbol) ||
    !(isInt(seq) && seq >= 0 && isInt(eventSeq) && eventSeq >= 0 && isInt(ts) && ts >= 0) ||
    !(isInt(orderId) && orderId >= 1 && isInt(userId) && userId >= 0 && isInt(price) && price >= 1 && isInt(qty) && qty >= 1) ||
    side < 0
  ) {
    throw refuse(m);
  }
  const n = ADDED + symbol.length;
  checkRoom(buf, o, n);
  buf[o] = BINARY_VERSION;
  buf[o + 1] = TAG_ADDED;
  buf[o + 2] = side;
  const v = U64;
  v[0] = seq;
  v[1] = eventSeq;
  v[2] = ts;
  v[3] = orderId;
  v[4] = userId;
  v[5] = price;
  v[6] = qty;
  writeU64s(buf, o + INTS.added.at, 7);
  symbolAt(buf, o + ADDED - 1, symbol);
  return n;
}

function encodeTrade(m: TradeEvent, buf: Uint8Array, o: number): number {
  const { symbol, seq, eventSeq, ts, makerOrderId, takerOrderId, makerUserId, takerUserId, price, qty, makerRemaining } = m;
  const takerSide = SIDES.indexOf(m.takerSide);
  if (
    !validSymbol(symbol) ||
    !(isInt(seq) && seq >= 0 && isInt(eventSeq) && eventSeq >= 0 && isInt(ts) && ts >= 0) ||
    !(isInt(makerOrderId) && makerOrderId >= 1 && isInt(takerOrderId) && takerOrderId >= 1) ||
    !(isInt(makerUserId) && makerUserId >= 0 && isInt(takerUserId) && takerUserId >= 0) ||
    !(isInt(price) && price >= 1 && isInt(qty) && qty >= 1 && isInt(makerRemaining) && makerRemaining >= 0) ||
    takerSide < 0
  ) {
    throw refuse(m);
  }
  const n = TRADE + symbol.length;
  checkRoom(buf, o, n);
  buf[o] = BINARY_VERSION;
  buf[o + 1] = TAG_TRADE;
  buf[o + 2] = takerSide;
  const v = U64;
  v[0] = seq;
  v[1] = eventSeq;
  v[2] = ts;
  v[3] = makerOrderId;
  v[4] = takerOrderId;
  v[5] = makerUserId;
  v[6] = takerUserId;
  v[7] = price;
  v[8] = qty;
  v[9] = makerRemaining;
  writeU64s(buf, o + INTS.trade.at, 10);
  symbolAt(buf, o + TRADE - 1, symbol);
  return n;
}

function encodeCanceled(m: CanceledEvent, buf: Uint8Array, o: number): number {
  const { symbol, seq, eventSeq, ts, orderId, userId, qty } = m;
  const reason = CANCEL_REASONS.indexOf(m.reason);
  if (
    !validSymbol(symbol) ||
    !(isInt(seq) && seq >= 0 && isInt(eventSeq) && eventSeq >= 0 && isInt(ts) && ts >= 0) ||
    !(isInt(orderId) && orderId >= 1 && isInt(userId) && userId >= 0 && isInt(qty) && qty >= 1) ||
    reason < 0
  ) {
    throw refuse(m);
  }
  const n = CANCELED + symbol.length;
  checkRoom(buf, o, n);
  buf[o] = BINARY_VERSION;
  buf[o + 1] = TAG_CANCELED;
  buf[o + 2] = reason;
  const v = U64;
  v[0] = seq;
  v[1] = eventSeq;
  v[2] = ts;
  v[3] = orderId;
  v[4] = userId;
  v[5] = qty;
  writeU64s(buf, o + INTS.canceled.at, 6);
  symbolAt(buf, o + CANCELED - 1, symbol);
  return n;
}

function encodeAmended(m: AmendedEvent, buf: Uint8Array, o: number): number {
  const { symbol, seq, eventSeq, ts, orderId, userId, price, qty, kind: kindName } = m;
  const side = SIDES.indexOf(m.side);
  const kind = AMEND_KINDS.indexOf(kindName);
  if (
    !validSymbol(symbol) ||
    !(isInt(seq) && seq >= 0 && isInt(eventSeq) && eventSeq >= 0 && isInt(ts) && ts >= 0) ||
    !(isInt(orderId) && orderId >= 1 && isInt(userId) && userId >= 0 && isInt(price) && price >= 0 && isInt(qty) && qty >= 1) ||
    (side | kind) < 0 ||
    (price === 0 && kindName !== 'SELF_TRADE_DECREMENT') // the cross-field rule
  ) {
    throw refuse(m);
  }
  const n = AMENDED + symbol.length;
  checkRoom(buf, o, n);
  buf[o] = BINARY_VERSION;
  buf[o + 1] = TAG_AMENDED;
  buf[o + 2] = side;
  buf[o + 3] = kind;
  const v = U64;
  v[0] = seq;
  v[1] = eventSeq;
  v[2] = ts;
  v[3] = orderId;
  v[4] = userId;
  v[5] = price;
  v[6] = qty;
  writeU64s(buf, o + INTS.amended.at, 7);
  symbolAt(buf, o + AMENDED - 1, symbol);
  return n;
}

function encodeCmdEnd(m: CmdEndEvent, buf: Uint8Array, o: number): number {
  const { symbol, seq, eventSeq, ts, events } = m;
  if (!validSymbol(symbol) || !(isInt(seq) && seq >= 0 && isInt(eventSeq) && eventSeq >= 0 && isInt(ts) && ts >= 0 && isInt(events) && events >= 0)) {
    throw refuse(m);
  }
  const n = CMD_END + symbol.length;
  checkRoom(buf, o, n);
  buf[o] = BINARY_VERSION;
  buf[o + 1] = TAG_CMD_END;
  const v = U64;
  v[0] = seq;
  v[1] = eventSeq;
  v[2] = ts;
  v[3] = events;
  writeU64s(buf, o + INTS.cmdEnd.at, 4);
  symbolAt(buf, o + CMD_END - 1, symbol);
  return n;
}

// ---- decoding ------------------------------------------------------------------------------

function badField(field: string, at: number, what: string): DecodeError {
  return new DecodeError('INVALID_FIELD', `decode: invalid ${field} at byte ${at}: ${what}`, field);
}

/**
 * Reads the type's integer fields of the record at `o` into U64 and returns U64, checking each is
 * a safe integer (high half at most 0x1fffff) and at least its minimum.
 */
function readU64s(b: Uint8Array, o: number, block: IntBlock): Float64Array {
  const mins = block.mins;
  let at = o + block.at;
  const dv = viewFor(b);
  for (let i = 0; i < mins.length; i++, at += 8) {
    const lo = dv.getUint32(at, true);
    const hi = dv.getUint32(at + 4, true);
    if (hi > MAX_HIGH) throw badField(block.names[i] ?? '?', at, `high half 0x${hi.toString(16)} makes an unsafe integer`);
    const v = hi * TWO_32 + lo;
    if (v < (mins[i] as number)) throw badField(block.names[i] ?? '?', at, `${v} (must be >= ${String(mins[i])})`);
    U64[i] = v;
  }
  return U64;
}

/** Reads a u8 enum code at `at`: the value at that index of `values`. */
function readEnum<T extends string>(b: Uint8Array, at: number, values: readonly T[], field: string): T {
  const v = values[b[at] as number];
  if (v === undefined) throw badField(field, at, `code ${String(b[at])} (${values.length} values)`);
  return v;
}

/** Where the symbol read by the last `symbolOf` ends (relative to the record's start). */
let symbolEnd = 0;

/**
 * Checks the record's length against its type's fixed size and symbol length (`bytes[o + fixed - 1]`),
 * and returns the symbol. With `trailer` (a type with an optional client order id), bytes may follow
 * the symbol: `clientIdOf` reads them.
 */
function symbolOf(symbols: SymbolCache, b: Uint8Array, o: number, length: number, fixed: number, trailer = false): string {
  if (length < fixed) throw new DecodeError('TRUNCATED', `decode: the record ends at byte ${length}, before its fixed part (${fixed} bytes)`, `@${o + length}`);
  const n = b[o + fixed - 1] as number;
  if (n === 0 || n > MAX_SYMBOL_LENGTH) throw badField('symbol', o + fixed - 1, `length ${n} (1 to ${MAX_SYMBOL_LENGTH})`);
  const end = fixed + n;
  if (length < end) throw new DecodeError('TRUNCATED', `decode: the record ends at byte ${length}, inside its symbol (${end} bytes)`, `@${o + length}`);
  if (length > end && !trailer) throw new DecodeError('TRAILING_BYTES', `decode: ${length - end} bytes after the end of the record (${end} bytes)`, `@${o + end}`);
  const s = symbols.get(b, o + fixed, n);
  if (s === undefined) throw badField('symbol', o + fixed, 'not 1 to 32 characters of A-Z 0-9 . _ -');
  symbolEnd = end;
  return s;
}

/** The optional client order id after the symbol `symbolOf` just read: undefined if the record ends there. */
function clientIdOf(b: Uint8Array, o: number, length: number): string | undefined {
  const at = symbolEnd;
  if (length === at) return undefined;
  const n = b[o + at] as number;
  if (n === 0 || n > MAX_CLIENT_ORDER_ID_LENGTH) throw badField('clientOrderId', o + at, `length ${n} (1 to ${MAX_CLIENT_ORDER_ID_LENGTH})`);
  const end = at + 1 + n;
  if (length < end) throw new DecodeError('TRUNCATED', `decode: the record ends at byte ${length}, inside its clientOrderId (${end} bytes)`, `@${o + length}`);
  if (length > end) throw new DecodeError('TRAILING_BYTES', `decode: ${length - end} bytes after the end of the record (${end} bytes)`, `@${o + end}`);
  return clientIdString(b, o + at + 1, o + end);
}

/** The client order id in bytes [start, end), each byte checked. */
function clientIdString(b: Uint8Array, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    const c = b[i] as number;
    if (!isClientOrderIdByte(c)) throw badField('clientOrderId', i, `byte 0x${c.toString(16)} (1 to ${MAX_CLIENT_ORDER_ID_LENGTH} characters of A-Z a-z 0-9 . _ : -)`);
  }
  // One string of the checked ASCII bytes (a Buffer makes it natively; a plain Uint8Array char by char).
  if (Buffer.isBuffer(b)) return b.toString('latin1', start, end);
  let id = '';
  for (let i = start; i < end; i++) id += String.fromCharCode(b[i] as number);
  return id;
}

/**
 * Reads what may follow an accepted or rejected event's symbol: nothing; a client order id; or a
 * client order id (length 0 when there is none) then a block of `block` bytes (`what`). Sets
 * `out.clientOrderId` and clears `out.orderDetails`; returns the block's offset in the record, or
 * -1 if there is none.
 */
function idThenBlock(b: Uint8Array, o: number, length: number, out: DecodedMessage, block: number, what: string): number {
  const at = symbolEnd;
  out.clientOrderId = undefined;
  out.orderDetails = false;
  if (length === at) return -1;
  const n = b[o + at] as number;
  if (n > MAX_CLIENT_ORDER_ID_LENGTH) throw badField('clientOrderId', o + at, `length ${n} (0 to ${MAX_CLIENT_ORDER_ID_LENGTH})`);
  const idEnd = at + 1 + n;
  if (length < idEnd) throw new DecodeError('TRUNCATED', `decode: the record ends at byte ${length}, inside its clientOrderId (${idEnd} bytes)`, `@${o + length}`);
  if (n === 0 && length === idEnd) throw new DecodeError('TRUNCATED', `decode: the record ends at byte ${length}, before its ${what} (a clientOrderId length of 0 announces one)`, `@${o + length}`);
  const end = length === idEnd ? idEnd : idEnd + block;
  if (length < end) throw new DecodeError('TRUNCATED', `decode: the record ends at byte ${length}, inside its ${what} (${end} bytes)`, `@${o + length}`);
  if (length > end) throw new DecodeError('TRAILING_BYTES', `decode: ${length - end} bytes after the end of the record (${end} bytes)`, `@${o + end}`);
  if (n > 0) out.clientOrderId = clientIdString(b, o + at + 1, o + idEnd);
  return end === idEnd ? -1 : idEnd;
}

/** Reads what follows an accepted event's symbol into `out`: a client order id, the order's stp (both optional). */
function acceptedTrailer(b: Uint8Array, o: number, length: number, out: DecodedMessage): void {
  const at = idThenBlock(b, o, length, out, 1, 'stp');
  if (at < 0) return;
  out.stp = readEnum(b, o + at, SELF_TRADE_PREVENTIONS, 'stp');
  out.orderDetails = true;
}

/** Reads what follows a rejected event's symbol into `out`: a client order id, the rejected order (both optional). */
function rejectedTrailer(b: Uint8Array, o: number, length: number, commandType: string, out: DecodedMessage): void {
  const at = idThenBlock(b, o, length, out, ORDER_BLOCK, 'order');
  if (at < 0) return;
  const p = o + at;
  const side = readEnum(b, p, SIDES, 'side');
  const tif = readEnum(b, p + 1, TIMES_IN_FORCE, 'tif');
  const stp = readEnum(b, p + 2, SELF_TRADE_PREVENTIONS, 'stp');
  const price = readSafe(b, p + 3, 'price');
  const qty = readSafe(b, p + 11, 'qty');
  if (qty < 1) throw badField('qty', p + 11, `${qty} (must be >= 1)`);
  if (commandType !== 'limit' && commandType !== 'market') throw badField('side', p, `an order of a ${commandType} (${CROSS_FIELD_RULES.rejected ?? ''})`);
  if (commandType === 'market' ? price !== 0 : price === 0) throw badField('price', p + 3, `${price} (${CROSS_FIELD_RULES.rejected ?? ''})`);
  out.side = side;
  out.tif = tif;
  out.stp = stp;
  out.price = price;
  out.qty = qty;
  out.orderDetails = true;
}

/** A u64 LE at `at` that must be a safe integer. */
function readSafe(b: Uint8Array, at: number, field: string): number {
  const dv = viewFor(b);
  const lo = dv.getUint32(at, true);
  const hi = dv.getUint32(at + 4, true);
  if (hi > MAX_HIGH) throw badField(field, at, `high half 0x${hi.toString(16)} makes an unsafe integer`);
  return hi * TWO_32 + lo;
}

// Each decoder checks, in this order: the length and the symbol, the client order id (orders and
// their answers), the integers, the enums, the cross-field rule; then fills `out`.

function decodeLimit(b: Uint8Array, o: number, length: number, out: DecodedMessage, symbols: SymbolCache): DecodedMessage {
  const symbol = symbolOf(symbols, b, o, length, LIMIT, true);
  const clientOrderId = clientIdOf(b, o, length);
  const v = readU64s(b, o, INTS.limit);
  const side = readEnum(b, o + 2, SIDES, 'side');
  const tif = readEnum(b, o + 3, TIMES_IN_FORCE, 'tif');
  const stp = readEnum(b, o + 4, SELF_TRADE_PREVENTIONS, 'stp');
  out.type = 'limit';
  out.symbol = symbol;
  out.seq = v[0] as number;
  out.reqId = v[1] as number;
  out.orderId = v[2] as number;
  out.userId = v[3] as number;
  out.ts = v[4] as number;
  out.side = side;
  out.price = v[5] as number;
  out.qty = v[6] as number;
  out.tif = tif;
  out.stp = stp;
  out.clientOrderId = clientOrderId;
  return out;
}

function decodeMarket(b: Uint8Array, o: number, length: number, out: DecodedMessage, symbols: SymbolCache): DecodedMessage {
  const symbol = symbolOf(symbols, b, o, length, MARKET, true);
  const clientOrderId = clientIdOf(b, o, length);
  const v = readU64s(b, o, INTS.market);
  const side = readEnum(b, o + 2, SIDES, 'side');
  const stp = readEnum(b, o + 3, SELF_TRADE_PREVENTIONS, 'stp');
  out.type = 'market';
  out.symbol = symbol;
  out.seq = v[0] as number;
  out.reqId = v[1] as number;
  out.orderId = v[2] as number;
  out.userId = v[3] as number;
  out.ts = v[4] as number;
  out.side = side;
  out.qty = v[5] as number;
  out.stp = stp;
  out.clientOrderId = clientOrderId;
  return out;
}

function decodeCancel(b: Uint8Array, o: number, length: number, out: DecodedMessage, symbols: SymbolCache): DecodedMessage {
  const symbol = symbolOf(symbols, b, o, length, CANCEL);
  const v = readU64s(b, o, INTS.cancel);
  out.type = 'cancel';
  out.symbol = symbol;
  out.seq = v[0] as number;
  out.reqId = v[1] as number;
  out.orderId = v[2] as number;
  out.userId = v[3] as number;
  out.ts = v[4] as number;
  return out;
}

function decodeAmend(b: Uint8Array, o: number, length: number, out: DecodedMessage, symbols: SymbolCache): DecodedMessage {
  const symbol = symbolOf(symbols, b, o, length, AMEND);
  const v = readU64s(b, o, INTS.amend);
  out.type = 'amend';
  out.symbol = symbol;
  out.seq = v[0] as number;
  out.reqId = v[1] as number;
  out.orderId = v[2] as number;
  out.userId = v[3] as number;
  out.ts = v[4] as number;
  out.price = v[5] as number;
  out.qty = v[6] as number;
  if (out.qty === 0 && out.price === 0) throw badField('qty', o + INTS.amend.at + 48, `0 (${CROSS_FIELD_RULES.amend ?? ''})`);
  return out;
}

function decodeAccepted(b: Uint8Array, o: number, length: number, out: DecodedMessage, symbols: SymbolCache): DecodedMessage {
  const symbol = symbolOf(symbols, b, o, length, ACCEPTED, true);
  acceptedTrailer(b, o, length, out);
  const v = readU64s(b, o, INTS.accepted);
  const orderType = readEnum(b, o + 2, ORDER_TYPES, 'orderType');
  const side = readEnum(b, o + 3, SIDES, 'side');
  const tif = readEnum(b, o + 4, TIMES_IN_FORCE, 'tif');
  const price = v[5] as number;
  if (orderType === 'market' ? price !== 0 : price === 0) throw badField('price', o + INTS.accepted.at + 40, `${price} (${CROSS_FIELD_RULES.accepted ?? ''})`);
  out.type = 'accepted';
  out.symbol = symbol;
  out.seq = v[0] as number;
  out.eventSeq = v[1] as number;
  out.ts = v[2] as number;
  out.orderType = orderType;
  out.orderId = v[3] as number;
  out.userId = v[4] as number;
  out.side = side;
  out.price = price;
  out.qty = v[6] as number;
  out.tif = tif;
  return out;
}

function decodeRejected(b: Uint8Array, o: number, length: number, out: DecodedMessage, symbols: SymbolCache): DecodedMessage {
  const symbol = symbolOf(symbols, b, o, length, REJECTED, true);
  const commandType = readEnum(b, o + 2, COMMAND_TYPES, 'commandType');
  rejectedTrailer(b, o, length, commandType, out);
  const v = readU64s(b, o, INTS.rejected);
  const reason = readEnum(b, o + 3, REJECT_REASONS, 'reason');
  out.type = 'rejected';
  out.symbol = symbol;
  out.seq = v[0] as number;
  out.eventSeq = v[1] as number;
  out.ts = v[2] as number;
  out.commandType = commandType;
  out.orderId = v[3] as number;
  out.userId = v[4] as number;
  out.reason = reason;
  return out;
}

function decodeAdded(b: Uint8Array, o: number, length: number, out: DecodedMessage, symbols: SymbolCache): DecodedMessage {
  const symbol = symbolOf(symbols, b, o, length, ADDED);
  const v = readU64s(b, o, INTS.added);
  const side = readEnum(b, o + 2, SIDES, 'side');
  out.type = 'added';
  out.symbol = symbol;
  out.seq = v[0] as number;
  out.eventSeq = v[1] as number;
  out.ts = v[2] as number;
  out.orderId = v[3] as number;
  out.userId = v[4] as number;
  out.side = side;
  out.price = v[5] as number;
  out.qty = v[6] as number;
  return out;
}

function decodeTrade(b: Uint8Array, o: number, length: number, out: DecodedMessage, symbols: SymbolCache): DecodedMessage {
  const symbol = symbolOf(symbols, b, o, length, TRADE);
  const v = readU64s(b, o, INTS.trade);
  const takerSide = readEnum(b, o + 2, SIDES, 'takerSide');
  out.type = 'trade';
  out.symbol = symbol;
  out.seq = v[0] as number;
  out.eventSeq = v[1] as number;
  out.ts = v[2] as number;
  out.makerOrderId = v[3] as number;
  out.takerOrderId = v[4] as number;
  out.makerUserId = v[5] as number;
  out.takerUserId = v[6] as number;
  out.takerSide = takerSide;
  out.price = v[7] as number;
  out.qty = v[8] as number;
  out.makerRemaining = v[9] as number;
  return out;
}

function decodeCanceled(b: Uint8Array, o: number, length: number, out: DecodedMessage, symbols: SymbolCache): DecodedMessage {
  const symbol = symbolOf(symbols, b, o, length, CANCELED);
  const v = readU64s(b, o, INTS.canceled);
  const reason = readEnum(b, o + 2, CANCEL_REASONS, 'reason');
  out.type = 'canceled';
  out.symbol = symbol;
  out.seq = v[0] as number;
  out.eventSeq = v[1] as number;
  out.ts = v[2] as number;
  out.orderId = v[3] as number;
  out.userId = v[4] as number;
  out.reason = reason;
  out.qty = v[5] as number;
  return out;
}

function decodeAmended(b: Uint8Array, o: number, length: number, out: DecodedMessage, symbols: SymbolCache): DecodedMessage {
  const symbol = symbolOf(symbols, b, o, length, AMENDED);
  const v = readU64s(b, o, INTS.amended);
  const side = readEnum(b, o + 2, SIDES, 'side');
  const kind = readEnum(b, o + 3, AMEND_KINDS, 'kind');
  const price = v[5] as number;
  if (price === 0 && kind !== 'SELF_TRADE_DECREMENT') throw badField('price', o + INTS.amended.at + 40, `0 (${CROSS_FIELD_RULES.amended ?? ''})`);
  out.type = 'amended';
  out.symbol = symbol;
  out.seq = v[0] as number;
  out.eventSeq = v[1] as number;
  out.ts = v[2] as number;
  out.orderId = v[3] as number;
  out.userId = v[4] as number;
  out.side = side;
  out.price = price;
  out.qty = v[6] as number;
  out.kind = kind;
  return out;
}

function decodeCmdEnd(b: Uint8Array, o: number, length: number, out: DecodedMessage, symbols: SymbolCache): DecodedMessage {
  const symbol = symbolOf(symbols, b, o, length, CMD_END);
  const v = readU64s(b, o, INTS.cmdEnd);
  out.type = 'cmdEnd';
  out.symbol = symbol;
  out.seq = v[0] as number;
  out.eventSeq = v[1] as number;
  out.ts = v[2] as number;
  out.events = v[3] as number;
  return out;
}

/** The binary codec (use the `binaryCodec` instance, or a new one per thread of decoding for its own symbol cache). */
export class BinaryCodec implements Codec {
  readonly name = 'binary';
  readonly maxLength = BINARY_MAX_LENGTH;
  private readonly symbols = new SymbolCache();
  private readonly scratch = new DecodedMessage();
  private readonly sizing = new Uint8Array(BINARY_MAX_LENGTH);

  /**
   * The exact length of `msg`'s record (its type's fixed size plus the symbol's length), after
   * checking the whole message as `encode` does: EncodeError INVALID_FIELD if it is not valid. (It
   * encodes into a scratch buffer: as fast as `encode`, and allocation-free.)
   */
  encodedLength(msg: Message): number {
    return this.encode(msg, this.sizing, 0);
  }

  /**
   * Writes `msg`'s record into `buf` at `offset` and returns its length. Allocates nothing. Nothing
   * is written when it throws: EncodeError INVALID_FIELD (naming the first invalid field in
   * canonical order) or BUFFER_TOO_SMALL. Properties that are not fields of the type are ignored.
   */
  encode(msg: Message, buf: Uint8Array, offset = 0): number {
    checkTarget(buf, offset);
    if (typeof msg !== 'object' || msg === null) throw refuse(msg);
    switch (msg.type) {
      case 'limit':
        return encodeLimit(msg, buf, offset);
      case 'market':
        return encodeMarket(msg, buf, offset);
      case 'cancel':
        return encodeCancel(msg, buf, offset);
      case 'amend':
        return encodeAmend(msg, buf, offset);
      case 'accepted':
        return encodeAccepted(msg, buf, offset);
      case 'rejected':
        return encodeRejected(msg, buf, offset);
      case 'added':
        return encodeAdded(msg, buf, offset);
      case 'trade':
        return encodeTrade(msg, buf, offset);
      case 'canceled':
        return encodeCanceled(msg, buf, offset);
      case 'amended':
        return encodeAmended(msg, buf, offset);
      case 'cmdEnd':
        return encodeCmdEnd(msg, buf, offset);
      default:
        throw refuse(msg);
    }
  }

  /** `msg`'s record in a new Buffer of exactly its length. */
  encodeToBuffer(msg: Message): Buffer {
    const buf = Buffer.allocUnsafe(this.encodedLength(msg));
    // The fields are read again by encode: a getter that answers shorter the second time leaves
    // the rest of the buffer unwritten (longer is BUFFER_TOO_SMALL). The record alone is returned.
    const n = this.encode(msg, buf, 0);
    return n === buf.length ? buf : buf.subarray(0, n);
  }

  /** Decodes a record (all of `bytes`) into a new plain message (allocates it). */
  decode(bytes: Uint8Array): Message {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('decode: bytes must be a Uint8Array or Buffer');
    return this.decodeInto(bytes, 0, bytes.length, this.scratch).toMessage();
  }

  /**
   * Decodes the record of exactly `length` bytes at `offset` in `bytes` into `out`, and returns
   * `out`. Allocates nothing once the symbol is in the cache, except the string of a client order id. Every defect of the bytes is a
   * DecodeError: TRUNCATED, UNKNOWN_VERSION, UNKNOWN_TYPE, INVALID_FIELD (naming the field),
   * TRAILING_BYTES. Bad arguments (a negative offset) are a RangeError.
   */
  decodeInto(bytes: Uint8Array, offset: number, length: number, out: DecodedMessage): DecodedMessage {
    checkSource(bytes, offset, length);
    if (length < 1) throw new DecodeError('TRUNCATED', 'decode: an empty record', `@${offset}`);
    const version = bytes[offset] as number;
    if (version !== BINARY_VERSION) {
      throw new DecodeError('UNKNOWN_VERSION', `decode: unknown version ${version} (this codec reads ${BINARY_VERSION})`, 'version');
    }
    if (length < 2) throw new DecodeError('TRUNCATED', 'decode: the record ends after its version byte', `@${offset + 1}`);
    const b = bytes;
    const o = offset;
    switch (b[o + 1]) {
      case 0x01:
        return decodeLimit(b, o, length, out, this.symbols);
      case 0x02:
        return decodeMarket(b, o, length, out, this.symbols);
      case 0x03:
        return decodeCancel(b, o, length, out, this.symbols);
      case 0x04:
        return decodeAmend(b, o, length, out, this.symbols);
      case 0x10:
        return decodeAccepted(b, o, length, out, this.symbols);
      case 0x11:
        return decodeRejected(b, o, length, out, this.symbols);
      case 0x12:
        return decodeAdded(b, o, length, out, this.symbols);
      case 0x13:
        return decodeTrade(b, o, length, out, this.symbols);
      case 0x14:
        return decodeCanceled(b, o, length, out, this.symbols);
      case 0x15:
        return decodeAmended(b, o, length, out, this.symbols);
      case 0x16:
        return decodeCmdEnd(b, o, length, out, this.symbols);
      default:
        throw new DecodeError('UNKNOWN_TYPE', `decode: unknown type tag ${String(b[o + 1])}`, 'type');
    }
  }

}

/** The binary codec. */
export const binaryCodec: BinaryCodec = new BinaryCodec();
