// The fields of every message type, in canonical order, with their ranges: the single statement of
// the validation rules. The JSON codec is driven by this table; the binary codec checks the same
// rules in hand-specialised code, and the tests hold the two to this table.
import {
  AMEND_KINDS,
  CANCEL_REASONS,
  COMMAND_TYPES,
  ORDER_TYPES,
  REJECT_REASONS,
  SELF_TRADE_PREVENTIONS,
  SIDES,
  TIMES_IN_FORCE,
  type MessageType,
} from '../types.js';
import { EncodeError } from '../errors.js';

/** The longest symbol, in characters (= bytes: symbols are ASCII). */
export const MAX_SYMBOL_LENGTH = 32;

/** The longest client order id, in characters (= bytes: they are ASCII). */
export const MAX_CLIENT_ORDER_ID_LENGTH = 64;

/** A field: the symbol, a safe integer `>= min`, one of a list of strings, or a client order id. */
export type FieldSpec =
  | { readonly name: string; readonly kind: 'symbol' }
  | { readonly name: string; readonly kind: 'clientOrderId' }
  | { readonly name: string; readonly kind: 'int'; readonly min: 0 | 1 }
  | { readonly name: string; readonly kind: 'enum'; readonly values: readonly string[] };

const symbol: FieldSpec = { name: 'symbol', kind: 'symbol' };
const nat = (name: string): FieldSpec => ({ name, kind: 'int', min: 0 });
const pos = (name: string): FieldSpec => ({ name, kind: 'int', min: 1 });
const oneOf = (name: string, values: readonly string[]): FieldSpec => ({ name, kind: 'enum', values });

const COMMAND_BASE = [symbol, nat('seq'), nat('reqId'), pos('orderId'), nat('userId'), nat('ts')];
const EVENT_BASE = [symbol, nat('seq'), nat('eventSeq'), nat('ts')];

/**
 * Each message type's fields (without `type`), in the canonical order of the JSON form. Three
 * rules span fields and are checked by `crossFieldError`: an `accepted` event's price is 0 for a
 * market order and positive for a limit order; an `amended` event's price may be 0 only for a
 * `SELF_TRADE_DECREMENT` (of a market order's rest); an `amend`'s qty may be 0 only with a positive
 * price (a price change keeping the quantity the order has left when the engine applies it).
 */
export const MESSAGE_FIELDS: Readonly<Record<MessageType, readonly FieldSpec[]>> = {
  limit: [
    ...COMMAND_BASE,
    oneOf('side', SIDES),
    pos('price'),
    pos('qty'),
    oneOf('tif', TIMES_IN_FORCE),
    oneOf('stp', SELF_TRADE_PREVENTIONS),
  ],
  market: [...COMMAND_BASE, oneOf('side', SIDES), pos('qty'), oneOf('stp', SELF_TRADE_PREVENTIONS)],
  cancel: [...COMMAND_BASE],
  amend: [...COMMAND_BASE, nat('price'), nat('qty')],
  accepted: [
    ...EVENT_BASE,
    oneOf('orderType', ORDER_TYPES),
    pos('orderId'),
    nat('userId'),
    oneOf('side', SIDES),
    nat('price'),
    pos('qty'),
    oneOf('tif', TIMES_IN_FORCE),
  ],
  rejected: [...EVENT_BASE, oneOf('commandType', COMMAND_TYPES), nat('orderId'), nat('userId'), oneOf('reason', REJECT_REASONS)],
  added: [...EVENT_BASE, pos('orderId'), nat('userId'), oneOf('side', SIDES), pos('price'), pos('qty')],
  trade: [
    ...EVENT_BASE,
    pos('makerOrderId'),
    pos('takerOrderId'),
    nat('makerUserId'),
    nat('takerUserId'),
    oneOf('takerSide', SIDES),
    pos('price'),
    pos('qty'),
    nat('makerRemaining'),
  ],
  canceled: [...EVENT_BASE, pos('orderId'), nat('userId'), oneOf('reason', CANCEL_REASONS), pos('qty')],
  amended: [
    ...EVENT_BASE,
    pos('orderId'),
    nat('userId'),
    oneOf('side', SIDES),
    nat('price'),
    pos('qty'),
    oneOf('kind', AMEND_KINDS),
  ],
  cmdEnd: [...EVENT_BASE, nat('events')],
};

