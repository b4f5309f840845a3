// The order flow of the load suite: a fixed cycle that alternates resting orders and orders that
// take them, so that most orders trade and the book stays small however long the run and however
// the connections interleave the cycle. Even orders are good-till-cancel limit orders around one
// price (buys at 995..1004, sells at 996..1005: they rest, or trade when they cross); odd orders are
// immediate-or-cancel orders priced through the whole book (buys at 1010, sells at 990) whose
// quantity is a little larger on average, so that they take what rests and the book cannot grow.
// (A cycle of resting orders alone grew the book by about 20 orders in 100 placed, for ever: the
// buys at 995 and the sells at 1005 never met an order that would take them.)

export const LOAD_SYMBOL = 'BTCUSDT';
/** The instrument the load suite's servers trade: a band and a largest quantity no order comes near. */
export const LOAD_INSTRUMENT = { symbol: LOAD_SYMBOL, minPrice: 1, maxPrice: 1_000_000_000, maxQty: 1_000_000_000 } as const;
/** The API key of the gateway the load suite starts. */
export const LOAD_KEY = 'load-test-key-0001';

export interface LoadOrder {
  symbol: string;
  side: 'buy' | 'sell';
  type: 'limit';
  price: number;
  qty: number;
  tif: 'GTC' | 'IOC';
}

/** Order `i` of the cycle (deterministic). */
export function loadOrder(i: number): LoadOrder {
  const h = Math.imul(i + 1, 2654435761) >>> 0;
  // Bit 16 of the hash, not bit 0: the multiplier is odd, so bit 0 is the parity of i + 1, which
  // would tie each side to one kind of order (every resting order a sell, every taker a buy).
  const side = ((h >>> 16) & 1) === 0 ? 'buy' : 'sell';
  if ((i & 1) === 0) {
    const price = (side === 'buy' ? 995 : 996) + ((h >>> 1) % 10);
    return { symbol: LOAD_SYMBOL, side, type: 'limit', price, qty: 1 + ((h >>> 8) % 10), tif: 'GTC' };
  }
  return { symbol: LOAD_SYMBOL, side, type: 'limit', price: side === 'buy' ? 1010 : 990, qty: 1 + ((h >>> 8) % 12), tif: 'IOC' };
}

/** The first `n` orders of the cycle as JSON bodies. */
export function loadBodies(n: number): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify(loadOrder(i)));
}
