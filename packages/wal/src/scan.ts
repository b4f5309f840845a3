// Reading and checking a segment file. A record is `u32 length`, `u32 CRC-32 of the payload`,
// payload, little-endian; length 0 with CRC 0 (the zero fill of a preallocated segment) ends the
// data. A scan walks the records from the start and classifies what follows the last good one:
//
// - nothing, or only zero bytes: `ok`;
// - a short header, a short payload, a bad CRC or non-zero garbage with no valid record after it:
//   `torn` (an interrupted append: repairable by cutting it off);
// - a bad record followed by a valid one: `corrupt` (never skipped, never repaired automatically).
//
// Reads go through a sliding window buffer; a length field is checked against maxRecordSize and the
// file size before anything is read, so no claim in a header ever sizes an allocation.

import { crc32 } from './crc32.js';
import type { FileIO } from './file-io.js';

export const HEADER = 8;

export type ScanStatus = 'ok' | 'torn' | 'corrupt';

export interface ScanResult {
  status: ScanStatus;
  /** Valid records from the start of the file. */
  records: number;
  /** Bytes of valid records: where the data ends (and where a torn tail or corruption starts). */
  end: number;
  /** Where the last valid record starts (-1 when there is none). */
  lastRecord: number;
  /** With `corrupt`: where the first valid record after the bad one starts. */
  resumesAt?: number;
  /** One past the last non-zero byte of the file. */
  dataEnd: number;
  fileSize: number;
}

/** Random access to a file through a window buffer. */
export class FileWindow {
  buf: Buffer;
  private start = 0;
  private len = 0;

  constructor(
    private readonly io: FileIO,
    private readonly fd: number,
    public size: number,
    private readonly windowSize = 1 << 22,
  ) {
    this.buf = Buffer.allocUnsafe(Math.min(windowSize, Math.max(size, HEADER)));
    this.chunk = windowSize;
  }

  /** Bytes the next refill reads: small after a reset (a follower re-reads often), doubling up to the window size. */
  private chunk: number;

  /** Forgets what was read (the file may have changed) and takes its new size. */
  reset(size: number): void {
    this.size = size;
    this.start = 0;
    this.len = 0;
    this.chunk = Math.min(this.windowSize, 1 << 16);
  }

  /**
   * Makes [pos, pos + n) readable in `buf`, returning its index there; `n` must fit the file.
   * `limit`, when given, is where the useful data ends: a refill reads no further (but at least n).
   */
  at(pos: number, n: number, limit = this.size): number {
    if (pos >= this.start && pos + n <= this.start + this.len) return pos - this.start;
    const want = Math.min(Math.max(n, Math.min(this.chunk, limit - pos)), this.size - pos);
    this.chunk = Math.min(this.windowSize, this.chunk * 2);
    if (want > this.buf.length) this.buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const r = this.io.read(this.fd, this.buf, got, want - got, pos + got);
      if (r === 0) break;
      got += r;
    }
    if (got < want) {
      // The file is shorter than it was (cut by a repair or a truncation): what is not there reads
      // as zeros, the end of data, never as the stale bytes of an earlier read.
      this.size = pos + got;
      if (got < n) this.buf.fill(0, got, n);
    }
    this.start = pos;
    this.len = got;
    return 0;
  }
}

/** One past the last non-zero byte of the file (0 for an all-zero file). */
const ZERO_CHUNK = Buffer.alloc(1 << 20);

export function dataEnd(io: FileIO, fd: number, size: number): number {
  const chunk = Buffer.allocUnsafe(Math.min(size, ZERO_CHUNK.length));
  let end = size;
  while (end > 0) {
    const from = Math.max(0, end - chunk.length);
    const n = end - from;
    let got = 0;
    while (got < n) {
      const r = io.read(fd, chunk, got, n - got, from + got);
      if (r === 0) break;
      got += r;
    }
    // A preallocated segment is mostly zeros: compare whole chunks natively, bytes only where needed.
    if (!(got === ZERO_CHUNK.length ? chunk.equals(ZERO_CHUNK) : chunk.subarray(0, got).equals(ZERO_CHUNK.subarray(0, got)))) {
      for (let i = got - 1; i >= 0; i--) if (chunk[i] !== 0) return from + i + 1;
    }
    end = from;
  }
  return 0;
}

/** Whether a valid record starts at `pos`. */
function validAt(w: FileWindow, pos: number, maxRecord: number): boolean {
  if (pos + HEADER > w.size) return false;
  let i = w.at(pos, HEADER);
  const len = w.buf.readUInt32LE(i);
  if (len === 0 || len > maxRecord || pos + HEADER + len > w.size) return false;
  const crc = w.buf.readUInt32LE(i + 4);
  i = w.at(pos, HEADER + len);
  return crc32(w.buf, i + HEADER, i + HEADER + len) === crc;
}

/** Whether a record whose CRC is valid starts at `pos` of the file open as `fd`, whatever its length. */
export function recordAt(io: FileIO, fd: number, pos: number): boolean {
  const size = io.size(fd);
  return validAt(new FileWindow(io, fd, size), pos, size);
}

/**
 * Whether `pos` is where a record starts (or where the valid records end) in the file open as `fd`,
 * walking the records from the start; `pos` must be at most the end of the valid records.
 */
export function recordBoundary(io: FileIO, fd: number, pos: number): boolean {
  const w = new FileWindow(io, fd, io.size(fd));
  let at = 0;
  while (at < pos) {
    if (at + HEADER > w.size) return false;
    const len = w.buf.readUInt32LE(w.at(at, HEADER));
    if (len === 0) return false;
    at += HEADER + len;
  }
  return at === pos;
}

/** Scans a whole segment file open as `fd`. */
export function scanSegment(io: FileIO, fd: number, maxRecord: number): ScanResult {
  const size = io.size(fd);
  const w = new FileWindow(io, fd, size);
  const last = dataEnd(io, fd, size);
  let pos = 0;
  let records = 0;
  let lastRecord = -1;
  // `last` may fall inside a valid record's header (a payload of zeros whose CRC ends in zero
  // bytes), so every position before it is tried.
  while (pos < last) {
    if (!validAt(w, pos, maxRecord)) break;
    const i = w.at(pos, HEADER);
    lastRecord = pos;
    pos += HEADER + w.buf.readUInt32LE(i);
    records++;
  }
  if (pos >= last) return { status: 'ok', records, end: pos, lastRecord, dataEnd: last, fileSize: size };
  for (let q = pos + 1; q < last; q++) {
    if (validAt(w, q, maxRecord)) return { status: 'corrupt', records, end: pos, lastRecord, resumesAt: q, dataEnd: last, fileSize: size };
  }
  return { status: 'torn', records, end: pos, lastRecord, dataEnd: last, fileSize: size };
}
