// The clean-close marker (`cleanClose`): a close that finds everything synced leaves `CLEAN`
// ({segment, end, lastRecord}, written through CLEAN.tmp, fdatasync, rename, directory sync); the
// next open with the option takes the end of the log from it without scanning the last segment, if
// it matches the files. Any open removes the marker (and a leftover CLEAN.tmp). A marker that does
// not match, a crashed / aborted / failed writer, or a failure while writing the marker all lead
// to the usual scan (torn tail repaired, corruption refused).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeFileIO, repairLog, truncateLog, WalReader, WalWriter, type FileIO, type WalOptions } from '../src/index.js';
import {
  appendAt,
  copyDir,
  expectCode,
  expectRecords,
  FaultyIO,
  flipBit,
  HEADER,
  lastSegment,
  layout,
  MAX,
  nonZeroBytes,
  payloadFor,
  readAll,
  removeTmpDirs,
  SEG,
  segmentFiles,
  SMALL,
  tmpDir,
  walErrorOf,
  walRejectionOf,
  writeAt,
  type SegmentFile,
} from './helpers.js';

afterAll(removeTmpDirs);

const CLEAN = 'CLEAN';
const CLEAN_TMP = 'CLEAN.tmp';
/** Length of the last record's payload in the templates (non-zero bytes: its end is the data end). */
const LAST_LEN = 37;
const CLEAN_OPTS = { ...SMALL, durability: 'batch', cleanClose: true } as const satisfies WalOptions;

interface Marker {
  segment: string;
  end: number;
  lastRecord: number;
}

function cleanFile(dir: string): string {
  return path.join(dir, CLEAN);
}

function tmpFile(dir: string): string {
  return path.join(dir, CLEAN_TMP);
}

function hasMarker(dir: string): boolean {
  return fs.existsSync(cleanFile(dir));
}

/** The marker `dir` holds (fails the test when there is none). */
function readMarker(dir: string): Marker {
  if (!hasMarker(dir)) return expect.fail(`no ${CLEAN} in ${dir}`);
  return JSON.parse(fs.readFileSync(cleanFile(dir), 'utf8')) as Marker;
}

function writeMarker(dir: string, marker: unknown, name = CLEAN): void {
  fs.writeFileSync(path.join(dir, name), typeof marker === 'string' ? marker : `${JSON.stringify(marker)}\n`);
}

function expectNoMarkerFiles(dir: string, where = ''): void {
  expect(hasMarker(dir), `${where}: ${CLEAN} left`).toBe(false);
  expect(fs.existsSync(tmpFile(dir)), `${where}: ${CLEAN_TMP} left`).toBe(false);
}

function allZero(b: Buffer): boolean {
  return b.every((x) => x === 0);
}

interface Template {
  dir: string;
  payloads: Buffer[];
  offsets: number[];
  /** The log offset where the data ends. */
  end: number;
  last: SegmentFile;
  marker: Marker;
}

/**
 * A cleanly closed log of `count` records (the last one LAST_LEN non-zero bytes), written with
 * `options` (cleanClose on): returns its records and the marker the close left.
 */
async function makeLog(count: number, options: WalOptions = CLEAN_OPTS): Promise<Template> {
  const dir = tmpDir();
  const w = WalWriter.open(dir, options);
  const payloads: Buffer[] = [];
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) {
    const p = i === count - 1 ? nonZeroBytes(LAST_LEN, 99) : payloadFor(i);
    payloads.push(p);
    offsets.push(appendAt(w, p));
  }
  const end = w.nextOffset;
  await w.close();
  const last = lastSegment(dir);
  const marker = readMarker(dir);
  expect(fs.existsSync(tmpFile(dir))).toBe(false);
  return { dir, payloads, offsets, end, last, marker };
}

/** Offset of the last element of `xs` (for the offsets arrays). */
function lastOf(xs: readonly number[]): number {
  const x = xs[xs.length - 1];
  if (x === undefined) throw new Error('empty');
  return x;
}

/** A FileIO that records the byte ranges read from each file (by base name). */
function readTracingIO(): { io: FileIO; reads: { file: string; from: number; to: number }[] } {
  const names = new Map<number, string>();
  const reads: { file: string; from: number; to: number }[] = [];
  const io: FileIO = {
    ...nodeFileIO,
    open: (file, flags) => {
      const fd = nodeFileIO.open(file, flags);
      names.set(fd, path.basename(file));
      return fd;
    },
    read: (fd, buf, offset, length, position) => {
      const n = nodeFileIO.read(fd, buf, offset, length, position);
      reads.push({ file: names.get(fd) ?? `fd ${fd}`, from: position, to: position + n });
      return n;
    },
  };
  return { io, reads };
}

/** A FileIO that logs the operations on files (by base name), for checking their order. */
function opTracingIO(base: FileIO = nodeFileIO): { io: FileIO; ops: string[] } {
  const names = new Map<number, string>();
  const ops: string[] = [];
  const name = (fd: number): string => names.get(fd) ?? `fd ${fd}`;
  const io: FileIO = {
    ...base,
    open: (file, flags) => {
      const fd = base.open(file, flags);
      names.set(fd, path.basename(file));
      ops.push(`open ${path.basename(file)}`);
      return fd;
    },
    close: (fd) => {
      ops.push(`close ${name(fd)}`);
      base.close(fd);
    },
    write: (fd, buf, offset, length, position) => {
      ops.push(`write ${name(fd)}`);
      return base.write(fd, buf, offset, length, position);
    },
    syncSync: (fd) => {
      base.syncSync(fd);
      ops.push(`fdatasync ${name(fd)}`);
    },
    sync: (fd, done) => {
      const n = name(fd);
      base.sync(fd, (err) => {
        ops.push(`fdatasync ${n}`);
        done(err);
      });
    },
    rename: (from, to) => {
      ops.push(`rename ${path.basename(from)} ${path.basename(to)}`);
      base.rename(from, to);
    },
    syncDir: (dir) => {
      ops.push('syncDir');
      base.syncDir(dir);
    },
    remove: (p) => {
      ops.push(`remove ${path.basename(p)}`);
      base.remove(p);
    },
  };
  return { io, ops };
}