/**
 * The optional fields of each type, after MESSAGE_FIELDS in canonical order: absent (undefined)
 * or valid. Only orders and the events that answer them carry a client order id. A `rejected`
 * event of a limit or market order may also carry what the order asked for (REJECTED_ORDER_FIELDS,
 * all of them or none), so that the rejection alone tells the whole order.
 */
export const OPTIONAL_FIELDS: Readonly<Record<MessageType, readonly FieldSpec[]>> = {
  limit: [{ name: 'clientOrderId', kind: 'clientOrderId' }],
  market: [{ name: 'clientOrderId', kind: 'clientOrderId' }],
  cancel: [],
  amend: [],
  accepted: [{ name: 'clientOrderId', kind: 'clientOrderId' }, oneOf('stp', SELF_TRADE_PREVENTIONS)],
  rejected: [
    { name: 'clientOrderId', kind: 'clientOrderId' },
    oneOf('side', SIDES),
    nat('price'),
    pos('qty'),
    oneOf('tif', TIMES_IN_FORCE),
    oneOf('stp', SELF_TRADE_PREVENTIONS),
  ],
  added: [],
  trade: [],
  canceled: [],
  amended: [],
  cmdEnd: [],
};

/** The optional fields of a `rejected` event that describe the rejected order: all present or all absent. */
export const REJECTED_ORDER_FIELDS: readonly string[] = ['side', 'price', 'qty', 'tif', 'stp'];

/**
 * The field that breaks the rule of a rejected event's order fields, if any (each present field
 * being valid): all of them or none; only for a limit or market order; price 0 for a market order
 * and positive for a limit order.
 */
export function rejectedOrderError(rec: Readonly<Record<string, unknown>>): string | undefined {
  let present = 0;
  for (const f of REJECTED_ORDER_FIELDS) if (rec[f] !== undefined) present++;
  if (present === 0) return undefined;
  if (present < REJECTED_ORDER_FIELDS.length) return REJECTED_ORDER_FIELDS.find((f) => rec[f] === undefined);
  if (rec.commandType !== 'limit' && rec.commandType !== 'market') return 'side';
  return (rec.commandType === 'market' ? rec.price === 0 : rec.price !== 0) ? undefined : 'price';
}

/** Whether `s` is a valid client order id: 1 to 64 characters of `A-Z a-z 0-9 . _ : -`. */
export function isValidClientOrderId(s: unknown): s is string {
  if (typeof s !== 'string' || s.length === 0 || s.length > MAX_CLIENT_ORDER_ID_LENGTH) return false;
  for (let i = 0; i < s.length; i++) {
    if (!isClientOrderIdByte(s.charCodeAt(i))) return false;
  }
  return true;
}

/** `A-Z`, `a-z`, `0-9`, `.`, `_`, `:`, `-`. */
export const isClientOrderIdByte = (c: number): boolean =>
  (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x3a) || c === 0x2e || c === 0x5f || c === 0x2d;

/** Whether `type` names a message type (an own key of the table, not `toString` and the like). */
export const isMessageType = (type: unknown): type is MessageType => typeof type === 'string' && Object.hasOwn(MESSAGE_FIELDS, type);

/** Whether `s` is a valid symbol: 1 to 32 characters of `A-Z`, `0-9`, `.`, `_`, `-`. */
export function isValidSymbol(s: unknown): s is string {
  if (typeof s !== 'string' || s.length === 0 || s.length > MAX_SYMBOL_LENGTH) return false;
  for (let i = 0; i < s.length; i++) {
    if (!isSymbolByte(s.charCodeAt(i))) return false;
  }
  return true;
}

