// Whole-log checks and repair, used by the command-line tool and by the writer when it opens a log.

import fs from 'node:fs';
import path from 'node:path';
import { dropCleanMarker } from './clean-close.js';
import { WalError } from './errors.js';
import { nodeFileIO, type FileIO } from './file-io.js';
import { recordAt, recordBoundary, scanSegment } from './scan.js';
import { listSegments, type SegmentRef } from './segments.js';

export interface VerifyResult {
  /** Valid records before the first problem (all of them when `ok`). */
  records: number;
  /** Bytes of those records, headers included. */
  bytes: number;
  status: 'ok' | 'torn-tail' | 'corrupt';
  /** The log offset of the torn tail or the corruption. */
  offset?: number;
  /** The segment file of the problem. */
  file?: string;
  /** What was wrong, in words. */
  detail?: string;
}

export interface CheckOptions {
  readonly maxRecordSize?: number;
  readonly io?: FileIO;
}

/**
 * The segments named by `target`: a log directory (it must hold at least one: a writer creates its
 * first segment when it opens a log), or one segment file (named `<20 digits>.wal`). `followed`:
 * later segments of the same log follow the last one named (a segment file that is not its log's
 * last), so a bad tail in it is corruption, not a torn tail.
 */
function segmentsOf(io: FileIO, target: string): { segments: SegmentRef[]; followed: boolean } {
  let isDir: boolean;
  try {
    isDir = fs.statSync(target).isDirectory();
  } catch (err) {
    throw new WalError('IO', `cannot read ${target}: ${(err as Error).message}`, { cause: err });
  }
  if (isDir) {
    const segments = listSegments(io, target);
    if (segments.length === 0) throw new WalError('IO', `${target} is not a log: it holds no segment (<20 digits>.wal)`);
    return { segments, followed: false };
  }
  const m = /^(\d{20})\.wal$/.exec(path.basename(target));
  if (m === null) throw new WalError('IO', `${target} is not a log segment: its name is not <20 digits>.wal`);
  const base = Number(m[1]);
  const followed = listSegments(io, path.dirname(target)).some((seg) => seg.base > base);
  return { segments: [{ base, file: target }], followed };
}

/** Checks every record of a log (a directory) or of one segment file. */
export function verifyLog(target: string, options: CheckOptions = {}): VerifyResult {
  const io = options.io ?? nodeFileIO;
  const maxRecordSize = options.maxRecordSize ?? 1 << 20;
  const { segments, followed } = segmentsOf(io, target);
  let records = 0;
  let bytes = 0;
  const first = segments[0] as SegmentRef;
  if (first.file !== target && first.base !== 0) {
    // A log (a directory) whose first segments are gone: it cannot be read from its start.
    return { records, bytes, status: 'corrupt', offset: 0, file: first.file, detail: `the log's first segment starts at offset ${first.base}, not 0: the segments before it are missing` };
  }
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as SegmentRef;
    const fd = io.open(seg.file, 'r');
    let scan;
    try {
      scan = scanSegment(io, fd, maxRecordSize);
      // A length above maxRecordSize looks torn (or corrupt): a valid record there means maxRecordSize is below
      // the log's own records, not that the log is damaged (as repairLog and opening refuse it).
      if (scan.status !== 'ok' && recordAt(io, fd, scan.end)) {
        throw new WalError('INVALID_OPTIONS', `${seg.file}: records longer than maxRecordSize (${maxRecordSize} bytes) follow byte ${scan.end}, with valid CRCs; raise maxRecordSize`, {
          file: seg.file,
        });
      }
    } finally {
      io.close(fd);
    }
    records += scan.records;
    bytes += scan.end;
    const last = i === segments.length - 1 && !followed;
    const at = seg.base + scan.end;
    if (scan.status === 'corrupt') {
      return { records, bytes, status: 'corrupt', offset: at, file: seg.file, detail: `bad record at byte ${scan.end}, valid record again at byte ${scan.resumesAt}` };
    }
    if (scan.status === 'torn') {
      if (last) return { records, bytes, status: 'torn-tail', offset: at, file: seg.file, detail: `${scan.dataEnd - scan.end} bytes of an incomplete record at byte ${scan.end}` };
      return { records, bytes, status: 'corrupt', offset: at, file: seg.file, detail: `bad record at byte ${scan.end} of a segment that later segments follow` };
    }
    const next = segments[i + 1];
    if (next && next.base !== at) {
      return { records, bytes, status: 'corrupt', offset: at, file: next.file, detail: `segment starts at offset ${next.base}, the previous one's data ends at ${at}` };
    }
  }
  return { records, bytes, status: 'ok' };
}

/**
 * Repairs a torn tail as opening the log for append would: keeps the torn bytes in a side file,
 * then cuts them off. Refuses (WalError CORRUPT) to touch a corrupt log. Returns the verification
 * before the repair and the side file, if one was written.
 */
