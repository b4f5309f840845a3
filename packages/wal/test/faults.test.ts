// I/O faults injected through the FileIO layer: a failed or short write cuts the log back to the last
// record boundary and fails the writer (WRITE_FAILED, then FAILED); a failed fdatasync fails it for
// good (SYNC_FAILED), rejects pending sync() calls and is never retried; a failed open is an IO error.
import fs from 'node:fs';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyLog, WalError, WalWriter, type Durability, type WalOptions } from '../src/index.js';
import {
  appendAt,
  expectCode,
  expectRecords,
  FaultyIO,
  HEADER,
  layout,
  MAX,
  readAll,
  removeTmpDirs,
  segmentFiles,
  SMALL,
  tmpDir,
  walErrorOf,
  walRejectionOf,
  type WriteFault,
} from './helpers.js';

afterEach(removeTmpDirs);

function record(i: number, len: number): Buffer {
  const b = Buffer.alloc(len, (i % 251) + 1);
  b[0] = 0x80 | (i & 0x7f);
  return b;
}

/** After a failure: the writer refuses further work with FAILED, and closing it releases it. */
async function expectFailedFor(w: WalWriter, failure: WalError): Promise<void> {
  expect(w.failure).toBe(failure);
  const e1 = walErrorOf(() => {
    w.append(Buffer.from('more'));
  });
  expectCode(e1, 'FAILED');
  expect(e1.cause).toBe(failure);
  expectCode(
    walErrorOf(() => w.flush()),
    'FAILED',
  );
  expectCode(
    walErrorOf(() => w.reserve(3)),
    'FAILED',
  );
  expectCode(await walRejectionOf(w.sync()), 'FAILED');
  await w.close().catch(() => undefined);
}

/** The segment holding log offset `offset` as the writer's current position (the last with base <= offset). */
function segmentAt(dir: string, offset: number): { base: number; file: string } {
  const segs = segmentFiles(dir).filter((s) => s.base <= offset);
  const seg = segs[segs.length - 1];
  if (seg === undefined) throw new Error(`no segment at ${offset}`);
  return seg;
}

