// crc32(buf, start, end) must be zlib.crc32 of the sub-range, for short inputs (hashed in JavaScript)
// and long ones (handed to zlib), at every alignment.
import zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../src/index.js';
import { prng } from './helpers.js';

describe('crc32', () => {
  it('matches the standard check value and the empty input', () => {
    expect(crc32(Buffer.from('123456789'), 0, 9)).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0), 0, 0)).toBe(0);
    expect(crc32(Buffer.from('x123456789'), 1, 10)).toBe(0xcbf43926);
  });

  it('equals zlib.crc32 for random arrays of 0..2000 bytes and arbitrary sub-ranges', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 2000 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        const full = crc32(bytes, 0, bytes.length);
        expect(full).toBe(zlib.crc32(bytes));
        const start = a % (bytes.length + 1);
        const end = start + (b % (bytes.length - start + 1));
        const sub = crc32(bytes, start, end);
        expect(sub).toBe(zlib.crc32(bytes.subarray(start, end)));
        expect(sub).toBeGreaterThanOrEqual(0);
        expect(Number.isInteger(sub)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('equals zlib.crc32 for every length 0..1100 at every start alignment (around the native threshold)', () => {
    const r = prng(7);
    const big = Buffer.alloc(1200);
    for (let i = 0; i < big.length; i++) big[i] = Math.floor(r() * 256);
    for (let len = 0; len <= 1100; len++) {
      for (let start = 0; start < 4; start++) {
        const got = crc32(big, start, start + len);
        const want = zlib.crc32(big.subarray(start, start + len));
        if (got !== want) expect.fail(`crc32 of ${len} bytes at ${start}: ${got.toString(16)}, zlib says ${want.toString(16)}`);
      }
    }
  });

  it('hashes a view by its own indices (a Buffer slice of a larger pool, a Uint8Array with a byteOffset)', () => {
    const backing = new Uint8Array(4096);
    for (let i = 0; i < backing.length; i++) backing[i] = (i * 31 + 7) & 0xff;
    const view = new Uint8Array(backing.buffer, 1000, 1500);
    expect(crc32(view, 0, view.length)).toBe(zlib.crc32(view));
    expect(crc32(view, 3, 300)).toBe(zlib.crc32(view.subarray(3, 300)));
    expect(crc32(view, 10, 1400)).toBe(zlib.crc32(view.subarray(10, 1400)));
    const slice = Buffer.from(backing.buffer, 17, 100);
    expect(crc32(slice, 0, 100)).toBe(zlib.crc32(slice));
  });

  it('gives high-bit CRCs as unsigned numbers', () => {
    // Find inputs whose CRC has the top bit set; the result must be in [2^31, 2^32).
    let seen = 0;
    for (let i = 0; i < 64; i++) {
      const b = Buffer.from([i, i * 3, i * 5]);
      const c = crc32(b, 0, 3);
      expect(c).toBe(zlib.crc32(b));
      if (c >= 2 ** 31) {
        seen++;
        expect(c).toBeLessThan(2 ** 32);
      }
    }
    expect(seen).toBeGreaterThan(0);
  });
});
