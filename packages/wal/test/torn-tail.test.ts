// Torn tails: the last record of the last segment cut at every byte (header and payload), its rest
// replaced by zeros or by garbage, with and without preallocation. verifyLog reports the torn tail
// where it starts, the reader stops before it, opening for append (and repairLog) keeps exactly the
// bad bytes in a side file and cuts them off, and appending continues.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeFileIO, repairLog, verifyLog, WalWriter, type FileIO } from '../src/index.js';
import {
  appendAt,
  copyDir,
  expectRecords,
  HEADER,
  lastSegment,
  layout,
  MAX,
  noSyncIO,
  nonZeroBytes,
  payloadFor,
  readAll,
  removeTmpDirs,
  segmentFiles,
  SMALL,
  tmpDir,
  trimZeros,
  writeAt,
} from './helpers.js';

afterAll(removeTmpDirs);

const LAST_LEN = 37;

interface Template {
  dir: string;
  payloads: Buffer[];
  offsets: number[];
}

/** A log of two or more segments whose last segment holds several records, the last one of LAST_LEN bytes. */
async function makeTemplate(preallocate: boolean, io: FileIO = noSyncIO): Promise<Template> {
  const dir = tmpDir();
  const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate, io });
  const payloads: Buffer[] = [];
  const offsets: number[] = [];
  for (let i = 0; i < 36; i++) {
    const p = i === 35 ? nonZeroBytes(LAST_LEN, 99) : payloadFor(i);
    payloads.push(p);
    offsets.push(appendAt(w, p));
  }
  await w.close();
  const segs = segmentFiles(dir);
  const last = lastSegment(dir);
  expect(segs.length).toBeGreaterThanOrEqual(2);
  expect(offsets.filter((o) => o >= last.base).length).toBeGreaterThanOrEqual(3);
  expect(verifyLog(dir, { maxRecordSize: MAX }).status).toBe('ok');
  return { dir, payloads, offsets };
}

type Variant = 'truncate' | 'zeros' | 'garbage';

/** Damages the last record of a copy of `t`: keeps its first `keep` bytes and cuts/zeros/garbles the rest. */
function damage(t: Template, keep: number, variant: Variant): { dir: string; file: string; pos: number; lastOffset: number } {
  const dir = copyDir(t.dir);
  const seg = lastSegment(dir);
  const lastOffset = t.offsets[t.offsets.length - 1] ?? -1;
  const pos = lastOffset - seg.base;
  const rest = HEADER + LAST_LEN - keep;
  if (variant === 'truncate') fs.truncateSync(seg.file, pos + keep);
  else if (variant === 'zeros') writeAt(seg.file, pos + keep, Buffer.alloc(rest));
  else writeAt(seg.file, pos + keep, nonZeroBytes(rest, keep * 7 + 1));
  return { dir, file: seg.file, pos, lastOffset };
}

function allZero(b: Buffer): boolean {
  return b.every((x) => x === 0);
}

