// A small direct-mapped cache from symbol bytes to the string, so that decoding a record of a
// symbol seen before returns the same string without allocating. Only valid symbols are cached.
import { isSymbolByte, MAX_SYMBOL_LENGTH } from './schema.js';

const SLOTS = 256; // a power of two

export class SymbolCache {
  private readonly keys = new Uint8Array(SLOTS * MAX_SYMBOL_LENGTH);
  /** Each slot's key length; 0 = empty (a symbol has at least one byte). */
  private readonly lengths = new Uint8Array(SLOTS);
  private readonly strings: string[] = new Array<string>(SLOTS).fill('');
  /** The slot of the last symbol returned. */
  private last = 0;

  /**
   * The symbol in `bytes[at, at + length)`, or undefined if those bytes are not a valid symbol.
   * `length` must be 1 to MAX_SYMBOL_LENGTH and the bytes within the array (the caller checks).
   */
  get(bytes: Uint8Array, at: number, length: number): string | undefined {
    // Records of one symbol usually follow each other: try the slot of the last hit first.
    const last = this.last;
    if (this.lengths[last] === length) {
      const base = last * MAX_SYMBOL_LENGTH;
      let i = 0;
      while (i < length && this.keys[base + i] === bytes[at + i]) i++;
      if (i === length) return this.strings[last];
    }
    let h = 0x811c9dc5; // FNV-1a
    for (let i = 0; i < length; i++) h = Math.imul(h ^ (bytes[at + i] as number), 0x01000193);
    const slot = (h ^ (h >>> 15)) & (SLOTS - 1);
    const base = slot * MAX_SYMBOL_LENGTH;
    const keys = this.keys;
    if (this.lengths[slot] === length) {
      let i = 0;
      while (i < length && keys[base + i] === bytes[at + i]) i++;
      if (i === length) {
        this.last = slot;
        return this.strings[slot];
      }
    }
    let s = '';
    for (let i = 0; i < length; i++) {
      const c = bytes[at + i] as number;
      if (!isSymbolByte(c)) return undefined;
      s += String.fromCharCode(c);
    }
    for (let i = 0; i < length; i++) keys[base + i] = bytes[at + i] as number;
    this.lengths[slot] = length;
    this.strings[slot] = s;
    this.last = slot;
    return s;
  }
}
