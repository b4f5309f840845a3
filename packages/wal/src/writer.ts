// The log writer. Records are assembled in one preallocated buffer (no allocation per append),
// written to the current segment by `flush()` and made durable by `sync()` (fdatasync on the thread
// pool, group-committed: one sync covers everything flushed before it started, and calls that
// arrive while one runs share the next). Segments are preallocated with zeros, so an fdatasync
// never has to update the file size.
//
// Failure rules: a short write or a write error cuts the segment back to where the failed flush
// started (the last record boundary on disk) and fails the writer; a failed fsync fails it for good
// (the kernel may have dropped the dirty pages: retrying would claim durability it cannot have).
// A failed writer refuses all further work with the original error as `cause`.

import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { crc32i, writeI32 } from './crc32.js';
import { WalError } from './errors.js';
import { nodeFileIO, type FileIO } from './file-io.js';
import { HEADER, recordAt, scanSegment } from './scan.js';
import { checkSegmentChain, listSegments, segmentName, type SegmentRef } from './segments.js';
import { cutTornTail } from './verify.js';
import { markerMatches, takeCleanMarker, writeCleanMarker } from './clean-close.js';

export type Durability = 'none' | 'batch' | 'interval';

export interface WalOptions {
  /** Bytes per segment file (default 64 MiB). A segment rolls when the next record would not fit. */
  readonly segmentSize?: number;
  /** Largest payload accepted (default 1 MiB). */
  readonly maxRecordSize?: number;
  /** Size of the append buffer (default 1 MiB, at least maxRecordSize + 8). */
  readonly bufferSize?: number;
  /**
   * Fill new segments with zeros up to segmentSize, so that an fdatasync never has to update the
   * file's size (default: true, except with durability `none`, which never syncs).
   */
  readonly preallocate?: boolean;
  /**
   * `none`: never fsync (`sync()` only flushes; "durable" then means handed to the OS);
   * `batch`: the caller calls `sync()` at the end of each batch (group commit);
   * `interval`: a timer flushes and syncs every `syncIntervalMs` (default).
   */
  readonly durability?: Durability;
  readonly syncIntervalMs?: number;
  /** The file layer (tests inject faults through it). */
  readonly io?: FileIO;
  /**
   * Leave a clean-close marker when `close()` finds everything synced, and trust it on the next
   * open: the last segment is then not scanned record by record (default false). A crash leaves no
   * marker, so a torn tail is still found and repaired; corruption inside a cleanly closed segment
   * is found by readers (they check CRCs) instead of by opening.
   */
  readonly cleanClose?: boolean;
}

/** What opening a log did to a torn tail. */
export interface TornTailRepair {
  readonly segment: string;
  /** Position in the segment file where the good data ends (and the torn bytes started). */
  readonly position: number;
  /** The log offset of that position. */
  readonly offset: number;
  /** Bytes cut off. */
  readonly bytes: number;
  /** Where the cut bytes were kept. */
  readonly sideFile: string;
}

const ZEROS = Buffer.alloc(1 << 20);
const SPARE_PREFIX = '.spare-';

export class WalWriter {
  /** The append buffer; between `reserve` and `commit` a caller may encode a payload into it. */
  buffer: Buffer;
  readonly dir: string;
  readonly durability: Durability;
  /** Set when opening cut off a torn tail. */
  readonly repaired: TornTailRepair | undefined;
  /**
   * The offset of the log's last record when it was opened, if the last segment held one (-1
   * otherwise): a caller that needs the log's last record reads just that one.
   */
  readonly tailRecordOffset: number = -1;
  /**
   * Opening checked every record from this offset (the last segment's base) up to `nextOffset`:
   * a reader started right after opening need not check their CRCs again.
   */
  readonly verifiedFrom: number = 0;
  /** Opening took the end of the log from a clean-close marker (see `cleanClose`) instead of scanning. */
  readonly trustedClean: boolean = false;