describe.each([true, false])('torn tail, preallocate %s', (preallocate) => {
  let t: Template;
  beforeAll(async () => {
    t = await makeTemplate(preallocate);
  });

  for (const variant of ['truncate', 'zeros', 'garbage'] as const) {
    it(`${variant}: at every byte of the last record, is reported, read around, repaired and appended after`, async () => {
      const n = t.payloads.length;
      for (let keep = 1; keep < HEADER + LAST_LEN; keep++) {
        const where = `${variant}, ${keep} bytes of the last record kept`;
        const { dir, file, pos, lastOffset } = damage(t, keep, variant);
        const before = fs.readFileSync(file);
        const torn = Buffer.from(trimZeros(before.subarray(pos))); // the bad bytes: up to the last non-zero byte
        expect(torn.length, where).toBeGreaterThan(0);
        const copy = copyDir(dir);

        // verify
        const v = verifyLog(dir, { maxRecordSize: MAX });
        expect(v, where).toMatchObject({ status: 'torn-tail', offset: lastOffset, records: n - 1, bytes: lastOffset, file });

        // the reader returns everything before the torn record and stops
        expectRecords(readAll(dir), t.payloads.slice(0, n - 1), t.offsets.slice(0, n - 1));

        // opening for append repairs it
        const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate, io: noSyncIO });
        const repaired = w.repaired;
        if (repaired === undefined) return expect.fail(`${where}: not repaired`);
        expect(repaired, where).toEqual({ segment: file, position: pos, offset: lastOffset, bytes: torn.length, sideFile: repaired.sideFile });
        expect(fs.readFileSync(repaired.sideFile).equals(torn), `${where}: side file content`).toBe(true);
        const after = fs.readFileSync(file);
        expect(after.subarray(0, pos).equals(before.subarray(0, pos)), `${where}: good records untouched`).toBe(true);
        expect(allZero(after.subarray(pos)), `${where}: nothing but zeros after the cut`).toBe(true);
        expect(w.nextOffset).toBe(lastOffset);
        expect(w.durableOffset).toBe(lastOffset);

        // appending continues at the cut
        const extra = [Buffer.from('after repair'), payloadFor(1000), Buffer.alloc(MAX, 0x11), Buffer.alloc(MAX, 0x22)];
        const extraOffsets = extra.map((p) => appendAt(w, p));
        expect(extraOffsets).toEqual(layout(extra, lastOffset).slice(0, extra.length));
        await w.close();
        expectRecords(readAll(dir), [...t.payloads.slice(0, n - 1), ...extra], [...t.offsets.slice(0, n - 1), ...extraOffsets]);
        expect(verifyLog(dir, { maxRecordSize: MAX }).status).toBe('ok');
        const again = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate, io: noSyncIO });
        expect(again.repaired, `${where}: repaired twice`).toBeUndefined();
        await again.close();

        // repairLog does the same on the untouched copy
        const copyFile = lastSegment(copy).file;
        const r = repairLog(copy, { maxRecordSize: MAX });
        expect(r.before, where).toMatchObject({ status: 'torn-tail', offset: lastOffset, records: n - 1 });
        if (r.sideFile === undefined) return expect.fail(`${where}: repairLog kept no side file`);
        expect(fs.readFileSync(r.sideFile).equals(torn), `${where}: repairLog side file content`).toBe(true);
        const repairedCopy = fs.readFileSync(copyFile);
        expect(repairedCopy.subarray(0, pos).equals(before.subarray(0, pos))).toBe(true);
        expect(allZero(repairedCopy.subarray(pos)), `${where}: repairLog left bytes after the cut`).toBe(true);
        expect(verifyLog(copy, { maxRecordSize: MAX })).toEqual({ status: 'ok', records: n - 1, bytes: lastOffset });
        fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(copy, { recursive: true, force: true });
      }
    });
  }

  it('a whole last record replaced by zeros is simply the end of the log (nothing to repair)', async () => {
    const n = t.payloads.length;
    const { dir } = damage(t, 0, 'zeros');
    expect(verifyLog(dir, { maxRecordSize: MAX })).toEqual({ status: 'ok', records: n - 1, bytes: t.offsets[n - 1] });
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate, io: noSyncIO });
    expect(w.repaired).toBeUndefined();
    expect(w.nextOffset).toBe(t.offsets[n - 1]);
    await w.close();
  });

  it('garbage far after the data (zeros in between) is a torn tail that starts where the data ends', async () => {
    const n = t.payloads.length;
    const dir = copyDir(t.dir);
    const seg = lastSegment(dir);
    const end = (layout(t.payloads)[n] ?? 0) - seg.base;
    const garbageAt = end + 300;
    writeAt(seg.file, garbageAt, nonZeroBytes(20, 5));
    const before = fs.readFileSync(seg.file);
    expect(verifyLog(dir, { maxRecordSize: MAX })).toMatchObject({ status: 'torn-tail', offset: seg.base + end, records: n });
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate, io: noSyncIO });
    const repaired = w.repaired;
    if (repaired === undefined) return expect.fail('not repaired');
    expect(repaired).toMatchObject({ position: end, offset: seg.base + end, bytes: 320 });
    expect(fs.readFileSync(repaired.sideFile).equals(before.subarray(end, garbageAt + 20))).toBe(true);
    await w.close();
    expectRecords(readAll(dir), t.payloads, t.offsets);
  });
});

