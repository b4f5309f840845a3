// Corruption: a bad record followed by good ones, a damaged segment that later segments follow, and
// gaps between segments. Nothing is skipped silently: verifyLog says where, the writer refuses to
// open, the reader throws when it gets there (after the records before it), repairLog refuses, and
// the files stay byte-identical. A length field claiming gigabytes never sizes an allocation.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeFileIO, repairLog, verifyLog, WalError, WalReader, WalWriter, type FileIO, type ReaderOptions } from '../src/index.js';
import {
  appendAt,
  copyDir,
  expectCode,
  expectRecords,
  expectSameSnapshot,
  flipBit,
  HEADER,
  lastSegment,
  MAX,
  noSyncIO,
  nonZeroBytes,
  payloadFor,
  readAll,
  removeTmpDirs,
  segmentFiles,
  SMALL,
  snapshot,
  tmpDir,
  walErrorOf,
  writeAt,
  type ReadRecord,
  type SegmentFile,
} from './helpers.js';

afterAll(removeTmpDirs);

const MID_LEN = 32; // a power of two: one of the length bits flips it to zero

interface Log {
  dir: string;
  payloads: Buffer[];
  offsets: number[];
}

async function makeLog(count: number, special: Map<number, Buffer>, preallocate = true): Promise<Log> {
  const dir = tmpDir();
  const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate, io: noSyncIO });
  const payloads: Buffer[] = [];
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) {
    const p = special.get(i) ?? payloadFor(i);
    payloads.push(p);
    offsets.push(appendAt(w, p));
  }
  await w.close();
  return { dir, payloads, offsets };
}

/** Reads until the reader returns null or throws; returns what it read and what it threw. */
function readUntilError(dir: string, options: ReaderOptions = {}): { records: ReadRecord[]; error: WalError | undefined } {
  const r = new WalReader(dir, { maxRecordSize: MAX, ...options });
  const records: ReadRecord[] = [];
  try {
    for (let rec = r.next(); rec !== null; rec = r.next()) records.push({ offset: rec.offset, payload: rec.payload() });
    return { records, error: undefined };
  } catch (err) {
    if (err instanceof WalError) return { records, error: err };
    throw err;
  } finally {
    r.close();
  }
}

