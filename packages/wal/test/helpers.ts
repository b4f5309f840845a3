// Shared helpers of the WAL tests: temporary directories, deterministic payloads, reading a whole
// log back, byte-level surgery on segment files and a fault-injecting FileIO.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { expect } from 'vitest';
import { nodeFileIO, WalError, WalReader, type FileIO, type ReaderOptions, type WalErrorCode, type WalWriter } from '../src/index.js';

/** Small segments and records, so that segments roll often. */
export const SEG = 4096;
export const MAX = 256;
export const HEADER = 8;
export const SMALL = { segmentSize: SEG, maxRecordSize: MAX } as const;

// ---------------------------------------------------------------------------------------------
// Temporary directories

const made: string[] = [];

/** A fresh directory under os.tmpdir(), removed by `removeTmpDirs()`. */
export function tmpDir(prefix = 'gx3-wal-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

export function removeTmpDirs(): void {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// Payloads and record layout

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic payload number `i`: 1..MAX bytes, never all zero (same function as fixtures/crash-child.mjs). */
export function payloadFor(i: number): Buffer {
  const len = 1 + (Math.imul(i + 1, 2654435761) >>> 0) % MAX;
  const b = Buffer.alloc(len);
  for (let j = 0; j < len; j++) b[j] = (Math.imul(i + 1, 131) + j * 17 + 1) & 0xff;
  if (len >= 4) b.writeUInt32LE((i + 1) >>> 0, 0);
  return b;
}

/** Bytes with no zero byte (so that trailing bytes are never mistaken for zero fill). */
export function nonZeroBytes(len: number, seed: number): Buffer {
  const r = prng(seed);
  const b = Buffer.alloc(len);
  for (let j = 0; j < len; j++) b[j] = 1 + Math.floor(r() * 255);
  return b;
}

/** Offsets of records of these payloads laid out from `start`: offsets[i], and offsets[n] = end. */
export function layout(payloads: readonly Uint8Array[], start = 0): number[] {
  const out = [start];
  let at = start;
  for (const p of payloads) {
    at += HEADER + p.length;
    out.push(at);
  }
  return out;
}

/**
 * Appends `payload[start, end)` and returns the record's offset (the writer's `lastOffset`), checking
 * that it is where the log ended before the append.
 */
export function appendAt(w: WalWriter, payload: Uint8Array, start = 0, end = payload.length): number {
  const expected = w.nextOffset;
  w.append(payload, start, end);
  expect(w.lastOffset).toBe(expected);
  expect(w.nextOffset).toBe(expected + HEADER + (end - start));
  return w.lastOffset;
}

export interface ReadRecord {
  offset: number;
  payload: Buffer;
}

/** All records the reader returns until it returns null. */
export function readAll(dir: string, options: ReaderOptions = {}): ReadRecord[] {
  const r = new WalReader(dir, { maxRecordSize: MAX, ...options });
  try {
    return drain(r);
  } finally {
    r.close();
  }
}

/** Records from `r` until it returns null. */
export function drain(r: WalReader): ReadRecord[] {
  const out: ReadRecord[] = [];
  for (let rec = r.next(); rec !== null; rec = r.next()) out.push({ offset: rec.offset, payload: rec.payload() });
  return out;
}

/** Asserts that `records` are exactly `payloads` at `offsets`, byte for byte. */
export function expectRecords(records: readonly ReadRecord[], payloads: readonly Uint8Array[], offsets: readonly number[]): void {
  expect(records.map((r) => r.offset)).toEqual(offsets.slice(0, payloads.length));
  expect(records.length).toBe(payloads.length);
  for (let i = 0; i < payloads.length; i++) {
    const got = records[i];
    const want = payloads[i];
    if (got === undefined || want === undefined) throw new Error(`record ${i} missing`);
    if (!got.payload.equals(want)) {
      expect.fail(`record ${i} at offset ${got.offset}: payload differs (got ${got.payload.length} bytes ${got.payload.toString('hex').slice(0, 40)}, want ${want.length} bytes ${Buffer.from(want).toString('hex').slice(0, 40)})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Segment files

const SEGMENT_NAME = /^(\d{20})\.wal$/;

export interface SegmentFile {
  base: number;
  file: string;
}

/** The segment files of `dir`, by base offset. */
export function segmentFiles(dir: string): SegmentFile[] {
  const out: SegmentFile[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = SEGMENT_NAME.exec(name);
    if (m?.[1] !== undefined) out.push({ base: Number(m[1]), file: path.join(dir, name) });
  }
  return out.sort((a, b) => a.base - b.base);
}

export function lastSegment(dir: string): SegmentFile {
  const segs = segmentFiles(dir);
  const last = segs[segs.length - 1];
  if (last === undefined) throw new Error(`no segment in ${dir}`);
  return last;
}

/** Every file of `dir` (name -> contents), to check that something left a log untouched. */
export function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of fs.readdirSync(dir).sort()) out.set(name, fs.readFileSync(path.join(dir, name)));
  return out;
}

export function expectSameSnapshot(after: Map<string, Buffer>, before: Map<string, Buffer>): void {
  expect([...after.keys()]).toEqual([...before.keys()]);
  for (const [name, bytes] of before) {
    const now = after.get(name);
    if (now === undefined || !now.equals(bytes)) expect.fail(`${name} was changed`);
  }
}

/** Copies the files of `from` into a fresh temporary directory. */
export function copyDir(from: string): string {
  const to = tmpDir();
  for (const name of fs.readdirSync(from)) fs.copyFileSync(path.join(from, name), path.join(to, name));
  return to;
}

/** Overwrites bytes of a file in place. */
export function writeAt(file: string, position: number, bytes: Uint8Array): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, position);
  } finally {
    fs.closeSync(fd);
  }
}

export function flipBit(file: string, position: number, bit: number): void {
  const b = fs.readFileSync(file);
  const v = b[position];
  if (v === undefined) throw new Error(`${file} has no byte ${position}`);
  writeAt(file, position, Uint8Array.of(v ^ (1 << bit)));
}

/** `b` without its trailing zero bytes. */
export function trimZeros(b: Buffer): Buffer {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.subarray(0, end);
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The WalError `f` throws (fails the test when it throws nothing or something else). */
export function walErrorOf(f: () => unknown): WalError {
  try {
    f();
  } catch (err) {
    if (err instanceof WalError) return err;
    throw err;
  }
  return expect.fail('expected a WalError, nothing was thrown');
}

/** The WalError `p` rejects with. */
export async function walRejectionOf(p: Promise<unknown>): Promise<WalError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof WalError) return err;
    throw err;
  }
  return expect.fail('expected a rejection with a WalError, the promise resolved');
}

export function expectCode(err: WalError, code: WalErrorCode): void {
  expect(err.code, err.message).toBe(code);
}

// ---------------------------------------------------------------------------------------------
// File layers

function errno(code: string, syscall: string): NodeJS.ErrnoException {
  const messages: Record<string, string> = { ENOSPC: 'no space left on device', EIO: 'i/o error', EACCES: 'permission denied' };
  return Object.assign(new Error(`${code}: ${messages[code] ?? 'error'}, ${syscall}`), { code, syscall, errno: -1 });
}

/** nodeFileIO without fsyncs (for tests about layout, not durability: fsyncs cost milliseconds). */
export const noSyncIO: FileIO = {
  ...nodeFileIO,
  syncSync: () => undefined,
  sync: (_fd, done) => {
    setImmediate(() => {
      done(null);
    });
  },
  syncDir: () => undefined,
};

/** A fault to inject into a write: an error (after writing `written` bytes), or a short count. */
export type WriteFault = { kind: 'enospc'; written: number } | { kind: 'short'; written: number };

export interface Faults {
  /**
   * Asked for each write of records (a buffer starting with a non-zero length field), with the
   * 0-based index of such writes since the faults were set.
   */
  dataWrite?: (index: number, length: number) => WriteFault | undefined;
  /** Asked for each write of zeros (preallocation, cutting back). */
  zeroWrite?: (index: number, length: number) => WriteFault | undefined;
  /** Asked for each asynchronous fdatasync: true fails it (EIO). */
  sync?: (index: number) => boolean;
  /** Asked for each blocking fdatasync: true fails it (EIO). */
  syncSync?: (index: number) => boolean;
  /** Asked for each open: true fails it (EACCES). */
  open?: (file: string, flags: string) => boolean;
}

export interface Calls {
  dataWrites: number;
  zeroWrites: number;
  sync: number;
  syncSync: number;
  open: number;
}

/**
 * nodeFileIO with faults injected where `faults` says. `arm()` replaces the faults and restarts
 * the counters they are given; `calls` counts every call since the last `arm()`.
 */
export class FaultyIO {
  faults: Faults = {};
  calls: Calls = { dataWrites: 0, zeroWrites: 0, sync: 0, syncSync: 0, open: 0 };
  /** Faults injected so far (all kinds). */
  injected = 0;

  arm(faults: Faults): void {
    this.faults = faults;
    this.calls = { dataWrites: 0, zeroWrites: 0, sync: 0, syncSync: 0, open: 0 };
  }

  private applyWriteFault(fault: WriteFault | undefined, fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
    if (fault === undefined) return nodeFileIO.write(fd, buf, offset, length, position);
    this.injected++;
    const written = Math.max(0, Math.min(fault.written, length - 1));
    if (written > 0) nodeFileIO.write(fd, buf, offset, written, position);
    if (fault.kind === 'enospc') throw errno('ENOSPC', 'write');
    return written;
  }

  readonly io: FileIO = {
    ...nodeFileIO,
    open: (file, flags) => {
      this.calls.open++;
      if (this.faults.open?.(file, flags) === true) {
        this.injected++;
        throw errno('EACCES', 'open');
      }
      return nodeFileIO.open(file, flags);
    },
    write: (fd, buf, offset, length, position) => {
      const isData = length >= 4 && ((buf[offset] ?? 0) | (buf[offset + 1] ?? 0) | (buf[offset + 2] ?? 0) | (buf[offset + 3] ?? 0)) !== 0;
      if (isData) {
        const index = this.calls.dataWrites++;
        return this.applyWriteFault(this.faults.dataWrite?.(index, length), fd, buf, offset, length, position);
      }
      const index = this.calls.zeroWrites++;
      return this.applyWriteFault(this.faults.zeroWrite?.(index, length), fd, buf, offset, length, position);
    },
    syncSync: (fd) => {
      const index = this.calls.syncSync++;
      nodeFileIO.syncSync(fd);
      if (this.faults.syncSync?.(index) === true) {
        this.injected++;
        throw errno('EIO', 'fdatasync');
      }
    },
    sync: (fd, done) => {
      const index = this.calls.sync++;
      const fail = this.faults.sync?.(index) === true;
      nodeFileIO.sync(fd, (err) => {
        if (fail) {
          this.injected++;
          done(errno('EIO', 'fdatasync'));
        } else {
          done(err);
        }
      });
    },
  };
}

/** The built `gx3-wal` command line (the CLI tests skip when it is missing). */
export const WAL_CLI = fileURLToPath(new URL('../dist/bin/wal.js', import.meta.url));

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `gx3-wal` with `args`. */
export function runWal(...args: string[]): CliRun {
  const r = spawnSync(process.execPath, [WAL_CLI, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One record as the log frames it: length, CRC-32, payload. */
export function frameRecord(payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(payload.length, 0);
  h.writeUInt32LE(zlib.crc32(payload), 4);
  return Buffer.concat([h, payload]);
}

/** The file name of the segment that starts at log offset `base`. */
export const segmentFileName = (base: number): string => `${String(base).padStart(20, '0')}.wal`;
