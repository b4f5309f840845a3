// The JSON codec: a message is one UTF-8 JSON object, `{"v":1,"type":...}` followed by the
// message's fields in canonical order. Encoding writes the bytes straight into the caller's buffer
// (every string it writes is ASCII and needs no escaping: symbols and enum values are restricted),
// so the output is canonical: one message, one byte string. Decoding accepts any JSON object with
// exactly the right fields, in any order and with any whitespace, and validates every field.
import type { Codec } from './codec.js';
import { DecodedMessage } from './decoded-message.js';
import { DecodeError, EncodeError } from './errors.js';
import { fractionalNumbers, type FractionalNumber } from './fractional-number.js';
import {
  CROSS_FIELD_RULES,
  crossFieldError,
  invalidMessageError,
  describeSpec,
  isMessageType,
  isValidValue,
  MAX_SYMBOL_LENGTH,
  MAX_CLIENT_ORDER_ID_LENGTH,
  MESSAGE_FIELDS,
  OPTIONAL_FIELDS,
  rejectedOrderError,
  show,
  type FieldSpec,
} from './internal/schema.js';
import { checkRoom, checkTarget } from './internal/target.js';
import { MESSAGE_TYPES, type Message, type MessageType } from './types.js';

/** The value of the `v` field of every JSON record. */
export const JSON_VERSION = 1;

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

interface TypeLayout {
  /** `{"v":1,"type":"<type>"` */
  readonly head: Uint8Array;
  readonly fields: readonly FieldSpec[];
  /** `,"<name>":` for each field. */
  readonly keys: readonly Uint8Array[];
  /** The optional fields (written only when present), after the others. */
  readonly optional: readonly FieldSpec[];
  readonly optionalKeys: readonly Uint8Array[];
  /**
   * The values `measure` read, by field name (one object per type, reused): the rules across
   * fields are checked on them, not on the message read again (a getter may answer differently).
   */
  readonly values: Record<string, unknown>;
}

const LAYOUTS = Object.fromEntries(
  MESSAGE_TYPES.map((type): [MessageType, TypeLayout] => {
    const fields = MESSAGE_FIELDS[type];
    const optional = OPTIONAL_FIELDS[type];
    const key = (f: FieldSpec): Uint8Array => ascii(`,"${f.name}":`);
    const values: Record<string, unknown> = { type };
    for (const f of [...fields, ...optional]) values[f.name] = undefined;
    return [type, { head: ascii(`{"v":${JSON_VERSION},"type":"${type}"`), fields, keys: fields.map(key), optional, optionalKeys: optional.map(key), values }];
  }),
) as Record<MessageType, TypeLayout>;

const MAX_SAFE_DIGITS = String(Number.MAX_SAFE_INTEGER).length;

function maxValueLength(spec: FieldSpec): number {
  switch (spec.kind) {
    case 'symbol':
      return MAX_SYMBOL_LENGTH + 2;
    case 'clientOrderId':
      return MAX_CLIENT_ORDER_ID_LENGTH + 2;
    case 'int':
      return MAX_SAFE_DIGITS;
    case 'enum':
      return Math.max(...spec.values.map((v) => v.length)) + 2;
  }
}

/** The longest JSON record of any valid message. */
export const JSON_MAX_LENGTH = Math.max(
  ...MESSAGE_TYPES.map((type) => {
    const l = LAYOUTS[type];
    const all = [...l.fields, ...l.optional];
    const keys = [...l.keys, ...l.optionalKeys];
    return l.head.length + all.reduce((n, f, i) => n + (keys[i]?.length ?? 0) + maxValueLength(f), 0) + 1;
  }),
);

/** 10^0 .. 10^15: a safe integer has at most 16 digits. */
const POW10 = Array.from({ length: MAX_SAFE_DIGITS }, (_, i) => 10 ** i);

/** The number of decimal digits of a non-negative safe integer (comparisons only). */
function digits(n: number): number {
  let d = 1;
  while (d < MAX_SAFE_DIGITS && n >= (POW10[d] as number)) d++;
  return d;
}

function copy(buf: Uint8Array, at: number, src: Uint8Array): number {
  for (let i = 0; i < src.length; i++) buf[at + i] = src[i] as number;
  return at + src.length;
}

function writeString(buf: Uint8Array, at: number, s: string): number {
  buf[at++] = 0x22;
  for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
  buf[at++] = 0x22;
  return at;
}

