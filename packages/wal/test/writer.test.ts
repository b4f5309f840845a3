// The writer: record framing and offsets, segment rolling, reopening, refused records, the three
// durability modes, group commit, the durable listener and use after close.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyLog, WalReader, WalWriter, type Durability, type WalOptions } from '../src/index.js';
import {
  appendAt,
  expectCode,
  expectRecords,
  FaultyIO,
  HEADER,
  layout,
  MAX,
  noSyncIO,
  payloadFor,
  readAll,
  removeTmpDirs,
  SEG,
  segmentFiles,
  SMALL,
  tmpDir,
  walErrorOf,
  walRejectionOf,
} from './helpers.js';

afterEach(removeTmpDirs);

const MODES: readonly Durability[] = ['none', 'batch', 'interval'];

interface Step {
  payload: Uint8Array;
  how: 'append' | 'range' | 'reserve';
  /** Extra bytes reserved beyond the payload on the reserve path. */
  slack: number;
  then: 'nothing' | 'flush' | 'sync' | 'syncNow';
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  // An all-zero payload is left to its own test in torn-tail.test.ts (see the zero-CRC case there).
  payload: fc
    .oneof(fc.uint8Array({ minLength: 1, maxLength: MAX }), fc.uint8Array({ minLength: MAX - 60, maxLength: MAX }))
    .filter((p) => p.some((b) => b !== 0)),
  how: fc.constantFrom('append' as const, 'range' as const, 'reserve' as const),
  slack: fc.nat({ max: 40 }),
  then: fc.constantFrom('nothing' as const, 'nothing' as const, 'flush' as const, 'sync' as const, 'syncNow' as const),
});