describe('torn tail, other shapes', () => {
  it('repairs a log whose only record is torn, and starts again at offset 0 (real fsyncs)', async () => {
    for (const preallocate of [true, false]) {
      const dir = tmpDir();
      const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate });
      w.append(nonZeroBytes(50, 1));
      await w.close();
      const file = lastSegment(dir).file;
      // Bytes 20..25 of the record hold garbage; the record's bytes after 25 never made it.
      writeAt(file, 20, nonZeroBytes(5, 2));
      if (preallocate) writeAt(file, 25, Buffer.alloc(HEADER + 50 - 25));
      else fs.truncateSync(file, 25);
      expect(verifyLog(dir, { maxRecordSize: MAX })).toMatchObject({ status: 'torn-tail', offset: 0, records: 0, bytes: 0 });
      const w2 = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate });
      expect(w2.repaired).toMatchObject({ position: 0, offset: 0, bytes: 25 });
      expect(w2.nextOffset).toBe(0);
      expect(appendAt(w2, Buffer.from('fresh'))).toBe(0);
      await w2.close();
      expectRecords(readAll(dir), [Buffer.from('fresh')], [0]);
    }
  });

  it('repairs with real fsyncs too (preallocated, garbage in the payload)', async () => {
    const t = await makeTemplate(true, nodeFileIO);
    const { dir, pos, lastOffset } = damage(t, 20, 'garbage');
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    expect(w.repaired).toMatchObject({ position: pos, offset: lastOffset, bytes: HEADER + LAST_LEN });
    appendAt(w, Buffer.from('x'));
    await w.sync();
    await w.close();
    expect(readAll(dir).length).toBe(t.payloads.length);
  });
});

describe('valid tails that only look like zero fill', () => {
  // A record whose payload is all zeros and whose CRC's top byte(s) are zero ends in zero bytes:
  // the last non-zero byte of the segment is inside its header. It is still a valid record.
  it('keeps a last record of 30 zero bytes (CRC 0x00043eb5): verify ok, no repair', async () => {
    for (const preallocate of [true, false]) {
      const dir = tmpDir();
      const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate });
      w.append(Buffer.from('hello'));
      w.append(Buffer.alloc(30));
      await w.close();
      const label = `preallocate ${String(preallocate)}`;
      expect.soft(verifyLog(dir, { maxRecordSize: MAX }), label).toEqual({ status: 'ok', records: 2, bytes: 51 });
      const w2 = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate });
      expect.soft(w2.repaired, `${label}: a durable record was cut off as a torn tail`).toBeUndefined();
      expect.soft(w2.nextOffset, label).toBe(51);
      await w2.close();
      expectRecords(readAll(dir), [Buffer.from('hello'), Buffer.alloc(30)], [0, 13]);
    }
  });

  it('keeps a last record of N zero bytes for every N in 1..maxRecordSize', async () => {
    const wrong: number[] = [];
    for (let len = 1; len <= MAX; len++) {
      const dir = tmpDir();
      const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: noSyncIO });
      w.append(Buffer.from('hi'));
      w.append(Buffer.alloc(len));
      await w.close();
      if (verifyLog(dir, { maxRecordSize: MAX }).status !== 'ok') wrong.push(len);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(wrong, 'all-zero payload lengths whose record is taken for a torn tail').toEqual([]);
  });

  it('keeps a last record whose payload ends in zero bytes', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    const p = Buffer.concat([Buffer.from('x'), Buffer.alloc(100)]);
    w.append(p);
    await w.close();
    expect(verifyLog(dir, { maxRecordSize: MAX }).status).toBe('ok');
    const w2 = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    expect(w2.repaired).toBeUndefined();
    await w2.close();
    expectRecords(readAll(dir), [p], [0]);
  });
});