/** Writes the `d` decimal digits of `n` (0 <= n < 2^31) ending before `end`, zero-padded. Int32 arithmetic only. */
function writeDigits(buf: Uint8Array, end: number, n: number, d: number): void {
  let x = n | 0; // an int32 from here on, so that / 10 compiles to a multiplication
  for (let i = end - 1; i >= end - d; i--) {
    const q = (x / 10) | 0;
    buf[i] = 0x30 + x - q * 10;
    x = q;
  }
}

/** Writes a non-negative safe integer in decimal and returns the offset after it. */
function writeInt(buf: Uint8Array, at: number, n: number): number {
  const d = digits(n);
  const end = at + d;
  if (n < 0x80000000) {
    writeDigits(buf, end, n, d);
  } else {
    // Two int32 halves: the low 8 digits and the rest (at most 8 digits too, as n < 2^53 < 10^16).
    const high = Math.floor(n / 1e8);
    writeDigits(buf, end, n - high * 1e8, 8);
    writeDigits(buf, end - 8, high, d - 8);
  }
  return end;
}

/** The error for a message that failed the checks: its first invalid field in canonical order. */
function refuse(msg: unknown): EncodeError {
  return invalidMessageError(msg) ?? new EncodeError('INVALID_FIELD', 'encode: invalid message', 'type');
}

/**
 * The values of the message being encoded, read once each by `measure` (a generic read of a field
 * that holds a large number boxes it: reading each field once keeps that to one box per such field).
 */
const VALUES: unknown[] = new Array<unknown>(16).fill(0);

/** What `measure` read: the type's layout and the values (in the layout's order of fields, then optional ones). */
interface Measured {
  layout: TypeLayout;
  readonly values: unknown[];
  /** The values by field name, for the rules across fields (the layout's own object at the top level). */
  readonly named: Record<string, unknown> | undefined;
}

/** The scratch of an encode that is not inside another's `measure` (no allocation). */
const TOP: Measured = { layout: LAYOUTS.limit, values: VALUES, named: undefined };
/** How many `measure` calls are under way: one from a getter of a message being measured (nested) gets scratch of its own. */
let measuring = 0;

/** The scratch for a `measure` about to start. */
function scratch(): Measured {
  return measuring === 0 ? TOP : { layout: LAYOUTS.limit, values: new Array<unknown>(16), named: {} };
}

/** Validates `msg`, copies its field values and layout to `into`, and returns its record's length. */
function measure(msg: Message, into: Measured): number {
  measuring++;
  try {
    return measureOnce(msg, into);
  } finally {
    measuring--;
  }
}

function measureOnce(msg: Message, into: Measured): number {
  if (typeof msg !== 'object' || msg === null) throw refuse(msg);
  const rec = msg as unknown as Record<string, unknown>;
  const type = rec.type;
  if (!isMessageType(type)) throw refuse(msg);
  const layout = LAYOUTS[type];
  const { fields, keys } = layout;
  const read = into.values;
  const values = into.named ?? layout.values;
  if (into.named !== undefined) values.type = type;
  let n = layout.head.length + 1;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i] as FieldSpec;
    const v = rec[f.name];
    n += (keys[i] as Uint8Array).length;
    if (f.kind === 'int') {
      // Inline, not through a helper: see the binary codec on boxing.
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < f.min) throw refuse(msg);
      let d = 1;
      while (d < MAX_SAFE_DIGITS && v >= (POW10[d] as number)) d++;
      n += d;
    } else {
      if (!isValidValue(f, v)) throw refuse(msg);
      n += (v as string).length + 2;
    }
    read[i] = v;
    values[f.name] = v;
  }
  if (crossFieldError(type, values) !== undefined) throw refuse(values);
  const { optional, optionalKeys } = layout;
  for (let j = 0; j < optional.length; j++) {
    const f = optional[j] as FieldSpec;
    const v = rec[f.name];
    if (v !== undefined) {
      if (!isValidValue(f, v)) throw refuse(msg);
      n += (optionalKeys[j] as Uint8Array).length + (f.kind === 'int' ? digits(v as number) : (v as string).length + 2);
    }
    read[fields.length + j] = v;
    values[f.name] = v;
  }
  if (type === 'rejected' && rejectedOrderError(values) !== undefined) throw refuse(values);
  into.layout = layout;
  return n;
}

