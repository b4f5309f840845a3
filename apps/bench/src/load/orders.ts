// The order flow of the load suite: a fixed cycle of limit orders on both sides around one price,
// so that about half of them trade and the book stays small however long the run.

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
}

/** Order `i` of the cycle (deterministic). */
export function loadOrder(i: number): LoadOrder {
  const h = Math.imul(i + 1, 2654435761) >>> 0;
  const side = (h & 1) === 0 ? 'buy' : 'sell';
  // Buys at 995..1004, sells at 996..1005: the spread is crossed about half the time.
  const price = (side === 'buy' ? 995 : 996) + ((h >>> 1) % 10);
  return { symbol: LOAD_SYMBOL, side, type: 'limit', price, qty: 1 + ((h >>> 8) % 10) };
}

/** The first `n` orders of the cycle as JSON bodies. */
export function loadBodies(n: number): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify(loadOrder(i)));
}