/** Asserts that `want` occur in `ops` in this order (other operations may come between). */
function expectInOrder(ops: readonly string[], want: readonly string[]): void {
  let at = 0;
  for (const op of want) {
    const i = ops.indexOf(op, at);
    if (i < 0) expect.fail(`"${op}" not found after position ${at} in: ${ops.join(', ')}`);
    at = i + 1;
  }
}

describe('clean close, batch durability', () => {
  it('close() leaves CLEAN with the last segment, its data end and its last record; a trusted reopen continues the log', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, CLEAN_OPTS);
    expect(w.trustedClean).toBe(false); // a new log: nothing to trust
    const payloads = Array.from({ length: 8 }, (_, i) => payloadFor(i));
    const offsets = payloads.map((p) => appendAt(w, p));
    const end = w.nextOffset;
    expect(end).toBe(layout(payloads)[payloads.length]);
    expect(segmentFiles(dir)).toHaveLength(1);
    expect(hasMarker(dir), 'a marker while the writer is open').toBe(false);
    await w.close();

    expect(readMarker(dir)).toEqual({ segment: '00000000000000000000.wal', end, lastRecord: lastOf(offsets) });
    expect(fs.existsSync(tmpFile(dir))).toBe(false);

    const w2 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w2.trustedClean).toBe(true);
    expect(w2.repaired).toBeUndefined();
    expect(w2.nextOffset).toBe(end);
    expect(w2.writtenOffset).toBe(end);
    expect(w2.durableOffset).toBe(end);
    expect(w2.tailRecordOffset).toBe(lastOf(offsets));
    expect(w2.verifiedFrom).toBe(w2.nextOffset); // nothing verified
    expect(w2.lastOffset).toBe(-1);
    expectNoMarkerFiles(dir, 'after the trusted open');

    const more = [Buffer.from('after the clean close'), payloadFor(100), Buffer.alloc(MAX, 0x5a)];
    const moreOffsets = more.map((p) => appendAt(w2, p));
    expect(moreOffsets).toEqual(layout(more, end).slice(0, more.length));
    const end2 = w2.nextOffset;
    await w2.close();
    expect(readMarker(dir)).toEqual({ segment: '00000000000000000000.wal', end: end2, lastRecord: lastOf(moreOffsets) });
    expectRecords(readAll(dir), [...payloads, ...more], [...offsets, ...moreOffsets]);

    const w3 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w3.trustedClean).toBe(true);
    expect(w3.nextOffset).toBe(end2);
    expect(w3.tailRecordOffset).toBe(lastOf(moreOffsets));
    await w3.close();
  });

  it('a reopen without appending leaves the same marker, and the next open trusts it again', async () => {
    const t = await makeLog(10);
    for (let round = 0; round < 3; round++) {
      const w = WalWriter.open(t.dir, CLEAN_OPTS);
      expect(w.trustedClean, `round ${round}`).toBe(true);
      expect(w.nextOffset).toBe(t.end);
      expect(w.tailRecordOffset).toBe(lastOf(t.offsets));
      await w.close();
      expect(readMarker(t.dir), `round ${round}`).toEqual(t.marker);
    }
    expectRecords(readAll(t.dir), t.payloads, t.offsets);
  });

  it('writes the marker after the data is durable, through CLEAN.tmp: write, fdatasync, rename, directory sync', async () => {
    const dir = tmpDir();
    const { io, ops } = opTracingIO();
    const w = WalWriter.open(dir, { ...CLEAN_OPTS, io });
    for (let i = 0; i < 5; i++) w.append(payloadFor(i));
    ops.length = 0;
    await w.close();
    const seg = '00000000000000000000.wal';
    expectInOrder(ops, [`write ${seg}`, `fdatasync ${seg}`, `open ${CLEAN_TMP}`, `write ${CLEAN_TMP}`, `fdatasync ${CLEAN_TMP}`, `rename ${CLEAN_TMP} ${CLEAN}`, 'syncDir', `close ${seg}`]);
    // The data is synced before the marker is even started.
    expect(ops.lastIndexOf(`fdatasync ${seg}`)).toBeLessThan(ops.indexOf(`open ${CLEAN_TMP}`));

    // Opening removes the marker and syncs the directory before anything is appended.
    ops.length = 0;
    const w2 = WalWriter.open(dir, { ...CLEAN_OPTS, io });
    expect(w2.trustedClean).toBe(true);
    expectInOrder(ops, [`remove ${CLEAN}`, 'syncDir']);
    ops.length = 0;
    w2.append(Buffer.from('x'));
    await w2.close();
    expectInOrder(ops, [`write ${seg}`, `fdatasync ${seg}`, `rename ${CLEAN_TMP} ${CLEAN}`]);
  });
});

