// The reader: from any offset, record reuse, logs that do not exist yet, an end bound, and following
// a log that is still being written without ever reading past the durable end.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { WalReader, WalRecord, WalWriter } from '../src/index.js';
import {
  appendAt,
  drain,
  expectRecords,
  HEADER,
  layout,
  MAX,
  noSyncIO,
  payloadFor,
  prng,
  readAll,
  removeTmpDirs,
  segmentFiles,
  SMALL,
  tmpDir,
  writeAt,
  type ReadRecord,
} from './helpers.js';

afterEach(removeTmpDirs);

async function writeLog(dir: string, count: number, preallocate = true): Promise<{ payloads: Buffer[]; offsets: number[] }> {
  const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate });
  const payloads = Array.from({ length: count }, (_, i) => payloadFor(i));
  const offsets = payloads.map((p) => appendAt(w, p));
  await w.close();
  return { payloads, offsets };
}

describe('reader', () => {
  it('reads from every record offset to the end, across segments', async () => {
    for (const preallocate of [true, false]) {
      const dir = tmpDir();
      const { payloads, offsets } = await writeLog(dir, 60, preallocate);
      expect(segmentFiles(dir).length).toBeGreaterThan(2);
      expectRecords(readAll(dir), payloads, offsets);
      for (let k = 0; k < payloads.length; k++) {
        expectRecords(readAll(dir, { from: offsets[k] ?? -1 }), payloads.slice(k), offsets.slice(k));
      }
      const end = layout(payloads)[payloads.length] ?? -1;
      expect(readAll(dir, { from: end })).toEqual([]);
    }
  });

  it('reuses a WalRecord passed to next(); payload() is a copy', async () => {
    const dir = tmpDir();
    const { payloads } = await writeLog(dir, 5);
    const r = new WalReader(dir, { maxRecordSize: MAX });
    const rec = new WalRecord();
    const copies: Buffer[] = [];
    for (let i = 0; i < payloads.length; i++) {
      const got = r.next(rec);
      expect(got).toBe(rec);
      expect(rec.length).toBe(payloads[i]?.length);
      expect(rec.buf.subarray(rec.start, rec.end).equals(payloads[i] ?? Buffer.alloc(0))).toBe(true);
      copies.push(rec.payload());
    }
    expect(r.next(rec)).toBeNull();
    r.close();
    expect(copies).toEqual(payloads);
  });

  it('returns null on a log that does not exist yet, then reads it once it is written', async () => {
    const dir = `${tmpDir()}/log`;
    const r = new WalReader(dir, { maxRecordSize: MAX });
    expect(r.next()).toBeNull();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    w.append(Buffer.from('one'));
    await w.sync();
    const rec = r.next();
    expect(rec?.payload().toString()).toBe('one');
    expect(rec?.offset).toBe(0);
    r.close();
    await w.close();
  });

  it('stops at end() on a record boundary and continues when end() grows', async () => {
    const dir = tmpDir();
    const { payloads, offsets } = await writeLog(dir, 50);
    const bounds = layout(payloads);
    const r0 = prng(3);
    let end = 0;
    const r = new WalReader(dir, { maxRecordSize: MAX, end: () => end });
    const got: ReadRecord[] = [];
    let k = 0;
    while (k < payloads.length) {
      k = Math.min(payloads.length, k + Math.floor(r0() * 4)); // sometimes the same bound again
      end = bounds[k] ?? -1;
      for (let rec = r.next(); rec !== null; rec = r.next()) {
        expect(rec.offset).toBeLessThan(end);
        got.push({ offset: rec.offset, payload: rec.payload() });
      }
      expect(got.length).toBe(k);
    }
    r.close();
    expectRecords(got, payloads, offsets);
  });

  it('never returns a record that runs past end() ("read nothing at or past this offset")', async () => {
    const dir = tmpDir();
    const { payloads, offsets } = await writeLog(dir, 50);
    const bounds = layout(payloads);
    const r0 = prng(4);
    let end = 0;
    const r = new WalReader(dir, { maxRecordSize: MAX, end: () => end });
    const got: ReadRecord[] = [];
    while (got.length < payloads.length) {
      // A bound at a random byte position, often inside a record.
      end = Math.min(end + 1 + Math.floor(r0() * 700), bounds[payloads.length] ?? 0);
      for (let rec = r.next(); rec !== null; rec = r.next()) {
        expect(rec.offset + HEADER + rec.length, `record at ${rec.offset} with end() ${end}`).toBeLessThanOrEqual(end);
        got.push({ offset: rec.offset, payload: rec.payload() });
      }
      expect(got.length).toBe(bounds.filter((b, i) => i > 0 && b <= end).length);
    }
    r.close();
    expectRecords(got, payloads, offsets);
  });

  it('reads a log with a torn tail up to the last good record (no error)', async () => {
    const dir = tmpDir();
    const { payloads, offsets } = await writeLog(dir, 10);
    const seg = segmentFiles(dir)[0];
    if (seg === undefined) throw new Error('no segment');
    // Cut the last record in the middle of its payload (the zero fill after it stays).
    const lastEnd = layout(payloads)[10] ?? 0;
    writeAt(seg.file, lastEnd - 3, Buffer.alloc(3));
    expectRecords(readAll(dir), payloads.slice(0, 9), offsets.slice(0, 9));
  });
});

