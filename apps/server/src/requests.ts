// The checks of client requests, shared by HTTP and WebSocket: each returns a typed request or
// throws ApiError VALIDATION naming the field. (The HTTP routes also declare JSON schemas, which
// fastify checks first; these checks are complete on their own, for WebSocket frames.)

import type { SelfTradePrevention, Side, TimeInForce } from '@gx3/codecs';
import type { InstrumentConfig } from './config.js';
import { ApiError } from './errors.js';

export interface PlaceOrder {
  symbol: string;
  side: Side;
  type: 'limit' | 'market';
  price: number;
  qty: number;
  tif: TimeInForce;
  stp: SelfTradePrevention;
  clientOrderId: string | undefined;
}

export interface AmendOrder {
  qty: number | undefined;
  price: number | undefined;
}

const SIDES = ['buy', 'sell'] as const;
const TYPES = ['limit', 'market'] as const;
const TIFS = ['GTC', 'IOC', 'FOK', 'POST'] as const;
const STPS = ['NONE', 'CANCEL_NEWEST', 'CANCEL_OLDEST', 'CANCEL_BOTH', 'DECREMENT_CANCEL'] as const;
export const CLIENT_ORDER_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const ORDER_FIELDS = new Set(['symbol', 'side', 'type', 'price', 'qty', 'tif', 'stp', 'clientOrderId']);
const AMEND_FIELDS = new Set(['qty', 'price']);

export function invalid(field: string, what: string): ApiError {
  return new ApiError('VALIDATION', `${field}: ${what}`);
}

/** What is wrong with a number JSON.parse read as an integer although its text is not one. */
export function roundedMessage(token: string): string {
  return `${token} is not an integer (JSON would read it as ${String(Number(token))})`;
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(what, 'must be a JSON object');
  return v as Record<string, unknown>;
}

function onlyFields(o: Record<string, unknown>, allowed: ReadonlySet<string>, prefix: string): void {
  for (const k of Object.keys(o)) if (!allowed.has(k)) throw invalid(`${prefix}${k}`, 'is not a field of this request');
}

function enumOf<T extends string>(o: Record<string, unknown>, field: string, values: readonly T[], prefix: string, fallback?: T): T {
  const v = o[field];
  if (v === undefined && fallback !== undefined) return fallback;
  if (v === undefined) throw invalid(`${prefix}${field}`, 'is required');
  if (typeof v !== 'string' || !values.includes(v as T)) throw invalid(`${prefix}${field}`, `must be one of ${values.join(', ')}`);
  return v as T;
}

/** What a value that is not the expected one is, in a few words. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

/** A positive safe integer (prices are ticks, quantities lots). */
export function positiveInt(v: unknown, field: string): number {
  // The wrong value is described by its kind, never printed: a deeply nested one cannot be stringified.
  if (typeof v !== 'number') throw invalid(field, `must be a number, got ${kindOf(v)}`);
  if (!Number.isInteger(v)) throw invalid(field, `must be a whole number of ${field === 'price' || field.endsWith('.price') ? 'ticks' : 'lots'}, got ${v}`);
  if (!Number.isSafeInteger(v)) throw invalid(field, `must be at most 2^53 - 1, got ${v}`);
  if (v <= 0) throw invalid(field, `must be positive, got ${v}`);
  return v;
}

export function parsePlaceOrder(body: unknown, instruments: ReadonlyMap<string, InstrumentConfig>, prefix = ''): PlaceOrder {
  const o = object(body, prefix === '' ? 'body' : prefix.slice(0, -1));
  onlyFields(o, ORDER_FIELDS, prefix);
  if (o.symbol === undefined) throw invalid(`${prefix}symbol`, 'is required');
  if (typeof o.symbol !== 'string') throw invalid(`${prefix}symbol`, 'must be a string');
  const inst = instruments.get(o.symbol);
  if (inst === undefined) throw new ApiError('UNKNOWN_SYMBOL', `${prefix}symbol: unknown symbol ${JSON.stringify(o.symbol.slice(0, 40))}`);
  const side = enumOf(o, 'side', SIDES, prefix);
  const type = enumOf(o, 'type', TYPES, prefix);
  if (o.qty === undefined) throw invalid(`${prefix}qty`, 'is required');
  const qty = positiveInt(o.qty, `${prefix}qty`);
  if (qty > inst.maxQty) throw invalid(`${prefix}qty`, `must be at most ${inst.maxQty} for ${inst.symbol}, got ${qty}`);
  let price = 0;
  let tif: TimeInForce = 'GTC';
  if (type === 'limit') {
    if (o.price === undefined) throw invalid(`${prefix}price`, 'is required for a limit order');
    price = positiveInt(o.price, `${prefix}price`);
    if (price < inst.minPrice || price > inst.maxPrice) {
      throw invalid(`${prefix}price`, `must be within ${inst.symbol}'s band ${inst.minPrice}..${inst.maxPrice} ticks, got ${price}`);
    }
    tif = enumOf(o, 'tif', TIFS, prefix, 'GTC');
  } else {
    if (o.price !== undefined) throw invalid(`${prefix}price`, 'must not be given for a market order');
    if (o.tif !== undefined) throw invalid(`${prefix}tif`, 'must not be given for a market order (a market order is IOC)');
  }
  const stp = enumOf(o, 'stp', STPS, prefix, 'NONE');
  let clientOrderId: string | undefined;
  if (o.clientOrderId !== undefined) {
    if (typeof o.clientOrderId !== 'string' || !CLIENT_ORDER_ID.test(o.clientOrderId)) {
      throw invalid(`${prefix}clientOrderId`, 'must be 1-64 characters of A-Z a-z 0-9 . _ : -');
    }
    clientOrderId = o.clientOrderId;
  }
  return { symbol: o.symbol, side, type, price, qty, tif, stp, clientOrderId };
}

export function parseAmendOrder(body: unknown, inst: InstrumentConfig): AmendOrder {
  const o = object(body, 'body');
  onlyFields(o, AMEND_FIELDS, '');
  if (o.qty === undefined && o.price === undefined) throw invalid('body', 'give qty, price or both');
  const qty = o.qty === undefined ? undefined : positiveInt(o.qty, 'qty');
  if (qty !== undefined && qty > inst.maxQty) throw invalid('qty', `must be at most ${inst.maxQty} for ${inst.symbol}, got ${qty}`);
  const price = o.price === undefined ? undefined : positiveInt(o.price, 'price');
  if (price !== undefined && (price < inst.minPrice || price > inst.maxPrice)) {
    throw invalid('price', `must be within ${inst.symbol}'s band ${inst.minPrice}..${inst.maxPrice} ticks, got ${price}`);
  }
  return { qty, price };
}

/** An order id from a URL path. */
export function parseOrderId(v: unknown): number {
  if (typeof v !== 'string' || !/^[1-9]\d{0,15}$/.test(v) || !Number.isSafeInteger(Number(v))) throw invalid('orderId', `must be a positive integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** An optional positive integer query parameter with a default and a maximum. */
export function queryInt(v: unknown, field: string, fallback: number, max: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'string' || !/^\d{1,9}$/.test(v)) throw invalid(field, `must be a positive integer, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (n < 1 || n > max) throw invalid(field, `must be in 1..${max}, got ${n}`);
  return n;
}