describe('a bad record followed by good ones', () => {
  let log: Log;
  let midIndex: number;
  let seg: SegmentFile;
  beforeAll(async () => {
    // The bad record is the second of the last segment: valid records follow it there.
    const probe = await makeLog(40, new Map());
    const last = lastSegment(probe.dir);
    const firstInLast = probe.offsets.findIndex((o) => o >= last.base);
    midIndex = firstInLast + 1;
    log = await makeLog(40, new Map([[midIndex, nonZeroBytes(MID_LEN, 3)]]));
    seg = lastSegment(log.dir);
    expect(segmentFiles(log.dir).length).toBeGreaterThanOrEqual(2);
    expect(log.offsets.filter((o) => o >= seg.base).length).toBeGreaterThanOrEqual(4);
    expect(log.offsets[midIndex - 1]).toBe(seg.base);
  });

  const fields: { name: string; from: number; bits: number }[] = [
    { name: 'length field', from: 0, bits: 32 },
    { name: 'CRC', from: 4, bits: 32 },
    { name: 'payload', from: HEADER, bits: MID_LEN * 8 },
  ];
  for (const field of fields) {
    it(`one flipped bit in the ${field.name} of a middle record is corruption everywhere, and nothing is changed`, () => {
      const midOffset = log.offsets[midIndex] ?? -1;
      const pos = midOffset - seg.base;
      for (let bit = 0; bit < field.bits; bit++) {
        const where = `${field.name} bit ${bit}`;
        const dir = copyDir(log.dir);
        const segFile = path.join(dir, path.basename(seg.file));
        flipBit(segFile, pos + field.from + (bit >> 3), bit & 7);
        const before = snapshot(dir);

        expect(verifyLog(dir, { maxRecordSize: MAX }), where).toMatchObject({
          status: 'corrupt',
          offset: midOffset,
          records: midIndex,
          bytes: midOffset,
          file: segFile,
        });

        const openErr = walErrorOf(() => WalWriter.open(dir, { ...SMALL, durability: 'batch', io: noSyncIO }));
        expectCode(openErr, 'CORRUPT');
        expect(openErr.file, where).toBe(segFile);
        expect(openErr.offset, where).toBe(pos);
        expect(openErr.message, where).toContain(segFile);

        const { records, error } = readUntilError(dir);
        expectRecords(records, log.payloads.slice(0, midIndex), log.offsets.slice(0, midIndex));
        if (error === undefined) return expect.fail(`${where}: the reader returned null instead of throwing`);
        expectCode(error, 'CORRUPT');
        expect(error.file, where).toBe(segFile);
        expect(error.offset, where).toBe(pos);

        // Starting right at the bad record fails at once; starting after it reads the rest.
        expect(readUntilError(dir, { from: midOffset }).error?.code, where).toBe('CORRUPT');
        expectRecords(readAll(dir, { from: log.offsets[midIndex + 1] ?? -1 }), log.payloads.slice(midIndex + 1), log.offsets.slice(midIndex + 1));

        expectCode(
          walErrorOf(() => repairLog(dir, { maxRecordSize: MAX })),
          'CORRUPT',
        );
        expectSameSnapshot(snapshot(dir), before);
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('a damaged record at the end of a segment that later segments follow is corruption, not a torn tail', () => {
    const [first, second] = segmentFiles(log.dir);
    if (first === undefined || second === undefined) throw new Error('segments');
    const lastInFirst = log.offsets.filter((o) => o < second.base).length - 1;
    const at = log.offsets[lastInFirst] ?? -1;
    for (const how of ['garbage', 'short'] as const) {
      const dir = copyDir(log.dir);
      const file = path.join(dir, path.basename(first.file));
      if (how === 'garbage') writeAt(file, at + HEADER + 2, nonZeroBytes(4, 8));
      else writeAt(file, at + 3, Buffer.alloc(second.base - at - 3));
      const before = snapshot(dir);
      expect(verifyLog(dir, { maxRecordSize: MAX }), how).toMatchObject({ status: 'corrupt', offset: at, records: lastInFirst, file });
      const { records, error } = readUntilError(dir);
      expect(records.length, how).toBe(lastInFirst);
      expect(error?.code, how).toBe('CORRUPT');
      expect(error?.file, how).toBe(file);
      expectCode(
        walErrorOf(() => repairLog(dir, { maxRecordSize: MAX })),
        'CORRUPT',
      );
      expectSameSnapshot(snapshot(dir), before);
    }
  });

  it('a flipped bit in a record of an earlier segment is corruption for verify and the reader', () => {
    const dir = copyDir(log.dir);
    const first = segmentFiles(dir)[0];
    if (first === undefined) throw new Error('no segment');
    flipBit(first.file, (log.offsets[5] ?? -1) + HEADER + 1, 4);
    const before = snapshot(dir);
    expect(verifyLog(dir, { maxRecordSize: MAX })).toMatchObject({ status: 'corrupt', offset: log.offsets[5], records: 5, file: first.file });
    const { records, error } = readUntilError(dir);
    expect(records.length).toBe(5);
    expect(error?.code).toBe('CORRUPT');
    expect(error?.offset).toBe(log.offsets[5]);
    expectCode(
      walErrorOf(() => repairLog(dir, { maxRecordSize: MAX })),
      'CORRUPT',
    );
    expectSameSnapshot(snapshot(dir), before);
  });
});

describe('gaps between segments', () => {
  for (const preallocate of [true, false]) {
    it(`a deleted middle segment is corruption (preallocate ${String(preallocate)})`, async () => {
      const log = await makeLog(90, new Map(), preallocate);
      const segs = segmentFiles(log.dir);
      expect(segs.length).toBeGreaterThanOrEqual(3);
      const [s0, s1, s2] = segs;
      if (s0 === undefined || s1 === undefined || s2 === undefined) throw new Error('segments');
      fs.rmSync(s1.file);
      const before = snapshot(log.dir);
      const inFirst = log.offsets.filter((o) => o < s1.base).length;
      expect(verifyLog(log.dir, { maxRecordSize: MAX })).toMatchObject({ status: 'corrupt', offset: s1.base, records: inFirst, bytes: s1.base });
      const { records, error } = readUntilError(log.dir);
      expectRecords(records, log.payloads.slice(0, inFirst), log.offsets.slice(0, inFirst));
      expect(error?.code).toBe('CORRUPT');
      expect(error?.file).toBe(s2.file);
      expectCode(
        walErrorOf(() => repairLog(log.dir, { maxRecordSize: MAX })),
        'CORRUPT',
      );
      // Opening it for writing too (the segment before ends short of the next one's base).
      const opened = walErrorOf(() => WalWriter.open(log.dir, { ...SMALL, preallocate }));
      expectCode(opened, 'CORRUPT');
      expect(opened?.file).toBe(s2.file);
      expectSameSnapshot(snapshot(log.dir), before);
    });

    it(`a deleted first segment is corruption, for the writer's open too (preallocate ${String(preallocate)})`, async () => {
      const log = await makeLog(90, new Map(), preallocate);
      const [s0, s1] = segmentFiles(log.dir);
      if (s0 === undefined || s1 === undefined) throw new Error('segments');
      fs.rmSync(s0.file);
      const before = snapshot(log.dir);
      expect(verifyLog(log.dir, { maxRecordSize: MAX })).toMatchObject({ status: 'corrupt' });
      const opened = walErrorOf(() => WalWriter.open(log.dir, { ...SMALL, preallocate }));
      expectCode(opened, 'CORRUPT');
      expect(opened?.message).toMatch(/first segment starts at offset \d+, not 0/);
      expectSameSnapshot(snapshot(log.dir), before);
    });

    for (const shift of [8, -8, 1]) {
      it(`a segment renamed to a wrong base (${shift > 0 ? '+' : ''}${shift}) is corruption (preallocate ${String(preallocate)})`, async () => {
        const log = await makeLog(60, new Map(), preallocate);
        const segs = segmentFiles(log.dir);
        const last = segs[segs.length - 1];
        if (last === undefined || segs.length < 2) throw new Error('segments');
        const wrong = path.join(log.dir, `${String(last.base + shift).padStart(20, '0')}.wal`);
        fs.renameSync(last.file, wrong);
        const before = snapshot(log.dir);
        const inEarlier = log.offsets.filter((o) => o < last.base).length;
        expect(verifyLog(log.dir, { maxRecordSize: MAX })).toMatchObject({ status: 'corrupt', offset: last.base, records: inEarlier });
        const { records, error } = readUntilError(log.dir);
        expect(records.length).toBe(inEarlier);
        expect(error?.code).toBe('CORRUPT');
        expect(error?.file).toBe(wrong);
        expectCode(
          walErrorOf(() => repairLog(log.dir, { maxRecordSize: MAX })),
          'CORRUPT',
        );
        expectSameSnapshot(snapshot(log.dir), before);
      });
    }
  }
});

/** nodeFileIO that records the largest read it was asked for. */
function readSpy(): { io: FileIO; largest: () => number } {
  let largest = 0;
  return {
    io: {
      ...nodeFileIO,
      read: (fd, buf, offset, length, position) => {
        largest = Math.max(largest, length, buf.length);
        return nodeFileIO.read(fd, buf, offset, length, position);
      },
    },
    largest: () => largest,
  };
}

describe('a length field claiming gigabytes', () => {
  const HUGE = 0xfffffff0;
  const LIMIT = 4 << 20; // the reader's window; a claim must never size a buffer

  for (const maxRecordSize of [MAX, 2 ** 31]) {
    it(`in the last record is a torn tail, handled without a huge allocation (maxRecordSize ${maxRecordSize})`, async () => {
      const log = await makeLog(20, new Map());
      const seg = lastSegment(log.dir);
      const lastOffset = log.offsets[19] ?? -1;
      const field = Buffer.alloc(4);
      field.writeUInt32LE(HUGE);
      writeAt(seg.file, lastOffset - seg.base, field);
      const spy = readSpy();
      const heap = process.memoryUsage().arrayBuffers;

      expect(verifyLog(log.dir, { maxRecordSize, io: spy.io })).toMatchObject({ status: 'torn-tail', offset: lastOffset, records: 19 });
      const { records, error } = readUntilError(log.dir, { maxRecordSize, io: spy.io });
      expect(error).toBeUndefined();
      expect(records.length).toBe(19);
      if (maxRecordSize === MAX) {
        const w = WalWriter.open(log.dir, { ...SMALL, durability: 'batch', io: spy.io });
        expect(w.repaired).toMatchObject({ offset: lastOffset, bytes: HEADER + (log.payloads[19]?.length ?? 0) });
        appendAt(w, Buffer.from('after'));
        await w.close();
        expect(readAll(log.dir).length).toBe(20);
      }
      expect(spy.largest()).toBeLessThanOrEqual(LIMIT);
      expect(process.memoryUsage().arrayBuffers - heap).toBeLessThan(256 << 20);
    });
  }

  it('in a middle record is corruption, found without a huge allocation', async () => {
      const log = await makeLog(45, new Map());
      const seg = lastSegment(log.dir);
      const i = log.offsets.findIndex((o) => o >= seg.base) + 1;
      expect(i).toBeGreaterThan(0);
      expect(i).toBeLessThan(44);
      const at = log.offsets[i] ?? -1;
      const field = Buffer.alloc(4);
      field.writeUInt32LE(HUGE);
      writeAt(seg.file, at - seg.base, field);
      const spy = readSpy();
      for (const maxRecordSize of [MAX, 2 ** 31]) {
        expect(verifyLog(log.dir, { maxRecordSize, io: spy.io })).toMatchObject({ status: 'corrupt', offset: at, records: i });
        expect(readUntilError(log.dir, { maxRecordSize, io: spy.io }).error?.code).toBe('CORRUPT');
      }
      expect(walErrorOf(() => WalWriter.open(log.dir, { ...SMALL, io: spy.io })).code).toBe('CORRUPT');
      expect(spy.largest()).toBeLessThanOrEqual(LIMIT);
  });
});