export function repairLog(target: string, options: CheckOptions = {}): { before: VerifyResult; sideFile?: string } {
  const io = options.io ?? nodeFileIO;
  const before = verifyLog(target, options);
  if (before.status === 'corrupt') {
    throw new WalError('CORRUPT', `refusing to repair a corrupt log: ${before.file ?? target}: ${before.detail ?? ''} (offset ${before.offset})`, {
      ...(before.file === undefined ? {} : { file: before.file }),
    });
  }
  if (before.status === 'ok' || before.file === undefined) return { before };
  const maxRecordSize = options.maxRecordSize ?? 1 << 20;
  const fd = io.open(before.file, 'r+');
  try {
    const scan = scanSegment(io, fd, maxRecordSize);
    // A length above maxRecordSize looks torn: make sure no valid record is there before cutting
    // (a maxRecordSize below the log's own records would otherwise cut good data).
    if (recordAt(io, fd, scan.end)) {
      throw new WalError(
        'INVALID_OPTIONS',
        `refusing to repair ${before.file}: records longer than maxRecordSize (${maxRecordSize} bytes) follow byte ${scan.end}, with valid CRCs; raise maxRecordSize`,
        { file: before.file },
      );
    }
    dropCleanMarker(io, path.dirname(before.file));
    const sideFile = cutTornTail(io, before.file, fd, scan.end, scan.dataEnd, scan.fileSize);
    return { before, sideFile };
  } finally {
    io.close(fd);
  }
}

const ZEROS = Buffer.alloc(1 << 20);

/**
 * Keeps the bytes [end, dataEnd) of a segment in a side file next to it (synced), then cuts them off:
 * zero-filled in place when zeros follow them (a preallocated segment), truncated otherwise.
 * Returns the side file's path.
 */
export function cutTornTail(io: FileIO, file: string, fd: number, end: number, dataEnd: number, fileSize: number): string {
  const bytes = dataEnd - end;
  const torn = Buffer.alloc(bytes);
  let got = 0;
  while (got < bytes) {
    const r = io.read(fd, torn, got, bytes - got, end + got);
    if (r === 0) break;
    got += r;
  }
  const sideFile = `${file}.torn-${end}-${Date.now()}`;
  const side = io.open(sideFile, 'wx');
  try {
    if (io.write(side, torn, 0, got, 0) !== got) throw new WalError('IO', `short write to ${sideFile}`);
    io.syncSync(side);
  } finally {
    io.close(side);
  }
  io.syncDir(path.dirname(file));
  if (dataEnd < fileSize) {
    for (let at = end; at < dataEnd; ) {
      const n = Math.min(ZEROS.length, dataEnd - at);
      if (io.write(fd, ZEROS, 0, n, at) !== n) throw new WalError('IO', `short write while cutting the torn tail of ${file}`);
      at += n;
    }
  } else {
    io.truncate(fd, end);
  }
  io.syncSync(fd);
  return sideFile;
}

/**
 * Cuts a log (a directory, not open for writing) back to `offset`, a record boundary: what follows
 * is kept in side files (`<segment>.cut-<position>-<time>` for the part of the segment holding
 * `offset`, whole later segments renamed to `<segment>.cut-<time>`), then removed from the log. For
 * recovery only: the engine uses it to drop outbox records that the command log does not cover.
 * Returns the number of bytes cut.
 */
export function truncateLog(dir: string, offset: number, options: CheckOptions = {}): number {
  const io = options.io ?? nodeFileIO;
  const segments = listSegments(io, dir);
  // The segment that holds the cut, checked before anything is renamed or cut: a cut that is
  // refused leaves the log as it was.
  let target = segments.length - 1;
  while (target > 0 && ((segments[target] as SegmentRef).base > offset || (segments[target] as SegmentRef).base === offset)) target--;
  if (target >= 0) {
    const seg = segments[target] as SegmentRef;
    const pos = offset - seg.base;
    const fd = io.open(seg.file, 'r');
    try {
      const scan = scanSegment(io, fd, options.maxRecordSize ?? 1 << 20);
      if (pos < 0 || pos > scan.end) {
        throw new WalError('CORRUPT', `cannot cut ${dir} at offset ${offset}: its data ends at ${seg.base + scan.end}`, { file: seg.file, offset: pos });
      }
      if (!recordBoundary(io, fd, pos)) {
        throw new WalError('CORRUPT', `cannot cut ${dir} at offset ${offset}: it is inside a record of ${seg.file}, not where one starts`, { file: seg.file, offset: pos });
      }
    } finally {
      io.close(fd);
    }
  }
  dropCleanMarker(io, dir);
  let cut = 0;
  const stamp = Date.now();
  for (let i = segments.length - 1; i >= 0; i--) {
    const seg = segments[i] as SegmentRef;
    if (seg.base > offset || (seg.base === offset && i > 0)) {
      const fd = io.open(seg.file, 'r');
      try {
        cut += scanSegment(io, fd, options.maxRecordSize ?? 1 << 20).end;
      } finally {
        io.close(fd);
      }
      io.rename(seg.file, `${seg.file}.cut-${stamp}`);
      continue;
    }
    const fd = io.open(seg.file, 'r+');
    try {
      const scan = scanSegment(io, fd, options.maxRecordSize ?? 1 << 20);
      const pos = offset - seg.base;
      if (pos > scan.end) {
        throw new WalError('CORRUPT', `cannot cut ${dir} at offset ${offset}: its data ends at ${seg.base + scan.end}`, { file: seg.file, offset: pos });
      }
      if (pos < scan.dataEnd) {
        cut += scan.end - pos;
        const side = cutTornTail(io, seg.file, fd, pos, scan.dataEnd, scan.fileSize);
        io.rename(side, side.replace('.torn-', '.cut-'));
      }
    } finally {
      io.close(fd);
    }
    break;
  }
  io.syncDir(dir);
  return cut;
}