describe('a trusted open does not scan', () => {
  let t: Template;
  /** Position (in the last segment) of the first record there, and of the byte flipped in it. */
  let recPos: number;
  let flipPos: number;
  let recIndex: number;

  beforeAll(async () => {
    t = await makeLog(36);
    expect(segmentFiles(t.dir).length).toBeGreaterThanOrEqual(2);
    recIndex = t.offsets.findIndex((o) => o >= t.last.base);
    expect(t.offsets.length - recIndex, 'records in the last segment').toBeGreaterThanOrEqual(3);
    recPos = (t.offsets[recIndex] ?? -1) - t.last.base;
    flipPos = recPos + HEADER + 1;
  });

  it('corruption early in the cleanly closed segment: the trusted open succeeds without reading it, readers find it', async () => {
    const dir = copyDir(t.dir);
    const file = lastSegment(dir).file;
    flipBit(file, flipPos, 3);

    const { io, reads } = readTracingIO();
    const w = WalWriter.open(dir, { ...CLEAN_OPTS, io });
    expect(w.trustedClean).toBe(true);
    expect(w.repaired).toBeUndefined();
    expect(w.nextOffset).toBe(t.end);
    expect(w.verifiedFrom).toBe(t.end);
    expect(w.tailRecordOffset).toBe(lastOf(t.offsets));
    const segName = path.basename(file);
    const touching = reads.filter((r) => r.file === segName && r.from <= flipPos && flipPos < r.to);
    expect(touching, 'reads of the corrupted record by the trusted open').toEqual([]);
    // Only the last record and what follows it were read from the segment.
    const segReads = reads.filter((r) => r.file === segName);
    expect(segReads.length).toBeGreaterThan(0);
    for (const r of segReads) expect(r.from).toBeGreaterThanOrEqual(t.marker.lastRecord);

    // A reader checks CRCs and fails on the record, also when told what the writer verified.
    for (const options of [{}, { verifiedFrom: w.verifiedFrom }]) {
      const err = walErrorOf(() => readAll(dir, options));
      expectCode(err, 'CORRUPT');
      expect(err.file).toBe(file);
      expect(err.offset).toBe(recPos);
      expect(err.message).toMatch(/CRC/);
    }
    // The records before the corrupted one are readable.
    const r = new WalReader(dir, { maxRecordSize: MAX });
    try {
      for (let i = 0; i < recIndex; i++) expect(r.next()?.offset).toBe(t.offsets[i]);
      expectCode(
        walErrorOf(() => r.next()),
        'CORRUPT',
      );
    } finally {
      r.close();
    }
    await w.close();
  });

  it('the same corruption without cleanClose (marker ignored, segment scanned): open throws CORRUPT and removes the marker', () => {
    for (const options of [{ ...SMALL, durability: 'batch' as const }, { ...CLEAN_OPTS, cleanClose: false }]) {
      const dir = copyDir(t.dir);
      const file = lastSegment(dir).file;
      flipBit(file, flipPos, 3);
      expect(hasMarker(dir)).toBe(true);
      const err = walErrorOf(() => WalWriter.open(dir, options));
      expectCode(err, 'CORRUPT');
      expect(err.file).toBe(file);
      expect(err.offset).toBe(recPos);
      expectNoMarkerFiles(dir, 'after the refused open');
      // The marker is gone: now even cleanClose scans and refuses.
      expectCode(
        walErrorOf(() => WalWriter.open(dir, CLEAN_OPTS)),
        'CORRUPT',
      );
    }
  });

  it('a scanned open (no marker) of the same uncorrupted log reads every record of the last segment', () => {
    const dir = copyDir(t.dir);
    fs.rmSync(cleanFile(dir));
    const { io, reads } = readTracingIO();
    const w = WalWriter.open(dir, { ...CLEAN_OPTS, io });
    expect(w.trustedClean).toBe(false);
    expect(w.verifiedFrom).toBe(t.last.base);
    const segName = path.basename(t.last.file);
    expect(reads.some((r) => r.file === segName && r.from <= flipPos && flipPos < r.to)).toBe(true);
    w.closeSync();
  });
});

describe('without cleanClose', () => {
  it('close() leaves no marker; an open removes a marker it finds (even a valid one) and scans', async () => {
    const dir = tmpDir();
    const plain = { ...SMALL, durability: 'batch' } as const;
    const w = WalWriter.open(dir, plain);
    const payloads = Array.from({ length: 6 }, (_, i) => payloadFor(i));
    const offsets = payloads.map((p) => appendAt(w, p));
    await w.close();
    expectNoMarkerFiles(dir, 'close without the option');
    for (const durability of ['none', 'interval'] as const) {
      const w1 = WalWriter.open(dir, { ...SMALL, durability });
      await w1.close();
      expectNoMarkerFiles(dir, `close without the option, ${durability}`);
    }

    // A writer with the option leaves one (it scanned: there was none).
    const w2 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w2.trustedClean).toBe(false);
    await w2.close();
    const saved = fs.readFileSync(cleanFile(dir));
    expect(readMarker(dir)).toEqual({ segment: '00000000000000000000.wal', end: layout(payloads)[payloads.length], lastRecord: lastOf(offsets) });

    // Without the option, the marker is removed and ignored: the segment is scanned.
    const w3 = WalWriter.open(dir, plain);
    expect(w3.trustedClean).toBe(false);
    expect(w3.verifiedFrom).toBe(0);
    expect(w3.nextOffset).toBe(layout(payloads)[payloads.length]);
    expectNoMarkerFiles(dir, 'open without the option');
    await w3.close();
    expectNoMarkerFiles(dir, 'close without the option after a marker');

    // A copy of the valid marker (and a leftover temporary one) put back: removed again.
    fs.writeFileSync(cleanFile(dir), saved);
    fs.writeFileSync(tmpFile(dir), saved);
    const w4 = WalWriter.open(dir, { ...SMALL, durability: 'none' });
    expect(w4.trustedClean).toBe(false);
    expectNoMarkerFiles(dir, 'open without the option, copied marker');
    w4.closeSync();

    // The copy was valid: a writer with the option trusts it.
    fs.writeFileSync(cleanFile(dir), saved);
    const w5 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w5.trustedClean).toBe(true);
    expect(w5.nextOffset).toBe(layout(payloads)[payloads.length]);
    await w5.close();
    expectRecords(readAll(dir), payloads, offsets);
  });
});