describe('write faults', () => {
  it('a failed or short write keeps exactly the records flushed before it (property)', async () => {
    let fired = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ len: fc.integer({ min: 1, max: MAX }), flush: fc.boolean() }), { minLength: 1, maxLength: 50 }),
        fc.nat({ max: 6 }),
        fc.constantFrom('enospc' as const, 'short' as const),
        fc.nat({ max: 3000 }),
        fc.boolean(),
        fc.constantFrom<Durability>('none', 'batch'),
        fc.option(fc.integer({ min: MAX + HEADER, max: 1500 }), { nil: undefined }),
        async (steps, k, kind, written, preallocate, durability, bufferSize) => {
          const f = new FaultyIO();
          const dir = tmpDir();
          const options: WalOptions = { ...SMALL, preallocate, durability, io: f.io, ...(bufferSize === undefined ? {} : { bufferSize }) };
          const w = WalWriter.open(dir, options);
          const fault: WriteFault = { kind, written };
          f.arm({ dataWrite: (i) => (i === k ? fault : undefined) });
          const payloads: Buffer[] = [];
          let flushedByCaller = 0; // records covered by a flush() that returned
          let writtenBefore = 0; // written offset just before the call that failed
          let failure: unknown;
          try {
            for (const s of steps) {
              const p = record(payloads.length, s.len);
              writtenBefore = w.writtenOffset;
              appendAt(w, p);
              payloads.push(p);
              if (s.flush) {
                writtenBefore = w.writtenOffset;
                w.flush();
                flushedByCaller = payloads.length;
              }
            }
            writtenBefore = w.writtenOffset;
            w.flush();
            flushedByCaller = payloads.length;
          } catch (err) {
            failure = err;
          }
          const offsets = layout(payloads);

          if (f.injected === 0) {
            expect(failure).toBeUndefined();
            await w.close();
            expectRecords(readAll(dir), payloads, offsets);
            return;
          }
          fired++;
          if (!(failure instanceof WalError)) return expect.fail(`expected a WalError, got ${String(failure)}`);
          expectCode(failure, 'WRITE_FAILED');
          expect(w.writtenOffset, 'the written offset after the failure').toBe(writtenBefore);
          expect(w.durableOffset).toBeLessThanOrEqual(writtenBefore);
          const seg = segmentAt(dir, writtenBefore);
          expect(failure.file).toBe(seg.file);
          expect(failure.offset).toBe(writtenBefore - seg.base);
          await expectFailedFor(w, failure);

          // On disk: exactly the records flushed before the failing write, cleanly cut.
          const kept = offsets.filter((o, i) => i > 0 && o <= writtenBefore).length;
          expect(kept).toBeGreaterThanOrEqual(flushedByCaller);
          expect(offsets[kept]).toBe(writtenBefore);
          expect(verifyLog(dir, { maxRecordSize: MAX })).toEqual({ status: 'ok', records: kept, bytes: writtenBefore });
          expectRecords(readAll(dir), payloads.slice(0, kept), offsets.slice(0, kept));
          if (!preallocate) expect(fs.statSync(seg.file).size).toBe(writtenBefore - seg.base);

          const { io: _faulty, ...clean } = options;
          const again = WalWriter.open(dir, clean);
          expect(again.repaired, 'the failed writer left a torn tail behind').toBeUndefined();
          expect(again.nextOffset).toBe(writtenBefore);
          appendAt(again, Buffer.from('after'));
          await again.close();
          expectRecords(readAll(dir), [...payloads.slice(0, kept), Buffer.from('after')], [...offsets.slice(0, kept), writtenBefore]);
          fs.rmSync(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: 80, interruptAfterTimeLimit: 20_000 },
    );
    expect(fired, 'runs in which the fault was injected').toBeGreaterThan(15);
  });

  it('ENOSPC on flush: flushed records survive, buffered ones are refused, sync() rejects', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: f.io });
    const a = [record(0, 100), record(1, 50)];
    for (const p of a) appendAt(w, p);
    await w.sync();
    f.arm({ dataWrite: () => ({ kind: 'enospc', written: 30 }) });
    appendAt(w, record(2, 70));
    const err = await walRejectionOf(w.sync());
    expectCode(err, 'WRITE_FAILED');
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(w.writtenOffset).toBe(166);
    expect(w.durableOffset).toBe(166);
    await expectFailedFor(w, err);
    expectRecords(readAll(dir), a, layout(a));
    const again = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    expect(again.repaired).toBeUndefined();
    await again.close();
  });

  it('a roll with no spare segment ready writes no zeros on the append path: the new segment grows as written', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: f.io });
    // Any zero fill from now on fails: the rolls below (no event-loop turn, so no spare is ready) must not attempt one.
    f.arm({ zeroWrite: () => ({ kind: 'enospc', written: 0 }) });
    const payloads: Buffer[] = [];
    for (let i = 0; i < 30; i++) {
      const p = record(i, 200);
      appendAt(w, p);
      payloads.push(p);
    }
    expect(w.failure).toBeUndefined();
    await w.close();
    expectRecords(readAll(dir), payloads, layout(payloads));
    const segs = segmentFiles(dir);
    expect(segs.length).toBeGreaterThan(1);
    // 19 records of 208 bytes fill the first (preallocated) segment; the second holds the other 11, unpadded.
    expect(fs.statSync((segs[1] as { file: string }).file).size).toBe(11 * 208);
    const again = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    expect(again.nextOffset).toBe(30 * 208);
    appendAt(again, Buffer.from('z'));
    await again.close();
    expect(readAll(dir).length).toBe(31);
  });

  it('ENOSPC while preallocating the first segment of a new log fails the open', () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    f.arm({ zeroWrite: () => ({ kind: 'enospc', written: 0 }) });
    const err = walErrorOf(() => WalWriter.open(dir, { ...SMALL, durability: 'batch', io: f.io }));
    expect(err.code).toBe('WRITE_FAILED');
  });

  it('when even cutting back fails, the next open finds a torn tail and repairs it', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: f.io });
    const a = [record(0, 120)];
    appendAt(w, a[0] ?? Buffer.alloc(1));
    await w.sync();
    f.arm({
      dataWrite: () => ({ kind: 'short', written: 40 }),
      zeroWrite: () => ({ kind: 'enospc', written: 0 }),
    });
    appendAt(w, record(1, 100));
    expectCode(
      walErrorOf(() => w.flush()),
      'WRITE_FAILED',
    );
    await w.close().catch(() => undefined);
    expect(['ok', 'torn-tail']).toContain(verifyLog(dir, { maxRecordSize: MAX }).status);
    const again = WalWriter.open(dir, { ...SMALL, durability: 'batch' });
    expect(again.nextOffset).toBe(128);
    await again.close();
    expectRecords(readAll(dir), a, [0]);
    expect(verifyLog(dir, { maxRecordSize: MAX }).status).toBe('ok');
  });
});

