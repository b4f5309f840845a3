// Minimal types for nodejs-order-book 10.1.1: its package.json points `types` at a file that does
// not exist (dist/types/index.d.js), so TypeScript finds none. Only what the compare adapter uses,
// written from the library's dist/cjs sources. (orderbook-match-engine ships working types.)

declare module 'nodejs-order-book' {
  export type NobSide = 'buy' | 'sell';
  export type NobTimeInForce = 'GTC' | 'IOC' | 'FOK';

  /** `Order.toObject()` of a limit order; `size` is its remaining quantity at that moment. */
  export interface NobLimitOrder {
    readonly id: string;
    readonly type: string;
    readonly side: NobSide;
    readonly size: number;
    readonly origSize: number;
    readonly price: number;
    readonly time: number;
    readonly timeInForce: NobTimeInForce;
    readonly takerQty: number;
    readonly makerQty: number;
  }

  export interface NobError {
    readonly message: string;
    readonly code: number;
  }

  /** What `limit` and `market` return. */
  export interface NobProcessOrder {
    /** Maker orders filled completely (as they were before the fill), then, for a limit order filled completely, the order itself. */
    readonly done: readonly NobLimitOrder[];
    readonly activated: readonly unknown[];
    /** The maker order filled partly (its remaining quantity after the fill), or a limit order that traded and rests. */
    readonly partial: NobLimitOrder | null;
    /** The quantity traded with `partial`. */
    readonly partialQuantityProcessed: number;
    readonly quantityLeft: number;
    readonly err: NobError | null;
  }

  export interface NobLimitOptions {
    id: string;
    side: NobSide;
    size: number;
    price: number;
    timeInForce?: NobTimeInForce;
    postOnly?: boolean;
  }

  export interface NobMarketOptions {
    side: NobSide;
    size: number;
  }

  export interface NobSnapshot {
    /** Best price first; each level's orders in time priority. */
    readonly bids: readonly { readonly price: number; readonly orders: readonly NobLimitOrder[] }[];
    readonly asks: readonly { readonly price: number; readonly orders: readonly NobLimitOrder[] }[];
    readonly ts: number;
    readonly lastOp: number;
  }

  export class OrderBook {
    constructor(options?: { enableJournaling?: boolean });
    limit(options: NobLimitOptions): NobProcessOrder;
    market(options: NobMarketOptions): NobProcessOrder;
    /** The removed order, or `undefined` when `orderID` is not resting. */
    cancel(orderID: string): { readonly order?: NobLimitOrder } | undefined;
    snapshot(): NobSnapshot;
    /** [asks, bids], each [price, volume] per level. */
    depth(): [[number, number][], [number, number][]];
  }

  export const Side: { readonly BUY: 'buy'; readonly SELL: 'sell' };
}
