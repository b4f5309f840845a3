// CRC-32 (IEEE 802.3, the polynomial of zlib.crc32) over a range of a byte array, without
// allocating: short records are hashed in JavaScript with slicing-by-16 tables; long ones go to
// zlib.crc32 through a subarray (one small view object per call, amortized over the bytes). Slicing-by-16
// (four 32-bit reads and sixteen lookups per 16 bytes) is about 30% faster than slicing-by-8 on the
// 40-200-byte records of the logs; calling zlib through a subarray costs more up to about 250 bytes.

import zlib from 'node:zlib';

const T = new Int32Array(256 * 16);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = T[n] as number;
  for (let k = 1; k < 16; k++) {
    c = (T[c & 0xff] as number) ^ (c >>> 8);
    T[k * 256 + n] = c;
  }
}

const NATIVE_FROM = 256;

// DataViews of the last few buffers hashed (a log's append buffer, a reader's window): two 32-bit
// reads per 8 bytes instead of eight byte reads, with a view made once per buffer.
const VIEWS = 4;
const viewBufs: (Uint8Array | undefined)[] = [undefined, undefined, undefined, undefined];
const views: DataView[] = [];
for (let k = 0; k < VIEWS; k++) views.push(new DataView(new ArrayBuffer(8)));
let nextView = 0;

function viewFor(buf: Uint8Array): DataView {
  for (let k = 0; k < VIEWS; k++) if (viewBufs[k] === buf) return views[k] as DataView;
  const k = nextView;
  nextView = (k + 1) % VIEWS;
  viewBufs[k] = buf;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  views[k] = v;
  return v;
}

/** CRC-32 of `buf[start, end)`, as an unsigned 32-bit integer. */
export function crc32(buf: Uint8Array, start: number, end: number): number {
  return crc32i(buf, start, end) >>> 0;
}

/**
 * CRC-32 of `buf[start, end)` as a signed 32-bit integer (the same bits as `crc32`). Hot paths use
 * this form: an unsigned value above 2^30 does not fit a small integer and would be boxed into a
 * heap number whenever it crosses a call that is not inlined.
 */
export function crc32i(buf: Uint8Array, start: number, end: number): number {
  if (end - start >= NATIVE_FROM) return zlib.crc32(buf.subarray(start, end)) | 0;
  let c = -1;
  let i = start;
  const dv = viewFor(buf);
  for (; i + 16 <= end; i += 16) {
    const a = dv.getInt32(i, true) ^ c;
    const b = dv.getInt32(i + 4, true);
    const d = dv.getInt32(i + 8, true);
    const e = dv.getInt32(i + 12, true);
    c =
      (T[3840 + (a & 0xff)] as number) ^
      (T[3584 + ((a >>> 8) & 0xff)] as number) ^
      (T[3328 + ((a >>> 16) & 0xff)] as number) ^
      (T[3072 + (a >>> 24)] as number) ^
      (T[2816 + (b & 0xff)] as number) ^
      (T[2560 + ((b >>> 8) & 0xff)] as number) ^
      (T[2304 + ((b >>> 16) & 0xff)] as number) ^
      (T[2048 + (b >>> 24)] as number) ^
      (T[1792 + (d & 0xff)] as number) ^
      (T[1536 + ((d >>> 8) & 0xff)] as number) ^
      (T[1280 + ((d >>> 16) & 0xff)] as number) ^
      (T[1024 + (d >>> 24)] as number) ^
      (T[768 + (e & 0xff)] as number) ^
      (T[512 + ((e >>> 8) & 0xff)] as number) ^
      (T[256 + ((e >>> 16) & 0xff)] as number) ^
      (T[e >>> 24] as number);
  }
  if (i + 8 <= end) {
    c ^= dv.getInt32(i, true);
    const h = dv.getInt32(i + 4, true);
    c =
      (T[1792 + (c & 0xff)] as number) ^
      (T[1536 + ((c >>> 8) & 0xff)] as number) ^
      (T[1280 + ((c >>> 16) & 0xff)] as number) ^
      (T[1024 + (c >>> 24)] as number) ^
      (T[768 + (h & 0xff)] as number) ^
      (T[512 + ((h >>> 8) & 0xff)] as number) ^
      (T[256 + ((h >>> 16) & 0xff)] as number) ^
      (T[h >>> 24] as number);
    i += 8;
  }
  for (; i < end; i++) c = (T[(c ^ (buf[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c;
}

/** Reads a little-endian 32-bit word as a signed integer (compare with `crc32i`). */
export function readI32(buf: Uint8Array, at: number): number {
  return (buf[at] as number) | ((buf[at + 1] as number) << 8) | ((buf[at + 2] as number) << 16) | ((buf[at + 3] as number) << 24);
}

/** Writes a 32-bit integer (signed or unsigned bits) little-endian. */
export function writeI32(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v & 0xff;
  buf[at + 1] = (v >>> 8) & 0xff;
  buf[at + 2] = (v >>> 16) & 0xff;
  buf[at + 3] = (v >>> 24) & 0xff;
}
