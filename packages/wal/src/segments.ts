// Segment files: `<first offset, 20 digits>.wal` in the log's directory. Offsets are byte offsets
// in the log as a whole: a segment's records cover [base, base + its data length), and the next
// segment's base is exactly where the previous one's data ends.

import path from 'node:path';
import type { FileIO } from './file-io.js';

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