/** `A-Z`, `0-9`, `.`, `_`, `-`. */
export const isSymbolByte = (c: number): boolean =>
  (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x5f || c === 0x2d;

/** Whether `v` is a valid value of the field (ignoring the cross-field rules). */
export function isValidValue(spec: FieldSpec, v: unknown): boolean {
  switch (spec.kind) {
    case 'symbol':
      return isValidSymbol(v);
    case 'clientOrderId':
      return isValidClientOrderId(v);
    case 'int':
      return typeof v === 'number' && Number.isSafeInteger(v) && v >= spec.min;
    case 'enum':
      return typeof v === 'string' && spec.values.includes(v);
  }
}

/** The rules that span fields, for error messages. */
export const CROSS_FIELD_RULES: Readonly<Partial<Record<MessageType, string>>> = {
  accepted: 'price is 0 for a market order and positive for a limit order',
  rejected: 'side, price, qty, tif and stp come all together or not at all, only for a limit or market order, with price 0 for a market order and positive for a limit order',
  amended: 'price is positive, or 0 for a SELF_TRADE_DECREMENT',
  amend: 'qty is positive, or 0 with a positive price (a new price for the quantity the order has left)',
};

/** The field that breaks a cross-field rule, if any, in a message of `type` whose fields are each valid. */
export function crossFieldError(type: MessageType, rec: Readonly<Record<string, unknown>>): string | undefined {
  if (type === 'accepted') return (rec.orderType === 'market' ? rec.price === 0 : rec.price !== 0) ? undefined : 'price';
  if (type === 'amended') return rec.price !== 0 || rec.kind === 'SELF_TRADE_DECREMENT' ? undefined : 'price';
  if (type === 'amend') return rec.qty !== 0 || rec.price !== 0 ? undefined : 'qty';
  return undefined;
}

/** The first invalid field of `msg` (`type` if it is not a message), or undefined if it is valid. Extra properties are ignored. */
export function invalidField(msg: unknown): string | undefined {
  if (typeof msg !== 'object' || msg === null) return 'type';
  const rec = msg as Record<string, unknown>;
  const type = rec.type;
  if (!isMessageType(type)) return 'type';
  const fields = MESSAGE_FIELDS[type];
  for (let i = 0; i < fields.length; i++) {
    const spec = fields[i] as FieldSpec;
    if (!isValidValue(spec, rec[spec.name])) return spec.name;
  }
  const cross = crossFieldError(type, rec);
  if (cross !== undefined) return cross;
  for (const spec of OPTIONAL_FIELDS[type]) {
    const v = rec[spec.name];
    if (v !== undefined && !isValidValue(spec, v)) return spec.name;
  }
  return type === 'rejected' ? rejectedOrderError(rec) : undefined;
}

/** The EncodeError INVALID_FIELD for `msg`'s first invalid field in canonical order, or undefined if `msg` is valid. */
export function invalidMessageError(msg: unknown): EncodeError | undefined {
  const field = invalidField(msg);
  if (field === undefined) return undefined;
  if (field === 'type') {
    const type = typeof msg === 'object' && msg !== null ? (msg as Record<string, unknown>).type : msg;
    return new EncodeError('INVALID_FIELD', `encode: not a message: type ${show(type)}`, 'type');
  }
  const rec = msg as Record<string, unknown>;
  const type = rec.type as MessageType;
  const spec = MESSAGE_FIELDS[type].find((f) => f.name === field) ?? OPTIONAL_FIELDS[type].find((f) => f.name === field);
  const value = rec[field];
  const rule = spec !== undefined && !isValidValue(spec, value) ? `expected ${describeSpec(spec)}` : (CROSS_FIELD_RULES[type] ?? '');
  return new EncodeError('INVALID_FIELD', `encode: ${type}: invalid ${field}: ${show(value)} (${rule})`, field);
}

/** A short description of the range of a field, for error messages. */
export function describeSpec(spec: FieldSpec): string {
  switch (spec.kind) {
    case 'symbol':
      return `1 to ${MAX_SYMBOL_LENGTH} characters of A-Z 0-9 . _ -`;
    case 'clientOrderId':
      return `absent, or 1 to ${MAX_CLIENT_ORDER_ID_LENGTH} characters of A-Z a-z 0-9 . _ : -`;
    case 'int':
      return spec.min === 0 ? 'a non-negative safe integer' : 'a positive safe integer';
    case 'enum':
      return `one of ${spec.values.join(', ')}`;
  }
}

/** A value for an error message: short, and never throwing (no JSON.stringify of cycles or BigInts). */
export function show(v: unknown): string {
  if (typeof v === 'string') return v.length > 40 ? `"${v.slice(0, 40)}..."` : `"${v}"`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v === null || v === undefined) return String(v);
  return Array.isArray(v) ? 'an array' : `a ${typeof v}`;
}