describe('writer and reader round trip', () => {
  it('returns every record byte for byte at the offset append() returned, in every mode and layout', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(stepArb, { minLength: 0, maxLength: 40 }),
        fc.oneof(fc.integer({ min: MAX + HEADER, max: 3 * MAX }), fc.integer({ min: MAX + HEADER, max: SEG })),
        fc.option(fc.integer({ min: MAX + HEADER, max: 2048 }), { nil: undefined }),
        fc.boolean(),
        fc.constantFrom(...MODES),
        async (steps, segmentSize, bufferSize, preallocate, durability) => {
          const dir = tmpDir();
          const options: WalOptions = {
            segmentSize,
            maxRecordSize: MAX,
            preallocate,
            durability,
            io: noSyncIO,
            ...(bufferSize === undefined ? {} : { bufferSize }),
          };
          const w = WalWriter.open(dir, options);
          expect(w.repaired).toBeUndefined();
          const payloads: Uint8Array[] = [];
          const offsets: number[] = [];
          // The segment bases a writer must produce: it rolls exactly when the reserved record would not fit.
          const bases = [0];
          let segData = 0;
          let next = 0;
          let lastDurable = w.durableOffset;
          for (const s of steps) {
            const len = s.payload.length;
            const reserved = s.how === 'reserve' ? Math.min(MAX, len + s.slack) : len;
            if (segData + HEADER + reserved > segmentSize) {
              bases.push(next);
              segData = 0;
            }
            let off: number;
            if (s.how === 'append') {
              w.append(s.payload);
              off = w.lastOffset;
            } else if (s.how === 'range') {
              const padded = Buffer.concat([Buffer.from([9, 9, 9]), s.payload, Buffer.from([7, 7])]);
              w.append(padded, 3, 3 + len);
              off = w.lastOffset;
            } else {
              const at = w.reserve(reserved);
              w.buffer.set(s.payload, at);
              w.commit(len);
              off = w.lastOffset;
            }
            expect(off).toBe(next);
            payloads.push(s.payload);
            offsets.push(off);
            next += HEADER + len;
            segData += HEADER + len;
            expect(w.nextOffset).toBe(next);
            if (s.then === 'flush') {
              expect(w.flush()).toBe(next);
              expect(w.writtenOffset).toBe(next);
              if (durability === 'none') expect(w.durableOffset).toBe(next);
            } else if (s.then === 'sync') {
              expect(await w.sync()).toBe(next);
              expect(w.durableOffset).toBe(next);
            } else if (s.then === 'syncNow') {
              expect(w.syncNow()).toBe(next);
              expect(w.durableOffset).toBe(next);
            }
            expect(w.durableOffset).toBeGreaterThanOrEqual(lastDurable);
            expect(w.durableOffset).toBeLessThanOrEqual(w.writtenOffset);
            expect(w.writtenOffset).toBeLessThanOrEqual(w.nextOffset);
            lastDurable = w.durableOffset;
          }
          await w.close();

          const all = readAll(dir);
          expectRecords(all, payloads, offsets);
          expect(verifyLog(dir, { maxRecordSize: MAX })).toEqual({ records: payloads.length, bytes: next, status: 'ok' });

          // Segments: named by their first offset, contiguous, rolled only when the next record did not fit.
          const segs = segmentFiles(dir);
          expect(segs.map((s) => s.base)).toEqual(bases);
          for (let i = 0; i < segs.length; i++) {
            const seg = segs[i];
            if (seg === undefined) continue;
            const dataEnd = (segs[i + 1]?.base ?? next) - seg.base;
            expect(dataEnd).toBeLessThanOrEqual(segmentSize);
            const size = fs.statSync(seg.file).size;
            // The first segment is preallocated when the log is opened; a later one only if its
            // spare was ready at the roll (otherwise it grows as it is written).
            if (preallocate && i === 0) expect(size).toBe(segmentSize);
            else if (preallocate) expect([segmentSize, dataEnd]).toContain(size);
            else expect(size).toBe(dataEnd);
          }

          // Reading from any record offset yields the suffix.
          for (let k = 0; k <= payloads.length; k++) {
            const from = k < offsets.length ? (offsets[k] ?? 0) : next;
            expectRecords(readAll(dir, { from }), payloads.slice(k), offsets.slice(k));
          }

          // Reopening continues at the end.
          const w2 = WalWriter.open(dir, options);
          expect(w2.repaired).toBeUndefined();
          expect(w2.nextOffset).toBe(next);
          expect(w2.writtenOffset).toBe(next);
          expect(w2.durableOffset).toBe(next);
          const extra = payloadFor(payloads.length);
          expect(w2.lastOffset).toBe(-1);
          expect(appendAt(w2, extra)).toBe(next);
          await w2.close();
          expectRecords(readAll(dir), [...payloads, extra], [...offsets, next]);
          fs.rmSync(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: 60, interruptAfterTimeLimit: 20_000 },
    );
  });

  it('writes the documented format: u32le length, u32le zlib CRC-32, payload; zero fill after', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    expect(fs.statSync(path.join(dir, '00000000000000000000.wal')).size).toBe(SEG);
    expect(appendAt(w, Buffer.from('hello'))).toBe(0);
    expect(appendAt(w, Buffer.from('world!'))).toBe(13);
    await w.sync();
    const bytes = fs.readFileSync(path.join(dir, '00000000000000000000.wal'));
    expect(bytes.length).toBe(SEG);
    expect(bytes.readUInt32LE(0)).toBe(5);
    expect(bytes.readUInt32LE(4)).toBe(zlib.crc32(Buffer.from('hello')));
    expect(bytes.subarray(8, 13).toString()).toBe('hello');
    expect(bytes.readUInt32LE(13)).toBe(6);
    expect(bytes.readUInt32LE(17)).toBe(zlib.crc32(Buffer.from('world!')));
    expect(bytes.subarray(21, 27).toString()).toBe('world!');
    expect(bytes.subarray(27).every((b) => b === 0)).toBe(true);
    await w.close();
  });

  it('names a new segment by its first offset, which is where the previous one’s data ends', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    const payloads = Array.from({ length: 40 }, (_, i) => Buffer.alloc(200, i + 1));
    const offsets = payloads.map((p) => appendAt(w, p));
    await w.close();
    // 19 records of 208 bytes fit in 4096 (3952); the 20th would not.
    expect(segmentFiles(dir).map((s) => path.basename(s.file))).toEqual([
      '00000000000000000000.wal',
      '00000000000000003952.wal',
      '00000000000000007904.wal',
    ]);
    expect(offsets).toEqual(layout(payloads).slice(0, 40));
    expectRecords(readAll(dir), payloads, offsets);
  });

  it('rolls exactly when the next record would not fit: a full segment holds segmentSize bytes of data', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    const payloads: Buffer[] = [];
    const add = (p: Buffer): number => {
      payloads.push(p);
      return appendAt(w, p);
    };
    // 16 records of 256 bytes fill a segment exactly.
    for (let i = 0; i < 16; i++) add(Buffer.alloc(248, i + 1));
    expect(segmentFiles(dir).map((s) => s.base)).toEqual([0]);
    // The 17th starts the next one.
    expect(add(Buffer.alloc(248, 17))).toBe(SEG);
    for (let i = 0; i < 14; i++) add(Buffer.alloc(248, 18 + i));
    expect(segmentFiles(dir).map((s) => s.base)).toEqual([0, SEG]);
    // 15 records of 256 bytes (3840) and one of 257 bytes would be 4097: it goes to a new segment.
    expect(add(Buffer.alloc(249, 99))).toBe(SEG + 15 * 256);
    expect(segmentFiles(dir).map((s) => s.base)).toEqual([0, SEG, SEG + 15 * 256]);
    await w.close();
    expectRecords(readAll(dir), payloads, layout(payloads));
  });

  it('builds a record in place with reserve() and commit()', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    const at = w.reserve(100);
    const n = w.buffer.write('in place', at);
    w.commit(n);
    expect(w.lastOffset).toBe(0);
    // commit() outside 1..reserved is refused and writes nothing.
    w.reserve(10);
    expectCode(
      walErrorOf(() => {
        w.commit(11);
      }),
      'RECORD_TOO_LARGE',
    );
    w.reserve(10);
    expectCode(
      walErrorOf(() => {
        w.commit(0);
      }),
      'EMPTY_RECORD',
    );
    // commit() without reserve() is refused too.
    walErrorOf(() => {
      w.commit(3);
    });
    expect(w.nextOffset).toBe(HEADER + n);
    const at2 = w.reserve(MAX);
    w.buffer.fill(0xab, at2, at2 + MAX);
    w.commit(MAX);
    expect(w.lastOffset).toBe(HEADER + n);
    await w.close();
    expectRecords(readAll(dir), [Buffer.from('in place'), Buffer.alloc(MAX, 0xab)], [0, HEADER + n]);
  });

  it('refuses a record above maxRecordSize and an empty record before writing anything, and stays usable', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    const a = Buffer.from('first');
    w.append(a);
    await w.sync();
    const b = Buffer.from('second, still buffered');
    w.append(b);
    const file = path.join(dir, '00000000000000000000.wal');
    const before = fs.readFileSync(file);
    const next = w.nextOffset;
    const written = w.writtenOffset;

    expectCode(
      walErrorOf(() => {
        w.append(Buffer.alloc(MAX + 1, 1));
      }),
      'RECORD_TOO_LARGE',
    );
    expectCode(
      walErrorOf(() => w.reserve(MAX + 1)),
      'RECORD_TOO_LARGE',
    );
    expectCode(
      walErrorOf(() => {
        w.append(Buffer.alloc(100_000, 1), 10, 10 + MAX + 1);
      }),
      'RECORD_TOO_LARGE',
    );
    expectCode(
      walErrorOf(() => {
        w.append(Buffer.alloc(0));
      }),
      'EMPTY_RECORD',
    );
    expectCode(
      walErrorOf(() => {
        w.append(Buffer.from('abc'), 2, 2);
      }),
      'EMPTY_RECORD',
    );
    expectCode(
      walErrorOf(() => w.reserve(0)),
      'EMPTY_RECORD',
    );
    expect(w.nextOffset).toBe(next);
    expect(w.writtenOffset).toBe(written);
    expect(w.failure).toBeUndefined();
    expect(fs.readFileSync(file).equals(before)).toBe(true);

    const c = Buffer.alloc(MAX, 3); // exactly maxRecordSize is accepted
    expect(appendAt(w, c)).toBe(next);
    await w.close();
    expectRecords(readAll(dir), [a, b, c], layout([a, b, c]));
  });

  it('continues at the right offset after close and reopen, across segments and preallocation settings', async () => {
    const dir = tmpDir();
    const payloads: Buffer[] = [];
    const offsets: number[] = [];
    for (let round = 0; round < 6; round++) {
      const w = WalWriter.open(dir, { ...SMALL, durability: round % 2 === 0 ? 'batch' : 'none', preallocate: round % 3 !== 1 });
      expect(w.repaired).toBeUndefined();
      const expected = layout(payloads)[payloads.length];
      expect(w.nextOffset).toBe(expected);
      expect(w.durableOffset).toBe(expected);
      for (let k = 0; k < 13; k++) {
        const p = payloadFor(payloads.length);
        offsets.push(appendAt(w, p));
        payloads.push(p);
      }
      await w.close();
      expect(offsets).toEqual(layout(payloads).slice(0, payloads.length));
    }
    expect(segmentFiles(dir).length).toBeGreaterThan(2);
    expectRecords(readAll(dir), payloads, offsets);
    expect(verifyLog(dir, { maxRecordSize: MAX }).status).toBe('ok');
  });

  it('rejects invalid options with INVALID_OPTIONS', () => {
    const dir = tmpDir();
    expectCode(
      walErrorOf(() => WalWriter.open(dir, { segmentSize: 100, maxRecordSize: 100 })),
      'INVALID_OPTIONS',
    );
    expectCode(
      walErrorOf(() => WalWriter.open(dir, { ...SMALL, durability: 'sometimes' as Durability })),
      'INVALID_OPTIONS',
    );
    expectCode(
      walErrorOf(() => WalWriter.open(dir, { ...SMALL, maxRecordSize: 0 })),
      'INVALID_OPTIONS',
    );
  });
});