describe('a crash after a trusted open', () => {
  for (const crash of ['closeSync', 'abort'] as const) {
    it(`${crash}() leaves no marker: the next open scans and repairs a torn tail after the data`, async () => {
      const t = await makeLog(12);
      const w = WalWriter.open(t.dir, CLEAN_OPTS);
      expect(w.trustedClean).toBe(true);
      const more = [payloadFor(50), Buffer.from('crash soon'), nonZeroBytes(20, 3)];
      const moreOffsets = more.map((p) => appendAt(w, p));
      const end = w.nextOffset;
      w.flush();
      await w.sync();
      expect(w.durableOffset).toBe(end);
      if (crash === 'closeSync') w.closeSync();
      else w.abort();
      expectNoMarkerFiles(t.dir, `after ${crash}`);

      // An append torn by the crash: non-zero bytes right after the last record.
      const seg = lastSegment(t.dir);
      const pos = end - seg.base;
      const garbage = nonZeroBytes(23, 17);
      writeAt(seg.file, pos, garbage);

      const w2 = WalWriter.open(t.dir, CLEAN_OPTS);
      expect(w2.trustedClean).toBe(false);
      expect(w2.verifiedFrom).toBe(seg.base);
      const repaired = w2.repaired;
      if (repaired === undefined) return expect.fail('the torn tail was not repaired');
      expect(repaired).toEqual({ segment: seg.file, position: pos, offset: end, bytes: garbage.length, sideFile: repaired.sideFile });
      expect(fs.readFileSync(repaired.sideFile).equals(garbage)).toBe(true);
      expect(allZero(fs.readFileSync(seg.file).subarray(pos)), 'the garbage is gone').toBe(true);
      expect(w2.nextOffset).toBe(end);
      expect(w2.tailRecordOffset).toBe(lastOf(moreOffsets));
      const all = [...t.payloads, ...more];
      const allOffsets = [...t.offsets, ...moreOffsets];
      expectRecords(readAll(t.dir), all, allOffsets);

      // The repaired log closes cleanly and is trusted again.
      await w2.close();
      expect(readMarker(t.dir)).toEqual({ segment: path.basename(seg.file), end: pos, lastRecord: lastOf(moreOffsets) - seg.base });
      const w3 = WalWriter.open(t.dir, CLEAN_OPTS);
      expect(w3.trustedClean).toBe(true);
      expect(w3.nextOffset).toBe(end);
      expect(appendAt(w3, Buffer.from('z'))).toBe(end);
      await w3.close();
      expectRecords(readAll(t.dir), [...all, Buffer.from('z')], [...allOffsets, end]);
    });
  }

  it('a writer opened trusted and closed with closeSync() without appending leaves no marker either', async () => {
    const t = await makeLog(4);
    const w = WalWriter.open(t.dir, CLEAN_OPTS);
    expect(w.trustedClean).toBe(true);
    w.closeSync();
    expectNoMarkerFiles(t.dir);
    const w2 = WalWriter.open(t.dir, CLEAN_OPTS);
    expect(w2.trustedClean).toBe(false);
    expect(w2.repaired).toBeUndefined();
    expect(w2.nextOffset).toBe(t.end);
    await w2.close();
  });
});

