// A 32-ary hierarchical bitset laid out in an Int32Array: level 0 holds one bit per element, each
// higher level one bit per non-zero word of the level below, up to a single top word. Finding the
// next or previous set bit from any position costs at most two passes over the levels (a handful of
// word reads), independent of how sparse the set is. Several bitsets of one layout can share one
// array at different base offsets (the price index keeps one per page).

const ctz = (x: number): number => 31 - Math.clz32(x & -x);
const msb = (x: number): number => 31 - Math.clz32(x);

export class HierLayout {
  /** Offset of each level's first word, relative to a bitset's base. */
  readonly offsets: Int32Array;
  /** Number of words of each level. */
  readonly words: Int32Array;
  readonly levels: number;
  /** Words one bitset of this layout occupies. */
  readonly stride: number;

  constructor(readonly bits: number) {
    const offsets: number[] = [];
    const words: number[] = [];
    let n = Math.max(1, bits);
    let off = 0;
    for (;;) {
      const w = Math.ceil(n / 32);
      offsets.push(off);
      words.push(w);
      off += w;
      if (w === 1) break;
      n = w;
    }
    this.offsets = Int32Array.from(offsets);
    this.words = Int32Array.from(words);
    this.levels = offsets.length;
    this.stride = off;
  }

  /** Sets bit `i`. */
  set(a: Int32Array, base: number, i: number): void {
    const offs = this.offsets;
    for (let l = 0; l < this.levels; l++) {
      const w = i >>> 5;
      const k = base + (offs[l] as number) + w;
      const old = a[k] as number;
      a[k] = old | (1 << (i & 31));
      if (old !== 0) return;
      i = w;
    }
  }

  /** Clears bit `i`. */
  clear(a: Int32Array, base: number, i: number): void {
    const offs = this.offsets;
    for (let l = 0; l < this.levels; l++) {
      const w = i >>> 5;
      const k = base + (offs[l] as number) + w;
      const v = (a[k] as number) & ~(1 << (i & 31));
      a[k] = v;
      if (v !== 0) return;
      i = w;
    }
  }

  /** True when no bit is set. */
  isEmpty(a: Int32Array, base: number): boolean {
    return a[base + (this.offsets[this.levels - 1] as number)] === 0;
  }

  /** The smallest set bit >= i, or -1. */
  next(a: Int32Array, base: number, i: number): number {
    if (i >= this.bits) return -1;
    if (i < 0) i = 0;
    const offs = this.offsets;
    const words = this.words;
    let l = 0;
    for (;;) {
      const w = i >>> 5;
      if (w >= (words[l] as number)) return -1;
      const bits = (a[base + (offs[l] as number) + w] as number) & (-1 << (i & 31));
      if (bits !== 0) {
        i = (w << 5) | ctz(bits);
        break;
      }
      l++;
      if (l === this.levels) return -1;
      i = w + 1;
    }
    while (l > 0) {
      l--;
      i = (i << 5) | ctz(a[base + (offs[l] as number) + i] as number);
    }
    return i;
  }

  /** The largest set bit <= i, or -1. */
  prev(a: Int32Array, base: number, i: number): number {
    if (i < 0) return -1;
    if (i >= this.bits) i = this.bits - 1;
    const offs = this.offsets;
    let l = 0;
    for (;;) {
      const w = i >>> 5;
      const bits = (a[base + (offs[l] as number) + w] as number) & (-1 >>> (31 - (i & 31)));
      if (bits !== 0) {
        i = (w << 5) | msb(bits);
        break;
      }
      l++;
      if (l === this.levels || w === 0) return -1;
      i = w - 1;
    }
    while (l > 0) {
      l--;
      i = (i << 5) | msb(a[base + (offs[l] as number) + i] as number);
    }
    return i;
  }
}