describe('following a log being written', () => {
  it('after the writer syncs, next() returns the new record (not a stale null)', async () => {
    for (const preallocate of [true, false]) {
      const dir = tmpDir();
      const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate });
      w.append(Buffer.from('a'));
      await w.sync();
      const r = new WalReader(dir, { maxRecordSize: MAX, end: () => w.durableOffset });
      expect(r.next()?.payload().toString()).toBe('a');
      expect(r.next()).toBeNull();
      w.append(Buffer.from('b'));
      await w.sync();
      // `b` is durable and below end(): a reader that waits for the next durable advance after a
      // null would otherwise never see it.
      expect(r.next()?.payload().toString(), `preallocate ${String(preallocate)}`).toBe('b');
      r.close();
      await w.close();
    }
  });

  it('does not read flushed but not yet durable records', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    const r = new WalReader(dir, { maxRecordSize: MAX, end: () => w.durableOffset });
    w.append(Buffer.from('x'));
    w.flush();
    expect(r.next()).toBeNull();
    expect(readAll(dir).length).toBe(1); // it is in the file
    expect(r.next()).toBeNull();
    await w.sync();
    const rec = drain(r);
    expect(rec.map((x) => x.payload.toString())).toEqual(['x']);
    r.close();
    await w.close();
  });

  it('continues across segment rolls after stopping at the durable end mid-segment', async () => {
    for (const preallocate of [true, false]) {
      const dir = tmpDir();
      const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate });
      w.append(Buffer.alloc(100, 1));
      await w.sync();
      const r = new WalReader(dir, { maxRecordSize: MAX, end: () => w.durableOffset });
      expect(drain(r).length).toBe(1);
      // The writer fills the rest of this segment and rolls to the next one.
      for (let i = 0; i < 60; i++) w.append(Buffer.alloc(100, 2));
      await w.sync();
      expect(segmentFiles(dir).length).toBeGreaterThan(1);
      let got: ReadRecord[] = [];
      try {
        got = drain(r);
      } catch (err) {
        expect.fail(`preallocate ${String(preallocate)}: the reader failed after the writer rolled: ${(err as Error).message}`);
      }
      expect(got.length).toBe(60);
      r.close();
      await w.close();
    }
  });

  it('returns every record once, in order, never at or past end(), while the writer appends, syncs and rolls', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.integer({ min: 1, max: MAX }), { minLength: 0, maxLength: 12 }), { minLength: 1, maxLength: 25 }),
        fc.boolean(),
        fc.boolean(),
        async (rounds, preallocate, flushFirst) => {
          const dir = tmpDir();
          const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate, io: noSyncIO });
          const end = (): number => w.durableOffset;
          const r = new WalReader(dir, { maxRecordSize: MAX, end });
          const payloads: Buffer[] = [];
          const offsets: number[] = [];
          const got: ReadRecord[] = [];
          const take = (): void => {
            for (let rec = r.next(); rec !== null; rec = r.next()) {
              expect(rec.offset).toBeLessThan(end());
              expect(rec.offset + HEADER + rec.length).toBeLessThanOrEqual(end());
              got.push({ offset: rec.offset, payload: rec.payload() });
            }
          };
          for (const lengths of rounds) {
            for (const len of lengths) {
              const p = payloadFor(payloads.length).subarray(0, len);
              const full = Buffer.alloc(len, 0x5a);
              p.copy(full);
              payloads.push(full);
              offsets.push(appendAt(w, full));
            }
            if (flushFirst) {
              w.flush();
              take(); // flushed, not durable: only what a roll already made durable may come out
            }
            await w.sync();
            take();
            // All durable records have been returned (no stale null at the durable end).
            expect(got.length).toBe(payloads.length);
          }
          expectRecords(got, payloads, offsets);
          r.close();
          await w.close();
        },
      ),
      { numRuns: 40, interruptAfterTimeLimit: 20_000 },
    );
  });
});