describe('markers that do not match are ignored: the last segment is scanned', () => {
  let t: Template;
  let first: SegmentFile;

  beforeAll(async () => {
    t = await makeLog(36);
    const segs = segmentFiles(t.dir);
    expect(segs.length).toBeGreaterThanOrEqual(2);
    first = segs[0] ?? expect.fail('no segment');
    expect(t.marker).toEqual({ segment: path.basename(t.last.file), end: t.end - t.last.base, lastRecord: lastOf(t.offsets) - t.last.base });
    expect(t.offsets.filter((o) => o >= t.last.base).length).toBeGreaterThanOrEqual(3);
  });

  /** Opens a copy of the template changed by `change` and checks that the marker was ignored and removed. */
  function openIgnoring(change: (dir: string) => void): { dir: string; w: WalWriter } {
    const dir = copyDir(t.dir);
    change(dir);
    const w = WalWriter.open(dir, CLEAN_OPTS);
    expect(w.trustedClean, 'the marker was trusted').toBe(false);
    expect(w.verifiedFrom).toBe(t.last.base);
    expectNoMarkerFiles(dir, 'after the open');
    return { dir, w };
  }

  /** The marker was ignored and the log is intact: everything continues as after a clean close. */
  async function expectIntact(dir: string, w: WalWriter, repairedTail = false): Promise<void> {
    if (!repairedTail) expect(w.repaired).toBeUndefined();
    expect(w.nextOffset).toBe(t.end);
    expect(w.tailRecordOffset).toBe(lastOf(t.offsets));
    expect(appendAt(w, Buffer.from('next'))).toBe(t.end);
    await w.close();
    expectRecords(readAll(dir), [...t.payloads, Buffer.from('next')], [...t.offsets, t.end]);
  }

  const base = (): Marker => t.marker;
  const cases: { name: string; marker: () => unknown }[] = [
    { name: 'an earlier segment', marker: () => ({ ...base(), segment: path.basename(first.file) }) },
    { name: 'a segment that does not exist', marker: () => ({ ...base(), segment: '00000000000099999999.wal' }) },
    { name: 'the segment without its suffix', marker: () => ({ ...base(), segment: path.basename(t.last.file, '.wal') }) },
    { name: 'an end beyond the file size', marker: () => ({ ...base(), end: fs.statSync(t.last.file).size + 1 }) },
    { name: 'an end one byte short of the data', marker: () => ({ ...base(), end: base().end - 1 }) },
    { name: 'an end past the data (in the zeros after it)', marker: () => ({ ...base(), end: base().end + HEADER }) },
    { name: 'an end at the start of the last record', marker: () => ({ ...base(), end: base().lastRecord }) },
    { name: 'lastRecord at the record before the last', marker: () => ({ ...base(), lastRecord: (t.offsets[t.offsets.length - 2] ?? 0) - t.last.base }) },
    { name: 'lastRecord one byte after the last record', marker: () => ({ ...base(), lastRecord: base().lastRecord + 1 }) },
    { name: 'lastRecord one byte before the last record', marker: () => ({ ...base(), lastRecord: base().lastRecord - 1 }) },
    { name: 'lastRecord -1 with data', marker: () => ({ ...base(), lastRecord: -1 }) },
    { name: 'lastRecord -1 and end 0 over data', marker: () => ({ ...base(), lastRecord: -1, end: 0 }) },
    { name: 'lastRecord 0 and end 0', marker: () => ({ ...base(), lastRecord: 0, end: 0 }) },
    { name: 'a negative end', marker: () => ({ ...base(), end: -1 }) },
    { name: 'lastRecord below -1', marker: () => ({ ...base(), lastRecord: -2 }) },
    { name: 'a non-integer end', marker: () => ({ ...base(), end: base().end + 0.5 }) },
    { name: 'a non-integer lastRecord', marker: () => ({ ...base(), lastRecord: base().lastRecord + 0.5 }) },
    { name: 'an end as a string', marker: () => ({ ...base(), end: String(base().end) }) },
    { name: 'a lastRecord as a string', marker: () => ({ ...base(), lastRecord: String(base().lastRecord) }) },
    { name: 'a segment as a number', marker: () => ({ ...base(), segment: t.last.base }) },
    { name: 'an unsafe integer end', marker: () => ({ ...base(), end: 2 ** 60 }) },
    { name: 'no end', marker: () => ({ segment: base().segment, lastRecord: base().lastRecord }) },
    { name: 'no lastRecord', marker: () => ({ segment: base().segment, end: base().end }) },
    { name: 'no segment', marker: () => ({ end: base().end, lastRecord: base().lastRecord }) },
    { name: 'an empty file', marker: () => '' },
    { name: 'text that is not JSON', marker: () => 'clean\n' },
    { name: 'truncated JSON', marker: () => JSON.stringify(base()).slice(0, 20) },
    { name: 'JSON null', marker: () => 'null' },
    { name: 'a JSON array of the fields', marker: () => JSON.stringify([base().segment, base().end, base().lastRecord]) },
    { name: 'a JSON number', marker: () => String(base().end) },
    { name: 'an empty JSON object', marker: () => '{}' },
  ];

  for (const c of cases) {
    it(`a marker with ${c.name}`, async () => {
      const { dir, w } = openIgnoring((d) => {
        writeMarker(d, c.marker());
      });
      await expectIntact(dir, w);
    });
  }

  it('a leftover CLEAN.tmp alone (even with a valid marker in it) is removed and ignored', async () => {
    const { dir, w } = openIgnoring((d) => {
      fs.renameSync(cleanFile(d), tmpFile(d));
    });
    await expectIntact(dir, w);
  });

  it('a leftover CLEAN.tmp next to a valid CLEAN is removed, and CLEAN is trusted', async () => {
    const dir = copyDir(t.dir);
    writeMarker(dir, 'garbage', CLEAN_TMP);
    const w = WalWriter.open(dir, CLEAN_OPTS);
    expect(w.trustedClean).toBe(true);
    expect(w.nextOffset).toBe(t.end);
    expectNoMarkerFiles(dir);
    await w.close();
  });

  it('a stale marker from an earlier close of a log that grew since', async () => {
    const dir = copyDir(t.dir);
    const stale = fs.readFileSync(cleanFile(dir));
    const w = WalWriter.open(dir, CLEAN_OPTS);
    expect(w.trustedClean).toBe(true);
    const more = [Buffer.from('one'), Buffer.from('two')];
    const moreOffsets = more.map((p) => appendAt(w, p));
    const end = w.nextOffset;
    await w.close();
    expect(readMarker(dir).segment, 'still the same segment').toBe(t.marker.segment);
    fs.writeFileSync(cleanFile(dir), stale);
    const w2 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w2.trustedClean).toBe(false);
    expect(w2.repaired).toBeUndefined();
    expect(w2.nextOffset).toBe(end);
    expect(w2.tailRecordOffset).toBe(lastOf(moreOffsets));
    expectNoMarkerFiles(dir);
    await w2.close();
    expectRecords(readAll(dir), [...t.payloads, ...more], [...t.offsets, ...moreOffsets]);
  });

  it('non-zero bytes right after end (a torn tail after a clean close, marker kept): the scan repairs them', async () => {
    const garbage = nonZeroBytes(20, 5);
    const pos = t.marker.end;
    const { dir, w } = openIgnoring((d) => {
      writeAt(path.join(d, t.marker.segment), pos, garbage);
    });
    const file = path.join(dir, t.marker.segment);
    const repaired = w.repaired;
    if (repaired === undefined) return expect.fail('not repaired');
    expect(repaired).toEqual({ segment: file, position: pos, offset: t.end, bytes: garbage.length, sideFile: repaired.sideFile });
    expect(fs.readFileSync(repaired.sideFile).equals(garbage)).toBe(true);
    expect(allZero(fs.readFileSync(file).subarray(pos))).toBe(true);
    await expectIntact(dir, w, true);
  });

  it('a single non-zero byte 7 bytes after end (the last byte checked)', async () => {
    const pos = t.marker.end;
    const { dir, w } = openIgnoring((d) => {
      writeAt(path.join(d, t.marker.segment), pos + HEADER - 1, Uint8Array.of(0x80));
    });
    expect(w.repaired).toMatchObject({ position: pos, offset: t.end, bytes: HEADER });
    await expectIntact(dir, w, true);
  });

  it('a CRC mismatch at lastRecord (the last record corrupted): the scan takes it for a torn tail and cuts it off', async () => {
    const lastPos = t.marker.lastRecord;
    const { dir, w } = openIgnoring((d) => {
      flipBit(path.join(d, t.marker.segment), lastPos + HEADER + 10, 0);
    });
    const file = path.join(dir, t.marker.segment);
    const lastOffset = lastOf(t.offsets);
    expect(w.repaired).toMatchObject({ segment: file, position: lastPos, offset: lastOffset, bytes: HEADER + LAST_LEN });
    expect(w.nextOffset).toBe(lastOffset);
    expect(w.tailRecordOffset).toBe(t.offsets[t.offsets.length - 2]);
    expect(allZero(fs.readFileSync(file).subarray(lastPos))).toBe(true);
    const n = t.payloads.length;
    expect(appendAt(w, Buffer.from('instead'))).toBe(lastOffset);
    await w.close();
    expectRecords(readAll(dir), [...t.payloads.slice(0, n - 1), Buffer.from('instead')], t.offsets);
  });

  it('a length field at lastRecord that does not match end', async () => {
    const lastPos = t.marker.lastRecord;
    const { dir, w } = openIgnoring((d) => {
      // The length field says one byte less: the record ends one byte before `end`.
      const len = Buffer.alloc(4);
      len.writeUInt32LE(LAST_LEN - 1, 0);
      writeAt(path.join(d, t.marker.segment), lastPos, len);
    });
    expect(w.repaired).toMatchObject({ position: lastPos, offset: lastOf(t.offsets), bytes: HEADER + LAST_LEN });
    expect(w.nextOffset).toBe(lastOf(t.offsets));
    await w.close();
    expectRecords(readAll(dir), t.payloads.slice(0, -1), t.offsets.slice(0, -1));
  });

  it('an end beyond a truncated (not preallocated) segment: the scan repairs the cut record', async () => {
    const u = await makeLog(8, { ...CLEAN_OPTS, preallocate: false });
    const file = u.last.file;
    expect(fs.statSync(file).size).toBe(u.marker.end);
    const keep = u.marker.lastRecord + HEADER + 5;
    fs.truncateSync(file, keep);
    const w = WalWriter.open(u.dir, { ...CLEAN_OPTS, preallocate: false });
    expect(w.trustedClean).toBe(false);
    expect(w.repaired).toMatchObject({ position: u.marker.lastRecord, offset: lastOf(u.offsets), bytes: HEADER + 5 });
    expect(w.nextOffset).toBe(lastOf(u.offsets));
    expectNoMarkerFiles(u.dir);
    await w.close();
    expectRecords(readAll(u.dir), u.payloads.slice(0, -1), u.offsets.slice(0, -1));
  });
});