describe('durability', () => {
  it('none: flush() makes data "durable" (handed to the OS) and no fdatasync is ever asked for', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'none', io: f.io });
    f.arm({});
    w.append(Buffer.from('a'));
    expect(w.nextOffset).toBe(9);
    expect(w.writtenOffset).toBe(0);
    expect(w.durableOffset).toBe(0);
    expect(w.flush()).toBe(9);
    expect(w.writtenOffset).toBe(9);
    expect(w.durableOffset).toBe(9);
    w.append(Buffer.from('bc'));
    expect(await w.sync()).toBe(19);
    expect(w.durableOffset).toBe(19);
    w.append(Buffer.from('d'));
    expect(w.syncNow()).toBe(28);
    for (let i = 0; i < 40; i++) w.append(payloadFor(i)); // rolls
    await w.sync();
    expect(w.durableOffset).toBe(w.nextOffset);
    expect(f.calls.sync).toBe(0);
    await w.close();
    expect(f.calls.sync).toBe(0);
  });

  it('batch: appends and flushes are not durable until sync(); sync() makes everything durable', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: f.io });
    f.arm({});
    w.append(Buffer.from('a'));
    w.append(Buffer.from('b'));
    expect(w.nextOffset).toBe(18);
    expect(w.writtenOffset).toBe(0);
    expect(w.durableOffset).toBe(0);
    expect(w.flush()).toBe(18);
    expect(w.writtenOffset).toBe(18);
    expect(w.durableOffset).toBe(0);
    // Nothing becomes durable on its own in batch mode.
    await new Promise((r) => setTimeout(r, 20));
    expect(w.durableOffset).toBe(0);
    expect(f.calls.sync + f.calls.syncSync).toBe(0);
    w.append(Buffer.from('c'));
    expect(await w.sync()).toBe(27);
    expect(w.durableOffset).toBe(27);
    expect(w.writtenOffset).toBe(27);
    expect(f.calls.sync).toBe(1);
    // A sync with nothing new resolves without another fdatasync.
    expect(await w.sync()).toBe(27);
    expect(f.calls.sync).toBe(1);
    w.append(Buffer.from('d'));
    expect(w.syncNow()).toBe(36);
    expect(f.calls.syncSync).toBe(1);
    await w.close();
  });

  it('batch: group commit, many concurrent sync() calls all resolve, covered by few fdatasyncs', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: f.io });
    f.arm({});
    const pending: { target: number; p: Promise<number> }[] = [];
    for (let i = 0; i < 20; i++) {
      w.append(payloadFor(i));
      pending.push({ target: w.nextOffset, p: w.sync() });
    }
    const results = await Promise.all(pending.map((x) => x.p));
    results.forEach((r, i) => {
      expect(r).toBeGreaterThanOrEqual(pending[i]?.target ?? Infinity);
    });
    expect(w.durableOffset).toBe(w.nextOffset);
    // The first sync() starts an fdatasync; all later ones arrive while it runs and share the next.
    expect(f.calls.sync).toBeLessThanOrEqual(2);

    // A sync() issued while another runs, for more data, resolves only with that data covered.
    w.append(Buffer.from('x'));
    const first = w.sync();
    w.append(Buffer.from('yy'));
    const target = w.nextOffset;
    const second = w.sync();
    expect(await second).toBeGreaterThanOrEqual(target);
    expect(await first).toBeGreaterThanOrEqual(target - 10);
    expect(w.durableOffset).toBe(target);
    await w.close();
  });

  it('onDurable reports each advance of the durable offset, in order, until unsubscribed', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    const seen: number[] = [];
    const off = w.onDurable((d) => seen.push(d));
    w.append(Buffer.from('a'));
    await w.sync();
    w.append(Buffer.from('b'));
    w.append(Buffer.from('c'));
    await w.sync();
    expect(seen).toEqual([9, 27]);
    off();
    w.append(Buffer.from('d'));
    await w.sync();
    expect(seen).toEqual([9, 27]);
    expect(w.durableOffset).toBe(36);
    await w.close();
  });

  it('interval: data becomes durable without any sync() call', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'interval', syncIntervalMs: 2, io: f.io });
    f.arm({});
    const seen: number[] = [];
    w.onDurable((d) => seen.push(d));
    for (let i = 0; i < 30; i++) w.append(payloadFor(i));
    const target = w.nextOffset;
    await new Promise<void>((resolve) => {
      const stop = w.onDurable((d) => {
        if (d >= target) {
          stop();
          resolve();
        }
      });
    });
    expect(w.durableOffset).toBe(target);
    expect(w.writtenOffset).toBe(target);
    expect(f.calls.sync + f.calls.syncSync).toBeGreaterThan(0);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    // A reader bounded by the durable offset sees all of it.
    const r = new WalReader(dir, { maxRecordSize: MAX, end: () => w.durableOffset });
    let n = 0;
    while (r.next() !== null) n++;
    r.close();
    expect(n).toBe(30);
    await w.close();
  });

  it('close() makes appended data durable in every mode', async () => {
    for (const durability of MODES) {
      const dir = tmpDir();
      const w = WalWriter.open(dir, { ...SMALL, durability });
      const payloads = Array.from({ length: 25 }, (_, i) => payloadFor(i));
      for (const p of payloads) w.append(p);
      await w.close();
      expectRecords(readAll(dir), payloads, layout(payloads));
    }
  });

  it('close() called again while it runs shares its outcome (the files are closed once)', async () => {
    for (const durability of ['none', 'batch', 'interval'] as const) {
      const dir = tmpDir();
      const w = WalWriter.open(dir, { ...SMALL, durability, cleanClose: true });
      w.append(Buffer.from('a'));
      const first = w.close();
      const second = w.close();
      await expect(Promise.all([first, second])).resolves.toEqual([undefined, undefined]);
      await w.close();
      const again = WalWriter.open(dir, { ...SMALL, durability, cleanClose: true });
      expect(again.trustedClean).toBe(true);
      expect(again.nextOffset).toBe(9);
      await again.close();
    }
  });

  it('refuses all work after close() with CLOSED; close() twice is fine', async () => {
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    w.append(Buffer.from('a'));
    await w.close();
    expectCode(
      walErrorOf(() => {
        w.append(Buffer.from('b'));
      }),
      'CLOSED',
    );
    expectCode(
      walErrorOf(() => w.reserve(4)),
      'CLOSED',
    );
    expectCode(
      walErrorOf(() => w.flush()),
      'CLOSED',
    );
    expectCode(
      walErrorOf(() => w.syncNow()),
      'CLOSED',
    );
    expectCode(await walRejectionOf(w.sync()), 'CLOSED');
    await w.close();
    expectRecords(readAll(dir), [Buffer.from('a')], [0]);

    const r = new WalReader(dir, { maxRecordSize: MAX });
    r.close();
    expectCode(
      walErrorOf(() => r.next()),
      'CLOSED',
    );
  });
});
