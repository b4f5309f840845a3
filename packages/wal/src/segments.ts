// Segment files: `<first offset, 20 digits>.wal` in the log's directory. Offsets are byte offsets
// in the log as a whole: a segment's records cover [base, base + its data length), and the next
// segment's base is exactly where the previous one's data ends.

import path from 'node:path';
import type { FileIO } from './file-io.js';
import { WalError } from './errors.js';

export const SEGMENT_SUFFIX = '.wal';
const NAME = /^(\d{20})\.wal$/;

export interface SegmentRef {
  readonly base: number;
  readonly file: string;
}

export function segmentName(base: number): string {
  return `${String(base).padStart(20, '0')}${SEGMENT_SUFFIX}`;
}

/** The segments of `dir`, by base offset. Other files are ignored. */
export function listSegments(io: FileIO, dir: string): SegmentRef[] {
  const out: SegmentRef[] = [];
  for (const name of io.list(dir)) {
    const m = NAME.exec(name);
    if (m) out.push({ base: Number(m[1]), file: path.join(dir, name) });
  }
  return out.sort((a, b) => a.base - b.base);
}

/**
 * `CORRUPT` if segments of the log are missing: the first does not start at 0, or one starts past
 * the end of the file before it (a segment's data never reaches past its file, preallocated or
 * not). Cheap (a size per segment), so that opening a log for writing finds what a reader would
 * meet later (a missing segment in the middle may still go unseen here when the file before it is
 * longer than its data; the reader finds that one).
 */
export function checkSegmentChain(io: FileIO, dir: string, segments: readonly SegmentRef[]): void {
  const first = segments[0];
  if (first === undefined) return;
  if (first.base !== 0) {
    throw new WalError('CORRUPT', `${dir}: the log's first segment starts at offset ${first.base}, not 0: the segments before it are missing`, { file: first.file, offset: 0 });
  }
  for (let k = 1; k < segments.length; k++) {
    const prev = segments[k - 1] as SegmentRef;
    const next = segments[k] as SegmentRef;
    const fd = io.open(prev.file, 'r');
    let size: number;
    try {
      size = io.size(fd);
    } finally {
      io.close(fd);
    }
    if (next.base > prev.base + size) {
      throw new WalError('CORRUPT', `${next.file} starts at offset ${next.base}, past the end of ${prev.file} (offset ${prev.base + size}): a segment between them is missing`, {
        file: next.file,
        offset: 0,
      });
    }
  }
}