describe('tools that change a log drop its marker', () => {
  it('truncateLog removes CLEAN (and CLEAN.tmp) before cutting: the next open scans and ends at the cut', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, CLEAN_OPTS);
    const offsets = Array.from({ length: 6 }, (_, i) => appendAt(w, payloadFor(i)));
    await w.close();
    expect(hasMarker(dir)).toBe(true);
    fs.writeFileSync(tmpFile(dir), 'left over');
    const cutAt = offsets[3] as number;
    truncateLog(dir, cutAt, { maxRecordSize: MAX });
    expectNoMarkerFiles(dir, 'after truncateLog');
    const again = WalWriter.open(dir, CLEAN_OPTS);
    expect(again.trustedClean).toBe(false);
    expect(again.nextOffset).toBe(cutAt);
    await again.close();
  });

  it('repairLog removes CLEAN when it cuts a torn tail, and leaves it when there is nothing to repair', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, CLEAN_OPTS);
    const offsets = Array.from({ length: 4 }, (_, i) => appendAt(w, payloadFor(i)));
    const end = w.nextOffset;
    await w.close();
    repairLog(dir, { maxRecordSize: MAX });
    expect(hasMarker(dir), 'a healthy log keeps its marker').toBe(true);
    // A torn tail after the marked end (as if something had written there): repair cuts it and drops the marker.
    writeAt(lastSegment(dir).file, end, Buffer.from([7, 0, 0, 0, 1, 2, 3]));
    const { sideFile } = repairLog(dir, { maxRecordSize: MAX });
    expect(sideFile).toBeDefined();
    expectNoMarkerFiles(dir, 'after repairLog cut a torn tail');
    const again = WalWriter.open(dir, CLEAN_OPTS);
    expect(again.trustedClean).toBe(false);
    expect(again.repaired).toBeUndefined();
    expect(again.nextOffset).toBe(end);
    expect(again.tailRecordOffset).toBe(offsets[3]);
    await again.close();
  });
});

describe('other durability modes', () => {
  for (const durability of ['none', 'interval'] as const) {
    it(`${durability}: close() leaves the marker and the next open trusts it`, async () => {
      const options: WalOptions = { ...SMALL, durability, cleanClose: true };
      const dir = tmpDir();
      const w = WalWriter.open(dir, options);
      const payloads = Array.from({ length: 30 }, (_, i) => payloadFor(i));
      const offsets = payloads.map((p) => appendAt(w, p));
      const end = w.nextOffset;
      await w.close();
      const last = lastSegment(dir);
      expect(segmentFiles(dir).length).toBeGreaterThan(1);
      expect(readMarker(dir)).toEqual({ segment: path.basename(last.file), end: end - last.base, lastRecord: lastOf(offsets) - last.base });

      const w2 = WalWriter.open(dir, options);
      expect(w2.trustedClean).toBe(true);
      expect(w2.nextOffset).toBe(end);
      expect(w2.durableOffset).toBe(end);
      expect(w2.tailRecordOffset).toBe(lastOf(offsets));
      expectNoMarkerFiles(dir);
      const extra = payloadFor(999);
      expect(appendAt(w2, extra)).toBe(end);
      await w2.close();
      expectRecords(readAll(dir), [...payloads, extra], [...offsets, end]);
      const w3 = WalWriter.open(dir, options);
      expect(w3.trustedClean).toBe(true);
      expect(w3.nextOffset).toBe(end + HEADER + extra.length);
      await w3.close();
    });
  }

  it('none: close() fdatasyncs the segment before writing the marker', async () => {
    const dir = tmpDir();
    const { io, ops } = opTracingIO();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'none', cleanClose: true, io });
    for (let i = 0; i < 5; i++) w.append(payloadFor(i));
    ops.length = 0;
    await w.close();
    const seg = '00000000000000000000.wal';
    expectInOrder(ops, [`write ${seg}`, `fdatasync ${seg}`, `open ${CLEAN_TMP}`, `write ${CLEAN_TMP}`, `fdatasync ${CLEAN_TMP}`, `rename ${CLEAN_TMP} ${CLEAN}`, 'syncDir']);
    expect(hasMarker(dir)).toBe(true);
  });

  it('none: a failed fdatasync of the segment in close() leaves no marker', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const options: WalOptions = { ...SMALL, durability: 'none', cleanClose: true };
    const w = WalWriter.open(dir, { ...options, io: f.io });
    const payloads = Array.from({ length: 5 }, (_, i) => payloadFor(i));
    for (const p of payloads) w.append(p);
    f.arm({ syncSync: (i) => i === 0 });
    await w.close().catch(() => undefined);
    expect(f.injected).toBe(1);
    expectNoMarkerFiles(dir);
    const w2 = WalWriter.open(dir, options);
    expect(w2.trustedClean).toBe(false);
    expect(w2.nextOffset).toBe(layout(payloads)[payloads.length]);
    await w2.close();
    expectRecords(readAll(dir), payloads, layout(payloads));
  });
});

