// The load suite's order flow must keep the book small however long a run lasts and however the
// connections interleave the cycle (each autocannon connection, each WebSocket client, walks the
// cycle on its own): a book that grows makes a figure depend on the run's length.
import { describe, expect, it } from 'vitest';
import { OrderBook, Side, TimeInForce } from '@gx3/orderbook';
import { loadBodies, loadOrder, LOAD_INSTRUMENT } from '../src/load/orders.js';

/** Resting orders of both sides. */
function resting(book: OrderBook): number {
  let n = 0;
  book.forEachOrder(Side.Buy, () => n++);
  book.forEachOrder(Side.Sell, () => n++);
  return n;
}

/**
 * Places `total` orders of a cycle of `cycle` orders walked by `clients` clients, each from its own
 * position, in an order drawn by a seeded generator; returns the most orders resting at once and
 * how many trades there were.
 */
function run(cycle: number, clients: number, total: number, seed: number): { maxResting: number; trades: number } {
  const book = new OrderBook({ minPrice: LOAD_INSTRUMENT.minPrice, maxPrice: 10_000, maxQty: LOAD_INSTRUMENT.maxQty, initialOrders: 1024 });
  let trades = 0;
  book.setSink({
    onAccepted: () => undefined,
    onRejected: () => undefined,
    onAdded: () => undefined,
    onTrade: () => {
      trades++;
    },
    onCanceled: () => undefined,
    onAmended: () => undefined,
  });
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const at = Array.from({ length: clients }, (_, k) => k * 7);
  let maxResting = 0;
  for (let id = 1; id <= total; id++) {
    const c = Math.floor(next() * clients);
    const o = loadOrder((at[c] as number) % cycle);
    at[c] = (at[c] as number) + 1;
    book.submitLimit(id, 1, o.side === 'buy' ? Side.Buy : Side.Sell, o.price, o.qty, o.tif === 'IOC' ? TimeInForce.IOC : TimeInForce.GTC);
    if (id % 500 === 0) maxResting = Math.max(maxResting, resting(book));
  }
  return { maxResting, trades };
}

describe('the load flow', () => {
  it.each([
    ['HTTP, 256 bodies, 64 connections', 256, 64],
    ['WebSocket, 1 order a frame (64 frames), 4 clients', 64, 4],
    ['WebSocket, 100 orders a frame (6,400 orders), 4 clients', 6400, 4],
    ['one client alone', 256, 1],
  ])('keeps the book small however long the run: %s', (_name, cycle, clients) => {
    const r = run(cycle, clients, 200_000, cycle + clients);
    expect(r.maxResting).toBeLessThan(200);
    // Most orders trade: every taker takes at least one resting order when the side holds any.
    expect(r.trades).toBeGreaterThan(200_000 / 2);
  });

  it('rests buys and sells and takes from both sides (the side is not tied to the parity of i, which picks GTC or IOC)', () => {
    const kinds = new Set<string>();
    for (let i = 0; i < 256; i++) {
      const o = loadOrder(i);
      kinds.add(`${o.tif} ${o.side}`);
    }
    expect([...kinds].sort()).toEqual(['GTC buy', 'GTC sell', 'IOC buy', 'IOC sell']);
  });

  it('sends orders the gateway takes: limit orders in the band with a time in force, half of them resting orders', () => {
    const bodies = loadBodies(256).map((b) => JSON.parse(b) as Record<string, unknown>);
    expect(new Set(bodies.map((b) => b.tif))).toEqual(new Set(['GTC', 'IOC']));
    expect(bodies.filter((b) => b.tif === 'GTC')).toHaveLength(128);
    for (const b of bodies) {
      expect(Object.keys(b).sort()).toEqual(['price', 'qty', 'side', 'symbol', 'tif', 'type']);
      expect(b.type).toBe('limit');
      expect(b.price as number).toBeGreaterThanOrEqual(LOAD_INSTRUMENT.minPrice);
      expect(Number.isSafeInteger(b.qty) && (b.qty as number) >= 1).toBe(true);
    }
  });
});
