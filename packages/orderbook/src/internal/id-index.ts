// Order id -> order slot. Exchanges assign order ids in increasing order, so the live ids cluster
// just below the newest one. The index keeps a direct-mapped window over the newest `size` ids:
// id `i` in the window lives at `i & mask`, neighbouring ids share cache lines, and a lookup is one
// array read (a scattering hash would touch a new cache line per id). When a larger id moves the
// window forward, the live entries that fall out of it move to a hash map, which also holds any id
// below the window. The cost of moving the window is bounded by the distance moved and by the
// window size, and is zero when the window holds no live entry.

export class IdIndex {
  private readonly slots: Int32Array; // slot + 1; 0 = empty
  private readonly mask: number;
  private readonly size: number;
  private lo = 1; // the window covers [lo, lo + size)
  private inWindow = 0; // live entries in the window
  private readonly spill = new Map<number, number>();

  constructor(size: number) {
    this.size = size;
    this.mask = size - 1;
    this.slots = new Int32Array(size);
    this.slots.fill(0); // touch every page now, not on the hot path
  }

  /** The slot of `id`, or -1. */
  get(id: number): number {
    const d = id - this.lo;
    if (d >= 0 && d < this.size) return (this.slots[id & this.mask] as number) - 1;
    return this.spill.get(id) ?? -1;
  }

  /** Records `id` -> `slot`; `id` must not be present. */
  set(id: number, slot: number): void {
    const d = id - this.lo;
    if (d >= this.size) {
      this.advance(id - this.size + 1);
    } else if (d < 0) {
      this.spill.set(id, slot);
      return;
    }
    this.slots[id & this.mask] = slot + 1;
    this.inWindow++;
  }

  /** Forgets `id`, which must be present. */
  delete(id: number): void {
    const d = id - this.lo;
    if (d >= 0 && d < this.size) {
      this.slots[id & this.mask] = 0;
      this.inWindow--;
    } else {
      this.spill.delete(id);
    }
  }

  /** Live ids held outside the window (for tests and monitoring). */
  get spilled(): number {
    return this.spill.size;
  }

  private advance(newLo: number): void {
    const lo = this.lo;
    if (this.inWindow > 0) {
      const end = Math.min(newLo, lo + this.size);
      for (let id = lo; id < end && this.inWindow > 0; id++) {
        const k = id & this.mask;
        const v = this.slots[k] as number;
        if (v !== 0) {
          this.spill.set(id, v - 1);
          this.slots[k] = 0;
          this.inWindow--;
        }
      }
    }
    this.lo = newLo;
  }
}