/** Measures `msg` into `m` and writes its record into `buf` at `offset`; returns its length. */
function writeRecord(msg: Message, buf: Uint8Array, offset: number, m: Measured): number {
  const length = measureOnce(msg, m);
  const { head, fields, keys, optional, optionalKeys } = m.layout;
  const read = m.values;
  checkRoom(buf, offset, length);
  let at = copy(buf, offset, head);
  for (let i = 0; i < fields.length; i++) {
    at = copy(buf, at, keys[i] as Uint8Array);
    const v = read[i];
    at = (fields[i] as FieldSpec).kind === 'int' ? writeInt(buf, at, v as number) : writeString(buf, at, v as string);
  }
  for (let j = 0; j < optional.length; j++) {
    const v = read[fields.length + j];
    if (v === undefined) continue;
    at = copy(buf, at, optionalKeys[j] as Uint8Array);
    at = (optional[j] as FieldSpec).kind === 'int' ? writeInt(buf, at, v as number) : writeString(buf, at, v as string);
  }
  buf[at] = 0x7d;
  return length;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The JSON codec (use the `jsonCodec` instance). */
export class JsonCodec implements Codec {
  readonly name = 'json';
  readonly maxLength = JSON_MAX_LENGTH;
  private readonly scratch = new DecodedMessage();

  /** The exact length of `msg`'s record; EncodeError INVALID_FIELD if `msg` is not valid. */
  encodedLength(msg: Message): number {
    return measure(msg, scratch());
  }

  /**
   * Writes `msg` as a JSON record into `buf` at `offset` and returns the bytes written. Nothing is
   * written when it throws: EncodeError INVALID_FIELD (an invalid message, naming its first invalid
   * field in canonical order) or BUFFER_TOO_SMALL. Properties that are not fields of the type are ignored.
   */
  encode(msg: Message, buf: Uint8Array, offset = 0): number {
    checkTarget(buf, offset);
    const m = scratch();
    // Counted as measuring until the record is written: user code run meanwhile (a getter of the
    // message, or of the buffer) that encodes gets scratch of its own, and leaves `m` alone.
    measuring++;
    try {
      return writeRecord(msg, buf, offset, m);
    } finally {
      measuring--;
    }
  }

  /** `msg` as a new Buffer holding exactly its record. */
  encodeToBuffer(msg: Message): Buffer {
    const buf = Buffer.allocUnsafe(this.encodedLength(msg));
    // The fields are read again by encode: a getter that answers shorter the second time leaves
    // the rest of the buffer unwritten (longer is BUFFER_TOO_SMALL). The record alone is returned.
    const n = this.encode(msg, buf, 0);
    return n === buf.length ? buf : buf.subarray(0, n);
  }

  /**
   * Decodes one JSON record (all of `bytes`) into a new message. Every failure is a DecodeError:
   * MALFORMED (not UTF-8, not JSON, not an object), MISSING_FIELD, UNKNOWN_VERSION, UNKNOWN_TYPE,
   * INVALID_FIELD (a wrong value, or a property that is not a field of the type), each naming the field.
   */
  decode(bytes: Uint8Array): Message {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`decode: expected a Uint8Array, got ${bytes === null ? 'null' : typeof bytes}`);
    let value: unknown;
    let text: string;
    try {
      text = utf8.decode(bytes);
      value = JSON.parse(text);
    } catch (cause) {
      throw new DecodeError('MALFORMED', `decode: not a UTF-8 JSON text (${cause instanceof Error ? cause.message : 'unparseable'})`, undefined, {
        cause,
      });
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new DecodeError('MALFORMED', `decode: a record must be a JSON object, got ${show(value)}`);
    }
    const rec = value as Record<string, unknown>;
    // JSON.parse rounds a number such as 9007199254740991.4 to a safe integer before the checks
    // below: a value written with a fraction (or exponent) that is not zero is found from the text
    // (only a text that can hold one is scanned), and reported when its field's turn comes.
    const rounded = fractionalNumbers(text);

    if (!Object.hasOwn(rec, 'v')) throw new DecodeError('MISSING_FIELD', 'decode: missing field v (the version)', 'v');
    if (typeof rec.v !== 'number') throw new DecodeError('INVALID_FIELD', `decode: invalid v: ${show(rec.v)} (the version, a number)`, 'v');
    if (rec.v !== JSON_VERSION) throw new DecodeError('UNKNOWN_VERSION', `decode: unknown version ${show(rec.v)} (this codec reads ${JSON_VERSION})`, 'v');
    if (rounded !== undefined) notInteger(rounded, 'v', 'v');

    if (!Object.hasOwn(rec, 'type')) throw new DecodeError('MISSING_FIELD', 'decode: missing field type', 'type');
    const type = rec.type;
    if (typeof type !== 'string') throw new DecodeError('INVALID_FIELD', `decode: invalid type: ${show(type)} (a string)`, 'type');
    if (!isMessageType(type)) throw new DecodeError('UNKNOWN_TYPE', `decode: unknown message type ${show(type)}`, 'type');

    const fields = MESSAGE_FIELDS[type];
    // The values go to a DecodedMessage (fixed shape), which then builds the message as an object
    // literal of the type: faster than adding the properties one by one to a new object.
    const out = this.scratch;
    const fill = out as unknown as Record<string, unknown>;
    out.type = type;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i] as FieldSpec;
      if (!Object.hasOwn(rec, f.name)) throw new DecodeError('MISSING_FIELD', `decode: ${type}: missing field ${f.name}`, f.name);
      const v = rec[f.name];
      if (!isValidValue(f, v)) {
        throw new DecodeError('INVALID_FIELD', `decode: ${type}: invalid ${f.name}: ${show(v)} (expected ${describeSpec(f)})`, f.name);
      }
      if (rounded !== undefined) notInteger(rounded, type, f.name);
      fill[f.name] = v === 0 ? 0 : v; // -0 reads as 0
    }
    const cross = crossFieldError(type, rec);
    if (cross !== undefined) {
      throw new DecodeError('INVALID_FIELD', `decode: ${type}: invalid ${cross}: ${show(rec[cross])} (${CROSS_FIELD_RULES[type] ?? ''})`, cross);
    }

    const optional = OPTIONAL_FIELDS[type];
    let present = 0;
    for (let j = 0; j < optional.length; j++) {
      const f = optional[j] as FieldSpec;
      const v = Object.hasOwn(rec, f.name) ? rec[f.name] : undefined;
      if (v !== undefined) {
        if (!isValidValue(f, v)) {
          throw new DecodeError('INVALID_FIELD', `decode: ${type}: invalid ${f.name}: ${show(v)} (expected ${describeSpec(f)})`, f.name);
        }
        if (rounded !== undefined) notInteger(rounded, type, f.name);
        present++;
        fill[f.name] = v === 0 ? 0 : v; // -0 reads as 0
      } else if (f.kind === 'clientOrderId') {
        out.clientOrderId = undefined;
      }
    }
    if (type === 'rejected') {
      const bad = rejectedOrderError(rec);
      if (bad !== undefined) {
        throw new DecodeError('INVALID_FIELD', `decode: rejected: invalid ${bad}: ${show(rec[bad])} (${CROSS_FIELD_RULES.rejected ?? ''})`, bad);
      }
      out.orderDetails = present > (rec.clientOrderId === undefined ? 0 : 1);
    } else if (type === 'accepted') {
      out.orderDetails = rec.stp !== undefined;
    }

    const keys = Object.keys(rec);
    if (keys.length !== fields.length + present + 2) {
      for (const key of keys) {
        if (key !== 'v' && key !== 'type' && !fields.some((f) => f.name === key) && !optional.some((f) => f.name === key)) {
          throw new DecodeError('INVALID_FIELD', `decode: ${type}: unknown field ${show(key)}`, key);
        }
      }
    }
    // A rounded number that is not in a field checked above (inside a nested value of a known field).
    if (rounded !== undefined) {
      const first = rounded.values().next().value as FractionalNumber;
      throw new DecodeError('INVALID_FIELD', `decode: ${type}: invalid ${first.field}: ${first.token} is not an integer`, first.field);
    }
    return out.toMessage();
  }
}

/** INVALID_FIELD for `field` if the text's rounded number is in it. */
function notInteger(rounded: ReadonlyMap<string, FractionalNumber>, type: string, field: string): void {
  const found = rounded.get(field);
  if (found !== undefined) throw new DecodeError('INVALID_FIELD', `decode: ${type}: invalid ${field}: ${found.token} is not an integer`, field);
}

/** The JSON codec. */
export const jsonCodec: JsonCodec = new JsonCodec();
