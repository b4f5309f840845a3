// A book over the widest band the README allows (2^31 ticks) with levels on more than half of its
// 32,768-tick pages. Heavy (about 13 GB resident and 30 s here): it runs only with
// GX3_HEAVY_TESTS=1, and says so when skipped.
import { describe, expect, it } from 'vitest';
import { OrderBook, RejectReason, Side } from '../src/index.js';

const PAGE_TICKS = 32_768;

const heavy = process.env.GX3_HEAVY_TESTS === '1';
if (!heavy) console.warn('SKIPPED: orderbook huge-band test (about 13 GB of memory): set GX3_HEAVY_TESTS=1 to run it');

describe.skipIf(!heavy)('price index pages', () => {
  // The README promises a band of up to 2^31 ticks and pools that double when full, and commands
  // never throw. Opening the 32,769th page doubles the page pool to 65,536 pages, whose slot array
  // is 2^31 entries: computed with `<<` that length was -2^31 (a RangeError from submitLimit, after
  // a level slot was taken).
  it('accepts a resting order on a 32,769th occupied page of a 2^31-tick band', () => {
    const book = new OrderBook({ minPrice: 1, maxPrice: 2 ** 31 - 1, initialOrders: 40_000, initialLevels: 40_000 });
    for (let i = 0; i < PAGE_TICKS; i++) book.submitLimit(i + 1, 1, Side.Buy, 1 + i * PAGE_TICKS, 1);
    expect(book.levelsOn(Side.Buy)).toBe(PAGE_TICKS);
    let r: RejectReason | undefined;
    expect(() => {
      r = book.submitLimit(PAGE_TICKS + 1, 1, Side.Buy, 1 + PAGE_TICKS * PAGE_TICKS, 1);
    }).not.toThrow();
    expect(r).toBe(RejectReason.None);
    expect(book.levelsOn(Side.Buy)).toBe(PAGE_TICKS + 1);
    expect(book.bestBid).toBe(1 + PAGE_TICKS * PAGE_TICKS);
    book.audit();
  }, 300_000);
});