describe('empty logs and segment rolls', () => {
  it('an empty log: the marker says end 0, lastRecord -1, and is trusted', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, CLEAN_OPTS);
    expect(w.trustedClean).toBe(false);
    await w.close();
    expect(readMarker(dir)).toEqual({ segment: '00000000000000000000.wal', end: 0, lastRecord: -1 });

    const w2 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w2.trustedClean).toBe(true);
    expect(w2.repaired).toBeUndefined();
    expect(w2.nextOffset).toBe(0);
    expect(w2.durableOffset).toBe(0);
    expect(w2.tailRecordOffset).toBe(-1);
    expect(w2.verifiedFrom).toBe(0);
    expectNoMarkerFiles(dir);
    await w2.close();
    expect(readMarker(dir)).toEqual({ segment: '00000000000000000000.wal', end: 0, lastRecord: -1 });

    const w3 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w3.trustedClean).toBe(true);
    expect(appendAt(w3, Buffer.from('first'))).toBe(0);
    await w3.close();
    expect(readMarker(dir)).toEqual({ segment: '00000000000000000000.wal', end: HEADER + 5, lastRecord: 0 });
    expectRecords(readAll(dir), [Buffer.from('first')], [0]);
  });

  it('an empty log: a marker with a field out of range is not trusted', async () => {
    const seg = '00000000000000000000.wal';
    for (const marker of [
      { segment: seg, end: 0, lastRecord: -2 },
      { segment: seg, end: -1, lastRecord: -1 },
      { segment: seg, end: 0, lastRecord: -1.5 },
      { segment: seg, end: 0.5, lastRecord: -1 },
    ]) {
      const dir = tmpDir();
      const w = WalWriter.open(dir, CLEAN_OPTS);
      await w.close();
      expect(readMarker(dir)).toEqual({ segment: seg, end: 0, lastRecord: -1 });
      writeMarker(dir, marker);
      const w2 = WalWriter.open(dir, CLEAN_OPTS);
      expect(w2.trustedClean, JSON.stringify(marker)).toBe(false);
      expect(w2.nextOffset).toBe(0);
      expectNoMarkerFiles(dir);
      await w2.close();
    }
  });

  it('a marker for an empty log is not trusted over a segment holding data', async () => {
    const t = await makeLog(3);
    writeMarker(t.dir, { segment: t.marker.segment, end: 0, lastRecord: -1 });
    const w = WalWriter.open(t.dir, CLEAN_OPTS);
    expect(w.trustedClean).toBe(false);
    expect(w.nextOffset).toBe(t.end);
    await w.close();
  });

  it('after segment rolls the marker names the last segment; the trusted reopen continues and rolls on', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, CLEAN_OPTS);
    const payloads = Array.from({ length: 70 }, (_, i) => payloadFor(i));
    const offsets = payloads.map((p) => appendAt(w, p));
    const end = w.nextOffset;
    await w.close();
    const segs = segmentFiles(dir);
    expect(segs.length).toBeGreaterThanOrEqual(3);
    const last = lastSegment(dir);
    expect(readMarker(dir)).toEqual({ segment: path.basename(last.file), end: end - last.base, lastRecord: lastOf(offsets) - last.base });

    const w2 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w2.trustedClean).toBe(true);
    expect(w2.nextOffset).toBe(end);
    expect(w2.tailRecordOffset).toBe(lastOf(offsets));
    expect(w2.verifiedFrom).toBe(end);
    const more = Array.from({ length: 30 }, (_, i) => payloadFor(100 + i));
    const moreOffsets = more.map((p) => appendAt(w2, p));
    const end2 = w2.nextOffset;
    await w2.close();
    expect(segmentFiles(dir).length).toBeGreaterThan(segs.length);
    const last2 = lastSegment(dir);
    expect(readMarker(dir)).toEqual({ segment: path.basename(last2.file), end: end2 - last2.base, lastRecord: lastOf(moreOffsets) - last2.base });
    expectRecords(readAll(dir), [...payloads, ...more], [...offsets, ...moreOffsets]);

    const w3 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w3.trustedClean).toBe(true);
    expect(w3.nextOffset).toBe(end2);
    await w3.close();
  });

  it('a roll with no record after it (reserve, then abandon): the marker is for the new, empty segment', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, CLEAN_OPTS);
    // 16 records of 256 bytes fill a segment exactly; the next reserve rolls.
    const payloads = Array.from({ length: 16 }, (_, i) => Buffer.alloc(248, i + 1));
    const offsets = payloads.map((p) => appendAt(w, p));
    w.reserve(10);
    w.abandon();
    expect(segmentFiles(dir).map((s) => s.base)).toEqual([0, SEG]);
    expect(w.nextOffset).toBe(SEG);
    await w.close();
    expect(readMarker(dir)).toEqual({ segment: path.basename(lastSegment(dir).file), end: 0, lastRecord: -1 });

    const w2 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w2.trustedClean).toBe(true);
    expect(w2.nextOffset).toBe(SEG);
    expect(w2.tailRecordOffset).toBe(-1);
    expect(appendAt(w2, Buffer.from('next segment'))).toBe(SEG);
    await w2.close();
    expectRecords(readAll(dir), [...payloads, Buffer.from('next segment')], [...offsets, SEG]);
  });
});

