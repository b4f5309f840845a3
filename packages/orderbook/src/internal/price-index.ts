// Maps price ticks (offsets from the band's lowest price) to price-level ids and finds the next
// occupied tick above or below any tick without scanning. The band can be up to 2^31 ticks wide,
// so the index is paged: a page covers 32,768 consecutive ticks (a level id per tick plus a
// three-level occupancy bitset) and exists only while it holds a level. A hierarchical bitset over
// the page numbers finds the next occupied page. Near the best price, which is where the book
// works, a lookup is two array reads and a search a few word reads.
//
// One index serves both sides of a book: a book is never crossed, so every bid tick lies below
// every ask tick, and a search from the best bid downwards (or from the best ask upwards) only
// meets levels of its own side.

import { HierLayout } from './hier-bitset.js';

const PAGE_SHIFT = 15;
const PAGE_TICKS = 1 << PAGE_SHIFT;
const PAGE_MASK = PAGE_TICKS - 1;
const PAGE = new HierLayout(PAGE_TICKS);

export class PriceIndex {
  private readonly pageOf: Int32Array;
  private readonly dir: HierLayout;
  private readonly dirBits: Int32Array;
  private slots: Int32Array;
  private bits: Int32Array;
  private counts: Int32Array;
  private freePages: Int32Array;
  private freeTop = 0;
  private capPages = 0;
  private usedPages = 0;
  /** Pages the band has: the pools never grow past it. */
  private readonly bandPages: number;

  constructor(readonly span: number) {
    const pages = Math.ceil(span / PAGE_TICKS);
    this.bandPages = pages;
    this.pageOf = new Int32Array(pages).fill(-1);
    this.dir = new HierLayout(pages);
    this.dirBits = new Int32Array(this.dir.stride);
    this.slots = new Int32Array(0);
    this.bits = new Int32Array(0);
    this.counts = new Int32Array(0);
    this.freePages = new Int32Array(0);
    this.grow(1);
  }

  /** The level id at tick `t`, or -1. */
  get(t: number): number {
    const p = this.pageOf[t >>> PAGE_SHIFT] as number;
    return p < 0 ? -1 : (this.slots[(p << PAGE_SHIFT) | (t & PAGE_MASK)] as number);
  }

  /** Records `level` at the empty tick `t`. */
  insert(t: number, level: number): void {
    const pi = t >>> PAGE_SHIFT;
    let p = this.pageOf[pi] as number;
    if (p < 0) p = this.openPage(pi);
    const o = t & PAGE_MASK;
    this.slots[(p << PAGE_SHIFT) | o] = level;
    PAGE.set(this.bits, p * PAGE.stride, o);
    this.counts[p] = (this.counts[p] as number) + 1;
  }

  /** Forgets the level at the occupied tick `t`. */
  remove(t: number): void {
    const pi = t >>> PAGE_SHIFT;
    const p = this.pageOf[pi] as number;
    const o = t & PAGE_MASK;
    this.slots[(p << PAGE_SHIFT) | o] = -1;
    PAGE.clear(this.bits, p * PAGE.stride, o);
    const c = (this.counts[p] as number) - 1;
    this.counts[p] = c;
    if (c === 0) this.closePage(pi, p);
  }

  /** The smallest occupied tick >= t, or -1. */
  next(t: number): number {
    if (t >= this.span) return -1;
    if (t < 0) t = 0;
    let pi = t >>> PAGE_SHIFT;
    let p = this.pageOf[pi] as number;
    if (p >= 0) {
      const o = PAGE.next(this.bits, p * PAGE.stride, t & PAGE_MASK);
      if (o >= 0) return (pi << PAGE_SHIFT) | o;
    }
    pi = this.dir.next(this.dirBits, 0, pi + 1);
    if (pi < 0) return -1;
    p = this.pageOf[pi] as number;
    return (pi << PAGE_SHIFT) | PAGE.next(this.bits, p * PAGE.stride, 0);
  }

  /** The largest occupied tick <= t, or -1. */
  prev(t: number): number {
    if (t < 0) return -1;
    if (t >= this.span) t = this.span - 1;
    let pi = t >>> PAGE_SHIFT;
    let p = this.pageOf[pi] as number;
    if (p >= 0) {
      const o = PAGE.prev(this.bits, p * PAGE.stride, t & PAGE_MASK);
      if (o >= 0) return (pi << PAGE_SHIFT) | o;
    }
    pi = this.dir.prev(this.dirBits, 0, pi - 1);
    if (pi < 0) return -1;
    p = this.pageOf[pi] as number;
    return (pi << PAGE_SHIFT) | PAGE.prev(this.bits, p * PAGE.stride, PAGE_MASK);
  }

  /** Pages currently allocated (for tests and memory accounting). */
  get pagesInUse(): number {
    return this.usedPages;
  }

  private openPage(pi: number): number {
    if (this.freeTop === 0) this.grow(Math.min(this.capPages * 2, this.bandPages));
    this.freeTop--;
    const p = this.freePages[this.freeTop] as number;
    this.pageOf[pi] = p;
    this.dir.set(this.dirBits, 0, pi);
    this.usedPages++;
    return p;
  }

  // An empty page has every slot at -1 and every bit clear already, so it is reused as it is.
  private closePage(pi: number, p: number): void {
    this.pageOf[pi] = -1;
    this.dir.clear(this.dirBits, 0, pi);
    this.freePages[this.freeTop++] = p;
    this.usedPages--;
  }

  private grow(cap: number): void {
    const old = this.capPages;
    // cap * PAGE_TICKS, not cap << PAGE_SHIFT: 65,536 pages (a 2^31-tick band) would overflow to -2^31.
    const slots = new Int32Array(cap * PAGE_TICKS).fill(-1);
    slots.set(this.slots);
    const bits = new Int32Array(cap * PAGE.stride);
    bits.set(this.bits);
    const counts = new Int32Array(cap);
    counts.set(this.counts);
    const free = new Int32Array(cap);
    free.set(this.freePages.subarray(0, this.freeTop));
    let top = this.freeTop;
    for (let p = cap - 1; p >= old; p--) free[top++] = p;
    this.slots = slots;
    this.bits = bits;
    this.counts = counts;
    this.freePages = free;
    this.freeTop = top;
    this.capPages = cap;
  }
}