describe('fsync faults', () => {
  it('a failed fdatasync fails the writer for good: pending sync() calls reject, nothing is retried', { timeout: 10_000 }, async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: f.io });
    appendAt(w, record(0, 10));
    appendAt(w, record(1, 20));
    const d1 = await w.sync();
    expect(d1).toBe(46);
    f.arm({ sync: () => true });
    appendAt(w, record(2, 30));
    const p1 = w.sync();
    appendAt(w, record(3, 30));
    const p2 = w.sync();
    const p3 = w.sync();
    const errs = await Promise.all([walRejectionOf(p1), walRejectionOf(p2), walRejectionOf(p3)]);
    for (const e of errs) expectCode(e, 'SYNC_FAILED');
    const failure = w.failure;
    if (failure === undefined) return expect.fail('the writer did not fail');
    expectCode(failure, 'SYNC_FAILED');
    expect((failure.cause as NodeJS.ErrnoException).code).toBe('EIO');
    expect(w.durableOffset).toBe(d1);
    expect(f.calls.sync).toBe(1);
    await expectFailedFor(w, failure);
    expectCode(
      walErrorOf(() => w.syncNow()),
      'CLOSED',
    );
    await new Promise((r) => setTimeout(r, 20));
    expect(f.calls.sync).toBe(1);
    expect(f.calls.syncSync).toBe(0);
    expect(w.durableOffset).toBe(d1);
  });

  it('a failed blocking fdatasync (syncNow) fails the writer and is not retried', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: f.io });
    appendAt(w, record(0, 10));
    expect(w.syncNow()).toBe(18);
    f.arm({ syncSync: () => true });
    appendAt(w, record(1, 10));
    const err = walErrorOf(() => w.syncNow());
    expectCode(err, 'SYNC_FAILED');
    expect(w.failure).toBe(err);
    expect(w.durableOffset).toBe(18);
    expectCode(
      walErrorOf(() => w.syncNow()),
      'FAILED',
    );
    await expectFailedFor(w, err);
    expect(f.calls.syncSync).toBe(1);
    expect(f.calls.sync).toBe(0);
  });

  it('a failed fdatasync of the old segment while rolling fails the writer', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate: false, io: f.io });
    appendAt(w, record(0, 200));
    const d1 = await w.sync();
    f.arm({ syncSync: () => true });
    let failure: unknown;
    try {
      for (let i = 1; i < 30; i++) appendAt(w, record(i, 200));
    } catch (err) {
      failure = err;
    }
    if (!(failure instanceof WalError)) return expect.fail(`expected a WalError, got ${String(failure)}`);
    expectCode(failure, 'SYNC_FAILED');
    expect(w.durableOffset).toBe(d1);
    expect(f.calls.syncSync).toBe(1);
    await expectFailedFor(w, failure);
    expect(f.calls.syncSync).toBe(1);
    expect(f.calls.sync).toBe(0);
  });

  it('interval mode: a failed fdatasync stops the timer from syncing again', { timeout: 10_000 }, async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    const w = WalWriter.open(dir, { ...SMALL, durability: 'interval', syncIntervalMs: 1, io: f.io });
    f.arm({ sync: () => true, syncSync: () => true });
    appendAt(w, record(0, 10));
    const failed = new Promise<void>((resolve) => {
      const poll = (): void => {
        if (w.failure !== undefined) resolve();
        else setTimeout(poll, 1);
      };
      poll();
    });
    await failed;
    const failure = w.failure;
    if (failure === undefined) return expect.fail('unreachable');
    expectCode(failure, 'SYNC_FAILED');
    expect(w.durableOffset).toBe(0);
    const calls = f.calls.sync + f.calls.syncSync;
    expect(calls).toBe(1);
    await new Promise((r) => setTimeout(r, 30)); // many intervals
    expect(f.calls.sync + f.calls.syncSync).toBe(calls);
    expect(w.durableOffset).toBe(0);
    await expectFailedFor(w, failure);
  });
});

describe('open faults', () => {
  it('a failed open is an IO error; a later open succeeds', async () => {
    const f = new FaultyIO();
    const dir = tmpDir();
    f.arm({ open: () => true });
    const err = walErrorOf(() => WalWriter.open(dir, { ...SMALL, durability: 'batch', io: f.io }));
    expectCode(err, 'IO');
    f.arm({});
    const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', io: f.io });
    appendAt(w, Buffer.from('ok'));
    await w.close();
    f.arm({ open: () => true });
    expectCode(
      walErrorOf(() => WalWriter.open(dir, { ...SMALL, durability: 'batch', io: f.io })),
      'IO',
    );
    expectRecords(readAll(dir), [Buffer.from('ok')], [0]);
  });

  it('a failed open of the next segment fails the writer; everything before the roll is kept', async () => {
    for (const preallocate of [true, false]) {
      const f = new FaultyIO();
      const dir = tmpDir();
      const w = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate, io: f.io });
      f.arm({ open: () => true });
      const payloads: Buffer[] = [];
      let failure: unknown;
      try {
        for (let i = 0; i < 30; i++) {
          const p = record(i, 200);
          appendAt(w, p);
          payloads.push(p);
          if (i % 4 === 0) w.flush(); // gives the writer a chance to prepare the next segment early
          await new Promise((r) => setImmediate(r));
        }
      } catch (err) {
        failure = err;
      }
      if (!(failure instanceof WalError)) return expect.fail(`expected a WalError, got ${String(failure)}`);
      expectCode(failure, 'WRITE_FAILED');
      expect(payloads.length).toBe(19);
      expect(w.writtenOffset).toBe(19 * 208);
      await expectFailedFor(w, failure);
      expectRecords(readAll(dir), payloads, layout(payloads));
      const again = WalWriter.open(dir, { ...SMALL, durability: 'batch', preallocate });
      expect(again.repaired).toBeUndefined();
      expect(again.nextOffset).toBe(19 * 208);
      await again.close();
    }
  });
});