  private readonly io: FileIO;
  private readonly segmentSize: number;
  private readonly maxRecordSize: number;
  private readonly preallocate: boolean;
  private readonly cleanClose: boolean;
  private closing: Promise<void> | undefined;
  /** Whether the current segment was filled with zeros (a roll that found no spare ready skips it). */
  private segPreallocated = false;
  private fd: number;
  private segBase: number;
  private segFile: string;
  /** Bytes of the current segment already written to the file. */
  private segWritten: number;
  /** Bytes in `buffer`, all destined for the current segment after segWritten. */
  private bufLen = 0;
  private reserved = -1;
  /** Buffer index of the last committed record; -1 none yet; -2 flushed (then see lastFlushed). */
  private lastAt = -1;
  private lastFlushed = -1;
  private durable: number;
  private syncing = false;
  private waiters: { target: number; resolve: (offset: number) => void; reject: (err: Error) => void }[] = [];
  private toClose: number[] = [];
  private listeners: ((durableOffset: number) => void)[] = [];
  private failureListeners: ((err: WalError) => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerHeld = false;
  private error: WalError | undefined;
  private closed = false;
  /** A preallocated file ready to become the next segment (made off the main thread), or being made. */
  private spare: string | undefined;
  private spareState: 'none' | 'making' | 'ready' | 'failed' = 'none';
  private spareSeq = 0;
  private readonly spareId = randomBytes(6).toString('hex');

  private constructor(dir: string, options: WalOptions) {
    this.dir = dir;
    this.io = options.io ?? nodeFileIO;
    this.segmentSize = options.segmentSize ?? 64 << 20;
    this.maxRecordSize = options.maxRecordSize ?? 1 << 20;
    this.preallocate = options.preallocate ?? (options.durability ?? 'interval') !== 'none';
    this.durability = options.durability ?? 'interval';
    this.cleanClose = options.cleanClose ?? false;
    const bufferSize = options.bufferSize ?? Math.max(1 << 20, this.maxRecordSize + HEADER);
    checkInt('segmentSize', this.segmentSize, 64, 2 ** 40);
    checkInt('maxRecordSize', this.maxRecordSize, 1, 2 ** 31);
    if (this.segmentSize < this.maxRecordSize + HEADER) {
      throw new WalError('INVALID_OPTIONS', `segmentSize (${this.segmentSize}) must hold a record of maxRecordSize (${this.maxRecordSize}) plus its 8-byte header`);
    }
    checkInt('bufferSize', bufferSize, this.maxRecordSize + HEADER, 2 ** 31);
    if (!['none', 'batch', 'interval'].includes(this.durability)) {
      throw new WalError('INVALID_OPTIONS', `durability must be none, batch or interval, got ${this.durability}`);
    }
    const interval = options.syncIntervalMs ?? 5;
    checkInt('syncIntervalMs', interval, 1, 60_000);
    this.buffer = Buffer.alloc(bufferSize);

    io(() => {
      this.io.mkdirp(dir);
    }, `cannot create ${dir}`);
    const segments = io(() => listSegments(this.io, dir), `cannot list ${dir}`);
    try {
      checkSegmentChain(this.io, dir, segments);
    } catch (err) {
      if (err instanceof WalError) throw err;
      throw new WalError('IO', `cannot check the segments of ${dir}: ${(err as Error).message}`, { cause: err });
    }
    for (const name of io(() => this.io.list(dir), `cannot list ${dir}`)) {
      if (name.startsWith(SPARE_PREFIX)) this.io.remove(path.join(dir, name));
    }
    const found = segments[segments.length - 1];
    const last: SegmentRef = found ?? { base: 0, file: path.join(dir, segmentName(0)) };
    if (!found) {
      this.fd = io(() => this.io.open(last.file, 'wx+'), `cannot create ${last.file}`);
      io(() => {
        this.io.syncDir(dir);
      }, `cannot sync ${dir}`);
    } else {
      this.fd = io(() => this.io.open(last.file, 'r+'), `cannot open ${last.file}`);
    }
    this.segBase = last.base;
    this.segFile = last.file;
    try {
      // A marker is removed whatever becomes of it: from here on the log may change.
      const marker = takeCleanMarker(this.io, dir);
      if (found && marker !== undefined && this.cleanClose && markerMatches(this.io, this.fd, path.basename(last.file), this.io.size(this.fd), marker, this.maxRecordSize)) {
        this.segWritten = marker.end;
        this.durable = last.base + marker.end;
        this.tailRecordOffset = marker.lastRecord < 0 ? -1 : last.base + marker.lastRecord;
        this.verifiedFrom = last.base + marker.end; // nothing was checked
        this.trustedClean = true;
      } else {
        const scan = scanSegment(this.io, this.fd, this.maxRecordSize);
        // A length above maxRecordSize looks torn or corrupt: a valid record there means the option
        // is below the log's own records, and cutting or refusing the log would be wrong (as
        // `verify` and `repair` say).
        if (scan.status !== 'ok' && recordAt(this.io, this.fd, scan.end)) {
          throw new WalError(
            'INVALID_OPTIONS',
            `refusing to open ${last.file}: records longer than maxRecordSize (${this.maxRecordSize} bytes) follow byte ${scan.end}, with valid CRCs; raise maxRecordSize`,
            { file: last.file },
          );
        }
        if (scan.status === 'corrupt') {
          throw new WalError(
            'CORRUPT',
            `${last.file}: bad record at byte ${scan.end} (log offset ${last.base + scan.end}) followed by a valid record at byte ${scan.resumesAt}; refusing to open (inspect with: wal verify, wal dump)`,
            { file: last.file, offset: scan.end },
          );
        }
        if (scan.status === 'torn') {
          const sideFile = cutTornTail(this.io, last.file, this.fd, scan.end, scan.dataEnd, scan.fileSize);
          this.repaired = { segment: last.file, position: scan.end, offset: last.base + scan.end, bytes: scan.dataEnd - scan.end, sideFile };
        }
        this.segWritten = scan.end;
        this.durable = last.base + scan.end;
        this.tailRecordOffset = scan.lastRecord < 0 ? -1 : last.base + scan.lastRecord;
        this.verifiedFrom = last.base;
      }
      this.extendSegment();
    } catch (err) {
      this.io.close(this.fd);
      throw err instanceof WalError ? err : new WalError('IO', `cannot open log ${dir}: ${(err as Error).message}`, { cause: err });
    }
    this.startTimer(interval);
  }

  private startTimer(interval: number): void {
    if (this.durability === 'interval') {
      // The timer keeps the process alive only while something written is not durable yet: a
      // caller awaiting durability must not see the process exit under it.
      this.timer = setInterval(() => {
        if (this.error === undefined && this.nextOffset > this.durable && this.reserved < 0) {
          this.sync().then(
            () => {
              if (this.nextOffset <= this.durable) this.releaseTimer();
            },
            () => {
              this.releaseTimer();
            },
          );
        } else if (this.reserved < 0) {
          this.releaseTimer();
        }
      }, interval);
      this.timer.unref();
    }
  }

  /** The interval timer keeps the process alive: something appended is not durable yet. */
  private holdTimer(): void {
    if (this.timer === undefined || this.timerHeld || this.error !== undefined) return;
    this.timerHeld = true;
    this.timer.ref();
  }

  private releaseTimer(): void {
    this.timerHeld = false;
    this.timer?.unref();
  }

  /** Opens (creating if needed) the log in `dir` for appending, repairing a torn tail. */
  static open(dir: string, options: WalOptions = {}): WalWriter {
    return new WalWriter(dir, options);
  }

  /** The offset the next record will get. */
  get nextOffset(): number {
    return this.segBase + this.segWritten + this.bufLen;
  }

  /** Everything below this offset has been written to the OS. */
  get writtenOffset(): number {
    return this.segBase + this.segWritten;
  }

  /** Everything below this offset is durable (with durability `none`: written to the OS). */
  get durableOffset(): number {
    return this.durable;
  }

  /** The error that failed the writer, if it failed. */
  get failure(): WalError | undefined {
    return this.error;
  }

  /** Calls `listener` with the new durable offset whenever it advances. */
  onDurable(listener: (durableOffset: number) => void): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Calls `listener` once if the writer fails (a write, fsync or roll error, also from the interval timer). */
  onFailure(listener: (err: WalError) => void): () => void {
    this.failureListeners.push(listener);
    return () => {
      this.failureListeners = this.failureListeners.filter((l) => l !== listener);
    };
  }

  /**
   * Closes the files at once, discarding what is buffered and not yet written (for a writer whose
   * owner failed: nothing more may reach the disk). No fsync.
   */
  abort(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.bufLen = 0;
    this.reserved = -1;
    this.closed = true;
    this.removeSpare();
    if (!this.syncing) {
      for (const fd of this.toClose) this.io.close(fd);
      this.toClose = [];
      this.io.close(this.fd);
      // Nothing more is synced: a sync() still waiting is refused (the one in flight, if any,
      // settles its own waiters when it completes, and refuses the rest: see kick()).
      this.refuseWaiters();
    } else {
      this.toClose.push(this.fd);
    }
  }

  /**
   * Makes room for a record of up to `maxLength` payload bytes and returns the index in `buffer`
   * where the payload goes. Finish it with `commit(length)`.
   */
  reserve(maxLength: number): number {
    this.check();
    // Once close() has begun, nothing more is taken: its flush and sync have already been decided.
    if (this.closing !== undefined) throw new WalError('CLOSED', `log ${this.dir} is closing`);
    // The open reservation's payload is being written at the index it returned: nothing may move
    // the buffer under it (a flush or a roll would), so a second one waits for commit() or abandon().
    if (this.reserved >= 0) throw new WalError('INVALID_OPTIONS', `reserve(${maxLength}) while a record is reserved: commit() or abandon() it first`);
    if (!Number.isInteger(maxLength)) throw new WalError('INVALID_OPTIONS', `reserve(${maxLength}): the length must be an integer`);
    if (!(maxLength >= 1 && maxLength <= this.maxRecordSize)) {
      throw maxLength >= 1
        ? new WalError('RECORD_TOO_LARGE', `a record of ${maxLength} bytes exceeds maxRecordSize (${this.maxRecordSize})`)
        : new WalError('EMPTY_RECORD', 'a record must hold at least one byte');
    }
    const need = HEADER + maxLength;
    if (this.segWritten + this.bufLen + need > this.segmentSize) this.roll();
    else if (this.bufLen + need > this.buffer.length) this.flush();
    this.reserved = maxLength;
    return this.bufLen + HEADER;
  }

  /**
   * Completes the reserved record with `length` payload bytes. Its offset is then `lastOffset`
   * (not returned: a log offset beyond 2^30 is a heap number, and the append path allocates nothing).
   */
  commit(length: number): void {
    if (this.reserved < 0) {
      if (this.closed || this.closing !== undefined) throw new WalError('CLOSED', `log ${this.dir} is closed (an open reservation was dropped by close() or abort())`);
      throw new WalError('INVALID_OPTIONS', 'commit() without reserve()');
    }
    if (!(Number.isInteger(length) && length >= 1 && length <= this.reserved)) {
      const reserved = this.reserved;
      this.reserved = -1;
      if (!Number.isInteger(length)) throw new WalError('INVALID_OPTIONS', `commit(${length}): the length must be an integer (the record is abandoned)`);
      throw new WalError(length < 1 ? 'EMPTY_RECORD' : 'RECORD_TOO_LARGE', `commit(${length}) outside the reserved 1..${reserved}`);
    }
    this.reserved = -1;
    const at = this.bufLen;
    const b = this.buffer;
    writeI32(b, at, length);
    writeI32(b, at + 4, crc32i(b, at + HEADER, at + HEADER + length));
    this.lastAt = at;
    this.bufLen = at + HEADER + length;
    // With durability `interval`, a record waiting in the buffer keeps the process alive until the
    // timer has written and synced it (a caller awaiting durability must not see the process exit).
    if (!this.timerHeld && this.timer !== undefined) this.holdTimer();
  }

  /** Gives up the reserved record (for example when encoding into it failed): nothing is appended. */
  abandon(): void {
    this.reserved = -1;
  }

  /** Appends `payload[start, end)` as one record (its offset is then `lastOffset`). */
  append(payload: Uint8Array, start = 0, end = payload.length): void {
    const len = end - start;
    const at = this.reserve(len);
    this.buffer.set(len === payload.length ? payload : payload.subarray(start, end), at);
    this.commit(len);
  }

  /** The offset of the last record appended (-1 before the first append of this writer). */
  get lastOffset(): number {
    if (this.lastAt === -2) return this.lastFlushed;
    return this.lastAt < 0 ? -1 : this.segBase + this.segWritten + this.lastAt;
  }

  /** Writes buffered records to the segment file; returns the written offset. */
  flush(): number {
    this.check();
    // A record reserved and not committed yet (its payload being written at the index reserve()
    // returned) keeps the buffer as it is: the buffered records are written with a later flush.
    if (this.bufLen === 0 || this.reserved >= 0) return this.writtenOffset;
    const len = this.bufLen;
    let n: number;
    try {
      n = this.io.write(this.fd, this.buffer, 0, len, this.segWritten);
    } catch (err) {
      throw this.failWrite(`write of ${len} bytes at ${this.segFile}:${this.segWritten} failed: ${(err as Error).message}`, err);
    }
    if (n !== len) throw this.failWrite(`short write at ${this.segFile}:${this.segWritten}: ${n} of ${len} bytes`, undefined);
    if (this.lastAt >= 0) {
      this.lastFlushed = this.segBase + this.segWritten + this.lastAt;
      this.lastAt = -2;
    }
    this.segWritten += len;
    this.bufLen = 0;
    if (this.durability === 'none') this.advance(this.writtenOffset);
    else this.holdTimer();
    if (this.spareState === 'none' && this.preallocate && this.segWritten * 4 >= this.segmentSize) this.makeSpare();
    return this.writtenOffset;
  }

  /**
   * Flushes and makes everything appended so far durable. Resolves with the durable offset once
   * an fdatasync that started after the flush has completed (immediately with durability `none`).
   */
  sync(): Promise<number> {
    try {
      this.checkNotReserved('sync()');
      this.flush();
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const target = this.writtenOffset;
    if (target <= this.durable) return Promise.resolve(this.durable);
    return new Promise((resolve, reject) => {
      this.waiters.push({ target, resolve, reject });
      this.kick();
    });
  }

  /** Flushes and fdatasyncs on this thread; returns the durable offset. */
  syncNow(): number {
    this.checkNotReserved('syncNow()');
    this.flush();
    if (this.durability === 'none') return this.durable;
    const target = this.writtenOffset;
    try {
      this.io.syncSync(this.fd);
    } catch (err) {
      throw this.failSync(err);
    }
    this.advance(target);
    return this.durable;
  }

  /**
   * Flushes (no fsync) and closes the files at once. Only for a writer with no `sync()` in flight,
   * such as one opened during recovery and not written to; otherwise use `close()`.
   */
  closeSync(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    this.reserved = -1; // a record reserved and not committed is not part of the log
    if (this.error === undefined) this.flush();
    this.closed = true;
    this.removeSpare();
    for (const fd of this.toClose) this.io.close(fd);
    this.toClose = [];
    this.io.close(this.fd);
  }

  /**
   * Syncs what was appended (with durability `none`: flushes), stops the timer and closes the files.
   * Calls made while it runs share its outcome.
   */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.reserved = -1; // a record reserved and not committed is not part of the log
    let failure: Error | undefined;
    if (this.error === undefined) {
      try {
        if (this.durability === 'none') this.flush();
        else await this.sync();
      } catch (err) {
        failure = err as Error;
      }
    }
    while (this.syncing || this.spareState === 'making') await new Promise((r) => setImmediate(r));
    this.removeSpare();
    // abort() while this close waited (an owner that failed meanwhile): it closed the files already,
    // and a second close could hit a descriptor number reused by another file.
    if (this.closed) return;
    if (this.cleanClose && failure === undefined && this.error === undefined) this.leaveCleanMarker();
    this.closed = true;
    for (const fd of this.toClose) this.io.close(fd);
    this.toClose = [];
    this.io.close(this.fd);
    if (failure !== undefined) throw failure;
  }

  // ---------------------------------------------------------------------------------------------

  /** Writes the clean-close marker if everything appended is synced (no marker if anything fails). */
  private leaveCleanMarker(): void {
    try {
      if (this.bufLen > 0) return;
      if (this.durability === 'none') this.io.syncSync(this.fd);
      else if (this.durable < this.writtenOffset) return;
      const last = this.lastOffset >= 0 ? this.lastOffset : this.tailRecordOffset;
      const lastRecord = this.segWritten === 0 || last < this.segBase ? -1 : last - this.segBase;
      writeCleanMarker(this.io, this.dir, { segment: path.basename(this.segFile), end: this.segWritten, lastRecord });
    } catch {
      // No marker: the next open scans the segment, as after a crash.
    }
  }

  /** A reserved record's payload is being written in the buffer: the buffer cannot be written out under it. */
  private checkNotReserved(what: string): void {
    if (this.reserved >= 0) throw new WalError('INVALID_OPTIONS', `${what} while a record is reserved: commit() or abandon() it first`);
  }

  /** Refuses every sync() still waiting (the writer was aborted). */
  private refuseWaiters(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.reject(new WalError('CLOSED', `log ${this.dir} was aborted before this sync`));
  }

  /** Removes a ready spare segment (the writer is closing). */
  private removeSpare(): void {
    const spare = this.spare;
    if (spare === undefined) return;
    this.spare = undefined;
    this.spareState = 'none';
    try {
      this.io.remove(spare);
    } catch {
      // A leftover spare is removed by the next open.
    }
  }

  private check(): void {
    if (this.closed) throw new WalError('CLOSED', `log ${this.dir} is closed`);
    if (this.error) throw new WalError('FAILED', `log ${this.dir} failed earlier: ${this.error.message}`, { cause: this.error });
  }

  private kick(): void {
    if (this.syncing || this.error) return;
    if (this.closed) {
      // Aborted: the descriptor is closed, and nothing more is synced.
      this.refuseWaiters();
      return;
    }
    if (!this.waiters.some((w) => w.target > this.durable)) return;
    this.syncing = true;
    const target = this.writtenOffset;
    this.io.sync(this.fd, (err) => {
      this.syncing = false;
      for (const fd of this.toClose) this.io.close(fd);
      this.toClose = [];
      if (err) {
        const failure = this.error ?? this.failSync(err);
        const waiting = this.waiters;
        this.waiters = [];
        for (const w of waiting) w.reject(failure);
        return;
      }
      this.advance(target);
      if (this.waiters.length > 0) this.kick();
    });
  }

  private advance(offset: number): void {
    if (offset <= this.durable) return;
    this.durable = offset;
    if (this.waiters.length > 0) {
      const still: typeof this.waiters = [];
      for (const w of this.waiters) {
        if (w.target <= offset) w.resolve(offset);
        else still.push(w);
      }
      this.waiters = still;
    }
    for (const l of this.listeners) l(offset);
  }

  /** Starts a new segment at the current end of the log (the old one is flushed and synced first). */
  private roll(): void {
    this.flush();
    const old = this.fd;
    if (this.durability !== 'none') {
      try {
        this.io.syncSync(old);
      } catch (err) {
        throw this.failSync(err);
      }
    }
    const base = this.writtenOffset;
    const file = path.join(this.dir, segmentName(base));
    let fd: number;
    const spare = this.spareState === 'ready' ? this.spare : undefined;
    if (this.spareState === 'failed') this.spareState = 'none';
    let usedSpare = false;
    try {
      if (spare !== undefined) {
        this.spareState = 'none';
        this.spare = undefined;
        usedSpare = this.renameSpare(spare, file);
      }
      fd = this.io.open(file, usedSpare ? 'r+' : 'wx+');
    } catch (err) {
      throw this.failWrite(`cannot create segment ${file}: ${(err as Error).message}`, err);
    }
    try {
      this.io.syncDir(this.dir);
    } catch (err) {
      try {
        this.io.close(fd);
      } catch {
        // failing anyway: the error below is the one to report
      }
      throw this.failWrite(`cannot create segment ${file}: ${(err as Error).message}`, err);
    }
    if (this.syncing) this.toClose.push(old);
    else this.io.close(old);
    this.fd = fd;
    this.segBase = base;
    this.segFile = file;
    this.segWritten = 0;
    if (this.durability !== 'none') this.advance(base);
    // Without a spare ready, the new segment grows as it is written (its syncs also update its size)
    // rather than stalling the append path on writing a whole segment of zeros.
    if (usedSpare) this.extendSegment();
    else this.segPreallocated = false;
  }

  /**
   * Renames the spare into place as the new segment; false if the spare is gone (removed by
   * something else: the segment is then created afresh instead of failing the log).
   */
  private renameSpare(spare: string, file: string): boolean {
    try {
      this.io.rename(spare, file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /**
   * Prepares the next segment's file in the background once the current one is a quarter full, so that
   * a roll is a rename instead of writing a whole segment of zeros on the append path.
   */
  private makeSpare(): void {
    // Unique to this writer: a writer of the same log that was aborted with its spare still being
    // made (a halted engine, then reopened in the same process) must not remove this one's spare.
    const spare = path.join(this.dir, `${SPARE_PREFIX}${process.pid}-${this.spareId}-${this.spareSeq++}`);
    this.spareState = 'making';
    // Cancelled when the writer closes: a close must not wait for a whole segment of zeros to be
    // written and synced a MiB at a time (minutes on a busy machine) only to remove it.
    const cancelled = (): boolean => this.closed || this.closing !== undefined;
    this.io.preallocate(spare, this.segmentSize, (err) => {
      if (err || this.closed) {
        try {
          this.io.remove(spare);
        } catch {
          // a leftover spare is removed by the next open
        }
        this.spareState = err ? 'failed' : 'none'; // after a failure, try again only for the next segment
        return;
      }
      this.spare = spare;
      this.spareState = 'ready';
    }, cancelled);
  }

  /** Fills the current segment with zeros up to segmentSize (when preallocating). */
  private extendSegment(): void {
    this.segPreallocated = false;
    if (!this.preallocate) return;
    let size: number;
    try {
      size = this.io.size(this.fd);
      // Synced one MiB at a time, as a spare is (file-io.ts): a single sync of the whole segment
      // leaves the disk slow for the logs' first fdatasyncs (measured: the first 150 ms of an
      // open-loop run after a fresh open waited up to 68-70 ms with one sync, 37-40 ms with a sync
      // per MiB; opening took 119-123 ms with a sync per MiB, 112-113 ms with one sync).
      const wrote = size < this.segmentSize;
      while (size < this.segmentSize) {
        const n = Math.min(ZEROS.length, this.segmentSize - size);
        const w = this.io.write(this.fd, ZEROS, 0, n, size);
        if (w !== n) throw new Error(`short write while preallocating (${w} of ${n} bytes)`);
        size += n;
        this.io.syncSync(this.fd);
      }
      if (!wrote) this.io.syncSync(this.fd);
      this.segPreallocated = true;
    } catch (err) {
      throw this.failWrite(`cannot preallocate ${this.segFile} to ${this.segmentSize} bytes: ${(err as Error).message}`, err);
    }
  }

  private failWrite(message: string, cause: unknown): WalError {
    // Cut the segment back to where this flush started: the last record boundary on disk.
    try {
      if (this.segPreallocated) {
        const size = this.io.size(this.fd);
        for (let at = this.segWritten; at < size; ) {
          const n = Math.min(ZEROS.length, size - at);
          if (this.io.write(this.fd, ZEROS, 0, n, at) !== n) {
            this.io.truncate(this.fd, this.segWritten);
            break;
          }
          at += n;
        }
      } else {
        this.io.truncate(this.fd, this.segWritten);
      }
    } catch {
      // The disk refuses even that: the next open finds a torn tail and repairs it.
    }
    this.bufLen = 0;
    this.error = new WalError('WRITE_FAILED', `${message}; log cut back to offset ${this.writtenOffset}`, {
      cause,
      file: this.segFile,
      offset: this.segWritten,
    });
    this.rejectWaiters();
    return this.error;
  }

  private failSync(cause: unknown): WalError {
    this.error = new WalError('SYNC_FAILED', `fdatasync of ${this.segFile} failed: ${(cause as Error).message}; the log cannot promise durability and is failed`, {
      cause,
      file: this.segFile,
    });
    this.rejectWaiters();
    return this.error;
  }

  private rejectWaiters(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.reject(this.error ?? new WalError('FAILED', 'log failed'));
    const failed = this.error;
    if (failed) {
      const listeners = this.failureListeners;
      this.failureListeners = [];
      for (const l of listeners) l(failed);
    }
  }
}

function checkInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new WalError('INVALID_OPTIONS', `${name} must be an integer in ${min}..${max}, got ${v}`);
}

function io<T>(f: () => T, what: string): T {
  try {
    return f();
  } catch (err) {
    throw new WalError('IO', `${what}: ${(err as Error).message}`, { cause: err });
  }
}
