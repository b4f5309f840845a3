// Reads a log from any record offset, across segments. It stops at the end of the valid data, or
// earlier at `end()` when given one (a publisher passes the writer's durable offset, so that it
// never reads what is not durable yet). After it returned null it can be called again: it re-reads
// the files and continues where it stopped, which is how a reader follows a log being written.

import { crc32i, readI32 } from './crc32.js';
import { WalError } from './errors.js';
import { nodeFileIO, type FileIO } from './file-io.js';
import { FileWindow, HEADER, scanSegment } from './scan.js';
import { listSegments, type SegmentRef } from './segments.js';

export interface ReaderOptions {
  /** The record offset to start at (default 0, the start of the log). */
  readonly from?: number;
  /** Largest payload expected (default 1 MiB); a longer length field is corruption. */
  readonly maxRecordSize?: number;
  /** Read nothing at or past this offset (e.g. the writer's durable offset). */
  readonly end?: () => number;
  /**
   * Check each record's CRC (default true). Only a caller that has just verified the same bytes
   * (such as a writer's open scan of the last segment) should turn it off.
   */
  readonly verifyChecksums?: boolean;
  /**
   * Records at or past this offset were checked a moment ago by the caller (a writer's open scan
   * of its last segment: `WalWriter.verifiedFrom`), so their CRCs are not checked again.
   */
  readonly verifiedFrom?: number;
  readonly io?: FileIO;
}

/** A record as the reader returns it: `buf[start, end)` is the payload, valid until the next read. */
export class WalRecord {
  offset = 0;
  buf: Buffer = Buffer.alloc(0);
  start = 0;
  end = 0;
  get length(): number {
    return this.end - this.start;
  }
  /** A copy of the payload. */
  payload(): Buffer {
    return Buffer.from(this.buf.subarray(this.start, this.end));
  }
}

export class WalReader {
  private readonly io: FileIO;
  private readonly maxRecordSize: number;
  private readonly endFn: (() => number) | undefined;
  private readonly verify: boolean;
  private readonly verifiedFrom: number;
  private segments: SegmentRef[] = [];
  private segIdx = -1;
  private fd = -1;
  private window: FileWindow | undefined;
  private pos = 0;
  private closed = false;
  private readonly own = new WalRecord();

  constructor(
    readonly dir: string,
    options: ReaderOptions = {},
  ) {
    this.io = options.io ?? nodeFileIO;
    this.maxRecordSize = options.maxRecordSize ?? 1 << 20;
    this.endFn = options.end;
    this.verify = options.verifyChecksums ?? true;
    this.verifiedFrom = options.verifiedFrom ?? Number.MAX_SAFE_INTEGER;
    const from = options.from ?? 0;
    if (!Number.isSafeInteger(from) || from < 0) throw new WalError('INVALID_OPTIONS', `from must be a non-negative offset, got ${from}`);
    this.refresh();
    let i = this.segments.length - 1;
    while (i > 0 && (this.segments[i] as SegmentRef).base > from) i--;
    if (i >= 0) this.openAt(i, from);
    else this.pendingFrom = from;
  }

  private pendingFrom = 0;
  /**
   * True until the first record is read: the position is still the `from` the reader was given,
   * which may lie past the end of the log's data (in a segment not created yet).
   */
  private seeking = true;

  /** The offset of the next record to read. */
  get offset(): number {
    const seg = this.segments[this.segIdx];
    return seg ? seg.base + this.pos : this.pendingFrom;
  }

