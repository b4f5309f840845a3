// The clean-close marker: a writer that closes cleanly (everything synced) may leave a small file
// saying where its last segment's data ends, so that the next open takes the end from it instead of
// checking every record of the segment (a torn tail can only come from a crash, and a crash leaves
// no marker). Opening removes the marker before anything is appended, so it never outlives the
// state it describes. It is written to a temporary name, synced and renamed into place: a marker
// that cannot be read, or does not match the files, is ignored and the segment is scanned as usual.

import path from 'node:path';
import { crc32, readI32 } from './crc32.js';
import type { FileIO } from './file-io.js';
import { HEADER } from './scan.js';

export const CLEAN_FILE = 'CLEAN';
const CLEAN_TMP = 'CLEAN.tmp';
const MAX_MARKER = 512;

export interface CleanMarker {
  /** The last segment's file name. */
  readonly segment: string;
  /** Where its data ends (bytes from the segment's start). */
  readonly end: number;
  /** Where its last record starts (-1 when it holds none). */
  readonly lastRecord: number;
}

/** Writes the marker for `dir` (temporary file, fdatasync, rename, directory sync). */
export function writeCleanMarker(io: FileIO, dir: string, marker: CleanMarker): void {
  const tmp = path.join(dir, CLEAN_TMP);
  const text = Buffer.from(`${JSON.stringify(marker)}\n`);
  const fd = io.open(tmp, 'w');
  try {
    if (io.write(fd, text, 0, text.length, 0) !== text.length) throw new Error(`short write of ${tmp}`);
    io.syncSync(fd);
  } finally {
    io.close(fd);
  }
  io.rename(tmp, path.join(dir, CLEAN_FILE));
  io.syncDir(dir);
}

/**
 * Reads and removes the marker (and a leftover temporary one) of `dir`: returns it if it was there
 * and well formed. The removal is synced before this returns.
 */
export function takeCleanMarker(io: FileIO, dir: string): CleanMarker | undefined {
  const file = path.join(dir, CLEAN_FILE);
  let marker: CleanMarker | undefined;
  if (io.exists(file)) {
    try {
      const fd = io.open(file, 'r');
      try {
        const buf = Buffer.alloc(Math.min(io.size(fd), MAX_MARKER));
        const n = io.read(fd, buf, 0, buf.length, 0);
        marker = parseMarker(buf.subarray(0, n).toString('utf8'));
      } finally {
        io.close(fd);
      }
    } catch {
      marker = undefined;
    }
  }
  dropCleanMarker(io, dir);
  return marker;
}

/** Removes the marker of `dir`, if any (a tool that changes a log calls it), and syncs the directory. */
export function dropCleanMarker(io: FileIO, dir: string): void {
  let removed = false;
  for (const name of [CLEAN_FILE, CLEAN_TMP]) {
    const file = path.join(dir, name);
    if (io.exists(file)) {
      io.remove(file);
      removed = true;
    }
  }
  if (removed) io.syncDir(dir);
}

function parseMarker(text: string): CleanMarker | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const { segment, end, lastRecord } = v as Record<string, unknown>;
  if (typeof segment !== 'string' || !Number.isSafeInteger(end) || !Number.isSafeInteger(lastRecord)) return undefined;
  if ((end as number) < 0 || (lastRecord as number) < -1) return undefined;
  return { segment, end: end as number, lastRecord: lastRecord as number };
}

/**
 * Whether the open segment `fd` (named `name`, `size` bytes) is as the marker says: the last record
 * is where it says, whole, with a good CRC, and ends at `end`, and nothing follows it (zeros or the
 * end of the file).
 */
export function markerMatches(io: FileIO, fd: number, name: string, size: number, marker: CleanMarker, maxRecordSize: number): boolean {
  if (marker.segment !== name || marker.end > size) return false;
  const after = Buffer.alloc(HEADER);
  const got = io.read(fd, after, 0, Math.min(HEADER, size - marker.end), marker.end);
  for (let i = 0; i < got; i++) if (after[i] !== 0) return false;
  if (marker.lastRecord < 0) return marker.end === 0;
  if (marker.lastRecord + HEADER > marker.end) return false;
  const len = marker.end - marker.lastRecord - HEADER;
  if (len < 1 || len > maxRecordSize) return false;
  const rec = Buffer.alloc(HEADER + len);
  if (io.read(fd, rec, 0, rec.length, marker.lastRecord) !== rec.length) return false;
  return readI32(rec, 0) >>> 0 === len && crc32(rec, HEADER, HEADER + len) === readI32(rec, 4) >>> 0;
}
