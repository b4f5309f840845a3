// The JSON text of a command's answer (the order and its events), written field by field for the
// known shapes instead of through JSON.stringify: answers are most of what the gateway sends, and
// this takes about 40% less time than the generic walk (measured on 800-byte answers). The text is
// what JSON.stringify gives for the same object, up to the order of the keys (`duplicate` is written
// only when true, as the gateway sets it); the tests check that JSON.parse of it equals the object,
// for every event type and for strings that need escaping.

import type { Event, RejectedEvent, TradeEvent } from '@gx3/codecs';
import type { OrderResult, OrderView } from './gateway.js';

const PLAIN = /^[A-Za-z0-9_.:\- ]*$/;

/** A JSON string literal: quoted as is when nothing in it needs escaping. */
function quote(s: string): string {
  return PLAIN.test(s) ? `"${s}"` : JSON.stringify(s);
}

/** Remembers the last string quoted (symbols and user names repeat from one answer to the next). */
class Quoted {
  private raw = '';
  private text = '""';
  of(s: string): string {
    if (s !== this.raw) {
      this.text = quote(s);
      this.raw = s;
    }
    return this.text;
  }
}

const symbols = new Quoted();
const users = new Quoted();

// Enum fields (side, tif, reason, ...) hold names from the codecs' fixed lists, which need no
// escaping, and number fields safe integers: both are written directly.

function base(e: Event): string {
  return `{"symbol":${symbols.of(e.symbol)},"seq":${e.seq},"eventSeq":${e.eventSeq},"ts":${e.ts},"type":"${e.type}"`;
}

/** The `clientOrderId` member of an order's accepted or rejected event, if it has one. */
function clientOrderId(id: string | undefined): string {
  return id === undefined ? '' : `,"clientOrderId":${quote(id)}`;
}

/** The members of a rejected order's request, if its event carries them. */
function rejectedOrder(e: RejectedEvent): string {
  return e.side === undefined ? '' : `,"side":"${e.side}","price":${e.price ?? 0},"qty":${e.qty ?? 0},"tif":"${e.tif ?? ''}","stp":"${e.stp ?? ''}"`;
}

/** The JSON text of one event. */
export function eventJson(e: Event): string {
  switch (e.type) {
    case 'accepted':
      return `${base(e)},"orderType":"${e.orderType}","orderId":${e.orderId},"userId":${e.userId},"side":"${e.side}","price":${e.price},"qty":${e.qty},"tif":"${e.tif}"${clientOrderId(e.clientOrderId)}${e.stp === undefined ? '' : `,"stp":"${e.stp}"`}}`;
    case 'rejected':
      return `${base(e)},"commandType":"${e.commandType}","orderId":${e.orderId},"userId":${e.userId},"reason":"${e.reason}"${clientOrderId(e.clientOrderId)}${rejectedOrder(e)}}`;
    case 'added':
      return `${base(e)},"orderId":${e.orderId},"userId":${e.userId},"side":"${e.side}","price":${e.price},"qty":${e.qty}}`;
    case 'trade':
      return `${base(e)},"makerOrderId":${e.makerOrderId},"takerOrderId":${e.takerOrderId},"makerUserId":${e.makerUserId},"takerUserId":${e.takerUserId},"takerSide":"${e.takerSide}","price":${e.price},"qty":${e.qty},"makerRemaining":${e.makerRemaining}}`;
    case 'canceled':
      return `${base(e)},"orderId":${e.orderId},"userId":${e.userId},"reason":"${e.reason}","qty":${e.qty}}`;
    case 'amended':
      return `${base(e)},"orderId":${e.orderId},"userId":${e.userId},"side":"${e.side}","price":${e.price},"qty":${e.qty},"kind":"${e.kind}"}`;
    default:
      return JSON.stringify(e);
  }
}

/**
 * A trade as its taker's answer shows it when the maker is another user: without the maker's order
 * id, user id and remaining quantity (trading is anonymous; the maker learns of the fill through
 * its own order). Field for field as JSON.stringify writes `forTaker(e)`.
 */
function takerTradeJson(e: TradeEvent): string {
  return `${base(e)},"takerOrderId":${e.takerOrderId},"takerUserId":${e.takerUserId},"takerSide":"${e.takerSide}","price":${e.price},"qty":${e.qty}}`;
}

/** A trade event without what it says of another user's order (its maker's, unless it is a self-trade). */
export function forTaker(e: TradeEvent): Omit<TradeEvent, 'makerOrderId' | 'makerUserId' | 'makerRemaining'> | TradeEvent {
  if (e.makerUserId === e.takerUserId) return e;
  const { makerOrderId: _o, makerUserId: _u, makerRemaining: _r, ...rest } = e;
  return rest;
}

/** The JSON text of an order view. */
export function orderViewJson(o: OrderView): string {
  let s = `{"orderId":${o.orderId},"symbol":${symbols.of(o.symbol)},"user":${users.of(o.user)},"side":"${o.side}","type":"${o.type}","tif":"${o.tif}","price":${o.price},"qty":${o.qty},"filledQty":${o.filledQty},"remainingQty":${o.remainingQty},"status":"${o.status}","updatedAt":${o.updatedAt}`;
  if (o.reason !== undefined) s += `,"reason":"${o.reason}"`;
  if (o.clientOrderId !== undefined) s += `,"clientOrderId":${quote(o.clientOrderId)}`;
  return `${s}}`;
}

/**
 * The members of a command's answer, without braces: `"order":…,"events":[…]` and `"duplicate":true`
 * for a resubmission (the HTTP body and the WebSocket answer wrap them). The command's user is the
 * taker of its trades; a trade against another user's order is written as `forTaker` shows it.
 */
export function orderResultMembers(r: OrderResult): string {
  let s = r.order === undefined ? '"events":[' : `"order":${orderViewJson(r.order)},"events":[`;
  const events = r.events;
  for (let i = 0; i < events.length; i++) {
    if (i > 0) s += ',';
    const e = events[i] as Event;
    s += e.type === 'trade' && e.makerUserId !== e.takerUserId ? takerTradeJson(e) : eventJson(e);
  }
  s += ']';
  if (r.duplicate === true) s += ',"duplicate":true';
  return s;
}

/** The HTTP body of a command's answer. */
export function orderResultJson(r: OrderResult): string {
  return `{${orderResultMembers(r)}}`;
}