  /**
   * The next record, or null at the end of what can be read now. Pass a `WalRecord` to reuse it
   * (no allocation per record); otherwise the reader reuses its own.
   */
  next(into: WalRecord = this.own): WalRecord | null {
    if (this.closed) throw new WalError('CLOSED', `reader of ${this.dir} is closed`);
    let reloaded = false;
    for (;;) {
      if (this.endFn !== undefined && this.offset >= this.endFn()) return null;
      if (this.segIdx < 0) {
        this.refresh();
        if (this.segments.length === 0) return null;
        // The segment that holds `from`, as the constructor picks it.
        let s = this.segments.length - 1;
        while (s > 0 && (this.segments[s] as SegmentRef).base > this.pendingFrom) s--;
        this.openAt(s, this.pendingFrom);
      }
      const w = this.window as FileWindow;
      const seg = this.segments[this.segIdx] as SegmentRef;
      const pos = this.pos;
      // With an end bound, refills read no further than the data known to be there.
      const limit = this.endFn === undefined ? w.size : Math.max(pos + HEADER, this.endFn() - seg.base);
      let len = 0;
      if (pos + HEADER <= w.size) {
        const i = w.at(pos, HEADER, limit);
        len = readI32(w.buf, i) >>> 0;
        if (len === 0 && readI32(w.buf, i + 4) !== 0) return this.bad(seg, 'a zero length with a non-zero CRC');
      }
      if (len === 0) {
        // The end of this segment's data as last read: look again (a writer may have appended since),
        // then move on if the next segment starts here, else stop.
        if (!reloaded) {
          reloaded = true;
          this.reload();
          continue;
        }
        if (this.advanceSegment()) continue;
        // Data known to be there (below the end bound) and not found: not the end of the data.
        if (this.endFn !== undefined && this.offset < this.endFn()) {
          throw new WalError('CORRUPT', `${seg.file}: no record at byte ${this.pos} (log offset ${this.offset}), below the end of the data (${this.endFn()})`, { file: seg.file, offset: this.pos });
        }
        return null;
      }
      if (len > this.maxRecordSize) return this.bad(seg, `a length of ${len} bytes (maxRecordSize ${this.maxRecordSize})`);
      if (pos + HEADER + len > w.size) return this.bad(seg, `a ${len}-byte record running past the end of the file`);
      if (this.endFn !== undefined && seg.base + pos + HEADER + len > this.endFn()) return null; // not all of it is readable yet
      const i = w.at(pos, HEADER + len, limit);
      if (this.verify && seg.base + pos < this.verifiedFrom && crc32i(w.buf, i + HEADER, i + HEADER + len) !== readI32(w.buf, i + 4)) return this.bad(seg, 'a CRC mismatch');
      into.offset = seg.base + pos;
      into.buf = w.buf;
      into.start = i + HEADER;
      into.end = i + HEADER + len;
      this.pos = pos + HEADER + len;
      this.seeking = false;
      return into;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.fd >= 0) this.io.close(this.fd);
    this.fd = -1;
  }

  // A bad record below the known durable end, or followed by good records, is corruption; one at
  // the very end of the last segment is a torn tail (or an append still in progress): stop there.
  private bad(seg: SegmentRef, what: string): null {
    // Whether it is the last segment now: a writer may have rolled since the list was read.
    if (this.segIdx === this.segments.length - 1) this.refresh();
    const last = this.segIdx === this.segments.length - 1;
    if (last && this.endFn === undefined) {
      const scan = scanSegment(this.io, this.fd, this.maxRecordSize);
      if (scan.status !== 'corrupt' && scan.end <= this.pos) {
        this.reload();
        return null;
      }
    }
    throw new WalError('CORRUPT', `${seg.file}: ${what} at byte ${this.pos} (log offset ${seg.base + this.pos})`, { file: seg.file, offset: this.pos });
  }

  private refresh(): void {
    try {
      this.segments = this.io.exists(this.dir) ? listSegments(this.io, this.dir) : [];
    } catch (err) {
      throw new WalError('IO', `cannot list ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Opens segment `i` at log offset `from`; CORRUPT if the log's segments start after it (missing ones). */
  private openAt(i: number, from: number): void {
    const seg = this.segments[i] as SegmentRef;
    if (from < seg.base) {
      throw new WalError('CORRUPT', `${this.dir}: cannot read from offset ${from}: the log's first segment starts at ${seg.base} (the segments before it are missing)`, { file: seg.file, offset: 0 });
    }
    this.openSegment(i, from - seg.base);
  }

  private openSegment(i: number, pos: number): void {
    const seg = this.segments[i] as SegmentRef;
    if (this.fd >= 0) this.io.close(this.fd);
    try {
      this.fd = this.io.open(seg.file, 'r');
      this.window = new FileWindow(this.io, this.fd, this.io.size(this.fd));
    } catch (err) {
      this.fd = -1;
      throw new WalError('IO', `cannot open ${seg.file}: ${(err as Error).message}`, { cause: err });
    }
    this.segIdx = i;
    this.pos = pos;
  }

  /** Re-reads the current segment from disk on the next call (a writer may have added to it). */
  private reload(): void {
    (this.window as FileWindow).reset(this.io.size(this.fd));
  }

  private advanceSegment(): boolean {
    const here = this.offset;
    if (this.segIdx + 1 >= this.segments.length) this.refresh(); // segments are only ever added at the end
    const next = this.segments[this.segIdx + 1];
    if (!next) return false;
    if (this.seeking && next.base < here) {
      // A `from` past the data of the segment it was looked for in: it lies in a later segment.
      let s = this.segments.length - 1;
      while (s > this.segIdx + 1 && (this.segments[s] as SegmentRef).base > here) s--;
      this.openAt(s, here);
      return true;
    }
    if (next.base !== here) {
      throw new WalError('CORRUPT', `segment ${next.file} starts at offset ${next.base} but the previous segment's data ends at ${here}`, {
        file: next.file,
        offset: 0,
      });
    }
    this.openSegment(this.segIdx + 1, 0);
    return true;
  }
}