describe('faults', () => {
  for (const durability of ['batch', 'interval'] as const) {
    it(`${durability}: a failed fdatasync in close(): close rejects with SYNC_FAILED and leaves no marker`, async () => {
      const f = new FaultyIO();
      const dir = tmpDir();
      const options: WalOptions = { ...SMALL, durability, syncIntervalMs: 60_000, cleanClose: true };
      const w = WalWriter.open(dir, { ...options, io: f.io });
      const payloads = Array.from({ length: 6 }, (_, i) => payloadFor(i));
      for (const p of payloads) w.append(p);
      f.arm({ sync: () => true });
      expectCode(await walRejectionOf(w.close()), 'SYNC_FAILED');
      expect(f.injected).toBeGreaterThan(0);
      expectNoMarkerFiles(dir);
      const w2 = WalWriter.open(dir, options);
      expect(w2.trustedClean).toBe(false);
      expect(w2.nextOffset).toBe(layout(payloads)[payloads.length]);
      await w2.close();
    });
  }

  it('a writer failed by an earlier fdatasync leaves no marker', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...CLEAN_OPTS, io: f.io });
    w.append(Buffer.from('a'));
    await w.sync();
    w.append(Buffer.from('b'));
    f.arm({ sync: () => true });
    expectCode(await walRejectionOf(w.sync()), 'SYNC_FAILED');
    f.arm({});
    await w.close().catch(() => undefined);
    expectNoMarkerFiles(dir);
    const w2 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w2.trustedClean).toBe(false);
    w2.closeSync();
  });

  it('a writer failed by a write error leaves no marker', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...CLEAN_OPTS, io: f.io });
    const a = [payloadFor(0), payloadFor(1)];
    for (const p of a) w.append(p);
    await w.sync();
    f.arm({ dataWrite: () => ({ kind: 'enospc', written: 3 }) });
    w.append(payloadFor(2));
    expectCode(
      walErrorOf(() => w.flush()),
      'WRITE_FAILED',
    );
    f.arm({});
    await w.close().catch(() => undefined);
    expectNoMarkerFiles(dir);
    const w2 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w2.trustedClean).toBe(false);
    expect(w2.repaired).toBeUndefined();
    expect(w2.nextOffset).toBe(layout(a)[a.length]);
    w2.closeSync();
    expectRecords(readAll(dir), a, layout(a));
  });

  it('an aborted writer with everything synced leaves no marker', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, CLEAN_OPTS);
    w.append(Buffer.from('synced'));
    await w.sync();
    w.abort();
    await w.close(); // a no-op after abort()
    expectNoMarkerFiles(dir);
  });

  /** Ways to make writing the marker itself fail. */
  const markerFaults: { name: string; setup: (f: FaultyIO) => FileIO }[] = [
    {
      name: 'the open of CLEAN.tmp fails',
      setup: (f) => {
        f.arm({ open: (file) => path.basename(file) === CLEAN_TMP });
        return f.io;
      },
    },
    {
      name: 'the write of the marker fails (ENOSPC)',
      setup: (f) => {
        // Everything is synced already: the only non-zero write left is the marker's.
        f.arm({ dataWrite: () => ({ kind: 'enospc', written: 4 }) });
        return f.io;
      },
    },
    {
      name: 'the write of the marker is short',
      setup: (f) => {
        f.arm({ dataWrite: () => ({ kind: 'short', written: 10 }) });
        return f.io;
      },
    },
    {
      name: 'the fdatasync of CLEAN.tmp fails',
      setup: (f) => {
        // With batch durability, close() syncs the segment on the thread pool: the only blocking
        // fdatasync is the marker's.
        f.arm({ syncSync: () => true });
        return f.io;
      },
    },
    {
      name: 'the rename of CLEAN.tmp fails',
      setup: (f) => {
        f.arm({});
        return {
          ...f.io,
          rename: (from, to) => {
            if (path.basename(to) === CLEAN) {
              f.injected++;
              throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
            }
            f.io.rename(from, to);
          },
        };
      },
    },
  ];

  for (const mf of markerFaults) {
    it(`${mf.name}: close() still resolves, leaves no marker, and the next open scans`, async () => {
      const f = new FaultyIO();
      let io: FileIO = f.io;
      const dir = tmpDir();
      const w = WalWriter.open(dir, {
        ...CLEAN_OPTS,
        io: {
          ...nodeFileIO,
          // Delegate at call time, so that the faults set up below apply.
          open: (file, flags) => io.open(file, flags),
          write: (fd, buf, offset, length, position) => io.write(fd, buf, offset, length, position),
          syncSync: (fd) => {
            io.syncSync(fd);
          },
          sync: (fd, done) => {
            io.sync(fd, done);
          },
          rename: (from, to) => {
            io.rename(from, to);
          },
        },
      });
      const payloads = Array.from({ length: 7 }, (_, i) => payloadFor(i));
      const offsets = payloads.map((p) => appendAt(w, p));
      await w.sync();
      io = mf.setup(f);
      await w.close();
      expect(f.injected, 'the fault was injected').toBeGreaterThan(0);
      expect(hasMarker(dir), `${CLEAN} written despite the failure`).toBe(false);

      const w2 = WalWriter.open(dir, CLEAN_OPTS);
      expect(w2.trustedClean).toBe(false);
      expect(w2.repaired).toBeUndefined();
      expect(w2.nextOffset).toBe(layout(payloads)[payloads.length]);
      expectNoMarkerFiles(dir, 'after the next open');
      await w2.close();
      expectRecords(readAll(dir), payloads, offsets);
    });
  }

  it('a failed directory sync after the rename: close() resolves and the next open finds the right end', async () => {
    const dir = tmpDir();
    let failDirSync = false;
    let injected = 0;
    const io: FileIO = {
      ...nodeFileIO,
      syncDir: (d) => {
        if (failDirSync) {
          injected++;
          throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
        }
        nodeFileIO.syncDir(d);
      },
    };
    const w = WalWriter.open(dir, { ...CLEAN_OPTS, io });
    const payloads = Array.from({ length: 4 }, (_, i) => payloadFor(i));
    for (const p of payloads) w.append(p);
    await w.sync();
    failDirSync = true;
    await w.close();
    expect(injected).toBe(1);
    expect(fs.existsSync(tmpFile(dir))).toBe(false);
    // Whatever was left (the data is durable, so a marker would be true), the next open is right.
    const w2 = WalWriter.open(dir, CLEAN_OPTS);
    expect(w2.nextOffset).toBe(layout(payloads)[payloads.length]);
    expect(w2.repaired).toBeUndefined();
    expectNoMarkerFiles(dir);
    await w2.close();
    expectRecords(readAll(dir), payloads, layout(payloads));
  });
});

describe('options', () => {
  it('the durability option is independent of the marker: a marker left in none mode is trusted by a batch writer', async () => {
    const t = await makeLog(5, { ...SMALL, durability: 'none', cleanClose: true });
    const w = WalWriter.open(t.dir, { ...CLEAN_OPTS, durability: 'batch' });
    expect(w.trustedClean).toBe(true);
    expect(w.nextOffset).toBe(t.end);
    await w.close();
  });
});
