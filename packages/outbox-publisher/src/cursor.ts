// The publisher's cursor: the outbox offset up to which every event has been acknowledged by the
// bus, with the id of the last event published (the anchor of the bus's ordering check) and the
// outbox history it belongs to (an offset means nothing in another history's outbox).
//
// File layout, version 2 (little-endian, 56 bytes):
//   0  u32  magic 0x47583343 ("GX3C")
//   4  u16  version (2)
//   6  u16  reserved (0)
//   8  u64  offset: the outbox offset to resume publishing at (a record boundary)
//   16 u64  last event sequence number published before `offset` (0: none)
//   24 u64  commits: how many times the cursor was written (for monitoring)
//   32 16B  the outbox's history id (its 32 hex digits as 16 bytes)
//   48 u32  CRC-32 of bytes 0..47
//   52 u32  reserved (0)
// Version 1 (40 bytes) is the same without the history id: the CRC-32 of bytes 0..31 at 32 and a
// reserved zero at 36. It is still read (a cursor written before history ids, or without one).
//
// A write is atomic: a temporary file is written and fsync'ed, renamed over the cursor, and the
// directory fsync'ed. A crash leaves either the old cursor or the new one, never a mix.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { replaceFileSync } from '@gx3/wal';
import { OutboxError } from './errors.js';

const MAGIC = 0x47583343;
const SIZE_V1 = 40;
const SIZE_V2 = 56;
const HISTORY_ID = /^[0-9a-f]{32}$/;

export interface CursorState {
  /** The outbox offset to resume at. */
  offset: number;
  /** The event sequence number of the last event before `offset` (0 when none). */
  lastEventSeq: number;
  /** How many times the cursor was committed. */
  commits: number;
  /** The history id of the outbox the offset is in (undefined: a cursor written without one). */
  history?: string | undefined;
}

export const CURSOR_FILE = 'publisher.cursor';

function writeU64(b: Buffer, at: number, v: number): void {
  b.writeUInt32LE(v % 2 ** 32, at);
  b.writeUInt32LE(Math.floor(v / 2 ** 32), at + 4);
}

function readU64(b: Buffer, at: number): number {
  return b.readUInt32LE(at) + b.readUInt32LE(at + 4) * 2 ** 32;
}

/**
 * Reads the cursor in `dir`. No file: the start of the outbox. A file that cannot be trusted:
 * OutboxError CURSOR_CORRUPT, whose message says how to recover.
 */
export function readCursor(dir: string): CursorState {
  const file = path.join(dir, CURSOR_FILE);
  let b: Buffer;
  try {
    b = fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { offset: 0, lastEventSeq: 0, commits: 0 };
    throw new OutboxError('CURSOR_IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const bad = (why: string): OutboxError =>
    new OutboxError(
      'CURSOR_CORRUPT',
      `${file} is unreadable (${why}). Recovery: delete it to republish the whole outbox (a de-duplicating bus drops what it already holds), or write a known-good offset with writeCursor()`,
    );
  if (b.length !== SIZE_V1 && b.length !== SIZE_V2) throw bad(`${b.length} bytes, expected ${SIZE_V2} (or ${SIZE_V1} for version 1)`);
  if (b.readUInt32LE(0) !== MAGIC) throw bad('bad magic number');
  const version = b.readUInt16LE(4);
  const v2 = b.length === SIZE_V2;
  if (version !== (v2 ? 2 : 1)) throw bad(`unknown version ${version} in a file of ${b.length} bytes`);
  const crcAt = v2 ? 48 : 32;
  if (zlib.crc32(b.subarray(0, crcAt)) !== b.readUInt32LE(crcAt)) throw bad('checksum mismatch');
  if (b.readUInt16LE(6) !== 0 || b.readUInt32LE(crcAt + 4) !== 0) throw bad('a reserved field is not zero');
  const state: CursorState = { offset: readU64(b, 8), lastEventSeq: readU64(b, 16), commits: readU64(b, 24) };
  if (!Number.isSafeInteger(state.offset) || !Number.isSafeInteger(state.lastEventSeq) || !Number.isSafeInteger(state.commits)) {
    throw bad('a field beyond the safe integer range');
  }
  if (v2) state.history = b.toString('hex', 32, 48);
  return state;
}

function encode(state: CursorState): Buffer {
  const history = state.history;
  if (history !== undefined && !HISTORY_ID.test(history)) throw new OutboxError('CURSOR_IO', `cannot write a cursor with history id ${JSON.stringify(history)} (32 hex digits expected)`);
  const b = Buffer.alloc(history === undefined ? SIZE_V1 : SIZE_V2);
  b.writeUInt32LE(MAGIC, 0);
  b.writeUInt16LE(history === undefined ? 1 : 2, 4);
  writeU64(b, 8, state.offset);
  writeU64(b, 16, state.lastEventSeq);
  writeU64(b, 24, state.commits);
  if (history !== undefined) b.write(history, 32, 16, 'hex');
  const crcAt = history === undefined ? 32 : 48;
  b.writeUInt32LE(zlib.crc32(b.subarray(0, crcAt)), crcAt);
  return b;
}

/** Writes the cursor in `dir` atomically (temporary file, fsync, rename, directory fsync), blocking. */
export function writeCursor(dir: string, state: CursorState): void {
  const file = path.join(dir, CURSOR_FILE);
  try {
    replaceFileSync(file, encode(state));
  } catch (err) {
    throw new OutboxError('CURSOR_IO', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The same as writeCursor, with the file operations on the thread pool. */
export async function writeCursorAsync(dir: string, state: CursorState): Promise<void> {
  const file = path.join(dir, CURSOR_FILE);
  const tmp = `${file}.tmp`;
  const b = encode(state);
  try {
    const fh = await fs.promises.open(tmp, 'w');
    try {
      await fh.write(b, 0, b.length, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
    const dh = await fs.promises.open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (err) {
    throw new OutboxError('CURSOR_IO', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}
