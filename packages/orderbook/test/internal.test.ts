// The book's internal index structures, checked against plain reference implementations.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HierLayout } from '../src/internal/hier-bitset.js';
import { IdIndex } from '../src/internal/id-index.js';
import { PriceIndex } from '../src/internal/price-index.js';

const refNext = (set: Set<number>, i: number): number => {
  let best = -1;
  for (const v of set) if (v >= i && (best === -1 || v < best)) best = v;
  return best;
};
const refPrev = (set: Set<number>, i: number): number => {
  let best = -1;
  for (const v of set) if (v <= i && v > best) best = v;
  return best;
};

describe('HierLayout', () => {
  it('lays out levels up to a single top word', () => {
    expect(Array.from(new HierLayout(32768).words)).toEqual([1024, 32, 1]);
    expect(Array.from(new HierLayout(33).words)).toEqual([2, 1]);
    expect(Array.from(new HierLayout(1).words)).toEqual([1]);
  });

  it.each([1, 31, 32, 33, 1000, 1025, 40_000])('finds next and prev set bits like a plain set (%i bits)', (bits) => {
    const layout = new HierLayout(bits);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(bits - 1)), { maxLength: 200 }), fc.array(fc.integer({ min: -2, max: bits + 2 }), { maxLength: 50 }), (ops, probes) => {
        const a = new Int32Array(layout.stride + 7);
        const base = 7; // not at the start of the array
        const set = new Set<number>();
        for (const [add, i] of ops) {
          if (add) {
            layout.set(a, base, i);
            set.add(i);
          } else if (set.has(i)) {
            layout.clear(a, base, i);
            set.delete(i);
          }
        }
        expect(layout.isEmpty(a, base)).toBe(set.size === 0);
        for (const p of probes) {
          expect(layout.next(a, base, p)).toBe(p >= bits ? -1 : refNext(set, Math.max(0, p)));
          expect(layout.prev(a, base, p)).toBe(p < 0 ? -1 : refPrev(set, Math.min(bits - 1, p)));
        }
        expect(a.subarray(0, base).every((v) => v === 0)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

describe('PriceIndex', () => {
  it('maps ticks to levels across pages and frees empty pages', () => {
    const span = 1_000_000_000;
    const idx = new PriceIndex(span);
    const ticks = [0, 5, 32_767, 32_768, 99_999, 100_000, 5_000_000, span - 1];
    ticks.forEach((t, i) => {
      idx.insert(t, i);
    });
    ticks.forEach((t, i) => {
      expect(idx.get(t)).toBe(i);
    });
    expect(idx.get(1)).toBe(-1);
    expect(idx.next(0)).toBe(0);
    expect(idx.next(6)).toBe(32_767);
    expect(idx.next(100_001)).toBe(5_000_000);
    expect(idx.next(5_000_001)).toBe(span - 1);
    expect(idx.prev(span - 2)).toBe(5_000_000);
    expect(idx.prev(32_767)).toBe(32_767);
    expect(idx.prev(32_766)).toBe(5);
    expect(idx.pagesInUse).toBe(5);
    for (const t of ticks) idx.remove(t);
    expect(idx.pagesInUse).toBe(0);
    expect(idx.next(0)).toBe(-1);
    expect(idx.prev(span - 1)).toBe(-1);
    idx.insert(123_456_789, 42);
    expect(idx.next(0)).toBe(123_456_789);
    expect(idx.get(123_456_789)).toBe(42);
  });

  it('agrees with a plain set on random inserts, removes and searches', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(200_000)), { maxLength: 300 }), fc.array(fc.nat(200_000), { maxLength: 30 }), (ops, probes) => {
        const idx = new PriceIndex(200_001);
        const set = new Map<number, number>();
        let n = 0;
        for (const [add, t] of ops) {
          if (add && !set.has(t)) {
            idx.insert(t, n);
            set.set(t, n++);
          } else if (!add && set.has(t)) {
            idx.remove(t);
            set.delete(t);
          }
        }
        const keys = new Set(set.keys());
        for (const p of probes) {
          expect(idx.get(p)).toBe(set.get(p) ?? -1);
          expect(idx.next(p)).toBe(refNext(keys, p));
          expect(idx.prev(p)).toBe(refPrev(keys, p));
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('IdIndex', () => {
  it('keeps ids that fall out of the window and finds ids below it', () => {
    const ids = new IdIndex(8);
    ids.set(1, 10);
    ids.set(2, 20);
    ids.set(9, 90); // window moves to [2, 10): id 1 spills
    expect(ids.spilled).toBe(1);
    expect(ids.get(1)).toBe(10);
    expect(ids.get(2)).toBe(20);
    expect(ids.get(9)).toBe(90);
    ids.set(1_000_000, 7); // a jump far beyond the window spills every live id
    expect(ids.spilled).toBe(3);
    expect(ids.get(2)).toBe(20);
    expect(ids.get(1_000_000)).toBe(7);
    ids.delete(2);
    expect(ids.get(2)).toBe(-1);
    ids.set(3, 30); // below the window
    expect(ids.get(3)).toBe(30);
    expect(ids.get(4)).toBe(-1);
    const big = 2 ** 40 + 3;
    ids.set(big, 5);
    expect(ids.get(big)).toBe(5);
    expect(ids.get(big - 2 ** 32)).toBe(-1);
  });

  it('agrees with a Map on random sets and deletes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 100 })), { maxLength: 300 }), (ops) => {
        const ids = new IdIndex(16);
        const ref = new Map<number, number>();
        let base = 1;
        for (const [add, d] of ops) {
          if (add) {
            base += d % 7; // mostly increasing ids, like an exchange assigns them
            const id = base + (d % 3 === 0 ? -d : 0);
            if (id > 0 && !ref.has(id)) {
              ids.set(id, d);
              ref.set(id, d);
            }
          } else {
            const id = base - (d % 40);
            if (ref.has(id)) {
              ids.delete(id);
              ref.delete(id);
            }
          }
        }
        for (let id = 1; id <= base + 2; id++) expect(ids.get(id)).toBe(ref.get(id) ?? -1);
      }),
      { numRuns: 200 },
    );
  });
});
